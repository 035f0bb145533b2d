//! The crate's error type.
//!
//! Every fallible call returns [`Result`]. The variants carry data rather than
//! pre-formatted strings, so a caller can match on them, and their messages
//! say what was expected and what came.

use std::path::PathBuf;

/// Shorthand for `std::result::Result<T, kerust::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in kerust.
///
/// Library code returns one of these for anything a caller can pass in; it
/// panics only on a broken internal invariant.
///
/// `{:?}` writes the same sentence as `{}`, so that an error returned from
/// `main`, which Rust prints with `Debug`, reads as a message; `{:#?}` puts
/// the variant's name before it. Match on the variant for its fields.
///
/// ```
/// let err = kerust::Error::invalid("batch_size", 0, "expected at least 1");
/// assert_eq!(format!("{err:?}"), "invalid `batch_size` = 0: expected at least 1");
/// assert_eq!(format!("{err:#?}"), "InvalidArgument: invalid `batch_size` = 0: expected at least 1");
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array had a shape other than the one a layer, loss or call needs.
    #[error("`{layer}` expected shape {expected}, got {got}")]
    ShapeMismatch {
        /// The layer, loss or function that checked the shape.
        layer: String,
        /// The shape it wanted, e.g. `(batch, 784)`.
        expected: String,
        /// The shape it received.
        got: String,
    },

    /// A class label was negative, not an integer, or not below the number
    /// of classes.
    #[error(
        "label {label} at index {index} of `{data}` is not a class: expected \
         an integer in [0, {classes})"
    )]
    LabelOutOfRange {
        /// The labels it was found in: `y` (the targets given to `fit`,
        /// `evaluate` or a loss, including the part `validation_split`
        /// holds out), `validation_data`, `y_true` or `y_pred`.
        data: String,
        /// Index of the sample in those labels (in `fit`, the pass'
        /// position for a source that cannot tell its samples' indices).
        index: usize,
        /// The label as received.
        label: f64,
        /// Number of classes the model predicts.
        classes: usize,
    },

    /// A target was outside the values its loss reads, such as a binary
    /// cross-entropy target outside [0, 1].
    #[error(
        "target {value} at index {index} of `{data}` is out of range: `{loss}` \
         expected {expected}"
    )]
    TargetOutOfRange {
        /// The targets it was found in, named as for
        /// [`Error::LabelOutOfRange`].
        data: String,
        /// Index of the sample in those targets.
        index: usize,
        /// The target as received.
        value: f64,
        /// The loss that reads the targets.
        loss: String,
        /// What the loss reads, e.g. `a probability in [0, 1]`.
        expected: String,
    },

    /// An input held a NaN or an infinity, which no layer can learn from or
    /// predict with.
    #[error(
        "`{data}` holds {value} at sample {index}, position {}: expected finite \
         numbers",
        format_shape(position)
    )]
    NonFiniteInput {
        /// The inputs it was found in: `x` (including the part
        /// `validation_split` holds out) or `validation_data`.
        data: String,
        /// Index of the sample in those inputs (in `fit`, the pass'
        /// position for a source that cannot tell its samples' indices).
        index: usize,
        /// Where in the sample, one index per axis of a sample.
        position: Vec<usize>,
        /// The value found.
        value: f32,
    },

    /// A call received no samples.
    #[error("`{what}` is empty: expected at least one sample")]
    EmptyData {
        /// What was empty (`x`, `validation_data`, ...).
        what: String,
    },

    /// `fit`, `evaluate` or `train_on_batch` was called before `compile`
    /// (`predict` needs no compile, as in Keras).
    #[error("the model is not compiled: call `compile` before `{call}`")]
    NotCompiled {
        /// The call that needs a compiled model.
        call: String,
    },

    /// A layer or model was used before its weights exist.
    #[error(
        "`{layer}` is not built: give the model an input shape or call it on \
         data first"
    )]
    NotBuilt {
        /// The layer or model name.
        layer: String,
    },

    /// An argument or option has a value that cannot be used.
    #[error("invalid `{name}` = {value}: {reason}")]
    InvalidArgument {
        /// The argument's name, as in the API.
        name: String,
        /// The value received.
        value: String,
        /// Why it is refused, and what is accepted.
        reason: String,
    },

    /// Training produced a loss that is NaN or infinite.
    #[error("non-finite loss {loss} at epoch {epoch}, step {step}")]
    NonFiniteLoss {
        /// Epoch, counted from one as shown to users.
        epoch: usize,
        /// Step within the epoch, counted from one.
        step: usize,
        /// The loss value.
        loss: f64,
    },

    /// Reading or writing a file failed.
    #[error("I/O error on `{}`: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file was read but its contents are not what the format requires.
    #[error("bad file `{}`: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, with the numbers.
        what: String,
    },

    /// A callback asked for a value that the logs do not hold.
    #[error("`{callback}` monitors `{key}`, which is not logged; available: {available}")]
    MissingMetric {
        /// The callback that monitors the key.
        callback: String,
        /// The missing key.
        key: String,
        /// The keys that do exist, comma separated.
        available: String,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            let variant = match self {
                Error::ShapeMismatch { .. } => "ShapeMismatch",
                Error::LabelOutOfRange { .. } => "LabelOutOfRange",
                Error::TargetOutOfRange { .. } => "TargetOutOfRange",
                Error::NonFiniteInput { .. } => "NonFiniteInput",
                Error::EmptyData { .. } => "EmptyData",
                Error::NotCompiled { .. } => "NotCompiled",
                Error::NotBuilt { .. } => "NotBuilt",
                Error::InvalidArgument { .. } => "InvalidArgument",
                Error::NonFiniteLoss { .. } => "NonFiniteLoss",
                Error::Io { .. } => "Io",
                Error::Format { .. } => "Format",
                Error::MissingMetric { .. } => "MissingMetric",
            };
            write!(f, "{variant}: ")?;
        }
        write!(f, "{self}")
    }
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            what: what.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The same error placed in the data the user gave, for a caller that
    /// knows where a sample stands there: the sample index of a
    /// [`Error::LabelOutOfRange`] or [`Error::NonFiniteInput`] is mapped
    /// through `index`, and the data it names becomes `labels` or `inputs`.
    /// Any other error is unchanged.
    pub(crate) fn relocated(
        self,
        inputs: &str,
        labels: &str,
        index: impl FnOnce(usize) -> usize,
    ) -> Self {
        match self {
            Error::LabelOutOfRange {
                index: i,
                label,
                classes,
                ..
            } => Error::LabelOutOfRange {
                data: labels.to_string(),
                index: index(i),
                label,
                classes,
            },
            Error::TargetOutOfRange {
                index: i,
                value,
                loss,
                expected,
                ..
            } => Error::TargetOutOfRange {
                data: labels.to_string(),
                index: index(i),
                value,
                loss,
                expected,
            },
            Error::NonFiniteInput {
                index: i,
                position,
                value,
                ..
            } => Error::NonFiniteInput {
                data: inputs.to_string(),
                index: index(i),
                position,
                value,
            },
            other => other,
        }
    }

    /// An [`Error::NonFiniteInput`] for `data` when `values`, samples of
    /// `sample_shape` one after another in row-major order, hold a NaN or
    /// an infinity: the first one, by its sample and position.
    pub(crate) fn check_finite(data: &str, values: &[f32], sample_shape: &[usize]) -> Result<()> {
        // Whole blocks are tested without branching, which vectorises; the
        // value itself is looked for only in a block that holds one.
        const BLOCK: usize = 1024;
        for (b, block) in values.chunks(BLOCK).enumerate() {
            if block.iter().fold(false, |bad, v| bad | !v.is_finite()) {
                let offset = block.iter().position(|v| !v.is_finite()).unwrap_or(0);
                let flat = b * BLOCK + offset;
                let sample_len = sample_shape.iter().product::<usize>().max(1);
                let mut rest = flat % sample_len;
                let mut position = vec![0; sample_shape.len()];
                for (p, &side) in position.iter_mut().zip(sample_shape).rev() {
                    *p = rest % side.max(1);
                    rest /= side.max(1);
                }
                return Err(Error::NonFiniteInput {
                    data: data.to_string(),
                    index: flat / sample_len,
                    position,
                    value: block[offset],
                });
            }
        }
        Ok(())
    }

    /// An [`Error::ShapeMismatch`], formatting both shapes as Keras does,
    /// e.g. `(None, 784)` where the batch size is free.
    pub fn shape(layer: impl Into<String>, expected: impl Into<String>, got: &[usize]) -> Self {
        Error::ShapeMismatch {
            layer: layer.into(),
            expected: expected.into(),
            got: format_shape(got),
        }
    }
}

/// Formats a shape as a tuple, `(32, 28, 28, 1)`.
pub fn format_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Formats a per-sample shape with a free batch axis, `(None, 28, 28, 1)`.
pub fn format_batch_shape(shape: &[usize]) -> String {
    let mut parts = vec!["None".to_string()];
    parts.extend(shape.iter().map(|d| d.to_string()));
    format!("({})", parts.join(", "))
}
