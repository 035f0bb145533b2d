//! Callbacks: code that `fit` calls at fixed points of training.
//!
//! A [`Callback`] sees the logs of each batch and epoch and the model itself:
//! it can stop training (`model.stop_training = true`), change the learning
//! rate, read and set the weights, and save the model.
//!
//! `fit` calls, in this order:
//!
//! ```text
//! set_params
//! on_train_begin
//! for each epoch:
//!     on_epoch_begin
//!     for each step:  on_train_batch_begin, on_train_batch_end
//!     (validation)
//!     on_epoch_end          logs hold loss, metrics, val_*, learning_rate
//!     stop if model.stop_training
//! on_train_end
//! ```
//!
//! Callbacks of one event run in the order they were given to `fit`; the
//! progress display runs after the user's callbacks, so it shows what they
//! wrote into the logs.
//!
//! # The callbacks
//!
//! With Keras' names, options and defaults:
//!
//! | callback | what it does |
//! | --- | --- |
//! | [`EarlyStopping`] | stops when a quantity stops improving; can restore the best weights |
//! | [`ReduceLROnPlateau`] | cuts the learning rate when a quantity stops improving |
//! | [`LearningRateScheduler`] | sets each epoch's learning rate from a function |
//! | [`TerminateOnNaN`] | stops at the first step whose loss is NaN or infinite |
//! | [`CsvLogger`] | writes each epoch's logs as a row of a CSV file |
//! | [`ModelCheckpoint`] | saves the model (or the best one so far) after each epoch |
//! | [`LambdaCallback`] | runs closures at the events |
//! | [`ProgbarLogger`] | shows progress; `fit` adds it from its `verbose` option |
//!
//! [`EarlyStopping`] and [`ReduceLROnPlateau`] watch a logged key through a
//! [`Monitor`], which decides the direction ([`Mode`]) and what counts as an
//! improvement. A monitored key that is not in the logs is an
//! [`Error::MissingMetric`](crate::Error::MissingMetric) at the first epoch
//! end, listing the keys that are logged (Keras only warns, and the callback
//! then never acts).
//!
//! # Examples
//!
//! ```
//! use kerust::callbacks::{EarlyStopping, ReduceLROnPlateau, TerminateOnNaN};
//! use kerust::prelude::*;
//! use ndarray::array;
//!
//! # fn main() -> kerust::Result<()> {
//! let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
//! let y = array![0.0_f32, 0.0, 1.0, 1.0];
//! let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
//! model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
//!
//! let callbacks: Vec<Box<dyn Callback>> = vec![
//!     Box::new(TerminateOnNaN::new()),
//!     Box::new(ReduceLROnPlateau::new().monitor("val_loss").patience(2)),
//!     Box::new(EarlyStopping::new().monitor("val_accuracy").patience(5)),
//! ];
//! let options = FitOptions::new()
//!     .epochs(3)
//!     .validation_data(&x, &y)
//!     .verbose(Verbosity::Silent)
//!     .callbacks(callbacks);
//! let history = model.fit((&x, &y), options)?;
//! assert_eq!(history.len(), 3);
//! # Ok(())
//! # }
//! ```

mod backup_and_restore;
mod csv_logger;
mod early_stopping;
mod lambda;
mod learning_rate_scheduler;
mod logs;
mod model_checkpoint;
mod monitor;
mod progress;
mod reduce_lr_on_plateau;
mod terminate_on_nan;

pub use backup_and_restore::BackupAndRestore;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use lambda::LambdaCallback;
pub use learning_rate_scheduler::LearningRateScheduler;
pub use logs::Logs;
pub use model_checkpoint::ModelCheckpoint;
pub use monitor::{Mode, Monitor};
pub use progress::ProgbarLogger;
pub use reduce_lr_on_plateau::ReduceLROnPlateau;
pub use terminate_on_nan::TerminateOnNaN;

use crate::model::Sequential;
use crate::Result;

/// What `fit` tells its callbacks before training starts.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainParams {
    /// The epoch training stops before (the `epochs` option).
    pub epochs: usize,
    /// The epoch it starts at (`initial_epoch`, counted from zero).
    pub initial_epoch: usize,
    /// Steps (batches) per epoch.
    pub steps: usize,
    /// Samples per epoch.
    pub samples: usize,
}

/// Code that runs at fixed points of training. Every method does nothing
/// unless overridden. Epochs and steps are counted from zero.
///
/// # Errors
///
/// An error returned by any method stops `fit`, which returns it.
pub trait Callback: Send {
    /// Receives the training parameters before `on_train_begin`.
    fn set_params(&mut self, params: &TrainParams) {
        let _ = params;
    }

    /// Called once before the first epoch.
    ///
    /// # Errors
    ///
    /// Whatever the callback returns (by default nothing): `fit` stops at
    /// once and returns it instead of the history.
    fn on_train_begin(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        let _ = (model, logs);
        Ok(())
    }

    /// The epoch `fit` should start at instead of `initial_epoch`, asked
    /// once after `on_train_begin`: a callback that restored a backup of a
    /// run done up to epoch `e` returns `Some(e)` (see
    /// [`BackupAndRestore`]). `fit` starts at the latest epoch any callback
    /// gives, and never before `initial_epoch`. By default `None`.
    fn resume_epoch(&self) -> Option<usize> {
        None
    }

    /// Called once after the last epoch, also after an early stop.
    ///
    /// # Errors
    ///
    /// Whatever the callback returns (by default nothing): `fit` stops at
    /// once and returns it instead of the history.
    fn on_train_end(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        let _ = (model, logs);
        Ok(())
    }

    /// Called before each epoch.
    ///
    /// # Errors
    ///
    /// Whatever the callback returns (by default nothing): `fit` stops at
    /// once and returns it instead of the history.
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential, logs: &Logs) -> Result<()> {
        let _ = (epoch, model, logs);
        Ok(())
    }

    /// Called after each epoch, with its logs; a callback may add entries.
    ///
    /// # Errors
    ///
    /// Whatever the callback returns (by default nothing): `fit` stops at
    /// once and returns it instead of the history.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        let _ = (epoch, model, logs);
        Ok(())
    }

    /// Called before each training step.
    ///
    /// # Errors
    ///
    /// Whatever the callback returns (by default nothing): `fit` stops at
    /// once and returns it instead of the history.
    fn on_train_batch_begin(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        let _ = (step, model, logs);
        Ok(())
    }

    /// Called after each training step, with the running means of the epoch.
    ///
    /// # Errors
    ///
    /// Whatever the callback returns (by default nothing): `fit` stops at
    /// once and returns it instead of the history.
    fn on_train_batch_end(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        let _ = (step, model, logs);
        Ok(())
    }
}

/// A callback lent to `fit` by mutable reference, so that it can be read
/// after training (`early_stopping.stopped_epoch()`, say).
impl<C: Callback + ?Sized> Callback for &mut C {
    fn set_params(&mut self, params: &TrainParams) {
        (**self).set_params(params);
    }

    fn on_train_begin(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        (**self).on_train_begin(model, logs)
    }

    fn resume_epoch(&self) -> Option<usize> {
        (**self).resume_epoch()
    }

    fn on_train_end(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        (**self).on_train_end(model, logs)
    }

    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential, logs: &Logs) -> Result<()> {
        (**self).on_epoch_begin(epoch, model, logs)
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        (**self).on_epoch_end(epoch, model, logs)
    }

    fn on_train_batch_begin(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        (**self).on_train_batch_begin(step, model, logs)
    }

    fn on_train_batch_end(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        (**self).on_train_batch_end(step, model, logs)
    }
}
