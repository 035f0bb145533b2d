//! The 2-D convolution layer.

use std::sync::{Mutex, PoisonError, TryLockError};

use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array1, Array2, Array4, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Dimension, Ix4,
};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::window::{check_pair, Geometry, Padding};
use super::{check_input, resize, Layer};
use crate::activations::Activation;
use crate::initializers::Initializer;
use crate::{Error, Result};

/// The fields of a `Conv2D` config, and the Keras ones accepted at their
/// default.
const FIELDS: &[&str] = &[
    "name",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "data_format",
    "dilation_rate",
    "groups",
];

/// Keras' `Conv2D`: slides `filters` kernels of `kernel_size` over an image,
/// `output = activation(conv(input, kernel) + bias)`.
///
/// The kernel has shape `(kernel_height, kernel_width, in_channels,
/// filters)`, as Keras stores it, and is filled by `glorot_uniform` with
/// Keras' fans for a convolution, `fan_in = kernel_height * kernel_width *
/// in_channels` and `fan_out = kernel_height * kernel_width * filters`; the
/// bias, `(filters,)`, starts at zero.
///
/// The layer computes the convolution as one matrix product: each output
/// position's window of the input is copied into a row of a patch matrix
/// (`im2col`), which multiplies the kernel seen as a
/// `(kernel_height * kernel_width * in_channels, filters)` matrix. The
/// backward pass multiplies the same patches by the output gradient for the
/// kernel gradient and, for the input gradient, adds the rows of the output
/// gradient times the transposed kernel back onto the windows they came
/// from (`col2im`). The patch matrix and the other buffers stay in the layer
/// from one batch to the next.
///
/// # Shapes
///
/// Input `(batch, height, width, channels)` (Keras' `channels_last`),
/// output `(batch, out_height, out_width, filters)`, where each output side
/// is as [`Padding`] says.
///
/// # Limitations
///
/// Images are channels-last only, and there is no dilation (`dilation_rate`)
/// and no grouped convolution (`groups`): the builder has no such methods,
/// and [`from_config`](Conv2D::from_config) refuses any value of
/// `data_format`, `dilation_rate` or `groups` other than Keras' default.
/// There are no kernel or bias regularizers or constraints. A kernel larger
/// than the input is refused, also with `same` padding, which Keras accepts.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([28, 28, 1])
///     .add(Conv2D::new(8, (3, 3)).activation(Activation::Relu))
///     .add(MaxPooling2D::new((2, 2)))
///     .add(Flatten::new())
///     .add(Dense::new(10).activation(Activation::Softmax));
/// model.build()?;
/// assert_eq!(model.layers()[0].name(), "conv2d");
/// assert_eq!(model.layers()[0].param_count(), 3 * 3 * 1 * 8 + 8);
/// assert_eq!(model.output_shape()?, vec![10]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Conv2D {
    name: String,
    filters: usize,
    kernel_size: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel: Array4<f32>,
    bias: Array1<f32>,
    kernel_grad: Array4<f32>,
    bias_grad: Array1<f32>,
    /// Where the windows fall, known once built.
    geometry: Option<Geometry>,
    /// The patch matrix, `(batch * out_height * out_width, kernel_height *
    /// kernel_width * in_channels)`; in `backward` it holds the patches'
    /// gradient once the kernel gradient is computed.
    patches: Scratch,
    /// Gradient with respect to the pre-activation, `(batch * out_height *
    /// out_width, filters)`.
    grad_pre: Array2<f32>,
}

impl Conv2D {
    /// A layer of `filters` kernels of `kernel_size`, `(height, width)`:
    /// stride 1, `valid` padding, linear, with a bias. The sizes are checked
    /// when the layer is built.
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Self {
        Conv2D {
            name: String::new(),
            filters,
            kernel_size,
            strides: (1, 1),
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel: Array4::zeros((0, 0, 0, 0)),
            bias: Array1::zeros(0),
            kernel_grad: Array4::zeros((0, 0, 0, 0)),
            bias_grad: Array1::zeros(0),
            geometry: None,
            patches: Scratch::default(),
            grad_pre: Array2::zeros((0, 0)),
        }
    }

    /// How far the kernel moves, `(rows, columns)` (default `(1, 1)`).
    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    /// How the borders are treated (default [`Padding::Valid`]).
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// The activation applied to the output (default
    /// [`Activation::Linear`]). A softmax acts over the filters of each
    /// position.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Whether the layer adds a bias (default true).
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// How the kernel is filled (default [`Initializer::GlorotUniform`]).
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.kernel_initializer = initializer;
        self
    }

    /// How the bias is filled (default [`Initializer::Zeros`]).
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// The layer's name (default: given by the model, `conv2d`,
    /// `conv2d_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The number of filters, the output's channels.
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// The kernel, `(kernel_height, kernel_width, in_channels, filters)`;
    /// empty before the layer is built.
    pub fn kernel(&self) -> &Array4<f32> {
        &self.kernel
    }

    /// The bias, `(filters,)`; empty without a bias or before build.
    pub fn bias(&self) -> &Array1<f32> {
        &self.bias
    }

    /// The output shape, `(out_height, out_width, filters)`, for samples of
    /// `input_shape`, `(height, width, channels)`, batch axis left out.
    ///
    /// # Errors
    ///
    /// As [`build`](Layer::build): [`Error::InvalidArgument`] for zero
    /// filters or a kernel or stride with a zero side, and
    /// [`Error::ShapeMismatch`] for an input that is not an image or is
    /// smaller than the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Conv2D, Padding};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = Conv2D::new(4, (3, 3)).strides((2, 2)).padding(Padding::Same);
    /// assert_eq!(layer.compute_output_shape(&[5, 4, 2])?, vec![3, 2, 4]);
    /// let flat = Conv2D::new(4, (3, 3)).compute_output_shape(&[784]);
    /// let message = flat.err().map(|e| e.to_string());
    /// assert!(message.is_some_and(|m| m.contains("(None, height, width, channels)")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let geometry = self.geometry_of(input_shape)?;
        Ok(vec![geometry.out_height, geometry.out_width, self.filters])
    }

    /// Builds a layer from its [`config`](Layer::config), the fields Keras
    /// names: `filters` and `kernel_size` (`[rows, columns]` or one number)
    /// are required; `name`, `strides`, `padding` (`"valid"`, `"same"`),
    /// `activation`, `use_bias`, `kernel_initializer` and `bias_initializer`
    /// are optional, with the defaults of [`new`](Conv2D::new). Keras'
    /// `data_format`, `dilation_rate` and `groups` are accepted at their
    /// defaults (`"channels_last"`, 1, 1) only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not
    /// an object, a required field is missing, a field has the wrong type
    /// or a value kerust does not support, or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Conv2D, Layer};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let config = json!({ "name": "c", "filters": 8, "kernel_size": 3, "padding": "same" });
    /// let layer = Conv2D::from_config(&config)?;
    /// assert_eq!(layer.config()["kernel_size"], json!([3, 3]));
    /// let dilated = json!({ "filters": 8, "kernel_size": 3, "dilation_rate": 2 });
    /// let message = Conv2D::from_config(&dilated).err().map(|e| e.to_string());
    /// assert!(message.is_some_and(|m| m.contains("`dilation_rate`")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        let fields = Fields::new("Conv2D", config, FIELDS)?;
        fields.only_default(
            "data_format",
            &[json!("channels_last")],
            "kerust's Conv2D takes channels-last images only",
        )?;
        fields.only_default(
            "dilation_rate",
            &[json!(1), json!([1, 1])],
            "kerust's Conv2D has no dilation",
        )?;
        fields.only_default("groups", &[json!(1)], "kerust's Conv2D has no groups")?;
        let kernel_size = fields.pair("kernel_size")?.ok_or_else(|| {
            Error::invalid("config", config, "a Conv2D config needs a `kernel_size`")
        })?;
        let mut layer = Conv2D::new(fields.required("filters")?, kernel_size);
        layer.name = fields.name()?;
        if let Some(strides) = fields.pair("strides")? {
            layer.strides = strides;
        }
        if let Some(padding) = fields.optional("padding")? {
            layer.padding = padding;
        }
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

    /// The kernel's shape for inputs of `in_channels`.
    pub(crate) fn kernel_shape(&self, in_channels: usize) -> [usize; 4] {
        let (kh, kw) = self.kernel_size;
        [kh, kw, in_channels, self.filters]
    }

    /// Checks the options and places the windows on `input_shape`.
    fn geometry_of(&self, input_shape: &[usize]) -> Result<Geometry> {
        if self.filters == 0 {
            return Err(Error::invalid(
                "filters",
                0,
                "a Conv2D layer needs at least one filter",
            ));
        }
        check_pair("kernel_size", self.kernel_size, "Conv2D")?;
        check_pair("strides", self.strides, "Conv2D")?;
        Geometry::new(
            &self.name,
            "kernel",
            input_shape,
            self.kernel_size,
            self.strides,
            self.padding,
            true,
        )
    }

    /// The geometry built for, after checking that `input` is a batch of
    /// the samples it was built for.
    fn built_geometry(&self, input: &ArrayViewD<'_, f32>) -> Result<Geometry> {
        let built = self.geometry.map(|g| g.input_shape());
        check_input(&self.name, built.as_ref().map(|s| &s[..]), input)?;
        Ok(self.geometry.expect("checked by `check_input`"))
    }

    /// The kernel seen as `(kernel_height * kernel_width * in_channels,
    /// filters)`.
    fn kernel_matrix(kernel: &Array4<f32>) -> ArrayView2<'_, f32> {
        let filters = kernel.shape()[3];
        kernel
            .view()
            .into_shape_with_order((kernel.len() / filters.max(1), filters))
            .expect("the kernel is in standard layout")
    }

    /// The gradients of the kernel, the bias and, when asked for, the input,
    /// from the pre-activation gradient in `self.grad_pre`.
    fn backward_pre_activation(
        &mut self,
        geometry: &Geometry,
        input: &[f32],
        input_shape: &[usize],
        grad_input: Option<&mut ArrayD<f32>>,
    ) {
        let patches = self
            .patches
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let batch = input_shape[0];
        fill_patches(geometry, input, batch, patches);

        let filters = self.filters;
        let rows = self.kernel_grad.len() / filters;
        let mut kernel_grad = self
            .kernel_grad
            .view_mut()
            .into_shape_with_order((rows, filters))
            .expect("the kernel gradient is in standard layout");
        general_mat_mul(1.0, &patches.t(), &self.grad_pre, 0.0, &mut kernel_grad);
        if self.use_bias {
            self.bias_grad.fill(0.0);
            for row in self.grad_pre.rows() {
                self.bias_grad += &row;
            }
        }

        let Some(grad_input) = grad_input else {
            return;
        };
        // The patches are no longer needed: their buffer takes their
        // gradient, which col2im adds onto the input's.
        let kernel = Self::kernel_matrix(&self.kernel);
        general_mat_mul(1.0, &self.grad_pre, &kernel.t(), 0.0, patches);
        resize(grad_input, input_shape);
        let grad = grad_input
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        add_patches(geometry, patches, batch, grad);
    }
}

impl Layer for Conv2D {
    fn class_name(&self) -> &str {
        "Conv2D"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        let geometry = self.geometry_of(input_shape)?;
        let shape = self.kernel_shape(geometry.channels);
        self.kernel = self
            .kernel_initializer
            .initialize(&shape, rng)
            .into_dimensionality::<Ix4>()
            .expect("four axes were asked for");
        self.kernel_grad = Array4::zeros(shape);
        let bias_len = if self.use_bias { self.filters } else { 0 };
        self.bias = self
            .bias_initializer
            .initialize(&[bias_len], rng)
            .into_dimensionality()
            .expect("one axis was asked for");
        self.bias_grad = Array1::zeros(bias_len);
        self.geometry = Some(geometry);
        Ok(vec![geometry.out_height, geometry.out_width, self.filters])
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        let geometry = self.built_geometry(&input)?;
        let batch = input.shape()[0];
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        let output_shape = [batch, geometry.out_height, geometry.out_width, self.filters];
        resize(output, &output_shape);
        let mut y = as_rows_mut(output, self.filters);
        let kernel = Self::kernel_matrix(&self.kernel);
        // `predict` runs `forward` on several threads at once: the first
        // takes the kept buffer, the others fill one of their own.
        let mut own = Array2::zeros((0, 0));
        let mut kept = match self.patches.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let patches = kept.as_deref_mut().unwrap_or(&mut own);
        fill_patches(&geometry, x, batch, patches);
        general_mat_mul(1.0, &*patches, &kernel, 0.0, &mut y);
        drop(kept);

        // Bias and ReLU in one pass over each position's filters.
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
        let geometry = self.built_geometry(&input)?;
        let batch = input.shape()[0];
        let expected = [batch, geometry.out_height, geometry.out_width, self.filters];
        if grad_output.shape() != expected || output.shape() != expected {
            return Err(Error::shape(
                &self.name,
                crate::error::format_shape(&expected),
                grad_output.shape(),
            ));
        }
        let rows = batch * geometry.out_height * geometry.out_width;
        if self.grad_pre.dim() != (rows, self.filters) {
            self.grad_pre = Array2::zeros((rows, self.filters));
        }
        let grad_2d = grad_output
            .to_shape((rows, self.filters))
            .expect("checked shape");
        self.grad_pre.assign(&grad_2d);
        let out_2d = output
            .to_shape((rows, self.filters))
            .expect("checked shape");
        self.activation.backward(
            out_2d.view().into_dyn(),
            self.grad_pre.view_mut().into_dyn(),
        );

        // `IxDyn` keeps up to four axes inline: no allocation per batch.
        let input_shape = input.raw_dim();
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        self.backward_pre_activation(&geometry, x, input_shape.slice(), grad_input);
        Ok(())
    }

    fn weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
        if self.geometry.is_none() {
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
        if self.geometry.is_none() || weights.len() != expected {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!(
                    "{expected} weights (kernel{})",
                    if self.use_bias { ", bias" } else { "" }
                ),
                got: format!("{} arrays", weights.len()),
            });
        }
        if weights[0].shape() != self.kernel.shape() {
            return Err(Error::shape(
                &self.name,
                format!("kernel {:?}", self.kernel.shape()),
                weights[0].shape(),
            ));
        }
        if self.use_bias && weights[1].shape() != self.bias.shape() {
            return Err(Error::shape(
                &self.name,
                format!("bias {:?}", self.bias.shape()),
                weights[1].shape(),
            ));
        }
        self.kernel.assign(
            &weights[0]
                .view()
                .into_dimensionality::<Ix4>()
                .expect("checked shape"),
        );
        if self.use_bias {
            self.bias.assign(
                &weights[1]
                    .view()
                    .into_shape_with_order(self.filters)
                    .expect("checked shape"),
            );
        }
        Ok(())
    }

    fn visit_parameters(&mut self, visit: &mut dyn FnMut(&mut [f32], &[f32])) {
        if self.geometry.is_none() {
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

    fn config(&self) -> Value {
        json!({
            "name": self.name,
            "filters": self.filters,
            "kernel_size": [self.kernel_size.0, self.kernel_size.1],
            "strides": [self.strides.0, self.strides.1],
            "padding": self.padding,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        })
    }
}

/// A buffer a layer keeps for `forward`, which takes `&self`. A clone
/// starts with an empty one.
#[derive(Debug)]
struct Scratch(Mutex<Array2<f32>>);

impl Default for Scratch {
    fn default() -> Self {
        Scratch(Mutex::new(Array2::zeros((0, 0))))
    }
}

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default()
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

/// Fills `patches` with the windows of `input`, `batch` images laid out as
/// `geometry` says: one row per output position `(n, oy, ox)`, its columns
/// ordered `(ky, kx, channel)` as the kernel's rows are, zero where the
/// window lies in the padding. Gives `patches` its shape first.
fn fill_patches(geometry: &Geometry, input: &[f32], batch: usize, patches: &mut Array2<f32>) {
    let g = geometry;
    let (kh, kw) = g.window;
    let c = g.channels;
    let width = kh * kw * c;
    let rows = batch * g.out_height * g.out_width;
    if patches.dim() != (rows, width) {
        *patches = Array2::zeros((rows, width));
    }
    let patches = patches.as_slice_mut().expect("standard layout");
    let image_len = g.height * g.width * c;
    for (row, patch) in patches.chunks_exact_mut(width).enumerate() {
        let (n, oy, ox) = position(g, row);
        let image = &input[n * image_len..(n + 1) * image_len];
        for (ky, segment) in patch.chunks_exact_mut(kw * c).enumerate() {
            let Some(iy) = g.source_row(oy, ky) else {
                segment.fill(0.0);
                continue;
            };
            let line = &image[iy * g.width * c..(iy + 1) * g.width * c];
            // Inside the input, the window's row is one run of memory.
            if let (Some(first), Some(_)) = (g.source_col(ox, 0), g.source_col(ox, kw - 1)) {
                segment.copy_from_slice(&line[first * c..(first + kw) * c]);
                continue;
            }
            for (kx, cell) in segment.chunks_exact_mut(c).enumerate() {
                match g.source_col(ox, kx) {
                    Some(ix) => cell.copy_from_slice(&line[ix * c..(ix + 1) * c]),
                    None => cell.fill(0.0),
                }
            }
        }
    }
}

/// The reverse of [`fill_patches`] for gradients: sets `grad_input` to the
/// sum, over every window, of that window's row of `patches`.
fn add_patches(geometry: &Geometry, patches: &Array2<f32>, batch: usize, grad_input: &mut [f32]) {
    let g = geometry;
    let (_, kw) = g.window;
    let c = g.channels;
    let image_len = g.height * g.width * c;
    grad_input.fill(0.0);
    let patches = patches.as_slice().expect("standard layout");
    let width = patches.len() / (batch * g.out_height * g.out_width).max(1);
    for (row, patch) in patches.chunks_exact(width).enumerate() {
        let (n, oy, ox) = position(g, row);
        let image = &mut grad_input[n * image_len..(n + 1) * image_len];
        for (ky, segment) in patch.chunks_exact(kw * c).enumerate() {
            let Some(iy) = g.source_row(oy, ky) else {
                continue;
            };
            let line = &mut image[iy * g.width * c..(iy + 1) * g.width * c];
            for (kx, cell) in segment.chunks_exact(c).enumerate() {
                if let Some(ix) = g.source_col(ox, kx) {
                    let target = &mut line[ix * c..(ix + 1) * c];
                    target.iter_mut().zip(cell).for_each(|(t, &v)| *t += v);
                }
            }
        }
    }
}

/// The output position `(n, oy, ox)` of patch row `row`.
fn position(geometry: &Geometry, row: usize) -> (usize, usize, usize) {
    let per_image = geometry.out_height * geometry.out_width;
    let within = row % per_image;
    (
        row / per_image,
        within / geometry.out_width,
        within % geometry.out_width,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};
    use ndarray::Array;

    fn built(layer: Conv2D, input_shape: &[usize]) -> Conv2D {
        let mut layer = layer;
        layer
            .build(input_shape, &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        layer
    }

    #[test]
    fn a_one_by_one_kernel_of_ones_sums_the_channels() {
        let mut layer = built(Conv2D::new(1, (1, 1)).use_bias(false), &[2, 3, 2]);
        layer
            .set_weights(&[ArrayD::ones(vec![1, 1, 2, 1])])
            .unwrap();
        let x = Array::from_shape_fn((1, 2, 3, 2), |(_, r, c, ch)| (r * 10 + c + ch * 100) as f32);
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view().into_dyn(), &mut y, false).unwrap();
        assert_eq!(y.shape(), &[1, 2, 3, 1]);
        assert_eq!(y[[0, 1, 2, 0]], 12.0 + 112.0);
    }

    #[test]
    fn the_kernel_uses_keras_fans_for_a_convolution() {
        let layer = built(Conv2D::new(16, (3, 3)), &[8, 8, 4]);
        // sqrt(6 / (3 * 3 * 4 + 3 * 3 * 16)), as Keras computes it.
        let limit = (6.0_f32 / (36.0 + 144.0)).sqrt();
        let max = layer.kernel.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        assert!(max <= limit && max > 0.95 * limit, "{max} vs {limit}");
    }

    #[test]
    fn a_clone_computes_what_the_original_does() {
        let layer = built(Conv2D::new(2, (2, 2)), &[3, 3, 1]);
        let copy = layer.clone();
        let x = Array::from_shape_fn((2, 3, 3, 1), |(n, r, c, _)| (n + r * c) as f32).into_dyn();
        let (mut a, mut b) = (ArrayD::zeros(vec![0]), ArrayD::zeros(vec![0]));
        layer.forward(x.view(), &mut a, false).unwrap();
        copy.forward(x.view(), &mut b, false).unwrap();
        assert_eq!(a, b);
    }
}
