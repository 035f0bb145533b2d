//! Flattens each sample to one axis.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::RngCore;

use super::config::Fields;
use super::{check_input, resize, Layer};
use crate::{Error, Result};

/// Flattens each sample into one axis, keeping the batch axis.
///
/// # Shapes
///
/// Input `(batch, d1, d2, ...)`, output `(batch, d1 * d2 * ...)`.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new().input_shape([28, 28, 1]).add(Flatten::new());
/// model.build()?;
/// assert_eq!(model.output_shape()?, vec![784]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    name: String,
    input_shape: Option<Vec<usize>>,
}

impl Flatten {
    /// A new flatten layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a layer from its [`config`](Layer::config): `{"name": ...}`,
    /// the name being optional.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config is not a JSON object or its
    /// `name` is not a string.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Flatten, Layer};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = Flatten::from_config(&serde_json::json!({ "name": "flatten_2" }))?;
    /// assert_eq!(layer.name(), "flatten_2");
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Flatten {
            name: name_from_config("Flatten", config)?,
            input_shape: None,
        })
    }

    fn check(&self, input: &ArrayViewD<'_, f32>) -> Result<usize> {
        check_input(&self.name, self.input_shape.as_deref(), input)?;
        Ok(input.shape()[0])
    }
}

impl Layer for Flatten {
    fn class_name(&self) -> &str {
        "Flatten"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        self.input_shape = Some(input_shape.to_vec());
        Ok(vec![input_shape.iter().product()])
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        let batch = self.check(&input)?;
        let width = input.len() / batch.max(1);
        resize(output, &[batch, width]);
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
        self.check(&input)?;
        if grad_output.len() != input.len() {
            return Err(Error::shape(
                &self.name,
                format!("{} values", input.len()),
                grad_output.shape(),
            ));
        }
        if let Some(grad_input) = grad_input {
            resize(grad_input, input.shape());
            copy_logical(&grad_output, grad_input);
        }
        Ok(())
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name })
    }

    fn reshaped(&self, input: &ArrayViewD<'_, f32>) -> Result<Option<IxDyn>> {
        let batch = self.check(input)?;
        Ok(Some(IxDyn(&[batch, input.len() / batch.max(1)])))
    }
}

/// Copies `source` into `target` (same number of elements) in logical,
/// row-major order: one `memcpy` when both are contiguous.
pub(super) fn copy_logical(source: &ArrayViewD<'_, f32>, target: &mut ArrayD<f32>) {
    match (source.as_slice(), target.as_slice_mut()) {
        (Some(from), Some(to)) => to.copy_from_slice(from),
        _ => target
            .iter_mut()
            .zip(source.iter())
            .for_each(|(t, &s)| *t = s),
    }
}

/// The `name` of a layer config that holds nothing else: empty when absent.
pub(super) fn name_from_config(class_name: &str, config: &serde_json::Value) -> Result<String> {
    Fields::new(class_name, config, &["name"])?.name()
}
