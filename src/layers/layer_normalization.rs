//! Layer normalization over the last axis.

use ndarray::{Array1, ArrayD, ArrayViewD, Ix1};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::{check_input, resize, Layer};
use crate::error::{format_batch_shape, format_shape};
use crate::initializers::Initializer;
use crate::{Error, Result};

/// The fields of a `LayerNormalization` config, and the Keras ones
/// accepted at their default.
const FIELDS: &[&str] = &[
    "name",
    "axis",
    "epsilon",
    "center",
    "scale",
    "beta_initializer",
    "gamma_initializer",
    "beta_regularizer",
    "gamma_regularizer",
    "beta_constraint",
    "gamma_constraint",
    "rms_scaling",
];

/// Keras' `LayerNormalization`: normalises each sample's features (the
/// last axis) to mean 0 and variance 1, then scales them by `gamma` and
/// shifts them by `beta`, one of each per feature.
///
/// ```text
/// for each sample (each position of the other axes), over its features:
/// mean     = sum(x) / features
/// variance = sum((x - mean)^2) / features        (biased, as in Keras)
/// output   = gamma * (x - mean) / sqrt(variance + epsilon) + beta
/// ```
///
/// Unlike [`BatchNormalization`](super::BatchNormalization), the statistics
/// are those of each sample alone, never of the batch: training and
/// inference compute the same, and the layer keeps no moving statistics.
///
/// The weights are, in Keras' order, `gamma` (with
/// [`scale`](LayerNormalization::scale)) and `beta` (with
/// [`center`](LayerNormalization::center)), each of one value per feature,
/// both trained. The gradient is the exact one of the formula, through each
/// sample's mean and variance:
///
/// ```text
/// normal  = (x - mean) / sqrt(variance + epsilon)
/// d/dbeta = sum(dy)      d/dgamma = sum(dy * normal)   (over the samples)
/// g       = dy * gamma
/// d/dx    = (g - mean(g) - normal * mean(g * normal)) / sqrt(variance + epsilon)
///                                                      (means over features)
/// ```
///
/// # Shapes
///
/// Input of any rank, `(batch, ..., features)`: `(batch, features)` after a
/// [`Dense`](super::Dense), `(batch, steps, features)` for a sequence. The
/// output has the input's shape.
///
/// # Limitations
///
/// Only the last axis is normalised (Keras' default `axis=-1`; a config
/// naming the last axis by its index, or a list of that one axis, is
/// accepted), so Keras' `axis=[1, 2, 3]` over a whole image has no
/// equivalent. There are no regularizers or constraints on `gamma` and
/// `beta`, and no `rms_scaling`:
/// [`from_config`](LayerNormalization::from_config) refuses any value of
/// those fields but Keras' default.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([4])
///     .add(Dense::new(3))
///     .add(LayerNormalization::new())
///     .add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Sgd::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
/// assert_eq!(model.layers()[1].name(), "layer_normalization");
/// // gamma and beta, three of each, both trained.
/// assert_eq!(model.summary().trainable_params(), 15 + 6 + 8);
///
/// // Each sample is normalised on its own: mean 0, variance 1 (less epsilon).
/// let mut layer = LayerNormalization::new().epsilon(1e-6);
/// layer.build(&[3], &mut kerust::random::stream(0, kerust::random::Purpose::Init, 0, 0))?;
/// let x = array![[1.0_f32, 2.0, 3.0], [-10.0, 0.0, 10.0]].into_dyn();
/// let mut y = ndarray::ArrayD::zeros(vec![0]);
/// layer.forward(x.view(), &mut y, false)?;
/// let expected = array![[-1.2247444_f32, 0.0, 1.2247444], [-1.2247449, 0.0, 1.2247449]];
/// assert!(y.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-6), "{y}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LayerNormalization {
    name: String,
    axis: i64,
    epsilon: f64,
    center: bool,
    scale: bool,
    beta_initializer: Initializer,
    gamma_initializer: Initializer,
    gamma: Array1<f32>,
    beta: Array1<f32>,
    gamma_grad: Array1<f32>,
    beta_grad: Array1<f32>,
    /// The sample shape built for, batch axis left out.
    input_shape: Option<Vec<usize>>,
    /// Per feature, in f64: the sums of `dy` and of `dy * normal` that
    /// `backward` turns into the weights' gradients.
    sums: Vec<f64>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// A layer with Keras' defaults: over the last axis, epsilon 1e-3, with
    /// `gamma` (ones) and `beta` (zeros).
    pub fn new() -> Self {
        LayerNormalization {
            name: String::new(),
            axis: -1,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            gamma: Array1::zeros(0),
            beta: Array1::zeros(0),
            gamma_grad: Array1::zeros(0),
            beta_grad: Array1::zeros(0),
            input_shape: None,
            sums: Vec::new(),
        }
    }

    /// Added to the variance before its square root (default 1e-3, as in
    /// Keras). Checked, positive and finite, when the layer is built.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether the layer adds `beta` (default true).
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether the layer multiplies by `gamma` (default true).
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }

    /// How `beta` is filled (default [`Initializer::Zeros`]).
    pub fn beta_initializer(mut self, initializer: Initializer) -> Self {
        self.beta_initializer = initializer;
        self
    }

    /// How `gamma` is filled (default [`Initializer::Ones`]).
    pub fn gamma_initializer(mut self, initializer: Initializer) -> Self {
        self.gamma_initializer = initializer;
        self
    }

    /// The layer's name (default: given by the model,
    /// `layer_normalization`, `layer_normalization_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `gamma`, one value per feature; empty without
    /// [`scale`](LayerNormalization::scale) or before the layer is built.
    pub fn gamma(&self) -> &Array1<f32> {
        &self.gamma
    }

    /// `beta`, one value per feature; empty without
    /// [`center`](LayerNormalization::center) or before the layer is built.
    pub fn beta(&self) -> &Array1<f32> {
        &self.beta
    }

    /// Builds a layer from its [`config`](Layer::config), the fields Keras
    /// names, all optional, with the defaults of
    /// [`new`](LayerNormalization::new): `name`, `axis` (-1, the index of
    /// the last axis counting the batch axis, or a list of one of these, as
    /// Keras writes it once built), `epsilon`, `center`, `scale` and the two
    /// initializers (`"zeros"`, `"ones"`, ...). Keras' `beta_regularizer`,
    /// `gamma_regularizer`, `beta_constraint` and `gamma_constraint` are
    /// accepted as null only, and `rms_scaling` as false only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not
    /// an object, a field has the wrong type or a value kerust does not
    /// support (an epsilon that is not positive, an axis list of several
    /// axes), or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Layer, LayerNormalization};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let config = json!({ "name": "norm", "axis": [-1], "epsilon": 1e-5, "center": false });
    /// let layer = LayerNormalization::from_config(&config)?;
    /// assert_eq!(layer.config()["epsilon"], json!(1e-5));
    /// let rms = json!({ "rms_scaling": true });
    /// let message = LayerNormalization::from_config(&rms).err().map(|e| e.to_string());
    /// assert!(message.is_some_and(|m| m.contains("`rms_scaling`")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        let fields = Fields::new("LayerNormalization", config, FIELDS)?;
        let none = "kerust's LayerNormalization has no regularizers or constraints";
        for key in [
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ] {
            fields.only_default(key, &[Value::Null], none)?;
        }
        fields.only_default(
            "rms_scaling",
            &[json!(false)],
            "kerust's LayerNormalization has no rms_scaling, which Keras deprecates",
        )?;

        let mut layer = LayerNormalization::new();
        layer.name = fields.name()?;
        if let Some(axis) = fields.optional::<Value>("axis")? {
            layer.axis = axis_from_config(&axis)?;
        }
        if let Some(epsilon) = fields.optional("epsilon")? {
            layer.epsilon = epsilon;
        }
        if let Some(center) = fields.optional("center")? {
            layer.center = center;
        }
        if let Some(scale) = fields.optional("scale")? {
            layer.scale = scale;
        }
        if let Some(initializer) = fields.optional("beta_initializer")? {
            layer.beta_initializer = initializer;
        }
        if let Some(initializer) = fields.optional("gamma_initializer")? {
            layer.gamma_initializer = initializer;
        }
        layer.check_epsilon()?;
        Ok(layer)
    }

    /// Refuses an epsilon that is not positive and finite.
    fn check_epsilon(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::invalid(
                "epsilon",
                self.epsilon,
                "expected a positive, finite number",
            ));
        }
        Ok(())
    }

    /// The number of features of samples of `input_shape`, after checking
    /// that `axis` names their last axis.
    fn features_of(&self, input_shape: &[usize]) -> Result<usize> {
        let Some(&features) = input_shape.last().filter(|&&f| f > 0) else {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: "(None, ..., features), with at least one feature".to_string(),
                got: format_batch_shape(input_shape),
            });
        };
        // Keras counts the batch axis.
        let last = input_shape.len() as i64;
        if self.axis != -1 && self.axis != last {
            return Err(Error::invalid(
                "axis",
                self.axis,
                format!(
                    "kerust's LayerNormalization normalises the last axis only: -1, or {last} \
                     for inputs of shape {}",
                    format_batch_shape(input_shape)
                ),
            ));
        }
        Ok(features)
    }

    /// The number of features built for, after checking that `input` is a
    /// batch of the samples it was built for.
    fn built_features(&self, input: &ArrayViewD<'_, f32>) -> Result<usize> {
        check_input(&self.name, self.input_shape.as_deref(), input)?;
        Ok(input.shape().last().copied().unwrap_or(1))
    }

    /// The names of the weights, in order.
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::with_capacity(2);
        if self.scale {
            names.push("gamma");
        }
        if self.center {
            names.push("beta");
        }
        names
    }
}

/// Keras writes `axis` as a number before the layer is built and as a list
/// once built; kerust takes one axis either way.
fn axis_from_config(value: &Value) -> Result<i64> {
    let one = |v: &Value| v.as_i64();
    let axis = match value {
        Value::Array(items) if items.len() == 1 => one(&items[0]),
        Value::Array(_) => {
            return Err(Error::invalid(
                "axis",
                value,
                "kerust's LayerNormalization normalises the last axis only: one axis, -1 or \
                 the index of the last",
            ))
        }
        other => one(other),
    };
    axis.ok_or_else(|| Error::invalid("axis", value, "expected an integer or a list of one"))
}

/// The mean and biased variance of `row`, summed in f64 (the variance
/// from the deviations from the mean, in a second pass) and rounded once
/// to f32, as the statistics Keras computes in f32.
fn moments(row: &[f32]) -> (f32, f32) {
    let count = row.len().max(1) as f64;
    let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
    let squares: f64 = row
        .iter()
        .map(|&v| {
            let deviation = f64::from(v) - mean;
            deviation * deviation
        })
        .sum();
    (mean as f32, (squares / count) as f32)
}

impl Layer for LayerNormalization {
    fn class_name(&self) -> &str {
        "LayerNormalization"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        self.check_epsilon()?;
        let features = self.features_of(input_shape)?;
        let mut make = |initializer: Initializer, wanted: bool| -> Array1<f32> {
            let len = if wanted { features } else { 0 };
            initializer
                .initialize(&[len], rng)
                .into_dimensionality::<Ix1>()
                .expect("one axis was asked for")
        };
        // Keras' order, which is also the order of any random draws.
        self.gamma = make(self.gamma_initializer, self.scale);
        self.beta = make(self.beta_initializer, self.center);
        self.gamma_grad = Array1::zeros(self.gamma.len());
        self.beta_grad = Array1::zeros(self.beta.len());
        self.input_shape = Some(input_shape.to_vec());
        Ok(input_shape.to_vec())
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        let features = self.built_features(&input)?;
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        resize(output, input.shape());
        let y = output
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        let epsilon = self.epsilon as f32;
        for (xs, ys) in x.chunks_exact(features).zip(y.chunks_exact_mut(features)) {
            let (mean, variance) = moments(xs);
            let inverse = 1.0 / (variance + epsilon).sqrt();
            // Keras' order of operations: multiplier = inverse * gamma,
            // offset = -mean * multiplier + beta, y = x * multiplier + offset.
            for (j, (y, &x)) in ys.iter_mut().zip(xs).enumerate() {
                let multiplier = if self.scale {
                    inverse * self.gamma[j]
                } else {
                    inverse
                };
                let mut offset = -mean * multiplier;
                if self.center {
                    offset += self.beta[j];
                }
                *y = x * multiplier + offset;
            }
        }
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let features = self.built_features(&input)?;
        if grad_output.shape() != input.shape() {
            return Err(Error::shape(
                &self.name,
                format_shape(input.shape()),
                grad_output.shape(),
            ));
        }
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        let grad_output = grad_output.as_standard_layout();
        let dy = grad_output.as_slice().expect("standard layout");
        let mut grad_input = grad_input;
        if let Some(grad_input) = grad_input.as_deref_mut() {
            resize(grad_input, input.shape());
        }
        let mut dx = grad_input.map(|g| {
            g.as_slice_mut()
                .expect("`resize` makes standard-layout arrays")
        });

        self.sums.clear();
        self.sums.resize(2 * features, 0.0);
        let (sum_dy, sum_dy_normal) = self.sums.split_at_mut(features);
        let epsilon = self.epsilon as f32;
        let count = features as f64;
        for (row, (xs, dys)) in x
            .chunks_exact(features)
            .zip(dy.chunks_exact(features))
            .enumerate()
        {
            let (mean, variance) = moments(xs);
            let inverse = 1.0 / (variance + epsilon).sqrt();
            let (mean, inverse) = (f64::from(mean), f64::from(inverse));
            let normal = |j: usize| (f64::from(xs[j]) - mean) * inverse;
            let gain = |j: usize| {
                if self.scale {
                    f64::from(self.gamma[j])
                } else {
                    1.0
                }
            };
            // The row's means of g = dy * gamma and of g * normal.
            let (mut mean_g, mut mean_g_normal) = (0.0, 0.0);
            for (j, &d) in dys.iter().enumerate() {
                let d = f64::from(d);
                let n = normal(j);
                sum_dy[j] += d;
                sum_dy_normal[j] += d * n;
                let g = d * gain(j);
                mean_g += g;
                mean_g_normal += g * n;
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            mean_g /= count;
            mean_g_normal /= count;
            let dxs = &mut dx[row * features..(row + 1) * features];
            for (j, (dx, &d)) in dxs.iter_mut().zip(dys).enumerate() {
                let g = f64::from(d) * gain(j);
                *dx = (inverse * (g - mean_g - normal(j) * mean_g_normal)) as f32;
            }
        }
        if self.scale {
            for (g, &s) in self.gamma_grad.iter_mut().zip(sum_dy_normal.iter()) {
                *g = s as f32;
            }
        }
        if self.center {
            for (g, &s) in self.beta_grad.iter_mut().zip(sum_dy.iter()) {
                *g = s as f32;
            }
        }
        Ok(())
    }

    fn weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
        let mut weights = Vec::new();
        if self.input_shape.is_none() {
            return weights;
        }
        if self.scale {
            weights.push(("gamma".to_string(), self.gamma.view().into_dyn()));
        }
        if self.center {
            weights.push(("beta".to_string(), self.beta.view().into_dyn()));
        }
        weights
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        let names = self.weight_names();
        let Some(features) = self
            .input_shape
            .as_ref()
            .and_then(|shape| shape.last().copied())
        else {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!(
                    "{} weights ({}) of a built layer",
                    names.len(),
                    names.join(", ")
                ),
                got: format!("{} arrays", weights.len()),
            });
        };
        if weights.len() != names.len() {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("{} weights ({})", names.len(), names.join(", ")),
                got: format!("{} arrays", weights.len()),
            });
        }
        for (name, weight) in names.iter().zip(weights) {
            if weight.shape() != [features] {
                return Err(Error::shape(
                    &self.name,
                    format!("{name} [{features}]"),
                    weight.shape(),
                ));
            }
        }
        let mut weights = weights.iter().map(|w| {
            w.view()
                .into_dimensionality::<Ix1>()
                .expect("checked shape")
        });
        if self.scale {
            self.gamma.assign(&weights.next().expect("counted above"));
        }
        if self.center {
            self.beta.assign(&weights.next().expect("counted above"));
        }
        Ok(())
    }

    fn visit_parameters(&mut self, visit: &mut dyn FnMut(&mut [f32], &[f32])) {
        if self.input_shape.is_none() {
            return;
        }
        if self.scale {
            visit(
                self.gamma.as_slice_mut().expect("standard layout"),
                self.gamma_grad.as_slice().expect("standard layout"),
            );
        }
        if self.center {
            visit(
                self.beta.as_slice_mut().expect("standard layout"),
                self.beta_grad.as_slice().expect("standard layout"),
            );
        }
    }

    fn config(&self) -> Value {
        json!({
            "name": self.name,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};

    fn built(layer: LayerNormalization, input_shape: &[usize]) -> LayerNormalization {
        let mut layer = layer;
        layer
            .build(input_shape, &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        layer
    }

    #[test]
    fn each_sample_is_normalised_on_its_own() {
        let layer = built(LayerNormalization::new().epsilon(1e-9), &[2, 3]);
        let x = ArrayD::from_shape_vec(
            vec![2, 2, 3],
            vec![
                1.0, 2.0, 6.0, -5.0, 5.0, 0.0, 100.0, 101.0, 99.0, 0.5, 0.5, 2.0,
            ],
        )
        .unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        for row in y.rows() {
            let mean = row.mean().unwrap();
            let variance = row.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
            assert!(mean.abs() < 1e-6, "{y}");
            assert!((variance - 1.0).abs() < 1e-5, "{y}");
        }
        // Training or not, the same.
        let mut inference = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut inference, false).unwrap();
        assert_eq!(inference, y);
    }

    #[test]
    fn a_constant_sample_gives_beta() {
        let mut layer = built(LayerNormalization::new(), &[3]);
        let beta = ArrayD::from_shape_vec(vec![3], vec![0.5, -1.0, 2.0]).unwrap();
        layer
            .set_weights(&[ArrayD::ones(vec![3]), beta.clone()])
            .unwrap();
        let x = ArrayD::from_elem(vec![1, 3], 7.0_f32);
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        assert_eq!(
            y.into_raw_vec_and_offset().0,
            beta.into_raw_vec_and_offset().0
        );
    }

    #[test]
    fn an_axis_list_of_several_axes_is_refused() {
        let err = axis_from_config(&json!([1, 2])).unwrap_err().to_string();
        assert!(err.contains("the last axis only"), "{err}");
        assert_eq!(axis_from_config(&json!([2])).unwrap(), 2);
        assert_eq!(axis_from_config(&json!(-1)).unwrap(), -1);
        assert!(axis_from_config(&json!("last")).is_err());
    }
}
