//! Gives each sample another shape of the same size.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::flatten::copy_logical;
use super::{check_input, resize, Layer};
use crate::error::{format_batch_shape, format_shape};
use crate::{Error, Result};

/// Keras' `Reshape`: gives each sample the shape `target_shape`, keeping
/// its values in row-major order and the batch axis as it is.
///
/// One entry of `target_shape` may be -1: it is then the size that makes
/// the sample's values fit, as in Keras and numpy. `Reshape::new([-1])`
/// flattens, as [`Flatten`](super::Flatten) does.
///
/// # Shapes
///
/// Input `(batch, d1, d2, ...)`, output `(batch, *target_shape)`, with the
/// same number of values per sample: `target_shape` `[3, 4]` takes samples
/// of 12 values, `(12,)`, `(2, 6)` or `(3, 2, 2)` alike.
///
/// # Errors
///
/// [`build`](Layer::build) refuses inputs whose samples do not hold as many
/// values as `target_shape` (or, with a -1, a multiple of the other
/// entries' product), with an [`Error::ShapeMismatch`] naming both shapes,
/// and a `target_shape` with an entry below -1 or two -1s, with an
/// [`Error::InvalidArgument`].
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([12])
///     .add(Reshape::new([3, 4]))
///     .add(Reshape::new([-1, 2, 2]));
/// model.build()?;
/// assert_eq!(model.output_shape()?, vec![3, 2, 2]);
/// assert_eq!(model.layers()[0].name(), "reshape");
///
/// let x = ndarray::Array2::from_shape_fn((2, 12), |(i, j)| (i * 12 + j) as f32);
/// let y = model.predict(&x)?;
/// assert_eq!(y.shape(), &[2, 3, 2, 2]);
/// assert_eq!(y[[1, 2, 1, 0]], 22.0);
///
/// let mut wrong = Sequential::new().input_shape([12]).add(Reshape::new([5, 3]));
/// let message = wrong.build().unwrap_err().to_string();
/// assert!(message.contains("target_shape (5, 3)") && message.contains("(None, 12)"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Reshape {
    name: String,
    target_shape: Vec<i64>,
    /// The sample shapes built for, batch axis left out: input and output.
    shapes: Option<(Vec<usize>, Vec<usize>)>,
}

impl Reshape {
    /// A layer giving each sample the shape `target_shape` (batch axis left
    /// out), with at most one -1 for a size to infer.
    pub fn new(target_shape: impl Into<Vec<i64>>) -> Self {
        Reshape {
            name: String::new(),
            target_shape: target_shape.into(),
            shapes: None,
        }
    }

    /// The layer's name (default: given by the model, `reshape`,
    /// `reshape_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The shape asked for, as given, -1 included.
    pub fn target_shape(&self) -> &[i64] {
        &self.target_shape
    }

    /// Builds a layer from its [`config`](Layer::config), as Keras writes
    /// it: `{"name": ..., "target_shape": [3, 4]}`, the name optional.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not a
    /// JSON object, has no `target_shape`, one that is not a list of
    /// integers, with an entry below -1 or two -1s, or holds another field.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Layer, Reshape};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = Reshape::from_config(&json!({ "name": "r", "target_shape": [-1, 2] }))?;
    /// assert_eq!(layer.target_shape(), [-1, 2]);
    /// let twice = Reshape::from_config(&json!({ "target_shape": [-1, -1] }));
    /// assert!(twice.err().is_some_and(|e| e.to_string().contains("at most one -1")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        let fields = Fields::new("Reshape", config, &["name", "target_shape"])?;
        let mut layer = Reshape::new(fields.required::<Vec<i64>>("target_shape")?);
        layer.name = fields.name()?;
        layer.check_target()?;
        Ok(layer)
    }

    /// Refuses entries below -1 and more than one -1, as Keras does.
    fn check_target(&self) -> Result<()> {
        let unknown = self.target_shape.iter().filter(|&&d| d == -1).count();
        if self.target_shape.iter().any(|&d| d < -1) || unknown > 1 {
            return Err(Error::invalid(
                "target_shape",
                format_target(&self.target_shape),
                "expected sizes of at least 0, with at most one -1 for a size to infer",
            ));
        }
        Ok(())
    }

    /// The output shape for samples of `input_shape` (batch axis left out):
    /// `target_shape` with its -1 resolved.
    ///
    /// # Errors
    ///
    /// As [`build`](Layer::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::Reshape;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// assert_eq!(Reshape::new([-1, 2]).compute_output_shape(&[3, 4])?, vec![6, 2]);
    /// assert!(Reshape::new([-1, 5]).compute_output_shape(&[3, 4]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.check_target()?;
        let refused = |expected: String| Error::ShapeMismatch {
            layer: self.name.clone(),
            expected: format!(
                "(None, ...) of {expected}, for target_shape {}",
                format_target(&self.target_shape)
            ),
            got: format_batch_shape(input_shape),
        };
        let size = input_shape
            .iter()
            .try_fold(1_usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| refused("a size that can be addressed".to_string()))?;
        // Every entry is at least -1, and at most one is -1.
        let mut output: Vec<usize> = self
            .target_shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect();
        let unknown = self.target_shape.iter().position(|&d| d == -1);
        let known = self
            .target_shape
            .iter()
            .zip(&output)
            .filter(|(&d, _)| d >= 0)
            .try_fold(1_usize, |a, (_, &d)| a.checked_mul(d));
        let Some(known) = known else {
            return Err(Error::invalid(
                "target_shape",
                format_target(&self.target_shape),
                "it holds more values than can be addressed",
            ));
        };
        match unknown {
            None if known == size => {}
            None => return Err(refused(format!("{known} values per sample"))),
            Some(_) if known == 0 => {
                return Err(Error::invalid(
                    "target_shape",
                    format_target(&self.target_shape),
                    format!(
                        "no size for its -1 fits samples of shape {}: the other sizes \
                         multiply to 0",
                        format_batch_shape(input_shape)
                    ),
                ))
            }
            Some(index) if size % known == 0 => output[index] = size / known,
            Some(_) => return Err(refused(format!("a multiple of {known} values per sample"))),
        }
        Ok(output)
    }

    fn check(&self, input: &ArrayViewD<'_, f32>) -> Result<&[usize]> {
        let shapes = self.shapes.as_ref();
        check_input(&self.name, shapes.map(|(i, _)| i.as_slice()), input)?;
        Ok(shapes.map(|(_, o)| o.as_slice()).unwrap_or_default())
    }

    /// The batch shape of the output for `input`.
    fn output_batch_shape(&self, input: &ArrayViewD<'_, f32>) -> Result<Vec<usize>> {
        let sample = self.check(input)?;
        let mut shape = Vec::with_capacity(sample.len() + 1);
        shape.push(input.shape()[0]);
        shape.extend_from_slice(sample);
        Ok(shape)
    }
}

/// A target shape as a tuple, `(-1, 5)`.
fn format_target(shape: &[i64]) -> String {
    let parts: Vec<String> = shape.iter().map(i64::to_string).collect();
    match parts.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", parts.join(", ")),
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &str {
        "Reshape"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        let output = self.compute_output_shape(input_shape)?;
        self.shapes = Some((input_shape.to_vec(), output.clone()));
        Ok(output)
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        let shape = self.output_batch_shape(&input)?;
        resize(output, &shape);
        copy_logical(&input, output);
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let shape = self.output_batch_shape(&input)?;
        if grad_output.shape() != shape.as_slice() {
            return Err(Error::shape(
                &self.name,
                format_shape(&shape),
                grad_output.shape(),
            ));
        }
        if let Some(grad_input) = grad_input {
            resize(grad_input, input.shape());
            copy_logical(&grad_output, grad_input);
        }
        Ok(())
    }

    fn config(&self) -> Value {
        json!({ "name": self.name, "target_shape": self.target_shape })
    }

    fn reshaped(&self, input: &ArrayViewD<'_, f32>) -> Result<Option<IxDyn>> {
        Ok(Some(IxDyn(&self.output_batch_shape(input)?)))
    }
}
