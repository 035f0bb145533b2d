//! [`History`]: the figures of every epoch of a training run.
//!
//! `fit` returns a `History`, as Keras does. It holds the epoch numbers
//! (counted from zero) and, for each logged key (`loss`, `accuracy`,
//! `val_loss`, `val_accuracy`, `learning_rate`, ...), one value per epoch, in
//! the order the keys were first logged.
//!
//! A history is saved as CSV, with the columns of Keras' `CSVLogger`
//! (`epoch` then the keys), or as JSON, with the shape of Keras'
//! `history.history` plus the epoch list:
//!
//! ```text
//! {
//!   "epoch": [0, 1],
//!   "loss": [0.31, 0.17],
//!   "accuracy": [0.91, 0.95]
//! }
//! ```
//!
//! Values are written with the shortest decimal that reads back to the same
//! `f64`, so a saved history loads bit for bit, and a CSV file written by
//! [`History::to_csv`] is written again byte for byte after loading.
//!
//! # Examples
//!
//! ```
//! use kerust::model::History;
//!
//! # fn main() -> kerust::Result<()> {
//! let mut history = History::new();
//! history.push_epoch(0, [("loss", 0.31), ("accuracy", 0.91)])?;
//! history.push_epoch(1, [("loss", 0.17), ("accuracy", 0.95)])?;
//!
//! assert_eq!(history.get("loss"), Some(&[0.31, 0.17][..]));
//! assert_eq!(history.max("accuracy"), Some((1, 0.95)));
//!
//! let csv = history.to_csv(',')?;
//! assert_eq!(csv, "epoch,loss,accuracy\n0,0.31,0.91\n1,0.17,0.95\n");
//! assert_eq!(History::from_csv(&csv, ',')?, history);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::io::write_atomic;
use crate::{Error, Result};

/// The name of the epoch column in CSV and of the epoch list in JSON.
const EPOCH_KEY: &str = "epoch";

/// The per-epoch figures of a training run.
///
/// Every key has exactly one value per epoch: a key that appears after the
/// first epoch, or that is missing from a later one, is refused rather than
/// stored in a shifted column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    epochs: Vec<usize>,
    series: Vec<Series>,
}

/// The values of one key, one per epoch.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    key: String,
    values: Vec<f64>,
}

/// Why a row of figures cannot be added: the offending value and the reason,
/// turned into an [`Error`] by the caller that knows the context.
#[derive(Debug)]
struct Refusal {
    value: String,
    reason: String,
}

impl History {
    /// An empty history, with no epoch and no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the figures of `epoch` (counted from zero).
    ///
    /// The first epoch fixes the keys and their order; every later epoch must
    /// log the same keys, in any order. `logs` may be the `iter()` of the
    /// logs that callbacks see, a `Vec` of `(String, f64)` pairs or an array
    /// of `(&str, f64)` pairs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`], leaving the history unchanged, when
    /// `epoch` is not greater than the last epoch, when a key is empty, is
    /// `epoch`, contains a control character or is logged twice, or when the
    /// keys differ from those of the first epoch (the message names the key
    /// and the epoch).
    pub fn push_epoch<K, I>(&mut self, epoch: usize, logs: I) -> Result<()>
    where
        K: AsRef<str>,
        I: IntoIterator<Item = (K, f64)>,
    {
        let logs: Vec<(K, f64)> = logs.into_iter().collect();
        let pairs: Vec<(&str, f64)> = logs.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        self.try_push(epoch, &pairs)
            .map_err(|refusal| Error::invalid("logs", refusal.value, refusal.reason))
    }

    /// The epochs, counted from zero, in the order they were pushed.
    pub fn epochs(&self) -> &[usize] {
        &self.epochs
    }

    /// The values of `key`, one per epoch, or `None` when it is not logged.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.series
            .iter()
            .find(|series| series.key == key)
            .map(|series| series.values.as_slice())
    }

    /// The keys, in the order they were first logged.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.series.iter().map(|series| series.key.as_str())
    }

    /// `(key, values)` pairs, in the order of [`keys`](History::keys).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.series
            .iter()
            .map(|series| (series.key.as_str(), series.values.as_slice()))
    }

    /// Number of epochs.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch has been pushed.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The value of `key` at the last epoch.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|values| values.last().copied())
    }

    /// The epoch and value where `key` was lowest (a loss), skipping NaN;
    /// the first such epoch on a tie.
    pub fn min(&self, key: &str) -> Option<(usize, f64)> {
        self.best(key, |candidate, best| candidate < best)
    }

    /// The epoch and value where `key` was highest (an accuracy), skipping
    /// NaN; the first such epoch on a tie.
    pub fn max(&self, key: &str) -> Option<(usize, f64)> {
        self.best(key, |candidate, best| candidate > best)
    }

    /// The history as CSV: a header `epoch` followed by the keys, then one
    /// row per epoch, each line ending in `\n`, fields split by `separator`
    /// (Keras' `CSVLogger` uses `,`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `separator` could be part of a number
    /// (a letter, a digit, `.`, `-`, `+`), is a quote or a line break, or
    /// appears in a key.
    pub fn to_csv(&self, separator: char) -> Result<String> {
        check_separator(separator)?;
        if let Some(key) = self.keys().find(|key| key.contains(separator)) {
            return Err(Error::invalid(
                "separator",
                format!("{separator:?}"),
                format!("the key `{key}` contains it; choose another separator"),
            ));
        }
        let separator = separator.to_string();
        let mut csv = String::new();
        let header: Vec<&str> = std::iter::once(EPOCH_KEY).chain(self.keys()).collect();
        csv.push_str(&header.join(&separator));
        csv.push('\n');
        for (row, epoch) in self.epochs.iter().enumerate() {
            let mut fields = vec![epoch.to_string()];
            fields.extend(self.series.iter().map(|s| format_value(s.values[row])));
            csv.push_str(&fields.join(&separator));
            csv.push('\n');
        }
        Ok(csv)
    }

    /// Reads a history from CSV text with an `epoch` column first, as written
    /// by [`to_csv`](History::to_csv) or Keras' `CSVLogger`. Blank lines and
    /// `\r` before line ends are ignored; `NaN`, `inf` and `-inf` are read.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the line when the separator is
    /// refused by [`to_csv`](History::to_csv), the text is empty, the first
    /// column is not `epoch`, a key repeats, a row has too few or too many
    /// fields, a field is not a number, or the epochs do not increase.
    pub fn from_csv(text: &str, separator: char) -> Result<History> {
        check_separator(separator)?;
        parse_csv(text, separator)
            .map_err(|error| Error::invalid("csv", format!("line {}", error.line), error.reason))
    }

    /// The history as pretty-printed JSON: an object with the epoch list
    /// under `epoch`, then one list of values per key, in order.
    ///
    /// JSON has no NaN or infinity: such values are written as `null` and
    /// read back as NaN. Use CSV to keep infinities.
    pub fn to_json(&self) -> String {
        // Serializing a map of strings to number lists cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a history from JSON, as written by [`to_json`](History::to_json).
    /// A Keras `history.history` object, which has no `epoch` list, is read
    /// as epochs 0, 1, 2, ...
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the text is not such a JSON object,
    /// a key repeats, the lists differ in length or the epochs do not
    /// increase.
    pub fn from_json(text: &str) -> Result<History> {
        serde_json::from_str(text)
            .map_err(|error| Error::invalid("json", "the given text", error.to_string()))
    }

    /// Writes [`to_csv`](History::to_csv) with `,` to `path`, atomically.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when a key contains `,`; [`Error::Io`]
    /// naming the path when the file cannot be written.
    pub fn save_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, self.to_csv(',')?.as_bytes())
    }

    /// Writes [`to_json`](History::to_json) to `path`, atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the path when the file cannot be written.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }

    /// Reads a CSV file with `,` separators, as [`from_csv`](History::from_csv).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming
    /// the path and the line when its contents are refused.
    pub fn load_csv(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        parse_csv(&text, ',')
            .map_err(|error| Error::format(path, format!("line {}: {}", error.line, error.reason)))
    }

    /// Reads a JSON file, as [`from_json`](History::from_json).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming
    /// the path when its contents are refused.
    pub fn load_json(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|error| Error::format(path, error.to_string()))
    }

    /// Checks a row of figures and appends it; on a refusal nothing changes.
    fn try_push(&mut self, epoch: usize, logs: &[(&str, f64)]) -> std::result::Result<(), Refusal> {
        self.check_epoch_order(epoch)?;
        check_keys(epoch, logs)?;
        if self.epochs.is_empty() {
            self.series = logs
                .iter()
                .map(|(key, _)| Series {
                    key: key.to_string(),
                    values: Vec::new(),
                })
                .collect();
        } else {
            self.check_same_keys(epoch, logs)?;
        }

        for (key, value) in logs {
            if let Some(series) = self.series.iter_mut().find(|s| s.key == *key) {
                series.values.push(*value);
            }
        }
        self.epochs.push(epoch);
        Ok(())
    }

    fn check_epoch_order(&self, epoch: usize) -> std::result::Result<(), Refusal> {
        match self.epochs.last() {
            Some(&last) if epoch <= last => Err(Refusal {
                value: format!("epoch {epoch}"),
                reason: format!("epochs must increase; the last one is {last}"),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a row whose keys are not exactly those of the first epoch.
    /// Keys are unique on both sides, so equal counts and no new key suffice.
    fn check_same_keys(
        &self,
        epoch: usize,
        logs: &[(&str, f64)],
    ) -> std::result::Result<(), Refusal> {
        let expected = self.keys().collect::<Vec<_>>().join(", ");
        if let Some((key, _)) = logs.iter().find(|(key, _)| self.get(key).is_none()) {
            return Err(Refusal {
                value: format!("key `{key}` at epoch {epoch}"),
                reason: format!(
                    "it was not logged at the first epoch; expected the keys {expected}"
                ),
            });
        }
        let missing = self.keys().find(|key| logs.iter().all(|(k, _)| k != key));
        match missing {
            Some(key) => Err(Refusal {
                value: format!("key `{key}` at epoch {epoch}"),
                reason: format!(
                    "it is missing, but was logged before; expected the keys {expected}"
                ),
            }),
            None => Ok(()),
        }
    }

    fn best(&self, key: &str, better: impl Fn(f64, f64) -> bool) -> Option<(usize, f64)> {
        let values = self.get(key)?;
        let mut best: Option<(usize, f64)> = None;
        for (&epoch, &value) in self.epochs.iter().zip(values) {
            let is_better = match best {
                _ if value.is_nan() => false,
                None => true,
                Some((_, best_value)) => better(value, best_value),
            };
            if is_better {
                best = Some((epoch, value));
            }
        }
        best
    }
}

/// Refuses empty, reserved, repeated and multi-line keys.
fn check_keys(epoch: usize, logs: &[(&str, f64)]) -> std::result::Result<(), Refusal> {
    for (index, (key, _)) in logs.iter().enumerate() {
        let reason = if key.is_empty() {
            "a key must not be empty"
        } else if *key == EPOCH_KEY {
            "`epoch` is reserved for the epoch numbers"
        } else if key.chars().any(char::is_control) {
            "a key must not contain control characters such as line breaks"
        } else if logs[..index].iter().any(|(k, _)| k == key) {
            "the key is logged twice"
        } else {
            continue;
        };
        return Err(Refusal {
            value: format!("key {key:?} at epoch {epoch}"),
            reason: reason.to_string(),
        });
    }
    Ok(())
}

fn check_separator(separator: char) -> Result<()> {
    let refused =
        separator.is_alphanumeric() || matches!(separator, '.' | '-' | '+' | '"' | '\n' | '\r');
    if refused {
        return Err(Error::invalid(
            "separator",
            format!("{separator:?}"),
            "expected a character that cannot be part of a number or a line break, such as \
             ',', ';' or '\\t'",
        ));
    }
    Ok(())
}

/// The shortest decimal that reads back to the same bits: `0.1`, `1.0`,
/// `1e-7`, `NaN`, `inf`.
fn format_value(value: f64) -> String {
    format!("{value:?}")
}

/// A CSV line that cannot be read, numbered from one.
struct CsvError {
    line: usize,
    reason: String,
}

fn parse_csv(text: &str, separator: char) -> std::result::Result<History, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(CsvError {
            line: 1,
            reason: "the text is empty: expected a header starting with `epoch`".to_string(),
        });
    };
    let keys = parse_header(header, separator).map_err(|reason| CsvError {
        line: header_line,
        reason,
    })?;

    let mut history = History::new();
    for (line, row) in lines {
        let at = |reason: String| CsvError { line, reason };
        let (epoch, values) = parse_row(row, separator, keys.len()).map_err(at)?;
        let pairs: Vec<(&str, f64)> = keys.iter().map(String::as_str).zip(values).collect();
        history
            .try_push(epoch, &pairs)
            .map_err(|refusal| at(format!("{}: {}", refusal.value, refusal.reason)))?;
    }
    if history.is_empty() {
        // The keys of a history without epochs still count.
        history.series = keys
            .into_iter()
            .map(|key| Series {
                key,
                values: Vec::new(),
            })
            .collect();
    }
    Ok(history)
}

fn parse_header(header: &str, separator: char) -> std::result::Result<Vec<String>, String> {
    let mut fields = header.split(separator).map(str::trim);
    if fields.next() != Some(EPOCH_KEY) {
        return Err(format!(
            "expected the header to start with `{EPOCH_KEY}`, got {header:?}"
        ));
    }
    let keys: Vec<String> = fields.map(str::to_string).collect();
    let pairs: Vec<(&str, f64)> = keys.iter().map(|key| (key.as_str(), 0.0)).collect();
    check_keys(0, &pairs).map_err(|refusal| format!("header: {}", refusal.reason))?;
    Ok(keys)
}

fn parse_row(
    row: &str,
    separator: char,
    key_count: usize,
) -> std::result::Result<(usize, Vec<f64>), String> {
    let fields: Vec<&str> = row.split(separator).map(str::trim).collect();
    if fields.len() != key_count + 1 {
        return Err(format!(
            "expected {} fields like the header, got {}",
            key_count + 1,
            fields.len()
        ));
    }
    let epoch = fields[0]
        .parse::<usize>()
        .map_err(|_| format!("expected an epoch number, got {:?}", fields[0]))?;
    let values = fields[1..]
        .iter()
        .map(|field| {
            field
                .parse::<f64>()
                .map_err(|_| format!("expected a number, got {field:?}"))
        })
        .collect::<std::result::Result<Vec<f64>, String>>()?;
    Ok((epoch, values))
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.series.len() + 1))?;
        map.serialize_entry(EPOCH_KEY, &self.epochs)?;
        for series in &self.series {
            map.serialize_entry(&series.key, &series.values)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(HistoryVisitor)
    }
}

/// Reads the JSON object key by key, so that the keys keep their order.
struct HistoryVisitor;

impl<'de> Visitor<'de> for HistoryVisitor {
    type Value = History;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object of per-epoch value lists, with an optional `epoch` list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<History, A::Error> {
        let mut epochs: Option<Vec<usize>> = None;
        let mut columns: Vec<(String, Vec<f64>)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let repeated = columns.iter().any(|(k, _)| *k == key);
            if repeated || (key == EPOCH_KEY && epochs.is_some()) {
                return Err(de::Error::custom(format!("the key `{key}` appears twice")));
            }
            if key == EPOCH_KEY {
                epochs = Some(map.next_value()?);
            } else {
                let values: Vec<Option<f64>> = map.next_value()?;
                let values = values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
                columns.push((key, values));
            }
        }
        history_from_columns(epochs, columns).map_err(de::Error::custom)
    }
}

/// Builds a history from whole columns, epoch by epoch, so that every check
/// of [`History::push_epoch`] applies.
fn history_from_columns(
    epochs: Option<Vec<usize>>,
    columns: Vec<(String, Vec<f64>)>,
) -> std::result::Result<History, String> {
    let length = match (&epochs, columns.first()) {
        (Some(epochs), _) => epochs.len(),
        (None, Some((_, values))) => values.len(),
        (None, None) => 0,
    };
    if let Some((key, values)) = columns.iter().find(|(_, values)| values.len() != length) {
        return Err(format!(
            "`{key}` holds {} values, expected {length} like the others",
            values.len()
        ));
    }
    let epochs = epochs.unwrap_or_else(|| (0..length).collect());

    let mut history = History::new();
    for (row, &epoch) in epochs.iter().enumerate() {
        let pairs: Vec<(&str, f64)> = columns.iter().map(|(k, v)| (k.as_str(), v[row])).collect();
        history
            .try_push(epoch, &pairs)
            .map_err(|refusal| format!("{}: {}", refusal.value, refusal.reason))?;
    }
    if history.is_empty() {
        history.series = columns
            .into_iter()
            .map(|(key, values)| Series { key, values })
            .collect();
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_epochs() -> History {
        let mut history = History::new();
        history
            .push_epoch(0, [("loss", 0.5), ("accuracy", 0.8), ("val_loss", 0.45)])
            .unwrap();
        history
            .push_epoch(1, [("loss", 0.25), ("accuracy", 0.9), ("val_loss", 0.4)])
            .unwrap();
        history
    }

    #[test]
    fn keeps_keys_in_first_logged_order() {
        let history = two_epochs();
        assert_eq!(
            history.keys().collect::<Vec<_>>(),
            ["loss", "accuracy", "val_loss"]
        );
        assert_eq!(history.epochs(), [0, 1]);
        assert_eq!(history.get("accuracy"), Some(&[0.8, 0.9][..]));
        assert_eq!(history.get("val_accuracy"), None);
        assert_eq!(history.last("loss"), Some(0.25));
        assert_eq!(history.len(), 2);
    }

    #[test]
    fn later_epochs_may_log_keys_in_another_order() {
        let mut history = two_epochs();
        history
            .push_epoch(2, [("val_loss", 0.3), ("loss", 0.2), ("accuracy", 0.95)])
            .unwrap();
        assert_eq!(history.get("val_loss"), Some(&[0.45, 0.4, 0.3][..]));
        assert_eq!(history.get("loss"), Some(&[0.5, 0.25, 0.2][..]));
    }

    #[test]
    fn accepts_owned_string_pairs() {
        let logs = vec![("loss".to_string(), 1.5)];
        let mut history = History::new();
        history
            .push_epoch(0, logs.iter().map(|(k, v)| (k, *v)))
            .unwrap();
        history.push_epoch(1, logs).unwrap();
        assert_eq!(history.get("loss"), Some(&[1.5, 1.5][..]));
    }

    #[test]
    fn a_new_key_is_refused_naming_key_and_epoch() {
        let mut history = two_epochs();
        let logs = [
            ("loss", 0.2),
            ("accuracy", 0.9),
            ("val_loss", 0.3),
            ("lr", 0.1),
        ];
        let error = history.push_epoch(2, logs).unwrap_err().to_string();
        assert!(
            error.contains("`lr`") && error.contains("epoch 2"),
            "{error}"
        );
        assert_eq!(history.len(), 2);
        assert_eq!(history.get("loss").unwrap().len(), 2);
    }

    #[test]
    fn a_missing_key_is_refused_naming_key_and_epoch() {
        let mut history = two_epochs();
        let error = history
            .push_epoch(5, [("loss", 0.2), ("accuracy", 0.9)])
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::InvalidArgument { .. }));
        assert!(
            message.contains("`val_loss`") && message.contains("epoch 5"),
            "{message}"
        );
        assert_eq!(history.get("loss"), Some(&[0.5, 0.25][..]));
    }

    #[test]
    fn repeated_reserved_and_empty_keys_are_refused() {
        for logs in [
            vec![("loss", 1.0), ("loss", 2.0)],
            vec![("epoch", 1.0)],
            vec![("", 1.0)],
            vec![("a\nb", 1.0)],
        ] {
            let mut history = History::new();
            assert!(history.push_epoch(0, logs.clone()).is_err(), "{logs:?}");
            assert!(history.is_empty());
        }
    }

    #[test]
    fn epochs_must_increase() {
        let mut history = two_epochs();
        let logs = [("loss", 0.2), ("accuracy", 0.9), ("val_loss", 0.3)];
        let error = history.push_epoch(1, logs).unwrap_err().to_string();
        assert!(
            error.contains("epoch 1") && error.contains("last one is 1"),
            "{error}"
        );
        history.push_epoch(7, logs).unwrap();
        assert_eq!(history.epochs(), [0, 1, 7]);
    }

    #[test]
    fn min_and_max_skip_nan_and_keep_the_first_tie() {
        let mut history = History::new();
        for (epoch, loss) in [f64::NAN, 0.3, 0.2, 0.2, 0.9].into_iter().enumerate() {
            history.push_epoch(epoch, [("loss", loss)]).unwrap();
        }
        assert_eq!(history.min("loss"), Some((2, 0.2)));
        assert_eq!(history.max("loss"), Some((4, 0.9)));
        assert_eq!(history.min("accuracy"), None);
    }

    #[test]
    fn csv_round_trip_is_byte_identical_and_bit_exact() {
        let mut history = History::new();
        let awkward = [0.1 + 0.2, 1e-7, 1.0 / 3.0, 123456789.0, 5e-324, f64::MAX];
        for (epoch, value) in awkward.into_iter().enumerate() {
            history
                .push_epoch(epoch, [("loss", value), ("accuracy", -value)])
                .unwrap();
        }
        let csv = history.to_csv(',').unwrap();
        let read = History::from_csv(&csv, ',').unwrap();
        assert_eq!(read.to_csv(',').unwrap(), csv);
        for (original, back) in awkward.iter().zip(read.get("loss").unwrap()) {
            assert_eq!(original.to_bits(), back.to_bits());
        }
    }

    #[test]
    fn csv_keeps_non_finite_values() {
        let mut history = History::new();
        history
            .push_epoch(
                0,
                [
                    ("a", f64::NAN),
                    ("b", f64::INFINITY),
                    ("c", f64::NEG_INFINITY),
                ],
            )
            .unwrap();
        let csv = history.to_csv(';').unwrap();
        assert_eq!(csv, "epoch;a;b;c\n0;NaN;inf;-inf\n");
        let read = History::from_csv(&csv, ';').unwrap();
        assert!(read.last("a").unwrap().is_nan());
        assert_eq!(read.last("b"), Some(f64::INFINITY));
        assert_eq!(read.last("c"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn reads_keras_csv_logger_output() {
        let text = "epoch,accuracy,loss\r\n0,0.9,0.3\r\n1,0.95,1e-07\r\n\r\n";
        let history = History::from_csv(text, ',').unwrap();
        assert_eq!(history.keys().collect::<Vec<_>>(), ["accuracy", "loss"]);
        assert_eq!(history.get("loss"), Some(&[0.3, 1e-7][..]));
    }

    #[test]
    fn bad_csv_is_refused_naming_the_line() {
        let cases = [
            ("", "line 1"),
            ("step,loss\n0,1\n", "line 1"),
            ("epoch,loss\n0,1\n1\n", "line 3"),
            ("epoch,loss\n0,abc\n", "line 2"),
            ("epoch,loss\n1,0.5\n0,0.4\n", "line 3"),
            ("epoch,loss,loss\n0,1,2\n", "line 1"),
            ("epoch,loss\nx,1\n", "line 2"),
        ];
        for (text, line) in cases {
            let error = History::from_csv(text, ',').unwrap_err().to_string();
            assert!(error.contains(line), "{text:?}: {error}");
        }
    }

    #[test]
    fn separators_that_could_be_numbers_are_refused() {
        let history = two_epochs();
        for separator in ['.', '-', '1', 'e', '\n'] {
            assert!(history.to_csv(separator).is_err(), "{separator:?}");
            assert!(
                History::from_csv("epoch\n", separator).is_err(),
                "{separator:?}"
            );
        }
        assert!(history.to_csv('_').is_err(), "`val_loss` contains '_'");
        assert!(history.to_csv('\t').is_ok());
    }

    #[test]
    fn empty_history_round_trips_through_csv_and_json() {
        let history = History::new();
        assert_eq!(history.to_csv(',').unwrap(), "epoch\n");
        assert_eq!(History::from_csv("epoch\n", ',').unwrap(), history);
        assert_eq!(History::from_json(&history.to_json()).unwrap(), history);
    }

    #[test]
    fn json_has_the_keras_shape_with_epochs_first() {
        let json = two_epochs().to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["epoch"], serde_json::json!([0, 1]));
        assert_eq!(value["val_loss"], serde_json::json!([0.45, 0.4]));
        let epoch_at = json.find("\"epoch\"").unwrap();
        let loss_at = json.find("\"loss\"").unwrap();
        let accuracy_at = json.find("\"accuracy\"").unwrap();
        assert!(epoch_at < loss_at && loss_at < accuracy_at, "{json}");
        assert!(json.contains('\n'), "pretty-printed");
    }

    #[test]
    fn json_round_trip_keeps_order_and_bits() {
        let mut history = History::new();
        for epoch in 0..4 {
            let x = 1.0 / (epoch as f64 + 3.0);
            history
                .push_epoch(epoch, [("zeta", x), ("alpha", x * 1e-9)])
                .unwrap();
        }
        let read = History::from_json(&history.to_json()).unwrap();
        assert_eq!(read, history);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["zeta", "alpha"]);
    }

    #[test]
    fn json_without_epochs_is_read_as_counted_from_zero() {
        let history = History::from_json(r#"{"loss": [0.5, 0.4], "accuracy": [0.8, 0.9]}"#);
        let history = history.unwrap();
        assert_eq!(history.epochs(), [0, 1]);
        assert_eq!(history.get("accuracy"), Some(&[0.8, 0.9][..]));
    }

    #[test]
    fn json_null_reads_as_nan() {
        let history = History::from_json(r#"{"epoch": [0], "loss": [null]}"#).unwrap();
        assert!(history.last("loss").unwrap().is_nan());
    }

    #[test]
    fn bad_json_is_refused() {
        for text in [
            r#"{"epoch": [0, 1], "loss": [0.5]}"#,
            r#"{"loss": [0.5], "loss": [0.4]}"#,
            r#"{"epoch": [1, 0], "loss": [0.5, 0.4]}"#,
            r#"{"epoch": [0], "loss": ["high"]}"#,
            r#"[1, 2]"#,
        ] {
            let error = History::from_json(text).unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument { .. }),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn saves_and_loads_files() {
        let dir = tempfile::tempdir().unwrap();
        let history = two_epochs();
        let csv_path = dir.path().join("history.csv");
        let json_path = dir.path().join("history.json");
        history.save_csv(&csv_path).unwrap();
        history.save_json(&json_path).unwrap();
        assert_eq!(History::load_csv(&csv_path).unwrap(), history);
        assert_eq!(History::load_json(&json_path).unwrap(), history);
    }

    #[test]
    fn loading_a_bad_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.csv");
        std::fs::write(&path, "epoch,loss\n0,zero\n").unwrap();
        let error = History::load_csv(&path).unwrap_err();
        assert!(matches!(error, Error::Format { .. }));
        let message = error.to_string();
        assert!(
            message.contains("broken.csv") && message.contains("line 2"),
            "{message}"
        );
        let missing = History::load_json(dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }));
    }
}
