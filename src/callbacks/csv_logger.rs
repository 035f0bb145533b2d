//! [`CsvLogger`]: write the figures of each epoch to a CSV file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{Callback, Logs};
use crate::model::Sequential;
use crate::{Error, Result};

/// Writes one CSV row per epoch, as Keras' `CSVLogger`: a header
/// `epoch,loss,accuracy,val_loss,...`, then the epoch (counted from zero, as
/// Keras writes it) and each logged value.
///
/// The columns are the keys of the first epoch's logs, in the order they
/// were logged (Keras sorts them by name). A later epoch that lacks a key
/// gets `NA`, as in Keras; a key that appears later is left out with a
/// warning. Values are written in Rust's shortest form that reads back to
/// the same number (`0.1`, `1e-7`, `NaN`, `inf`).
///
/// The whole file is written again at each epoch end, to a temporary file
/// that then replaces it ([`write_atomic`](crate::io::write_atomic)): a
/// crash leaves the rows of every finished epoch and never half a row. The
/// file is replaced at the first epoch end, not when training starts.
///
/// Options and their defaults, as in Keras:
///
/// | option | default |
/// | --- | --- |
/// | the file, given to [`new`](CsvLogger::new) | (required) |
/// | [`separator`](CsvLogger::separator) | `","` |
/// | [`append`](CsvLogger::append) | `false` |
///
/// # Errors
///
/// From `on_train_begin`, [`Error::Io`] when the file to append to cannot be
/// read, and [`Error::Format`] when it has text but no header on its first
/// line. From `on_epoch_end`, [`Error::InvalidArgument`] when a key holds the
/// separator, a quote or a line break, or when appending with keys other
/// than the file's header (naming both); [`Error::Io`] when the file cannot
/// be written.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::CsvLogger;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
/// let folder = tempfile::tempdir()?;
/// let path = folder.path().join("history.csv");
///
/// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
/// let y = array![0.0_f32, 0.0, 1.0, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Sgd::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
/// let options = FitOptions::new()
///     .epochs(3)
///     .verbose(Verbosity::Silent)
///     .callback(CsvLogger::new(&path));
/// model.fit((&x, &y), options)?;
///
/// let text = std::fs::read_to_string(&path)?;
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(lines[0], "epoch,loss,accuracy,learning_rate");
/// assert_eq!(lines.len(), 4);
/// assert!(lines[3].starts_with("2,"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CsvLogger {
    path: PathBuf,
    separator: String,
    append: bool,
    /// The header found in the file to append to.
    existing_header: Option<Vec<String>>,
    /// The logged keys that make the columns after `epoch`.
    keys: Option<Vec<String>>,
    /// Keys left out of the file, already warned about.
    dropped: HashSet<String>,
    /// The whole file as it is to be written.
    text: String,
}

impl CsvLogger {
    /// Writes to `path`, separating values with `,` and replacing any file
    /// there.
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvLogger {
            path: path.as_ref().to_path_buf(),
            separator: ",".to_string(),
            append: false,
            existing_header: None,
            keys: None,
            dropped: HashSet::new(),
            text: String::new(),
        }
    }

    /// What separates the values of a row (default `","`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty separator, or one holding a
    /// character that can appear in a number or a quoted field (letters,
    /// digits, `.`, `-`, `+`, `"`, line breaks).
    pub fn separator(mut self, separator: &str) -> Result<Self> {
        let clashes = |c: char| c.is_alphanumeric() || ".-+\"\r\n".contains(c);
        if separator.is_empty() || separator.chars().any(clashes) {
            return Err(Error::invalid(
                "separator",
                format!("{separator:?}"),
                "expected a non-empty separator without letters, digits, `.`, `-`, `+`, \
                 quotes or line breaks, such as \",\", \";\" or \"\\t\"",
            ));
        }
        self.separator = separator.to_string();
        Ok(self)
    }

    /// Whether to keep the rows already in the file and add to them, to go
    /// on with an earlier run (default false: the file is replaced). The
    /// header is then not written again, and the logged keys must match it.
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file to append to: its text and its header, if any.
    fn read_existing(&mut self) -> Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let header = text.lines().next().unwrap_or_default();
        if header.trim().is_empty() {
            return Err(Error::format(
                &self.path,
                "the first line is empty: expected the CSV header to append under",
            ));
        }
        self.existing_header = Some(
            header
                .split(self.separator.as_str())
                .map(String::from)
                .collect(),
        );
        self.text = text;
        if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        Ok(())
    }

    /// Fixes the columns from the first epoch's logs and writes the header
    /// unless the file to append to has it already.
    fn start_columns(&mut self, logs: &Logs) -> Result<()> {
        let keys: Vec<String> = logs.keys().map(String::from).collect();
        let bad = |c: char| self.separator.contains(c) || "\"\r\n".contains(c);
        if let Some(key) = keys.iter().find(|k| k.chars().any(bad)) {
            return Err(Error::invalid(
                "logs",
                format!("{key:?}"),
                format!(
                    "a key holds the separator {:?}, a quote or a line break; \
                     it cannot be a CSV column",
                    self.separator
                ),
            ));
        }
        let mut columns = vec!["epoch".to_string()];
        columns.extend(keys.iter().cloned());
        match &self.existing_header {
            Some(header) if *header != columns => {
                return Err(Error::invalid(
                    "logs",
                    columns.join(&self.separator),
                    format!(
                        "`{}` has the columns {}; appending needs the same keys in the \
                         same order (or `append(false)` to start a new file)",
                        self.path.display(),
                        header.join(&self.separator)
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.text.push_str(&columns.join(&self.separator));
                self.text.push('\n');
            }
        }
        self.keys = Some(keys);
        Ok(())
    }

    fn warn_about_new_keys(&mut self, logs: &Logs) {
        let keys = self.keys.as_deref().unwrap_or_default();
        for key in logs.keys() {
            if !keys.iter().any(|k| k == key) && self.dropped.insert(key.to_string()) {
                log::warn!(
                    "CsvLogger: `{key}` was not logged at the first epoch and has no column \
                     in `{}`; it is left out",
                    self.path.display()
                );
            }
        }
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _model: &mut Sequential, _logs: &Logs) -> Result<()> {
        self.existing_header = None;
        self.keys = None;
        self.dropped.clear();
        self.text.clear();
        if self.append {
            self.read_existing()?;
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        _model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        if self.keys.is_none() {
            self.start_columns(logs)?;
        }
        self.warn_about_new_keys(logs);

        let mut row = epoch.to_string();
        for key in self.keys.as_deref().unwrap_or_default() {
            row.push_str(&self.separator);
            match logs.get(key) {
                Some(value) => row.push_str(&format!("{value:?}")),
                None => row.push_str("NA"),
            }
        }
        row.push('\n');
        self.text.push_str(&row);
        crate::io::write_atomic(&self.path, self.text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_that_clash_with_numbers_are_refused() {
        for bad in ["", ".", "-", "e", "1", "\n", "\""] {
            assert!(CsvLogger::new("x.csv").separator(bad).is_err(), "{bad:?}");
        }
        for good in [",", ";", "\t", " | "] {
            assert!(CsvLogger::new("x.csv").separator(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn values_are_written_in_their_shortest_round_trip_form() {
        for value in [0.1, 1.0, 1e-7, 0.0010000000474974513, 123456.789, f64::NAN] {
            let text = format!("{value:?}");
            let back: f64 = text.parse().unwrap();
            assert!(back == value || (value.is_nan() && back.is_nan()), "{text}");
        }
        assert_eq!(format!("{:?}", 1e-7_f64), "1e-7");
    }

    #[test]
    fn appending_to_text_without_a_header_is_a_format_error() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("history.csv");
        std::fs::write(&path, "\n0,1.5\n").unwrap();
        let mut logger = CsvLogger::new(&path).append(true);
        let err = logger
            .on_train_begin(&mut Sequential::new(), &Logs::new())
            .unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
    }

    #[test]
    fn a_key_holding_the_separator_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let mut logger = CsvLogger::new(folder.path().join("h.csv"));
        let mut model = Sequential::new();
        logger.on_train_begin(&mut model, &Logs::new()).unwrap();
        let mut logs = Logs::new();
        logs.insert("loss,weighted", 1.0);
        let err = logger.on_epoch_end(0, &mut model, &mut logs).unwrap_err();
        assert!(err.to_string().contains("loss,weighted"), "{err}");
    }
}
