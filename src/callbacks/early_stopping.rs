//! [`EarlyStopping`]: stop training when a monitored quantity stops improving.

use ndarray::ArrayD;

use super::{Callback, Logs, Mode, Monitor};
use crate::model::Sequential;
use crate::{Error, Result};

const NAME: &str = "EarlyStopping";

/// Stops training once a monitored quantity has not improved for `patience`
/// epochs, as Keras' `EarlyStopping`.
///
/// At the end of each epoch the callback reads the monitored key and counts
/// the epochs since the last improvement (`wait`), exactly as Keras 3 does:
///
/// ```text
/// skip the epochs before start_from_epoch
/// wait += 1
/// if current improves on best (by more than min_delta):
///     best = current
///     if there is no baseline, or current also improves on it: wait = 0
/// else if wait >= patience and epoch > 0:
///     stop training
/// ```
///
/// With a baseline, epochs that improve on the best value but not on the
/// baseline keep counting, so training stops `patience` epochs in unless the
/// baseline is beaten. Training never stops at the end of epoch 0.
///
/// With `restore_best_weights`, the weights of the best epoch are put back
/// when training ends, whether or not the callback stopped it; when no epoch
/// was monitored, nothing is restored.
///
/// Options and their defaults, as in Keras:
///
/// | option | default |
/// | --- | --- |
/// | [`monitor`](EarlyStopping::monitor) | `"val_loss"` |
/// | [`min_delta`](EarlyStopping::min_delta) | `0` |
/// | [`patience`](EarlyStopping::patience) | `0` |
/// | [`mode`](EarlyStopping::mode) | [`Mode::Auto`] |
/// | [`baseline`](EarlyStopping::baseline) | none |
/// | [`restore_best_weights`](EarlyStopping::restore_best_weights) | `false` |
/// | [`start_from_epoch`](EarlyStopping::start_from_epoch) | `0` |
///
/// Keras' `verbose` has no counterpart: the callback logs through the `log`
/// crate at info level when it stops training and when it restores weights.
///
/// # Errors
///
/// From `on_epoch_end`, [`Error::MissingMetric`] when the logs do not hold
/// the monitored key (Keras only warns); from `on_train_end`, what
/// [`Sequential::set_weights`] returns.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::EarlyStopping;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
/// let y = array![0.0_f32, 0.0, 1.0, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Sgd::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
///
/// // Watch the training loss; stop after 3 epochs without improvement and
/// // keep the weights of the best epoch.
/// let stopper = EarlyStopping::new()
///     .monitor("loss")
///     .min_delta(0.5)?
///     .patience(3)
///     .restore_best_weights(true);
/// let options = FitOptions::new()
///     .epochs(100)
///     .verbose(Verbosity::Silent)
///     .callback(stopper);
/// let history = model.fit((&x, &y), options)?;
/// // The loss cannot fall by 0.5 per epoch: training stops early.
/// assert_eq!(history.len(), 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    wait: usize,
    best: Option<f64>,
    best_epoch: Option<usize>,
    best_weights: Option<Vec<ArrayD<f32>>>,
    stopped_epoch: Option<usize>,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self::new()
    }
}

impl EarlyStopping {
    /// Keras' defaults: monitors `val_loss` in mode auto, `min_delta` 0,
    /// `patience` 0, no baseline, no restoring, from epoch 0.
    pub fn new() -> Self {
        EarlyStopping {
            monitor: Monitor::new("val_loss"),
            patience: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            best: None,
            best_epoch: None,
            best_weights: None,
            stopped_epoch: None,
        }
    }

    /// The logged key to watch (default `"val_loss"`), e.g. `"val_accuracy"`.
    pub fn monitor(mut self, key: impl Into<String>) -> Self {
        self.monitor = self.monitor.with_key(key);
        self
    }

    /// The smallest change that counts as an improvement (default 0): a
    /// change of `min_delta` or less does not reset the patience.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `min_delta` is negative or not
    /// finite.
    pub fn min_delta(mut self, min_delta: f64) -> Result<Self> {
        self.monitor = self.monitor.with_min_delta(min_delta)?;
        Ok(self)
    }

    /// The number of epochs without improvement after which training stops
    /// (default 0: the first epoch that does not improve stops it).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether lower or higher values are better (default [`Mode::Auto`],
    /// which maximizes accuracy-like keys and minimizes the others).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor = self.monitor.with_mode(mode);
        self
    }

    /// A value the monitored quantity must beat (default none): until an
    /// epoch improves on it, the patience runs out even while the quantity
    /// improves on its own best.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `baseline` is NaN.
    pub fn baseline(mut self, baseline: f64) -> Result<Self> {
        if baseline.is_nan() {
            return Err(Error::invalid("baseline", baseline, "expected a number"));
        }
        self.baseline = Some(baseline);
        Ok(self)
    }

    /// Whether to put back, when training ends, the weights of the epoch
    /// with the best monitored value (default false: the model keeps the
    /// weights of its last step).
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The epoch (counted from zero) from which the quantity is watched
    /// (default 0): the epochs before it are a warm-up that neither counts
    /// towards the patience nor sets the best value.
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// The epoch (counted from zero) at whose end the callback stopped
    /// training in the last run, or `None` when it did not stop it.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }

    /// The epoch (counted from zero) with the best monitored value so far,
    /// whose weights `restore_best_weights` puts back; `None` before any
    /// epoch is watched. When no value ever improved (all NaN) and weights
    /// are restored, it is the first watched epoch.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }

    /// The best monitored value so far, or `None` before any improvement.
    pub fn best(&self) -> Option<f64> {
        self.best
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Sequential, _logs: &Logs) -> Result<()> {
        // A callback may serve several runs: each starts afresh.
        self.wait = 0;
        self.best = None;
        self.best_epoch = None;
        self.best_weights = None;
        self.stopped_epoch = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        let current = self.monitor.read(logs, NAME)?;
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        // Until something improves, the first watched epoch is the best.
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.get_weights());
            self.best_epoch = Some(epoch);
        }

        self.wait += 1;
        let best = self.best.unwrap_or(self.monitor.initial_best());
        if self.monitor.improved(current, best) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights());
            }
            let beats_baseline = match self.baseline {
                Some(baseline) => self.monitor.improved(current, baseline),
                None => true,
            };
            if beats_baseline {
                self.wait = 0;
            }
            return Ok(());
        }

        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            model.stop_training = true;
            log::info!(
                "epoch {}: early stopping: `{}` has not improved on {best} for {} epochs",
                epoch + 1,
                self.monitor.key(),
                self.wait
            );
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &mut Sequential, _logs: &Logs) -> Result<()> {
        if !self.restore_best_weights {
            return Ok(());
        }
        if let (Some(weights), Some(epoch)) = (&self.best_weights, self.best_epoch) {
            log::info!(
                "restoring model weights from the end of the best epoch: {}",
                epoch + 1
            );
            model.set_weights(weights)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_keras() {
        let stopper = EarlyStopping::new();
        assert_eq!(stopper.monitor.key(), "val_loss");
        assert_eq!(stopper.monitor.mode(), Mode::Auto);
        assert_eq!(stopper.monitor.min_delta(), 0.0);
        assert_eq!(stopper.patience, 0);
        assert_eq!(stopper.baseline, None);
        assert!(!stopper.restore_best_weights);
        assert_eq!(stopper.start_from_epoch, 0);
    }

    #[test]
    fn a_nan_baseline_is_refused() {
        let err = EarlyStopping::new().baseline(f64::NAN).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { ref name, .. } if name == "baseline"));
    }
}
