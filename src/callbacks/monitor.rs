//! [`Monitor`]: the watched quantity of [`EarlyStopping`](super::EarlyStopping),
//! [`ReduceLROnPlateau`](super::ReduceLROnPlateau) and model checkpoints.

use std::fmt;
use std::str::FromStr;

use super::Logs;
use crate::{Error, Result};

/// Which way a monitored quantity should move, as Keras' `mode` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Chosen from the key's name (the default): accuracy-like keys are
    /// maximized, everything else, losses included, is minimized. See
    /// [`Mode::maximizes`].
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

impl Mode {
    /// Whether this mode maximizes `key`.
    ///
    /// [`Mode::Auto`] follows Keras: once a `val_` prefix is set aside, a key
    /// that contains `acc` (`accuracy`, `categorical_accuracy`) or `auc`, or
    /// that starts with `fmeasure`, is maximized; any other key (`loss`,
    /// `mae`, ...) is minimized.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::callbacks::Mode;
    ///
    /// assert!(Mode::Auto.maximizes("val_accuracy"));
    /// assert!(!Mode::Auto.maximizes("val_loss"));
    /// assert!(!Mode::Min.maximizes("accuracy"));
    /// ```
    pub fn maximizes(self, key: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let name = key.strip_prefix("val_").unwrap_or(key);
                name.contains("acc") || name.contains("auc") || name.starts_with("fmeasure")
            }
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Min => "min",
            Mode::Max => "max",
        })
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Reads Keras' spelling: `"auto"`, `"min"` or `"max"`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for any other text. Keras falls back to
    /// `auto` with a warning; a typo here is refused instead.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(Mode::Auto),
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            other => Err(Error::invalid(
                "mode",
                other,
                "expected `auto`, `min` or `max`",
            )),
        }
    }
}

/// A logged quantity that a callback watches for improvement: its key, the
/// direction that counts as better, and the smallest change that counts.
///
/// A value improves on a reference when it is better by more than
/// `min_delta`:
///
/// ```text
/// minimized:  current < reference - min_delta
/// maximized:  current > reference + min_delta
/// ```
///
/// A NaN never improves on anything, and nothing improves on a NaN.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::{Logs, Mode, Monitor};
///
/// # fn main() -> kerust::Result<()> {
/// let monitor = Monitor::new("val_loss").with_min_delta(0.01)?;
/// assert!(!monitor.maximizes());
/// assert!(monitor.improved(0.5, monitor.initial_best()));
/// assert!(monitor.improved(0.48, 0.5));
/// assert!(!monitor.improved(0.495, 0.5));
///
/// let mut logs = Logs::new();
/// logs.insert("val_loss", 0.25);
/// assert_eq!(monitor.read(&logs, "MyCallback")?, 0.25);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    key: String,
    mode: Mode,
    maximize: bool,
    min_delta: f64,
}

impl Monitor {
    /// Watches `key` in mode [`Mode::Auto`] with `min_delta` 0.
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        Monitor {
            maximize: Mode::Auto.maximizes(&key),
            key,
            mode: Mode::Auto,
            min_delta: 0.0,
        }
    }

    /// The same monitor with another mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.maximize = mode.maximizes(&self.key);
        self
    }

    /// The same monitor with another key; the mode is kept and, when it is
    /// [`Mode::Auto`], resolved again for the new key.
    pub fn with_key(self, key: impl Into<String>) -> Self {
        let mode = self.mode;
        Monitor {
            key: key.into(),
            ..self
        }
        .with_mode(mode)
    }

    /// The same monitor with another smallest change that counts as an
    /// improvement.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `min_delta` is negative or not finite.
    /// (Keras takes the absolute value of a negative `min_delta`.)
    pub fn with_min_delta(mut self, min_delta: f64) -> Result<Self> {
        if !(min_delta.is_finite() && min_delta >= 0.0) {
            return Err(Error::invalid(
                "min_delta",
                min_delta,
                "expected a finite value >= 0",
            ));
        }
        self.min_delta = min_delta;
        Ok(self)
    }

    /// The monitored key, e.g. `val_loss`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The mode as given (possibly [`Mode::Auto`]).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether higher values are better, once `auto` is resolved.
    pub fn maximizes(&self) -> bool {
        self.maximize
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(&self) -> f64 {
        self.min_delta
    }

    /// The best value before anything is seen: `+inf` when minimizing,
    /// `-inf` when maximizing, so that any number improves on it.
    pub fn initial_best(&self) -> f64 {
        if self.maximize {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }

    /// Whether `current` is better than `reference` by more than
    /// `min_delta`.
    pub fn improved(&self, current: f64, reference: f64) -> bool {
        if self.maximize {
            current > reference + self.min_delta
        } else {
            current < reference - self.min_delta
        }
    }

    /// The monitored value in `logs`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetric`] naming `callback`, the key and the keys that
    /// are logged, when `logs` do not hold the key. Keras only warns and
    /// carries on doing nothing; here a misspelt key stops training at the
    /// first epoch end instead of silently never acting.
    pub fn read(&self, logs: &Logs, callback: &str) -> Result<f64> {
        logs.get(&self.key).ok_or_else(|| Error::MissingMetric {
            callback: callback.to_string(),
            key: self.key.clone(),
            available: logs.keys().collect::<Vec<_>>().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_maximizes_accuracy_like_keys_and_minimizes_the_rest() {
        let maximized = [
            "accuracy",
            "val_accuracy",
            "val_acc",
            "auc",
            "val_fmeasure_1",
        ];
        for key in maximized {
            assert!(Mode::Auto.maximizes(key), "{key}");
        }
        for key in [
            "loss",
            "val_loss",
            "mae",
            "val_mean_squared_error",
            "my_fmeasure",
        ] {
            assert!(!Mode::Auto.maximizes(key), "{key}");
        }
        assert!(Mode::Max.maximizes("loss"));
        assert!(!Mode::Min.maximizes("accuracy"));
    }

    #[test]
    fn an_improvement_must_beat_the_reference_by_more_than_min_delta() {
        let min = Monitor::new("loss").with_min_delta(0.25).unwrap();
        assert!(min.improved(0.5, 1.0));
        assert!(!min.improved(0.75, 1.0), "a change of exactly min_delta");
        assert!(!min.improved(1.5, 1.0));

        let max = Monitor::new("loss").with_mode(Mode::Max);
        assert!(max.improved(1.5, 1.0));
        assert!(!max.improved(1.0, 1.0), "equal is not better");
        assert!(max.improved(-1e300, max.initial_best()));
    }

    #[test]
    fn nan_never_improves_and_is_never_improved_on() {
        let monitor = Monitor::new("val_loss");
        assert!(!monitor.improved(f64::NAN, f64::INFINITY));
        assert!(!monitor.improved(0.1, f64::NAN));
    }

    #[test]
    fn a_changed_key_resolves_auto_again() {
        let monitor = Monitor::new("val_loss").with_key("val_accuracy");
        assert!(monitor.maximizes());
        let fixed = Monitor::new("val_loss")
            .with_mode(Mode::Min)
            .with_key("val_accuracy");
        assert!(!fixed.maximizes());
    }

    #[test]
    fn a_negative_or_infinite_min_delta_is_refused() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let err = Monitor::new("loss").with_min_delta(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { ref name, .. } if name == "min_delta"));
        }
    }

    #[test]
    fn a_missing_key_lists_the_keys_that_exist() {
        let mut logs = Logs::new();
        logs.insert("loss", 1.0);
        logs.insert("val_accuracy", 0.5);
        let err = Monitor::new("val_acc")
            .read(&logs, "EarlyStopping")
            .unwrap_err();
        match err {
            Error::MissingMetric {
                callback,
                key,
                available,
            } => {
                assert_eq!(callback, "EarlyStopping");
                assert_eq!(key, "val_acc");
                assert_eq!(available, "loss, val_accuracy");
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn modes_parse_from_keras_spelling() {
        assert_eq!("max".parse::<Mode>().unwrap(), Mode::Max);
        assert_eq!(Mode::Min.to_string(), "min");
        assert!("maximum".parse::<Mode>().is_err());
    }
}
