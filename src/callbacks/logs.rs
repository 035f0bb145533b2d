//! [`Logs`]: the named figures of a batch or an epoch.

use serde::{Deserialize, Serialize};

/// Named values in the order they were first inserted: `loss`, the metrics,
/// then `val_loss`, the validation metrics and `learning_rate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logs {
    entries: Vec<(String, f64)>,
}

impl Logs {
    /// Empty logs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if logged.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Sets `key` to `value`, keeping its place if it is already logged.
    pub fn insert(&mut self, key: &str, value: f64) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// `(key, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is logged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Keras' progress-bar form, `loss: 0.0669 - accuracy: 0.9797`: every value
/// at four decimals (or the precision asked for, as in `{:.6}`), the
/// learning rate in scientific notation.
///
/// ```
/// use kerust::callbacks::Logs;
///
/// let mut logs = Logs::new();
/// logs.insert("loss", 0.066_86);
/// logs.insert("accuracy", 0.9797);
/// logs.insert("learning_rate", 0.001);
/// assert_eq!(logs.to_string(), "loss: 0.0669 - accuracy: 0.9797 - learning_rate: 1.0000e-3");
/// assert_eq!(format!("{logs:.2}"), "loss: 0.07 - accuracy: 0.98 - learning_rate: 1.00e-3");
/// ```
impl std::fmt::Display for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = f.precision().unwrap_or(4);
        for (i, (key, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" - ")?;
            }
            if key == "learning_rate" {
                write!(f, "{key}: {value:.digits$e}")?;
            } else {
                write!(f, "{key}: {value:.digits$}")?;
            }
        }
        Ok(())
    }
}
