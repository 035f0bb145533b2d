//! The options of `fit` and what it trains on.

use ndarray::{ArrayBase, ArrayViewD, Data, Dimension};

use super::source::BatchSource;
use crate::callbacks::Callback;

/// How much `fit` shows while it trains, or `evaluate_with` and
/// `predict_with` while they run, as Keras' `verbose`.
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
    /// The weights of the validation samples, as the third member of
    /// Keras' `validation_data`.
    pub(crate) validation_sample_weight: Option<ArrayViewD<'a, f32>>,
    pub(crate) validation_split: f64,
    /// Keras' `class_weight`, as given: class and weight.
    pub(crate) class_weight: Vec<(usize, f32)>,
    /// Keras' `sample_weight`: one weight per sample of `x`.
    pub(crate) sample_weight: Option<ArrayViewD<'a, f32>>,
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
            validation_sample_weight: None,
            validation_split: 0.0,
            class_weight: Vec::new(),
            sample_weight: None,
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

    /// Data to score after each epoch, giving the `val_` figures. It is
    /// scored in batches of `batch_size`, as Keras scores it when
    /// `validation_batch_size` is not given.
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

    /// The weights of the samples of [`validation_data`](Self::validation_data),
    /// one per sample, `(n,)` or `(n, 1)`: Keras' `validation_data=(x, y,
    /// sample_weight)`. `val_loss` becomes the sum of each validation
    /// sample's loss times its weight, over the number of samples; the
    /// validation metrics are not weighted, as in Keras. Refused without
    /// `validation_data`; with
    /// [`validation_split`](Self::validation_split) the samples held out
    /// keep their weights from [`sample_weight`](Self::sample_weight).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    /// use ndarray::array;
    ///
    /// let (x_val, y_val) = (array![[0.5_f32], [-0.5]], array![1.0_f32, 0.0]);
    /// let w_val = array![2.0_f32, 1.0];
    /// let options = FitOptions::new()
    ///     .validation_data(&x_val, &y_val)
    ///     .validation_sample_weight(&w_val);
    /// ```
    pub fn validation_sample_weight<S, D>(mut self, sample_weight: &'a ArrayBase<S, D>) -> Self
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        self.validation_sample_weight = Some(sample_weight.view().into_dyn());
        self
    }

    /// The fraction of the arrays held out for validation, taken from their
    /// end before any shuffling, as in Keras (default 0): the first
    /// `floor(n * (1 - fraction))` samples train, computed in `f64` as
    /// Python does, so 1,000 samples at 0.1 keep 900. The sample weights,
    /// if given, are split with them.
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

    /// Keras' `sample_weight`: a weight for each training sample of `x`,
    /// shaped `(n,)` or `(n, 1)`, which goes with its sample when the
    /// samples are shuffled. The loss of a batch becomes the sum of each
    /// sample's loss times its weight, divided by the number of samples
    /// (Keras' `sum_over_batch_size`), and its gradient is weighted alike.
    /// A weight of 0 leaves a sample out of the gradient but not out of
    /// that count. The metrics are not weighted, as Keras weighs only the
    /// `weighted_metrics` of `compile`, which kerust does not have.
    ///
    /// Each weight must be finite and not negative, and there must be one
    /// per sample; `fit` checks them before the first step. Only arrays
    /// can be weighted: a generator brings its own samples, and setting
    /// this with one is an error. With
    /// [`validation_split`](Self::validation_split) the held-out samples
    /// keep their weights for `val_loss`.
    ///
    /// With [`class_weight`](Self::class_weight) too, a sample weighs its
    /// weight here times its class' weight, as tf.keras 2 combined them
    /// (Keras 3 refuses the two together).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    /// use ndarray::array;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
    /// let y = array![0.0_f32, 0.0, 1.0, 1.0];
    /// // The last sample counts three times as much, the second not at all.
    /// let weights = array![1.0_f32, 0.0, 1.0, 3.0];
    /// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
    /// model.compile(Sgd::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
    /// let options = FitOptions::new().sample_weight(&weights).verbose(Verbosity::Silent);
    /// let history = model.fit((&x, &y), options)?;
    /// assert_eq!(history.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn sample_weight<S, D>(mut self, sample_weight: &'a ArrayBase<S, D>) -> Self
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        self.sample_weight = Some(sample_weight.view().into_dyn());
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

/// The options of [`Sequential::evaluate_with`](super::Sequential::evaluate_with),
/// with Keras' names and defaults: batches of 32, Keras' `"auto"`
/// progress display, no sample weights.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// let weights = array![1.0_f32, 2.0, 0.5];
/// let options = EvaluateOptions::new()
///     .batch_size(128)
///     .sample_weight(&weights)
///     .verbose(Verbosity::Silent);
/// ```
#[derive(Debug, Clone)]
pub struct EvaluateOptions<'a> {
    pub(crate) batch_size: usize,
    pub(crate) verbose: Verbosity,
    pub(crate) sample_weight: Option<ArrayViewD<'a, f32>>,
}

impl Default for EvaluateOptions<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> EvaluateOptions<'a> {
    /// Batches of 32, verbosity [`Verbosity::Auto`] (a progress bar on a
    /// terminal, one line otherwise, as Keras' `"auto"` shows one), no
    /// sample weights.
    pub fn new() -> Self {
        EvaluateOptions {
            batch_size: 32,
            verbose: Verbosity::Auto,
            sample_weight: None,
        }
    }

    /// Samples per batch (default 32, Keras' default). The loss is each
    /// batch's mean loss weighted by the batch's size, as Keras' `loss`
    /// tracker averages it; the batches change only its last bits. The
    /// predictions, and so the metrics, are the same for every batch size.
    /// 0 is refused when `evaluate_with` runs.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// How much to show (default [`Verbosity::Auto`]): one line, or a live
    /// bar of the batches, with the loss and metrics so far.
    /// [`Verbosity::EpochLines`] shows the line that ends the bar.
    pub fn verbose(mut self, verbose: Verbosity) -> Self {
        self.verbose = verbose;
        self
    }

    /// Keras' `sample_weight`: a weight for each sample, shaped `(n,)` or
    /// `(n, 1)`. The loss becomes the sum of each sample's loss times its
    /// weight, over the number of samples; the metrics are not weighted,
    /// as in Keras without `weighted_metrics`. Each weight must be finite
    /// and not negative.
    pub fn sample_weight<S, D>(mut self, sample_weight: &'a ArrayBase<S, D>) -> Self
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        self.sample_weight = Some(sample_weight.view().into_dyn());
        self
    }
}

/// The options of [`Sequential::predict_with`](super::Sequential::predict_with),
/// with Keras' names and defaults: batches of 32 and Keras' `"auto"`
/// progress display.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// let options = PredictOptions::new().batch_size(256).verbose(Verbosity::Silent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictOptions {
    pub(crate) batch_size: usize,
    pub(crate) verbose: Verbosity,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl PredictOptions {
    /// Batches of 32 and verbosity [`Verbosity::Auto`] (a progress bar on
    /// a terminal, one line otherwise, as Keras' `"auto"` shows one).
    pub fn new() -> Self {
        PredictOptions {
            batch_size: 32,
            verbose: Verbosity::Auto,
        }
    }

    /// Samples per batch (default 32, Keras' default): the pieces the
    /// input is cut into and spread over rayon's threads, and the steps the
    /// progress display counts. Every built-in layer computes a sample's
    /// output from that sample alone, so the predictions are the same to
    /// the bit for every batch size. 0 is refused when `predict_with` runs.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// How much to show (default [`Verbosity::Auto`]): one line, or a live
    /// bar of the batches. [`Verbosity::EpochLines`] shows the line that
    /// ends the bar.
    pub fn verbose(mut self, verbose: Verbosity) -> Self {
        self.verbose = verbose;
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
#[diagnostic::on_unimplemented(
    message = "`fit` cannot train on `{Self}`",
    label = "expected `(&x, &y)` with both arrays of `f32`, or a `BatchSource`",
    note = "class labels are `f32` too: convert integer labels with `y.mapv(|v| v as f32)`",
    note = "pass references, `(&x, &y)`, not the arrays themselves"
)]
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
