//! [`TerminateOnNaN`]: stop training when the loss stops being a number.

use super::{Callback, Logs};
use crate::model::Sequential;
use crate::{Error, Result};

/// Stops training at the first step whose loss is NaN or infinite, as Keras'
/// `TerminateOnNaN`.
///
/// It checks the `loss` of the batch logs after every step. By default it
/// sets `model.stop_training`: the epoch ends there, its logs and
/// `on_train_end` still run, and `fit` returns the history so far, its last
/// `loss` not finite. With [`raise_error`](TerminateOnNaN::raise_error)
/// `fit` returns an error at once instead, and the later callbacks of the
/// step and `on_train_end` are not called.
///
/// Without this callback `fit` fails on a non-finite loss with
/// [`Error::NonFiniteLoss`]. A NaN or infinity among the inputs is not
/// waited for: `fit` names it with [`Error::NonFiniteInput`].
///
/// The stop is logged through the `log` crate at warn level.
///
/// # Errors
///
/// With `raise_error`, `on_train_batch_end` returns
/// [`Error::NonFiniteLoss`] naming the epoch, the step and the loss.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::TerminateOnNaN;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// // Inputs this large throw the weights far out at the first step; the
/// // logits then overflow, and the loss is no longer a number.
/// let x = array![[-2e30_f32], [-1e30], [1e30], [2e30]];
/// let y = array![0.0_f32, 0.0, 1.0, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Sgd::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
/// let options = FitOptions::new()
///     .epochs(10)
///     .verbose(Verbosity::Silent)
///     .callback(TerminateOnNaN::new());
/// let history = model.fit((&x, &y), options)?;
/// let losses = history.get("loss").unwrap();
/// assert!(losses.len() < 10);
/// assert!(!losses.last().unwrap().is_finite());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TerminateOnNaN {
    raise_error: bool,
    epoch: usize,
}

impl TerminateOnNaN {
    /// Stops training gracefully (`raise_error` false, as in Keras).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a non-finite loss makes `fit` fail with
    /// [`Error::NonFiniteLoss`] at once (default false: training stops and
    /// `fit` returns the history so far).
    pub fn raise_error(mut self, raise_error: bool) -> Self {
        self.raise_error = raise_error;
        self
    }
}

impl Callback for TerminateOnNaN {
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _model: &mut Sequential,
        _logs: &Logs,
    ) -> Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        step: usize,
        model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        let Some(loss) = logs.get("loss") else {
            return Ok(());
        };
        if loss.is_finite() {
            return Ok(());
        }
        if self.raise_error {
            return Err(Error::NonFiniteLoss {
                epoch: self.epoch + 1,
                step: step + 1,
                loss,
            });
        }
        log::warn!(
            "epoch {}, step {}: loss is {loss}, terminating training",
            self.epoch + 1,
            step + 1
        );
        model.stop_training = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_logs(loss: f64) -> Logs {
        let mut logs = Logs::new();
        logs.insert("loss", loss);
        logs
    }

    #[test]
    fn only_a_non_finite_loss_stops_training() {
        let mut model = Sequential::new();
        let mut callback = TerminateOnNaN::new();
        callback
            .on_train_batch_end(0, &mut model, &loss_logs(1e30))
            .unwrap();
        callback
            .on_train_batch_end(1, &mut model, &Logs::new())
            .unwrap();
        assert!(!model.stop_training);
        callback
            .on_train_batch_end(2, &mut model, &loss_logs(f64::INFINITY))
            .unwrap();
        assert!(model.stop_training);
    }

    #[test]
    fn raise_error_names_the_epoch_and_step_from_one() {
        let mut model = Sequential::new();
        let mut callback = TerminateOnNaN::new().raise_error(true);
        callback
            .on_epoch_begin(4, &mut model, &Logs::new())
            .unwrap();
        let err = callback
            .on_train_batch_end(6, &mut model, &loss_logs(f64::NAN))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFiniteLoss {
                    epoch: 5,
                    step: 7,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!model.stop_training);
    }
}
