//! The options of `fit` and what it trains on.

use ndarray::{ArrayBase, ArrayViewD, Data, Dimension};

use super::source::BatchSource;
use crate::callbacks::Callback;

/// How much `fit` shows while it trains, as Keras' `verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Nothing (Keras' `verbose=0`).
    Silent,
    /// A live progress bar per epoch (`verbose=1`); on an output that is not
    /// a terminal it falls back to one line per epoch.
    ProgressBar,
    /// One line per epoch (`verbose=2`).
    EpochLines,
    /// A progress bar on a terminal, otherwise one line per epoch (Keras'
    /// `"auto"`, the default).
    #[default]
    Auto,
}

impl Verbosity {
    /// Keras' integer: 0 silent, 1 progress bar, 2 one line per epoch.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for another
    /// number.
    pub fn from_level(level: u8) -> crate::Result<Self> {
        match level {
            0 => Ok(Verbosity::Silent),
            1 => Ok(Verbosity::ProgressBar),
            2 => Ok(Verbosity::EpochLines),
            other => Err(crate::Error::invalid(
                "verbose",
                other,
                "expected 0, 1 or 2",
            )),
        }
    }
}

/// The options of [`Sequential::fit`](super::Sequential::fit), with Keras'
/// names and defaults.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// let options = FitOptions::new().epochs(15).batch_size(32).seed(42).verbose(Verbosity::Silent);
/// ```
pub struct FitOptions<'a> {
    pub(crate) epochs: usize,
    pub(crate) initial_epoch: usize,
    pub(crate) batch_size: usize,
    /// Whether `batch_size`, `shuffle` or `seed` was set: refused with a
    /// generator, which brings its own.
    pub(crate) array_options_set: bool,
    pub(crate) shuffle: bool,
    pub(crate) seed: u64,
    pub(crate) validation_data: Option<(ArrayViewD<'a, f32>, ArrayViewD<'a, f32>)>,
    pub(crate) validation_split: f64,
    /// Keras' `class_weight`, as given: class and weight.
    pub(crate) class_weight: Vec<(usize, f32)>,
    pub(crate) verbose: Verbosity,
    pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> FitOptions<'a> {
    /// One epoch of batch 32, shuffled with seed 0, no validation, verbosity
    /// [`Verbosity::Auto`], no callbacks.
    pub fn new() -> Self {
        FitOptions {
            epochs: 1,
            initial_epoch: 0,
            batch_size: 32,
            array_options_set: false,
            shuffle: true,
            seed: 0,
            validation_data: None,
            validation_split: 0.0,
            class_weight: Vec::new(),
            verbose: Verbosity::Auto,
            callbacks: Vec::new(),
        }
    }

    /// The epoch to stop before (default 1). With `initial_epoch` k, training
    /// runs the epochs k..epochs, as in Keras.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// The epoch to start at, counted from zero (default 0): to resume a run.
    pub fn initial_epoch(mut self, initial_epoch: usize) -> Self {
        self.initial_epoch = initial_epoch;
        self
    }

    /// Samples per step when training on arrays (default 32). A generator
    /// brings its own batch size: setting this with one is an error, as in
    /// Keras.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self.array_options_set = true;
        self
    }

    /// Whether arrays are shuffled before each epoch (default true).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self.array_options_set = true;
        self
    }

    /// The seed of the shuffles of arrays (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.array_options_set = true;
        self
    }

    /// Data to score after each epoch, giving the `val_` figures.
    pub fn validation_data<S, D, T, E>(
        mut self,
        x: &'a ArrayBase<S, D>,
        y: &'a ArrayBase<T, E>,
    ) -> Self
    where
        S: Data<Elem = f32>,
        D: Dimension,
        T: Data<Elem = f32>,
        E: Dimension,
    {
        self.validation_data = Some((x.view().into_dyn(), y.view().into_dyn()));
        self
    }

    /// The fraction of the arrays held out for validation, taken from their
    /// end before any shuffling, as in Keras (default 0): the first
    /// `floor(n * (1 - fraction))` samples train, computed in `f64` as
    /// Python does, so 1,000 samples at 0.1 keep 900.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Keras' `class_weight`: a weight for the training samples of each
    /// class, given as `(class, weight)` pairs; a class not given weighs 1.
    /// A sample's class is its label, or the position of the largest value
    /// of a one-hot target. As in Keras, the loss of a batch becomes the
    /// weighted sum of its samples' losses divided by the number of
    /// samples. The metrics, and the validation figures, are not weighted:
    /// Keras weighs only the `weighted_metrics` of `compile`, which kerust
    /// does not have. Each weight must be finite and
    /// not negative, and each class given once; `fit` checks them.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    ///
    /// // Mistakes on the rare class 1 cost five times as much.
    /// let options = FitOptions::new().epochs(10).class_weight([(0, 1.0), (1, 5.0)]);
    /// ```
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f32)>) -> Self {
        self.class_weight = weights.into_iter().collect();
        self
    }

    /// How much to show (default [`Verbosity::Auto`]).
    pub fn verbose(mut self, verbose: Verbosity) -> Self {
        self.verbose = verbose;
        self
    }

    /// The callbacks, called in this order.
    pub fn callbacks(mut self, callbacks: Vec<Box<dyn Callback + 'a>>) -> Self {
        self.callbacks = callbacks;
        self
    }

    /// Adds one callback after those already given.
    pub fn callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }
}

/// What `fit` trains on: arrays, or a batch source such as the augmenter's
/// flow.
pub enum FitData<'a> {
    /// Inputs and targets held in memory.
    Arrays(ArrayViewD<'a, f32>, ArrayViewD<'a, f32>),
    /// A source of batches.
    Source(Box<dyn BatchSource + 'a>),
}

/// Anything [`Sequential::fit`](super::Sequential::fit) can train on: a pair
/// `(&x, &y)` of `f32` arrays, or a [`BatchSource`].
pub trait IntoFitData<'a> {
    /// Wraps the data.
    fn into_fit_data(self) -> FitData<'a>;
}

impl<'a, S, D, T, E> IntoFitData<'a> for (&'a ArrayBase<S, D>, &'a ArrayBase<T, E>)
where
    S: Data<Elem = f32>,
    D: Dimension,
    T: Data<Elem = f32>,
    E: Dimension,
{
    fn into_fit_data(self) -> FitData<'a> {
        FitData::Arrays(self.0.view().into_dyn(), self.1.view().into_dyn())
    }
}

impl<'a, B: BatchSource + 'a> IntoFitData<'a> for B {
    fn into_fit_data(self) -> FitData<'a> {
        FitData::Source(Box::new(self))
    }
}
