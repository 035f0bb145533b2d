//! [`LambdaCallback`]: a callback made of closures.

use std::fmt;

use super::{Callback, Logs};
use crate::model::Sequential;
use crate::Result;

type TrainHook<'a> = Box<dyn FnMut(&mut Sequential, &Logs) + Send + 'a>;
type StepHook<'a> = Box<dyn FnMut(usize, &mut Sequential, &Logs) + Send + 'a>;
type EpochEndHook<'a> = Box<dyn FnMut(usize, &mut Sequential, &mut Logs) + Send + 'a>;

/// A callback made of closures, one per event and each optional, as Keras'
/// `LambdaCallback`.
///
/// Each closure receives what the [`Callback`] method of its name receives:
/// the epoch or step (counted from zero) where there is one, the model, and
/// the logs, which `on_epoch_end` may add to. Events without a closure do
/// nothing. Closures may borrow from the caller: the callback lives only as
/// long as the `fit` call it is given to.
///
/// The builder methods share their names with the [`Callback`] methods, as
/// Keras' arguments do; to fire an event by hand, call the trait method,
/// e.g. `Callback::on_epoch_end(&mut callback, ..)`.
///
/// # Limitations
///
/// The closures return nothing, as in Keras, so they cannot make `fit` fail;
/// implement [`Callback`] for that.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::LambdaCallback;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
/// let y = array![0.0_f32, 0.0, 1.0, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Sgd::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
///
/// // Keep a copy of the weights after each epoch, and log an extra figure.
/// let mut snapshots = Vec::new();
/// let recorder = LambdaCallback::new().on_epoch_end(|epoch, model, logs| {
///     snapshots.push(model.get_weights());
///     logs.insert("epoch_squared", (epoch * epoch) as f64);
/// });
/// let options = FitOptions::new()
///     .epochs(3)
///     .verbose(Verbosity::Silent)
///     .callback(recorder);
/// let history = model.fit((&x, &y), options)?;
/// assert_eq!(snapshots.len(), 3);
/// assert_eq!(history.get("epoch_squared"), Some(&[0.0, 1.0, 4.0][..]));
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct LambdaCallback<'a> {
    train_begin: Option<TrainHook<'a>>,
    train_end: Option<TrainHook<'a>>,
    epoch_begin: Option<StepHook<'a>>,
    epoch_end: Option<EpochEndHook<'a>>,
    batch_begin: Option<StepHook<'a>>,
    batch_end: Option<StepHook<'a>>,
}

impl<'a> LambdaCallback<'a> {
    /// A callback that does nothing until closures are given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f(model, logs)` once before the first epoch (default: nothing).
    pub fn on_train_begin(mut self, f: impl FnMut(&mut Sequential, &Logs) + Send + 'a) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }

    /// Runs `f(model, logs)` once after the last epoch (default: nothing).
    pub fn on_train_end(mut self, f: impl FnMut(&mut Sequential, &Logs) + Send + 'a) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }

    /// Runs `f(epoch, model, logs)` before each epoch (default: nothing).
    pub fn on_epoch_begin(
        mut self,
        f: impl FnMut(usize, &mut Sequential, &Logs) + Send + 'a,
    ) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }

    /// Runs `f(epoch, model, logs)` after each epoch, with logs it may add
    /// to (default: nothing).
    pub fn on_epoch_end(
        mut self,
        f: impl FnMut(usize, &mut Sequential, &mut Logs) + Send + 'a,
    ) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }

    /// Runs `f(step, model, logs)` before each training step (default:
    /// nothing).
    pub fn on_train_batch_begin(
        mut self,
        f: impl FnMut(usize, &mut Sequential, &Logs) + Send + 'a,
    ) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }

    /// Runs `f(step, model, logs)` after each training step, with the
    /// running means of the epoch (default: nothing).
    pub fn on_train_batch_end(
        mut self,
        f: impl FnMut(usize, &mut Sequential, &Logs) + Send + 'a,
    ) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
}

impl fmt::Debug for LambdaCallback<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaCallback")
            .field("on_train_begin", &self.train_begin.is_some())
            .field("on_train_end", &self.train_end.is_some())
            .field("on_epoch_begin", &self.epoch_begin.is_some())
            .field("on_epoch_end", &self.epoch_end.is_some())
            .field("on_train_batch_begin", &self.batch_begin.is_some())
            .field("on_train_batch_end", &self.batch_end.is_some())
            .finish()
    }
}

impl Callback for LambdaCallback<'_> {
    fn on_train_begin(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f(model, logs);
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f(model, logs);
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.epoch_begin {
            f(epoch, model, logs);
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        if let Some(f) = &mut self.epoch_end {
            f(epoch, model, logs);
        }
        Ok(())
    }

    fn on_train_batch_begin(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        if let Some(f) = &mut self.batch_begin {
            f(step, model, logs);
        }
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        if let Some(f) = &mut self.batch_end {
            f(step, model, logs);
        }
        Ok(())
    }
}
