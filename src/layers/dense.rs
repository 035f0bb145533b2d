//! The fully connected layer.

use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Dimension, Ix2, IxDyn,
};
use rand::RngCore;
use serde_json::json;

use super::config::Fields;
use super::{products, resize, Layer};

/// The fields of a Dense config.
const FIELDS: &[&str] = &[
    "name",
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
];
use crate::activations::Activation;
use crate::error::format_batch_shape;
use crate::initializers::Initializer;
use crate::{Error, Result};

/// A densely connected layer: `output = activation(input · kernel + bias)`.
///
/// The kernel has shape `(input_dim, units)`, as in Keras, and is filled by
/// `glorot_uniform`; the bias starts at zero.
///
/// # Shapes
///
/// Input `(batch, ..., input_dim)`, output `(batch, ..., units)`: the layer
/// acts on the last axis.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([784])
///     .add(Dense::new(128).activation(Activation::Relu));
/// model.build()?;
/// assert_eq!(model.count_params(), 784 * 128 + 128);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dense {
    name: String,
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel: Array2<f32>,
    bias: Array1<f32>,
    kernel_grad: Array2<f32>,
    bias_grad: Array1<f32>,
    /// Gradient with respect to the pre-activation, kept between steps.
    grad_pre: Array2<f32>,
    built: bool,
}

impl Dense {
    /// A layer of `units` outputs, linear, with a bias.
    pub fn new(units: usize) -> Self {
        Dense {
            name: String::new(),
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel: Array2::zeros((0, 0)),
            bias: Array1::zeros(0),
            kernel_grad: Array2::zeros((0, 0)),
            bias_grad: Array1::zeros(0),
            grad_pre: Array2::zeros((0, 0)),
            built: false,
        }
    }

    /// The activation applied to the output (default
    /// [`Activation::Linear`]).
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Whether the layer adds a bias (default true).
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// How the kernel is filled (default
    /// [`Initializer::GlorotUniform`]).
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.kernel_initializer = initializer;
        self
    }

    /// How the bias is filled (default [`Initializer::Zeros`]).
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// The layer's name (default: given by the model, `dense`, `dense_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The number of outputs.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The kernel, `(input_dim, units)`; empty before the layer is built.
    pub fn kernel(&self) -> &Array2<f32> {
        &self.kernel
    }

    /// The bias, `(units,)`; empty without a bias or before build.
    pub fn bias(&self) -> &Array1<f32> {
        &self.bias
    }

    /// The input viewed as `(rows, input_dim)`.
    fn rows<'a>(&self, input: &'a ArrayViewD<'_, f32>) -> Result<ArrayView2<'a, f32>> {
        if !self.built {
            return Err(Error::NotBuilt {
                layer: self.name.clone(),
            });
        }
        let input_dim = self.kernel.nrows();
        if input.ndim() < 2 || input.shape()[input.ndim() - 1] != input_dim {
            return Err(self.shape_error(input));
        }
        let rows = input.len() / input_dim;
        // Buffers made by the model are contiguous; a strided view is not
        // something the model hands out, and is refused rather than copied.
        input
            .view()
            .into_shape_with_order((rows, input_dim))
            .map_err(|_| self.shape_error(input))
    }

    fn shape_error(&self, input: &ArrayViewD<'_, f32>) -> Error {
        Error::shape(
            &self.name,
            format_batch_shape(&[self.kernel.nrows()]),
            input.shape(),
        )
    }

    /// Output shape for an input shape: the last axis becomes `units`.
    /// (`IxDyn` keeps up to four axes inline: no allocation per batch.)
    fn output_shape(&self, input_shape: &[usize]) -> IxDyn {
        let mut shape = IxDyn(input_shape);
        let last = shape.ndim().saturating_sub(1);
        if shape.ndim() > 0 {
            shape[last] = self.units;
        }
        shape
    }

    /// `dW = X^T dZ`, `db = sum of dZ over rows`, `dX = dZ W^T`, with `dZ`
    /// in `self.grad_pre`.
    fn backward_pre_activation(
        &mut self,
        x: ArrayView2<'_, f32>,
        input_shape: &[usize],
        grad_input: Option<&mut ArrayD<f32>>,
    ) {
        products::transposed_product(x, self.grad_pre.view(), self.kernel_grad.view_mut());
        if self.use_bias {
            self.bias_grad.fill(0.0);
            for row in self.grad_pre.rows() {
                self.bias_grad += &row;
            }
        }
        if let Some(grad_input) = grad_input {
            resize(grad_input, input_shape);
            let mut dx = as_rows_mut(grad_input, self.kernel.nrows());
            general_mat_mul(1.0, &self.grad_pre, &self.kernel.t(), 0.0, &mut dx);
        }
    }
}

/// `array` viewed as `(rows, width)`; it is contiguous and sized by `resize`.
fn as_rows_mut(array: &mut ArrayD<f32>, width: usize) -> ArrayViewMut2<'_, f32> {
    let rows = array.len() / width.max(1);
    array
        .view_mut()
        .into_shape_with_order((rows, width))
        .expect("buffers made by `resize` are contiguous")
}

impl Layer for Dense {
    fn class_name(&self) -> &str {
        "Dense"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        if self.units == 0 {
            return Err(Error::invalid(
                "units",
                0,
                "a Dense layer needs at least one unit",
            ));
        }
        let input_dim = match input_shape.last() {
            Some(&d) if d > 0 => d,
            _ => {
                return Err(Error::shape(
                    &self.name,
                    "(None, ..., input_dim)",
                    input_shape,
                ))
            }
        };
        self.kernel = self
            .kernel_initializer
            .initialize_2d(input_dim, self.units, rng);
        self.kernel_grad = Array2::zeros((input_dim, self.units));
        let bias_len = if self.use_bias { self.units } else { 0 };
        self.bias = self
            .bias_initializer
            .initialize(&[bias_len], rng)
            .into_dimensionality()
            .expect("one axis was asked for");
        self.bias_grad = Array1::zeros(bias_len);
        self.built = true;
        Ok(self.output_shape(input_shape).slice().to_vec())
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        let x = self.rows(&input)?;
        resize(output, self.output_shape(input.shape()).slice());
        let mut y = as_rows_mut(output, self.units);
        products::product(x, self.kernel.view(), y.view_mut());
        // Bias and activation in one pass over each row while it is in cache.
        for mut row in y.rows_mut() {
            if self.use_bias {
                row += &self.bias;
            }
            if self.activation == Activation::Relu {
                row.mapv_inplace(|v| if v < 0.0 { 0.0 } else { v });
            }
        }
        if !matches!(self.activation, Activation::Linear | Activation::Relu) {
            self.activation.apply(output.view_mut());
        }
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let x = self.rows(&input)?;
        let rows = x.nrows();
        let expected = self.output_shape(input.shape());
        let expected = expected.slice();
        if grad_output.shape() != expected || output.shape() != expected {
            return Err(Error::shape(
                &self.name,
                crate::error::format_shape(expected),
                grad_output.shape(),
            ));
        }
        if self.grad_pre.dim() != (rows, self.units) {
            self.grad_pre = Array2::zeros((rows, self.units));
        }
        let grad_2d = grad_output
            .to_shape((rows, self.units))
            .expect("checked shape");
        self.grad_pre.assign(&grad_2d);
        let out_2d = output.to_shape((rows, self.units)).expect("checked shape");
        self.activation.backward(
            out_2d.view().into_dyn(),
            self.grad_pre.view_mut().into_dyn(),
        );
        self.backward_pre_activation(x, input.shape(), grad_input);
        Ok(())
    }

    fn weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
        if !self.built {
            return Vec::new();
        }
        let mut weights = vec![("kernel".to_string(), self.kernel.view().into_dyn())];
        if self.use_bias {
            weights.push(("bias".to_string(), self.bias.view().into_dyn()));
        }
        weights
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        let expected = if self.use_bias { 2 } else { 1 };
        if !self.built || weights.len() != expected {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!(
                    "{expected} weights (kernel{})",
                    if self.use_bias { ", bias" } else { "" }
                ),
                got: format!("{} arrays", weights.len()),
            });
        }
        let kernel = weights[0]
            .view()
            .into_dimensionality::<Ix2>()
            .ok()
            .filter(|k| k.dim() == self.kernel.dim());
        let Some(kernel) = kernel else {
            return Err(Error::shape(
                &self.name,
                format!("kernel {:?}", self.kernel.shape()),
                weights[0].shape(),
            ));
        };
        if self.use_bias && weights[1].shape() != self.bias.shape() {
            return Err(Error::shape(
                &self.name,
                format!("bias {:?}", self.bias.shape()),
                weights[1].shape(),
            ));
        }
        self.kernel.assign(&kernel);
        if self.use_bias {
            self.bias.assign(
                &weights[1]
                    .view()
                    .into_shape_with_order(self.units)
                    .expect("checked shape"),
            );
        }
        Ok(())
    }

    fn visit_parameters(&mut self, visit: &mut dyn FnMut(&mut [f32], &[f32])) {
        if !self.built {
            return;
        }
        visit(
            self.kernel.as_slice_mut().expect("standard layout"),
            self.kernel_grad.as_slice().expect("standard layout"),
        );
        if self.use_bias {
            visit(
                self.bias.as_slice_mut().expect("standard layout"),
                self.bias_grad.as_slice().expect("standard layout"),
            );
        }
    }

    fn param_count(&self) -> usize {
        self.kernel.len() + self.bias.len()
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        })
    }

    fn ends_in_softmax(&self) -> bool {
        self.activation == Activation::Softmax
    }

    fn backward_from_logits(
        &mut self,
        input: ArrayViewD<'_, f32>,
        grad_logits: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let x = self.rows(&input)?;
        let rows = x.nrows();
        let grad_2d = grad_logits.to_shape((rows, self.units)).map_err(|_| {
            Error::shape(
                &self.name,
                format!("({rows}, {})", self.units),
                grad_logits.shape(),
            )
        })?;
        if self.grad_pre.dim() != (rows, self.units) {
            self.grad_pre = Array2::zeros((rows, self.units));
        }
        self.grad_pre.assign(&grad_2d);
        self.backward_pre_activation(x, input.shape(), grad_input);
        Ok(())
    }
}

impl Dense {
    /// Builds a layer from its [`config`](Layer::config): `units` is
    /// required; `name`, `activation`, `use_bias`, `kernel_initializer` and
    /// `bias_initializer` are optional, with the defaults of
    /// [`new`](Dense::new).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not an
    /// object, `units` is missing, a field has the wrong type, or a field is
    /// not one of these (Keras' `kernel_regularizer`, say: refused, not
    /// ignored).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        let fields = Fields::new("Dense", config, FIELDS)?;
        let mut layer = Dense::new(fields.required("units")?);
        layer.name = fields.name()?;
        if let Some(activation) = fields.optional("activation")? {
            layer.activation = activation;
        }
        if let Some(use_bias) = fields.optional("use_bias")? {
            layer.use_bias = use_bias;
        }
        if let Some(initializer) = fields.optional("kernel_initializer")? {
            layer.kernel_initializer = initializer;
        }
        if let Some(initializer) = fields.optional("bias_initializer")? {
            layer.bias_initializer = initializer;
        }
        Ok(layer)
    }
}
