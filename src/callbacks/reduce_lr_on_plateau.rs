//! [`ReduceLROnPlateau`]: cut the learning rate when a quantity stops
//! improving.

use super::{Callback, Logs, Mode, Monitor};
use crate::model::Sequential;
use crate::{Error, Result};

const NAME: &str = "ReduceLROnPlateau";

/// Multiplies the learning rate by `factor` once a monitored quantity has not
/// improved for `patience` epochs, as Keras' `ReduceLROnPlateau`.
///
/// At the end of each epoch, as Keras 3 does:
///
/// ```text
/// if in cooldown:  cooldown_counter -= 1; wait = 0
/// if current improves on best (by more than min_delta):
///     best = current; wait = 0
/// else if not in cooldown:
///     wait += 1
///     if wait >= patience and learning_rate > min_lr:
///         learning_rate = max(learning_rate * factor, min_lr)
///         cooldown_counter = cooldown; wait = 0
/// ```
///
/// The rate is cut once per plateau: after a cut the count starts again, so
/// a flat quantity with patience 2 cuts at every second epoch, not at every
/// epoch. Because the cooldown is counted down before the wait, a cooldown
/// of `c` delays the next count by `c - 1` epochs, as in Keras.
///
/// The epoch logs keep the rate used during the epoch (`fit` writes it
/// before the callbacks run); a cut applies from the next epoch on.
///
/// Options and their defaults, as in Keras:
///
/// | option | default |
/// | --- | --- |
/// | [`monitor`](ReduceLROnPlateau::monitor) | `"val_loss"` |
/// | [`factor`](ReduceLROnPlateau::factor) | `0.1` |
/// | [`patience`](ReduceLROnPlateau::patience) | `10` |
/// | [`mode`](ReduceLROnPlateau::mode) | [`Mode::Auto`] |
/// | [`min_delta`](ReduceLROnPlateau::min_delta) | `1e-4` |
/// | [`cooldown`](ReduceLROnPlateau::cooldown) | `0` |
/// | [`min_lr`](ReduceLROnPlateau::min_lr) | `0` |
///
/// Keras' `verbose` has no counterpart: each cut is logged through the `log`
/// crate at info level.
///
/// # Errors
///
/// From `on_epoch_end`, [`Error::MissingMetric`] when the logs do not hold
/// the monitored key (Keras only warns), and [`Error::NotCompiled`] for a
/// model without an optimizer.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::ReduceLROnPlateau;
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
/// // Halve the rate when the loss has not fallen by 0.5 for two epochs.
/// let reducer = ReduceLROnPlateau::new()
///     .monitor("loss")
///     .factor(0.5)?
///     .patience(2)
///     .min_delta(0.5)?;
/// let options = FitOptions::new()
///     .epochs(5)
///     .verbose(Verbosity::Silent)
///     .callback(reducer);
/// let history = model.fit((&x, &y), options)?;
/// // The rate of each epoch: cut after epochs 3 and 5 (counted from one).
/// let rates: Vec<f32> = history.get("learning_rate").unwrap().iter().map(|&r| r as f32).collect();
/// assert_eq!(rates, [0.1, 0.1, 0.1, 0.05, 0.05]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    wait: usize,
    cooldown_counter: usize,
    best: f64,
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        Self::new()
    }
}

impl ReduceLROnPlateau {
    /// Keras' defaults: monitors `val_loss` in mode auto, `factor` 0.1,
    /// `patience` 10, `min_delta` 1e-4, `cooldown` 0, `min_lr` 0.
    pub fn new() -> Self {
        let monitor = Monitor::new("val_loss")
            .with_min_delta(1e-4)
            .expect("1e-4 is a valid min_delta");
        ReduceLROnPlateau {
            best: monitor.initial_best(),
            monitor,
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
        }
    }

    /// The logged key to watch (default `"val_loss"`).
    pub fn monitor(mut self, key: impl Into<String>) -> Self {
        self.monitor = self.monitor.with_key(key);
        self.best = self.monitor.initial_best();
        self
    }

    /// What the learning rate is multiplied by at each cut (default 0.1):
    /// `new_rate = rate * factor`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a factor outside `[0, 1)`: a factor of
    /// 1 or more would not reduce the rate (Keras refuses it too).
    pub fn factor(mut self, factor: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&factor) {
            return Err(Error::invalid(
                "factor",
                factor,
                "expected a value in [0, 1): `ReduceLROnPlateau` only reduces the rate",
            ));
        }
        self.factor = factor;
        Ok(self)
    }

    /// The number of epochs without improvement after which the rate is cut
    /// (default 10).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether lower or higher values are better (default [`Mode::Auto`],
    /// which maximizes accuracy-like keys and minimizes the others).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor = self.monitor.with_mode(mode);
        self.best = self.monitor.initial_best();
        self
    }

    /// The smallest change that counts as an improvement (default 1e-4).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `min_delta` is negative or not
    /// finite.
    pub fn min_delta(mut self, min_delta: f64) -> Result<Self> {
        self.monitor = self.monitor.with_min_delta(min_delta)?;
        Ok(self)
    }

    /// The number of epochs after a cut during which no patience is counted
    /// (default 0).
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The rate below which no cut goes (default 0).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `min_lr` is negative or not finite.
    pub fn min_lr(mut self, min_lr: f64) -> Result<Self> {
        if !(min_lr.is_finite() && min_lr >= 0.0) {
            return Err(Error::invalid(
                "min_lr",
                min_lr,
                "expected a finite learning rate >= 0",
            ));
        }
        self.min_lr = min_lr;
        Ok(self)
    }

    fn in_cooldown(&self) -> bool {
        self.cooldown_counter > 0
    }

    /// Cuts the rate unless it is already at `min_lr`; returns whether it
    /// did.
    fn cut(&self, epoch: usize, model: &mut Sequential) -> Result<bool> {
        let optimizer = model.optimizer_mut().ok_or_else(|| Error::NotCompiled {
            call: NAME.to_string(),
        })?;
        let old = optimizer.learning_rate();
        // The rate is stored in f32: compare with min_lr as stored.
        if old <= self.min_lr as f32 {
            return Ok(false);
        }
        let new = (f64::from(old) * self.factor).max(self.min_lr);
        optimizer.set_learning_rate(new as f32);
        log::info!(
            "epoch {}: ReduceLROnPlateau reducing learning rate from {old} to {}",
            epoch + 1,
            new as f32
        );
        Ok(true)
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _model: &mut Sequential, _logs: &Logs) -> Result<()> {
        self.wait = 0;
        self.cooldown_counter = 0;
        self.best = self.monitor.initial_best();
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        let current = self.monitor.read(logs, NAME)?;
        if self.in_cooldown() {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }

        if self.monitor.improved(current, self.best) {
            self.best = current;
            self.wait = 0;
        } else if !self.in_cooldown() {
            self.wait += 1;
            if self.wait >= self.patience && self.cut(epoch, model)? {
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_keras() {
        let reducer = ReduceLROnPlateau::new();
        assert_eq!(reducer.monitor.key(), "val_loss");
        assert_eq!(reducer.monitor.mode(), Mode::Auto);
        assert_eq!(reducer.monitor.min_delta(), 1e-4);
        assert_eq!(reducer.factor, 0.1);
        assert_eq!(reducer.patience, 10);
        assert_eq!(reducer.cooldown, 0);
        assert_eq!(reducer.min_lr, 0.0);
    }

    #[test]
    fn a_factor_of_one_or_more_is_refused_at_construction() {
        for bad in [1.0, 1.5, -0.1, f64::NAN] {
            let err = ReduceLROnPlateau::new().factor(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument { ref name, .. } if name == "factor"),
                "{bad}: {err}"
            );
        }
        assert!(ReduceLROnPlateau::new().factor(0.5).is_ok());
    }

    #[test]
    fn a_negative_min_lr_is_refused() {
        assert!(ReduceLROnPlateau::new().min_lr(-1e-3).is_err());
        assert!(ReduceLROnPlateau::new().min_lr(1e-5).is_ok());
    }
}
