//! Where `fit` takes its batches from: arrays, or a generator.

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension};
use rand::seq::SliceRandom;

use crate::error::format_shape;
use crate::random::{stream, Purpose};
use crate::{Error, Result};

/// One batch of inputs and targets, batch axis first.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The inputs, e.g. `(32, 28, 28, 1)`.
    pub x: ArrayD<f32>,
    /// The targets: labels `(32,)` or one-hot rows `(32, 10)`.
    pub y: ArrayD<f32>,
}

/// A source of training batches, one pass (epoch) after another.
///
/// [`fit`](crate::model::Sequential::fit) asks it to start each epoch, then
/// takes [`steps_per_epoch`](BatchSource::steps_per_epoch) batches from it.
/// Arrays ([`ArraySource`]) and the image augmenter's
/// [`Flow`](crate::preprocessing::image::Flow) implement it; so can a user's
/// own generator.
pub trait BatchSource: Send {
    /// Number of samples in one pass.
    fn len(&self) -> usize;

    /// Whether one pass holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one input sample, batch axis left out.
    fn sample_shape(&self) -> Vec<usize>;

    /// Number of batches in one pass: `ceil(len / batch_size)`.
    fn steps_per_epoch(&self) -> usize;

    /// Prepares the pass of epoch `epoch` (counted from zero): draws its
    /// order and, for a generator, starts making its batches.
    ///
    /// # Errors
    ///
    /// Whatever the source finds wrong with its data.
    fn start_epoch(&mut self, epoch: usize) -> Result<()>;

    /// The next batch of the current pass, or `None` when the pass is over.
    ///
    /// # Errors
    ///
    /// Whatever goes wrong making the batch.
    fn next_batch(&mut self) -> Result<Option<Batch>>;

    /// The index, in the source's data, of the sample at `position` of the
    /// current pass (counted from zero over the pass' batches), so that an
    /// error about a sample can name the one the user gave. `None` (the
    /// default) when the source cannot tell; errors then give the position.
    fn sample_index(&self, position: usize) -> Option<usize> {
        let _ = position;
        None
    }

    /// Every target of the source, in the order of its data (the order
    /// [`sample_index`](BatchSource::sample_index) counts in), when it holds
    /// them: `fit` checks them against the compiled loss before training,
    /// so that a bad label stops it before any weight changes. `None` (the
    /// default) when the source cannot give them all at once; each batch's
    /// targets are then checked as it comes.
    fn targets(&self) -> Option<ArrayViewD<'_, f32>> {
        None
    }

    /// Gives a used batch back so that its memory can be reused.
    fn recycle(&mut self, batch: Batch) {
        let _ = batch;
    }
}

/// Batches drawn from two arrays held in memory, shuffled per epoch.
pub struct ArraySource<'a> {
    x: ArrayViewD<'a, f32>,
    y: ArrayViewD<'a, f32>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    order: Vec<usize>,
    position: usize,
    spare: Vec<Batch>,
}

impl<'a> ArraySource<'a> {
    /// Batches of `batch_size` from `x` and `y`, whose first axes must have
    /// one length. Shuffled with seed 0 until [`shuffle`](Self::shuffle) and
    /// [`seed`](Self::seed) say otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] for zero samples, [`Error::ShapeMismatch`] when
    /// `x` and `y` hold different numbers of samples, and
    /// [`Error::InvalidArgument`] for a zero batch size.
    pub fn new(x: ArrayViewD<'a, f32>, y: ArrayViewD<'a, f32>, batch_size: usize) -> Result<Self> {
        check_pair(&x, &y)?;
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "expected at least 1"));
        }
        Ok(ArraySource {
            order: (0..x.shape()[0]).collect(),
            x,
            y,
            batch_size,
            shuffle: true,
            seed: 0,
            position: 0,
            spare: Vec::new(),
        })
    }

    /// Whether each epoch visits the samples in a new random order (default
    /// true).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the per-epoch orders (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl BatchSource for ArraySource<'_> {
    fn len(&self) -> usize {
        self.x.shape()[0]
    }

    fn targets(&self) -> Option<ArrayViewD<'_, f32>> {
        Some(self.y.view())
    }

    fn sample_shape(&self) -> Vec<usize> {
        self.x.shape()[1..].to_vec()
    }

    fn steps_per_epoch(&self) -> usize {
        self.len().div_ceil(self.batch_size)
    }

    fn start_epoch(&mut self, epoch: usize) -> Result<()> {
        self.order = epoch_order(self.len(), self.shuffle, self.seed, epoch);
        self.position = 0;
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.position >= self.order.len() {
            return Ok(None);
        }
        let end = (self.position + self.batch_size).min(self.order.len());
        let indices = &self.order[self.position..end];
        self.position = end;
        let mut batch = self.spare.pop().unwrap_or_default();
        gather_rows(&self.x, indices, &mut batch.x);
        gather_rows(&self.y, indices, &mut batch.y);
        Ok(Some(batch))
    }

    fn sample_index(&self, position: usize) -> Option<usize> {
        self.order.get(position).copied()
    }

    fn recycle(&mut self, batch: Batch) {
        self.spare.push(batch);
    }
}

/// The order of the samples in epoch `epoch`: `0..n`, shuffled with the
/// stream `(seed, Shuffle, epoch)` when `shuffle` is set.
pub fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = stream(seed, Purpose::Shuffle, epoch as u64, 0);
        order.shuffle(&mut rng);
    }
    order
}

/// Copies the rows `indices` of `source` into `out`, reusing its memory when
/// the shape is unchanged.
pub fn gather_rows(source: &ArrayViewD<'_, f32>, indices: &[usize], out: &mut ArrayD<f32>) {
    // `IxDyn` keeps up to four axes inline: no allocation per batch.
    let mut shape = source.raw_dim();
    shape[0] = indices.len();
    crate::layers::resize(out, shape.slice());
    for (mut row, &i) in out.outer_iter_mut().zip(indices) {
        row.assign(&source.index_axis(Axis(0), i));
    }
}

/// Checks that `x` and `y` are non-empty and hold the same number of samples.
pub(crate) fn check_pair(x: &ArrayViewD<'_, f32>, y: &ArrayViewD<'_, f32>) -> Result<()> {
    if x.ndim() == 0 || x.shape()[0] == 0 {
        return Err(Error::EmptyData { what: "x".into() });
    }
    if y.ndim() == 0 || y.shape()[0] != x.shape()[0] {
        return Err(Error::ShapeMismatch {
            layer: "y".into(),
            expected: format!("({}, ...), one target per sample of x", x.shape()[0]),
            got: format_shape(y.shape()),
        });
    }
    Ok(())
}
