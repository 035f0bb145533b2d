//! [`ModelCheckpoint`]: saves the model during training.

use std::path::{Path, PathBuf};

use super::{Callback, Logs, Mode, Monitor};
use crate::model::Sequential;
use crate::saving::save_checkpoint;
use crate::{Error, Result};

/// Saves a checkpoint at the end of each epoch, or of each epoch that
/// improves a monitored figure, as Keras' `ModelCheckpoint`.
///
/// A checkpoint is the file of [`saving::save_checkpoint`]: weights,
/// architecture, optimizer and its state, and the number of epochs completed,
/// so that [`saving::load_checkpoint`] and
/// [`FitOptions::initial_epoch`](crate::model::FitOptions::initial_epoch)
/// resume training where it stopped. With
/// [`save_weights_only`](ModelCheckpoint::save_weights_only) it is the file
/// of [`Sequential::save_weights`].
///
/// The file path may hold placeholders, filled at each save:
///
/// ```text
/// {epoch}          the epoch just completed, counted from one: 7
/// {epoch:02d}      the same, zero-padded to two digits: 07
/// {val_loss}       any key of the epoch's logs, as Rust prints an f64
/// {val_loss:.4f}   with four decimals: 0.0839
/// {loss:.2e}       in scientific notation, as Python writes it: 8.39e-02
/// {{ and }}        a literal brace
/// ```
///
/// A format spec is `[0][width][.precision]` followed by `d` (whole
/// numbers: the epoch), `f` or `e`. Folders missing from the path are
/// created.
///
/// # Errors
///
/// `fit` stops with [`Error::InvalidArgument`] before the first epoch for a
/// path that is not UTF-8, whose placeholders cannot be read, or whose name
/// ends in `.keras`, `.h5` or `.hdf5` (Keras' formats, which a kerust file
/// is not); with [`Error::InvalidArgument`] naming the placeholder when the
/// path needs a key that the epoch's logs do not hold, and
/// [`Error::MissingMetric`] when `save_best_only` does (both listing the
/// keys logged); and with the error of a failed save.
///
/// # Limitations
///
/// Saves happen at the end of epochs only: Keras' `save_freq` in batches
/// and `initial_value_threshold` are not offered.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::ModelCheckpoint;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-1.0_f32], [1.0], [-2.0], [2.0]];
/// let y = array![0.0_f32, 1.0, 0.0, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
///
/// let folder = std::env::temp_dir().join(format!("kerust-mc-{}", std::process::id()));
/// let checkpoint = ModelCheckpoint::new(folder.join("ckpt-{epoch:02d}.safetensors"))
///     .monitor("loss")
///     .save_best_only(true);
/// let options = FitOptions::new().epochs(3).verbose(Verbosity::Silent).callback(checkpoint);
/// model.fit((&x, &y), options)?;
///
/// // The first epoch always improves on nothing.
/// let (_, epoch) = kerust::saving::load_checkpoint(folder.join("ckpt-01.safetensors"))?;
/// assert_eq!(epoch, 1);
/// # std::fs::remove_dir_all(&folder).ok();
/// # Ok(())
/// # }
/// ```
///
/// [`saving::save_checkpoint`]: crate::saving::save_checkpoint
/// [`saving::load_checkpoint`]: crate::saving::load_checkpoint
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    filepath: PathBuf,
    monitor: Monitor,
    save_best_only: bool,
    save_weights_only: bool,
    best: Option<f64>,
}

impl ModelCheckpoint {
    /// Saves to `filepath`, which may hold placeholders such as
    /// `{epoch:02d}`; by default every epoch, the whole checkpoint.
    pub fn new(filepath: impl Into<PathBuf>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: Monitor::new("val_loss"),
            save_best_only: false,
            save_weights_only: false,
            best: None,
        }
    }

    /// The key of the logs that decides which epoch is best (default
    /// `"val_loss"`).
    pub fn monitor(mut self, key: impl Into<String>) -> Self {
        self.monitor = self.monitor.with_key(key);
        self
    }

    /// Whether the best value is the lowest ([`Mode::Min`]) or the highest
    /// ([`Mode::Max`]); [`Mode::Auto`] (the default) maximises accuracy-like
    /// keys and minimises the others (see [`Mode::maximizes`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor = self.monitor.with_mode(mode);
        self
    }

    /// Whether to save only when the monitored value improves on the best so
    /// far (default false: every epoch). With a fixed file path, the file
    /// then always holds the best model.
    pub fn save_best_only(mut self, save_best_only: bool) -> Self {
        self.save_best_only = save_best_only;
        self
    }

    /// Whether to save the weights alone (default false: the whole
    /// checkpoint).
    pub fn save_weights_only(mut self, save_weights_only: bool) -> Self {
        self.save_weights_only = save_weights_only;
        self
    }

    /// The best monitored value seen with `save_best_only`, if any.
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    fn template(&self) -> Result<&str> {
        self.filepath.to_str().ok_or_else(|| {
            Error::invalid(
                "filepath",
                self.filepath.display(),
                "expected a UTF-8 path: its placeholders are read as text",
            )
        })
    }

    /// Whether `logs` improve on the best value, which they then become.
    fn improves(&mut self, logs: &Logs) -> Result<bool> {
        let current = self.monitor.read(logs, "ModelCheckpoint")?;
        let best = self.best.unwrap_or(self.monitor.initial_best());
        let better = self.monitor.improved(current, best);
        if better {
            self.best = Some(current);
        }
        Ok(better)
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _model: &mut Sequential, _logs: &Logs) -> Result<()> {
        parse(self.template()?)?;
        crate::saving::check_file_name(&self.filepath)
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        let completed = epoch + 1;
        let path = PathBuf::from(fill(&parse(self.template()?)?, completed, logs)?);
        if self.save_best_only {
            let previous = self
                .best
                .map_or_else(|| "nothing".to_string(), |b| b.to_string());
            if !self.improves(logs)? {
                log::debug!(
                    "epoch {completed}: {} did not improve on {previous}",
                    self.monitor.key()
                );
                return Ok(());
            }
            let current = self.best.unwrap_or(f64::NAN);
            log::info!(
                "epoch {completed}: {} improved from {previous} to {current}",
                self.monitor.key()
            );
        }
        create_folder(&path)?;
        if self.save_weights_only {
            model.save_weights(&path)?;
        } else {
            save_checkpoint(model, &path, completed)?;
        }
        log::info!("epoch {completed}: wrote checkpoint {}", path.display());
        Ok(())
    }
}

fn create_folder(path: &Path) -> Result<()> {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => {
            std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))
        }
        _ => Ok(()),
    }
}

/// The error for a placeholder of the file path that names a key the logs
/// do not hold.
fn missing(key: &str, logs: &Logs) -> Error {
    let available = logs.keys().collect::<Vec<_>>().join(", ");
    Error::invalid(
        "filepath",
        format!("{{{key}}}"),
        format!(
            "the file path's placeholder names `{key}`, which is not logged; \
             available: epoch, {available}"
        ),
    )
}

/// A piece of a file path template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field { key: String, spec: Spec },
}

/// A format spec, `[0][width][.precision][d|f|e]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Spec {
    zero: bool,
    width: usize,
    precision: Option<usize>,
    kind: Option<char>,
}

/// Splits a template into text and `{key:spec}` fields.
fn parse(template: &str) -> Result<Vec<Piece>> {
    let bad = |reason: String| Error::invalid("filepath", format!("\"{template}\""), reason);
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '}' => {
                return Err(bad(
                    "a `}` closes no placeholder; write `}}` for a brace".into()
                ))
            }
            '{' => {
                let mut field = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    field.push(c);
                }
                if !closed {
                    return Err(bad(format!("the placeholder `{{{field}` is not closed")));
                }
                let (key, spec) = field.split_once(':').unwrap_or((&field, ""));
                if key.is_empty() {
                    return Err(bad("a placeholder needs a key, such as `{epoch}`".into()));
                }
                let spec = parse_spec(spec).map_err(bad)?;
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Field {
                    key: key.to_string(),
                    spec,
                });
            }
            other => text.push(other),
        }
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

fn parse_spec(spec: &str) -> std::result::Result<Spec, String> {
    let unsupported = || {
        format!(
            "format spec `{spec}` is not supported: expected [0][width][.precision] then d, f \
             or e, such as `02d` or `.4f`"
        )
    };
    let mut rest = spec;
    let mut parsed = Spec::default();
    if let Some(kind) = rest.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        if !matches!(kind, 'd' | 'f' | 'e') {
            return Err(unsupported());
        }
        parsed.kind = Some(kind);
        rest = &rest[..rest.len() - 1];
    }
    let (width, precision) = match rest.split_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (rest, None),
    };
    let number = |s: &str| s.parse::<usize>().map_err(|_| unsupported());
    if let Some(p) = precision {
        if parsed.kind == Some('d') {
            return Err(unsupported());
        }
        parsed.precision = Some(number(p)?);
    }
    if !width.is_empty() {
        parsed.zero = width.starts_with('0');
        parsed.width = number(width)?;
    }
    Ok(parsed)
}

/// The path for the epoch `completed` (counted from one) and its logs.
fn fill(pieces: &[Piece], completed: usize, logs: &Logs) -> Result<String> {
    let mut path = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => path.push_str(text),
            Piece::Field { key, spec } => {
                let text = if key == "epoch" {
                    format_epoch(completed, spec)
                } else {
                    let value = logs.get(key).ok_or_else(|| missing(key, logs))?;
                    format_value(key, value, spec)?
                };
                path.push_str(&text);
            }
        }
    }
    Ok(path)
}

fn format_epoch(epoch: usize, spec: &Spec) -> String {
    match spec.kind {
        Some('f') | Some('e') => format_float(epoch as f64, spec),
        _ => pad(epoch.to_string(), spec),
    }
}

fn format_value(key: &str, value: f64, spec: &Spec) -> Result<String> {
    match spec.kind {
        Some('d') => Err(Error::invalid(
            "filepath",
            format!("{{{key}:...d}}"),
            format!("`{key}` is a real number ({value}); format it with `f` or `e`"),
        )),
        Some(_) => Ok(format_float(value, spec)),
        None => Ok(pad(value.to_string(), spec)),
    }
}

fn format_float(value: f64, spec: &Spec) -> String {
    let precision = spec.precision.unwrap_or(6);
    let text = if spec.kind == Some('e') {
        // Python writes the exponent with a sign and at least two digits.
        let text = format!("{value:.precision$e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) => {
                let exponent: i32 = exponent.parse().unwrap_or(0);
                let sign = if exponent < 0 { '-' } else { '+' };
                format!("{mantissa}e{sign}{:02}", exponent.abs())
            }
            None => text,
        }
    } else {
        format!("{value:.precision$}")
    };
    pad(text, spec)
}

/// Pads to the spec's width: with zeros after the sign, or spaces before.
fn pad(text: String, spec: &Spec) -> String {
    let length = text.chars().count();
    if length >= spec.width {
        return text;
    }
    let fill = spec.width - length;
    if spec.zero
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ".-+e".contains(c))
    {
        let (sign, digits) = match text.strip_prefix('-') {
            Some(digits) => ("-", digits),
            None => ("", text.as_str()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Logs {
        let mut logs = Logs::new();
        logs.insert("loss", 0.5);
        logs.insert("val_loss", 0.083_912_3);
        logs.insert("val_accuracy", 0.9731);
        logs.insert("delta", -0.00125);
        logs
    }

    fn filled(template: &str, epoch: usize) -> Result<String> {
        fill(&parse(template)?, epoch, &logs())
    }

    #[test]
    fn placeholders_are_filled_as_python_formats_them() {
        let cases = [
            ("ckpt-{epoch}.st", 7, "ckpt-7.st"),
            ("ckpt-{epoch:02d}.st", 7, "ckpt-07.st"),
            ("ckpt-{epoch:03d}.st", 12, "ckpt-012.st"),
            ("ckpt-{epoch:3d}.st", 12, "ckpt- 12.st"),
            ("{epoch:02d}-{val_loss:.4f}", 1, "01-0.0839"),
            ("{val_accuracy:.2f}", 1, "0.97"),
            ("{loss}", 1, "0.5"),
            ("{delta:.2e}", 1, "-1.25e-03"),
            ("{val_loss:.3e}", 1, "8.391e-02"),
            ("{delta:08.4f}", 1, "-00.0013"),
            ("{{literal}}-{epoch}", 3, "{literal}-3"),
        ];
        for (template, epoch, expected) in cases {
            assert_eq!(filled(template, epoch).unwrap(), expected, "{template}");
        }
    }

    #[test]
    fn a_key_the_logs_lack_lists_those_they_hold() {
        let err = filled("{val_acc:.2f}", 1).unwrap_err();
        match err {
            Error::InvalidArgument {
                name,
                value,
                reason,
            } => {
                assert_eq!((name.as_str(), value.as_str()), ("filepath", "{val_acc}"));
                assert!(
                    reason.ends_with("available: epoch, loss, val_loss, val_accuracy, delta"),
                    "{reason}"
                );
            }
            other => panic!("expected InvalidArgument, got {other}"),
        }
    }

    #[test]
    fn malformed_templates_are_refused_with_the_reason() {
        for (template, needle) in [
            ("ckpt-{epoch", "not closed"),
            ("ckpt-}", "closes no placeholder"),
            ("ckpt-{}", "needs a key"),
            ("ckpt-{epoch:x}", "not supported"),
            ("ckpt-{epoch:.2d}", "not supported"),
            ("ckpt-{loss:4.2g}", "not supported"),
        ] {
            let err = parse(template).unwrap_err().to_string();
            assert!(err.contains(needle), "{template}: {err}");
        }
        let err = filled("{loss:02d}", 1).unwrap_err().to_string();
        assert!(err.contains("with `f` or `e`"), "{err}");
    }

    #[test]
    fn auto_mode_maximises_accuracies_and_minimises_the_rest_and_nan_never_improves() {
        let mut by_loss = ModelCheckpoint::new("x")
            .monitor("val_loss")
            .save_best_only(true);
        let mut by_accuracy = ModelCheckpoint::new("x").monitor("val_accuracy");
        let mut logs = Logs::new();
        for (loss, accuracy, loss_better, accuracy_better) in [
            (0.5, 0.8, true, true),
            (0.4, 0.7, true, false),
            (0.6, 0.9, false, true),
            (f64::NAN, f64::NAN, false, false),
        ] {
            logs.insert("val_loss", loss);
            logs.insert("val_accuracy", accuracy);
            assert_eq!(by_loss.improves(&logs).unwrap(), loss_better);
            assert_eq!(by_accuracy.improves(&logs).unwrap(), accuracy_better);
        }
        assert_eq!(by_loss.best(), Some(0.4));
        assert_eq!(by_accuracy.best(), Some(0.9));

        let mut by_max_loss = ModelCheckpoint::new("x")
            .monitor("val_loss")
            .mode(Mode::Max);
        logs.insert("val_loss", 0.5);
        assert!(by_max_loss.improves(&logs).unwrap());
        logs.insert("val_loss", 0.7);
        assert!(by_max_loss.improves(&logs).unwrap());
        assert_eq!(by_max_loss.best(), Some(0.7));
    }
}
