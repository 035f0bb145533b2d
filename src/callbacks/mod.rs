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

mod logs;
mod model_checkpoint;
mod progress;

pub use logs::Logs;
pub use model_checkpoint::ModelCheckpoint;
pub use progress::ProgbarLogger;

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
    fn on_train_begin(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        let _ = (model, logs);
        Ok(())
    }

    /// Called once after the last epoch, also after an early stop.
    fn on_train_end(&mut self, model: &mut Sequential, logs: &Logs) -> Result<()> {
        let _ = (model, logs);
        Ok(())
    }

    /// Called before each epoch.
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential, logs: &Logs) -> Result<()> {
        let _ = (epoch, model, logs);
        Ok(())
    }

    /// Called after each epoch, with its logs; a callback may add entries.
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
