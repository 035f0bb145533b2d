//! [`ImageDataGenerator::flow`]: augmented batches, made a few batches ahead
//! on worker threads.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension, IxDyn};
use rayon::prelude::*;
use rayon::ThreadPool;

use super::element::{Element, Sealed, Store};
use super::generator::{adjust_values, ImageDataGenerator};
use super::warp::warp;
use crate::error::format_shape;
use crate::model::{epoch_order, gather_rows, Batch, BatchSource};
use crate::random::{stream, Purpose};
use crate::{Error, Result};

/// Batches made ahead by default.
const DEFAULT_PREFETCH: usize = 8;

impl ImageDataGenerator {
    /// Augmented batches of `batch_size` images from `x`, shaped
    /// `(N, height, width, channels)`, with their labels `y`, shaped `(N,)`
    /// or `(N, classes)`.
    ///
    /// `x` may hold `f32` or `u8` values; it is copied once and kept in its
    /// own element type, and `u8` values are converted exactly when a batch
    /// is made. Labels are copied as `f32`. The flow shuffles with seed 0
    /// until [`Flow::shuffle`] and [`Flow::seed`] say otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad option (see
    /// [`validate`](Self::validate)) or a zero batch size;
    /// [`Error::ShapeMismatch`] when `x` is not of rank 4 with non-zero
    /// image sizes, or `y` is not `(N,)` or `(N, classes)` with the `N` of
    /// `x`; [`Error::EmptyData`] when `x` holds no image;
    /// [`Error::NonFiniteInput`] when a pixel of `f32` images is NaN or
    /// infinite.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::model::BatchSource;
    /// use kerust::preprocessing::image::ImageDataGenerator;
    /// use ndarray::{Array1, Array4};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let x = Array4::<u8>::zeros((100, 28, 28, 1));
    /// let y = Array1::<f32>::zeros(100);
    /// let mut flow = ImageDataGenerator::new()
    ///     .rotation_range(15.0)
    ///     .rescale(1.0 / 255.0)
    ///     .flow(&x, &y, 32)?
    ///     .seed(42);
    /// flow.start_epoch(0)?;
    /// let mut sizes = Vec::new();
    /// while let Some(batch) = flow.next_batch()? {
    ///     sizes.push(batch.x.shape()[0]);
    /// }
    /// assert_eq!(sizes, [32, 32, 32, 4]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn flow<X, Y, DX, DY>(
        &self,
        x: &ArrayBase<X, DX>,
        y: &ArrayBase<Y, DY>,
        batch_size: usize,
    ) -> Result<Flow>
    where
        X: Data,
        X::Elem: Element,
        Y: Data,
        Y::Elem: Element,
        DX: Dimension,
        DY: Dimension,
    {
        self.validate()?;
        let image_shape = check_images("ImageDataGenerator::flow", x.shape())?;
        self.check_fitted(image_shape[2])?;
        let n = x.shape()[0];
        check_labels(x.shape(), y.shape())?;
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "expected at least 1"));
        }

        let images = <X::Elem as Sealed>::store(x.iter().copied().collect());
        if let Store::F32(values) = &images {
            Error::check_finite("x", values, &image_shape)?;
        }
        let labels = y.mapv(|v| v.to_f32()).into_dyn();
        log::debug!(
            "flow over {n} images of {}, batches of {batch_size}",
            format_shape(&image_shape)
        );
        Ok(Flow {
            data: Arc::new(FlowData {
                generator: self.clone(),
                images,
                image_shape,
                labels,
                batch_size,
            }),
            shuffle: true,
            seed: 0,
            workers: None,
            prefetch: DEFAULT_PREFETCH,
            pool: None,
            spares: Arc::new(Mutex::new(Vec::new())),
            order: Arc::from(Vec::new()),
            pass: None,
        })
    }
}

/// Checks that `shape` is `(N, height, width, channels)` with every size
/// non-zero, and returns the image shape.
pub(super) fn check_images(caller: &str, shape: &[usize]) -> Result<[usize; 3]> {
    if shape.len() != 4 {
        return Err(Error::shape(
            caller,
            "(N, height, width, channels), e.g. (60000, 28, 28, 1) for greyscale digits",
            shape,
        ));
    }
    if shape[0] == 0 {
        return Err(Error::EmptyData { what: "x".into() });
    }
    if shape[1..].contains(&0) {
        return Err(Error::shape(
            caller,
            "(N, height, width, channels) with non-zero height, width and channels",
            shape,
        ));
    }
    Ok([shape[1], shape[2], shape[3]])
}

fn check_labels(x_shape: &[usize], y_shape: &[usize]) -> Result<()> {
    let n = x_shape[0];
    if !(1..=2).contains(&y_shape.len()) || y_shape[0] != n {
        return Err(Error::ShapeMismatch {
            layer: "y".into(),
            expected: format!(
                "({n},) or ({n}, classes): one label or row per image of x {}",
                format_shape(x_shape)
            ),
            got: format_shape(y_shape),
        });
    }
    Ok(())
}

/// Augmented batches from [`ImageDataGenerator::flow`], one pass (epoch)
/// after another.
///
/// [`start_epoch`](BatchSource::start_epoch) draws the pass's order and
/// starts a producer thread that makes its batches in that order, a few
/// ahead (default 8), transforming the images of each batch in parallel on
/// the rayon pool; [`next_batch`](BatchSource::next_batch) takes them in
/// order. A pass holds `ceil(N / batch_size)` batches; every image appears
/// once, the last batch holding the rest.
///
/// The transform of image `i` in epoch `e` is drawn from the stream
/// `(seed, Augment, e, i)`, `i` being the image's index in `x`: the values
/// of every batch depend on the seed and the epoch only, never on the
/// number of threads or on which thread made what.
///
/// Dropping a flow, or starting a new epoch before the last one is drained,
/// stops its producer after the batch in hand.
///
/// # Limitations
///
/// Without [`workers`](Self::workers), the images are transformed on the
/// global rayon pool. Calling [`next_batch`](BatchSource::next_batch) from
/// a task of that pool while it has a single thread would wait forever
/// for work queued behind the caller; give the flow its own threads with
/// [`workers`](Self::workers) in that case.
pub struct Flow {
    data: Arc<FlowData>,
    shuffle: bool,
    seed: u64,
    workers: Option<usize>,
    prefetch: usize,
    pool: Option<Arc<ThreadPool>>,
    spares: Arc<Mutex<Vec<Batch>>>,
    order: Arc<[usize]>,
    pass: Option<Pass>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("images", &self.len())
            .field("image_shape", &self.data.image_shape)
            .field("batch_size", &self.data.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("workers", &self.workers)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

/// What every pass of a flow reads.
struct FlowData {
    generator: ImageDataGenerator,
    images: Store,
    image_shape: [usize; 3],
    labels: ArrayD<f32>,
    batch_size: usize,
}

impl Flow {
    /// Whether each epoch visits the images in a new random order (default
    /// true). Takes effect at the next [`start_epoch`](BatchSource::start_epoch).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the orders and of the transforms (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Transforms the images on a rayon pool of `threads` threads owned by
    /// the flow (built at the first epoch) instead of the global pool (the
    /// default). The batches are the same for every number of threads.
    pub fn workers(mut self, threads: usize) -> Self {
        self.workers = Some(threads);
        self.pool = None;
        self
    }

    /// How many finished batches may wait for [`next_batch`]
    /// (default 8); one more is in the making.
    ///
    /// [`next_batch`]: BatchSource::next_batch
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// The number of images per batch.
    pub fn batch_size(&self) -> usize {
        self.data.batch_size
    }

    fn thread_pool(&mut self) -> Result<Option<Arc<ThreadPool>>> {
        let Some(threads) = self.workers else {
            return Ok(None);
        };
        if threads == 0 {
            return Err(Error::invalid(
                "workers",
                0,
                "expected at least 1 thread; leave it unset to use the global rayon pool",
            ));
        }
        if self.pool.is_none() {
            let built = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("kerust-augment-{i}"))
                .build();
            match built {
                Ok(pool) => self.pool = Some(Arc::new(pool)),
                Err(e) => log::warn!(
                    "no pool of {threads} augmentation threads ({e}); using the global pool"
                ),
            }
        }
        Ok(self.pool.clone())
    }
}

impl BatchSource for Flow {
    fn len(&self) -> usize {
        self.data.labels.shape()[0]
    }

    fn sample_shape(&self) -> Vec<usize> {
        self.data.image_shape.to_vec()
    }

    fn steps_per_epoch(&self) -> usize {
        self.len().div_ceil(self.data.batch_size)
    }

    /// Draws the order of epoch `epoch` and starts making its batches,
    /// after stopping the producer of any previous pass.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when [`workers`](Flow::workers) was set
    /// to 0.
    fn start_epoch(&mut self, epoch: usize) -> Result<()> {
        let pool = self.thread_pool()?;
        self.pass = None;
        self.order = epoch_order(self.len(), self.shuffle, self.seed, epoch).into();
        let plan = PassPlan {
            data: Arc::clone(&self.data),
            seed: self.seed,
            epoch,
            order: Arc::clone(&self.order),
            pool,
            spares: Arc::clone(&self.spares),
        };
        log::debug!(
            "augmenting epoch {epoch}: {} batches, seed {}",
            self.steps_per_epoch(),
            self.seed
        );
        self.pass = Some(Pass::launch(plan, self.prefetch));
        Ok(())
    }

    /// The next batch of the current pass, or `None` once it is over. Before
    /// any [`start_epoch`](BatchSource::start_epoch), starts epoch 0.
    ///
    /// # Errors
    ///
    /// As [`start_epoch`](BatchSource::start_epoch), when it starts epoch 0.
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.pass.is_none() {
            self.start_epoch(0)?;
        }
        Ok(self.pass.as_mut().and_then(Pass::next))
    }

    fn sample_index(&self, position: usize) -> Option<usize> {
        self.order.get(position).copied()
    }

    fn targets(&self) -> Option<ArrayViewD<'_, f32>> {
        Some(self.data.labels.view())
    }

    /// Keeps the batch's arrays to be refilled by a later batch.
    fn recycle(&mut self, batch: Batch) {
        let mut spares = lock(&self.spares);
        if spares.len() < self.prefetch + 2 {
            spares.push(batch);
        }
    }
}

fn lock(spares: &Mutex<Vec<Batch>>) -> std::sync::MutexGuard<'_, Vec<Batch>> {
    // A poisoned list of spare buffers is still a valid list.
    spares
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Everything needed to make the batches of one pass.
#[derive(Clone)]
struct PassPlan {
    data: Arc<FlowData>,
    seed: u64,
    epoch: usize,
    order: Arc<[usize]>,
    pool: Option<Arc<ThreadPool>>,
    spares: Arc<Mutex<Vec<Batch>>>,
}

impl PassPlan {
    fn steps(&self) -> usize {
        self.order.len().div_ceil(self.data.batch_size)
    }

    /// Makes batch `step` of the pass, its images transformed in parallel
    /// on the pool when `parallel` is set, one after another on the
    /// calling thread otherwise; the values are the same either way.
    fn batch(&self, step: usize, parallel: bool) -> Batch {
        let batch_size = self.data.batch_size;
        let start = step * batch_size;
        let indices = &self.order[start..(start + batch_size).min(self.order.len())];

        let [height, width, channels] = self.data.image_shape;
        let shape = [indices.len(), height, width, channels];
        let mut batch = lock(&self.spares).pop().unwrap_or_default();
        if batch.x.shape() != shape || !batch.x.is_standard_layout() {
            batch.x = ArrayD::zeros(IxDyn(&shape));
        }
        let Some(values) = batch.x.as_slice_mut() else {
            unreachable!("a standard-layout array is one contiguous slice");
        };
        let image_len = height * width * channels;
        if parallel {
            let mut fill = || {
                values
                    .par_chunks_mut(image_len)
                    .zip(indices.par_iter())
                    .for_each(|(out, &index)| self.augment(index, out));
            };
            match &self.pool {
                Some(pool) => pool.install(fill),
                None => fill(),
            }
        } else {
            for (out, &index) in values.chunks_mut(image_len).zip(indices) {
                self.augment(index, out);
            }
        }

        gather_rows(&self.data.labels.view(), indices, &mut batch.y);
        batch
    }

    /// Writes the augmented image `index` into `out`.
    fn augment(&self, index: usize, out: &mut [f32]) {
        let data = &*self.data;
        let generator = &data.generator;
        let [height, width, _] = data.image_shape;
        let mut rng = stream(self.seed, Purpose::Augment, self.epoch as u64, index as u64);
        let params = generator.random_transform((height, width), &mut rng);

        let range = index * out.len()..(index + 1) * out.len();
        let (fill, cval) = (generator.fill_mode, generator.cval);
        match &data.images {
            Store::F32(v) => warp(&v[range], data.image_shape, &params, fill, cval, out),
            Store::U8(v) => warp(&v[range], data.image_shape, &params, fill, cval, out),
        }
        adjust_values(&params, out);
        generator.standardize_slice(out, data.image_shape);
    }
}

/// One pass being made: on a producer thread, or on the caller's thread if
/// none could be started.
enum Pass {
    Ahead(Ahead),
    Inline { plan: PassPlan, step: usize },
}

/// A pass made by a producer thread into a [`Queue`].
struct Ahead {
    queue: Arc<Queue>,
    producer: Option<JoinHandle<()>>,
    delivered: usize,
    steps: usize,
}

impl Pass {
    fn launch(plan: PassPlan, prefetch: usize) -> Pass {
        let steps = plan.steps();
        let queue = Arc::new(Queue::new(prefetch));
        let plan = Arc::new(plan);
        let (shared, feed) = (Arc::clone(&plan), Arc::clone(&queue));
        let spawned = std::thread::Builder::new()
            .name("kerust-augment-feed".into())
            .spawn(move || produce(&shared, &feed));
        match spawned {
            Ok(producer) => Pass::Ahead(Ahead {
                queue,
                producer: Some(producer),
                delivered: 0,
                steps,
            }),
            Err(e) => {
                log::warn!("no augmentation thread ({e}); making batches on demand");
                let plan = Arc::try_unwrap(plan).unwrap_or_else(|plan| (*plan).clone());
                Pass::Inline { plan, step: 0 }
            }
        }
    }

    fn next(&mut self) -> Option<Batch> {
        match self {
            Pass::Ahead(ahead) => ahead.next(),
            Pass::Inline { plan, step } => {
                if *step >= plan.steps() {
                    return None;
                }
                *step += 1;
                Some(plan.batch(*step - 1, true))
            }
        }
    }
}

/// Makes the pass's batches in order and queues them.
///
/// While at least one finished batch waits in the queue, the trainer is
/// not waiting for this thread, which makes the next batch alone and
/// leaves the other cores to training. When the queue is empty, the
/// trainer may be waiting: the batch's images are spread over the pool.
fn produce(plan: &PassPlan, queue: &Queue) {
    // Tells the trainer when this thread ends, however it ends.
    struct Finished<'a>(&'a Queue);
    impl Drop for Finished<'_> {
        fn drop(&mut self) {
            self.0.finish();
        }
    }
    let _finished = Finished(queue);
    let mut behind = true;
    for step in 0..plan.steps() {
        let batch = plan.batch(step, behind);
        match queue.push(batch) {
            Some(waiting) => behind = waiting == 0,
            None => return,
        }
    }
}

/// The finished batches between the producer and the trainer.
///
/// Waking a sleeping thread costs a system call on one side and a
/// scheduler round on the other, as much as a tenth of a small training
/// step. So each side signals the other only when that one sleeps, and the
/// producer, once the queue is full, sleeps until the trainer has taken
/// half of it: it then makes several batches in one go.
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled for a sleeping trainer when a batch arrives or the
    /// producer ends.
    arrived: Condvar,
    /// Signalled for a sleeping producer when the queue has drained to half
    /// or the trainer hung up.
    drained: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct QueueState {
    batches: VecDeque<Batch>,
    trainer_sleeps: bool,
    producer_sleeps: bool,
    /// The producer will queue nothing more.
    finished: bool,
    /// The trainer takes nothing more.
    hung_up: bool,
}

impl Queue {
    fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            arrived: Condvar::new(),
            drained: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // Every change to the state is complete when the lock is released,
        // so a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `batch`, then waits while the queue is full. Returns the
    /// batches waiting once there is room, or `None` if the trainer hung
    /// up.
    fn push(&self, batch: Batch) -> Option<usize> {
        let mut state = self.lock();
        if state.hung_up {
            return None;
        }
        state.batches.push_back(batch);
        if state.trainer_sleeps {
            self.arrived.notify_one();
        }
        while state.batches.len() >= self.capacity && !state.hung_up {
            state.producer_sleeps = true;
            state = self
                .drained
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.producer_sleeps = false;
        (!state.hung_up).then_some(state.batches.len())
    }

    /// The next batch, waiting for it if need be; `None` once the producer
    /// has ended and the queue is empty.
    fn pop(&self) -> Option<Batch> {
        let mut state = self.lock();
        loop {
            if let Some(batch) = state.batches.pop_front() {
                if state.producer_sleeps && state.batches.len() <= self.capacity / 2 {
                    self.drained.notify_one();
                }
                return Some(batch);
            }
            if state.finished {
                return None;
            }
            state.trainer_sleeps = true;
            state = self
                .arrived
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.trainer_sleeps = false;
        }
    }

    fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        if state.trainer_sleeps {
            self.arrived.notify_one();
        }
    }

    fn hang_up(&self) {
        let mut state = self.lock();
        state.hung_up = true;
        state.batches.clear();
        if state.producer_sleeps {
            self.drained.notify_one();
        }
    }
}

impl Ahead {
    fn next(&mut self) -> Option<Batch> {
        if self.delivered == self.steps {
            return None;
        }
        if let Some(batch) = self.queue.pop() {
            self.delivered += 1;
            return Some(batch);
        }
        // The producer ended early, which only a panic in it can do: hand
        // that panic to the caller.
        if let Some(Err(payload)) = self.producer.take().map(JoinHandle::join) {
            std::panic::resume_unwind(payload);
        }
        unreachable!(
            "the augmentation producer stopped after {} of {} batches",
            self.delivered, self.steps
        )
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // Wakes a producer waiting for room; one making a batch stops once
        // it is made.
        self.queue.hang_up();
        if let Some(producer) = self.producer.take() {
            if producer.join().is_err() {
                log::error!("the augmentation producer panicked while stopping");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array4};

    fn flow() -> Flow {
        let x = Array4::from_shape_fn((10, 4, 5, 2), |(i, r, c, k)| {
            (i * 40 + r * 10 + c * 2 + k) as f32
        });
        let y = Array1::from_shape_fn(10, |i| i as f32);
        let generator = ImageDataGenerator::new()
            .rotation_range(30.0)
            .zoom_range(0.2);
        generator.flow(&x, &y, 3).expect("a valid flow").seed(4)
    }

    #[test]
    fn batches_made_on_demand_equal_those_made_ahead() -> Result<()> {
        let mut ahead = flow();
        ahead.start_epoch(2)?;
        let plan = PassPlan {
            data: Arc::clone(&ahead.data),
            seed: 4,
            epoch: 2,
            order: epoch_order(10, true, 4, 2).into(),
            pool: None,
            spares: Arc::new(Mutex::new(Vec::new())),
        };
        let mut on_demand = Pass::Inline { plan, step: 0 };
        for _ in 0..4 {
            let (a, b) = (ahead.next_batch()?, on_demand.next());
            let (a, b) = (a.expect("4 batches"), b.expect("4 batches"));
            assert_eq!((a.x, a.y), (b.x, b.y));
        }
        assert!(ahead.next_batch()?.is_none() && on_demand.next().is_none());
        Ok(())
    }

    #[test]
    fn the_flow_describes_itself() {
        let text = format!("{:?}", flow().workers(2));
        assert!(
            text.contains("images: 10") && text.contains("workers: Some(2)"),
            "{text}"
        );
    }

    #[test]
    fn images_of_zero_size_are_refused() {
        let err = check_images("flow", &[3, 0, 4, 1]).unwrap_err();
        assert!(err.to_string().contains("(3, 0, 4, 1)"), "{err}");
        assert!(matches!(
            check_images("flow", &[0, 2, 2, 1]),
            Err(Error::EmptyData { .. })
        ));
    }
}
