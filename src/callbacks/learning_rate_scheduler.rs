//! [`LearningRateScheduler`]: set the learning rate of each epoch from a
//! function.

use super::{Callback, Logs};
use crate::model::Sequential;
use crate::{Error, Result};

/// Sets the learning rate at the start of each epoch to
/// `schedule(epoch, current_rate)`, as Keras' `LearningRateScheduler`.
///
/// The schedule receives the epoch counted from zero and the rate the
/// optimizer holds, and returns the rate for that epoch. The epoch logs (and
/// so the history) show the rate each epoch used, under `learning_rate`.
///
/// Keras' `verbose` has no counterpart: a change of rate is logged through
/// the `log` crate at info level.
///
/// # Errors
///
/// From `on_epoch_begin`, [`Error::InvalidArgument`] when the schedule
/// returns a rate that is negative, NaN or infinite, and
/// [`Error::NotCompiled`] for a model without an optimizer.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::LearningRateScheduler;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
/// let y = array![0.0_f32, 0.0, 1.0, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// let sgd = Sgd::new().learning_rate(0.1);
/// model.compile(sgd, SparseCategoricalCrossentropy::new(), ["accuracy"])?;
///
/// // Keep the rate for two epochs, then halve it at every epoch.
/// let scheduler =
///     LearningRateScheduler::new(|epoch, rate| if epoch < 2 { rate } else { rate * 0.5 });
/// let options = FitOptions::new()
///     .epochs(4)
///     .verbose(Verbosity::Silent)
///     .callback(scheduler);
/// let history = model.fit((&x, &y), options)?;
/// let rates: Vec<f32> = history.get("learning_rate").unwrap().iter().map(|&r| r as f32).collect();
/// assert_eq!(rates, [0.1, 0.1, 0.05, 0.025]);
/// # Ok(())
/// # }
/// ```
pub struct LearningRateScheduler<F> {
    schedule: F,
}

impl<F> LearningRateScheduler<F>
where
    F: FnMut(usize, f32) -> f32 + Send,
{
    /// Applies `schedule(epoch, current_rate)` at the start of each epoch.
    pub fn new(schedule: F) -> Self {
        LearningRateScheduler { schedule }
    }
}

impl<F> std::fmt::Debug for LearningRateScheduler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearningRateScheduler")
            .finish_non_exhaustive()
    }
}

impl<F> Callback for LearningRateScheduler<F>
where
    F: FnMut(usize, f32) -> f32 + Send,
{
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential, _logs: &Logs) -> Result<()> {
        let optimizer = model.optimizer_mut().ok_or_else(|| Error::NotCompiled {
            call: "LearningRateScheduler".to_string(),
        })?;
        let old = optimizer.learning_rate();
        let new = (self.schedule)(epoch, old);
        if !(new.is_finite() && new >= 0.0) {
            return Err(Error::invalid(
                "schedule",
                new,
                format!(
                    "the schedule returned this rate for epoch {}; expected a finite \
                     learning rate >= 0",
                    epoch + 1
                ),
            ));
        }
        if new != old {
            log::info!(
                "epoch {}: LearningRateScheduler setting learning rate to {new}",
                epoch + 1
            );
        }
        optimizer.set_learning_rate(new);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_without_optimizer_is_not_compiled() {
        let mut model = Sequential::new();
        let mut scheduler = LearningRateScheduler::new(|_, rate| rate);
        let err = scheduler
            .on_epoch_begin(0, &mut model, &Logs::new())
            .unwrap_err();
        assert!(matches!(err, Error::NotCompiled { .. }), "{err}");
    }
}
