//! Batch normalization over the last axis.

use std::sync::{Mutex, TryLockError};

use ndarray::{Array1, ArrayD, ArrayViewD, Ix1};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::{check_input, resize, Layer};
use crate::error::format_batch_shape;
use crate::initializers::Initializer;
use crate::{Error, Result};

/// The fields of a `BatchNormalization` config, and the Keras ones
/// accepted at their default.
const FIELDS: &[&str] = &[
    "name",
    "axis",
    "momentum",
    "epsilon",
    "center",
    "scale",
    "beta_initializer",
    "gamma_initializer",
    "moving_mean_initializer",
    "moving_variance_initializer",
    "beta_regularizer",
    "gamma_regularizer",
    "beta_constraint",
    "gamma_constraint",
    "renorm",
    "renorm_clipping",
    "renorm_momentum",
    "synchronized",
];

/// Keras' `BatchNormalization`: normalises each channel (the last axis) to
/// mean 0 and variance 1, then scales it by `gamma` and shifts it by `beta`.
///
/// ```text
/// output = gamma * (input - mean) / sqrt(variance + epsilon) + beta
///
/// training   mean, variance: of the batch, over every axis but the last
///            (the variance biased, divided by the count, as in Keras);
///            then, once per training step,
///            moving_mean     = moving_mean * momentum + mean * (1 - momentum)
///            moving_variance = moving_variance * momentum
///                              + variance * (1 - momentum)
/// inference  mean, variance: moving_mean, moving_variance
/// ```
///
/// The weights are, in Keras' order, `gamma` (with
/// [`scale`](BatchNormalization::scale)), `beta` (with
/// [`center`](BatchNormalization::center)), `moving_mean` and
/// `moving_variance`, each of one value per channel. The optimizer trains
/// `gamma` and `beta`; the moving statistics are non-trainable weights, set
/// by [`update_state`](Layer::update_state), which a training step calls
/// once per batch: `summary()` counts them as non-trainable, and model files
/// save them. In training mode the gradient is the exact one of the batch
/// statistics' formula, through the mean and the variance, for the input,
/// `gamma` and `beta`.
///
/// A layer frozen with
/// [`Sequential::set_trainable`](crate::model::Sequential::set_trainable)
/// runs as in inference also during training, and its moving statistics
/// stay as they are, as Keras does for a `BatchNormalization` with
/// `trainable = False`.
///
/// # Shapes
///
/// Input of any rank, `(batch, ..., channels)`: `(batch, features)` after
/// a [`Dense`](super::Dense), `(batch, height, width, channels)` after a
/// [`Conv2D`](super::Conv2D). The output has the input's shape.
///
/// # Limitations
///
/// Only the last axis is normalised (Keras' default `axis=-1`; a config
/// naming the last axis by its index is accepted). There is no batch
/// renormalization (`renorm`), no synchronisation across devices, no
/// masking, and no regularizers or constraints on `gamma` and `beta`:
/// [`from_config`](BatchNormalization::from_config) refuses any value of
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
///     .input_shape([2])
///     .add(Dense::new(3))
///     .add(BatchNormalization::new())
///     .add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
/// assert_eq!(model.layers()[1].name(), "batch_normalization");
/// // gamma and beta are trained, the moving mean and variance are not.
/// assert_eq!(model.summary().trainable_params(), 9 + 6 + 8);
/// assert_eq!(model.summary().non_trainable_params(), 6);
///
/// let (x, y) = (array![[1.0_f32, 0.0], [0.0, 1.0]], array![0.0_f32, 1.0]);
/// model.train_on_batch(&x, &y)?;
/// let moving_mean = model.layers()[1].weights()[2].1.to_owned();
/// assert!(moving_mean.iter().any(|&m| m != 0.0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BatchNormalization {
    name: String,
    axis: i64,
    momentum: f64,
    epsilon: f64,
    center: bool,
    scale: bool,
    beta_initializer: Initializer,
    gamma_initializer: Initializer,
    moving_mean_initializer: Initializer,
    moving_variance_initializer: Initializer,
    gamma: Array1<f32>,
    beta: Array1<f32>,
    moving_mean: Array1<f32>,
    moving_variance: Array1<f32>,
    gamma_grad: Array1<f32>,
    beta_grad: Array1<f32>,
    /// The sample shape built for, batch axis left out.
    input_shape: Option<Vec<usize>>,
    /// False when the model froze the layer.
    trainable: bool,
    /// The statistics of `backward` and `update_state`.
    statistics: Statistics,
    /// The statistics of `forward`, which takes `&self`.
    scratch: Scratch,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// A layer with Keras' defaults: over the last axis, momentum 0.99,
    /// epsilon 1e-3, with `gamma` and `beta`.
    pub fn new() -> Self {
        BatchNormalization {
            name: String::new(),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            gamma: Array1::zeros(0),
            beta: Array1::zeros(0),
            moving_mean: Array1::zeros(0),
            moving_variance: Array1::zeros(0),
            gamma_grad: Array1::zeros(0),
            beta_grad: Array1::zeros(0),
            input_shape: None,
            trainable: true,
            statistics: Statistics::default(),
            scratch: Scratch::default(),
        }
    }

    /// How much of the moving statistics each training step keeps (default
    /// 0.99, as in Keras): the rest comes from the batch. Checked, in
    /// [0, 1], when the layer is built.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
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

    /// How the moving mean is filled (default [`Initializer::Zeros`]).
    pub fn moving_mean_initializer(mut self, initializer: Initializer) -> Self {
        self.moving_mean_initializer = initializer;
        self
    }

    /// How the moving variance is filled (default [`Initializer::Ones`]).
    pub fn moving_variance_initializer(mut self, initializer: Initializer) -> Self {
        self.moving_variance_initializer = initializer;
        self
    }

    /// The layer's name (default: given by the model,
    /// `batch_normalization`, `batch_normalization_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `gamma`, one value per channel; empty without
    /// [`scale`](BatchNormalization::scale) or before the layer is built.
    pub fn gamma(&self) -> &Array1<f32> {
        &self.gamma
    }

    /// `beta`, one value per channel; empty without
    /// [`center`](BatchNormalization::center) or before the layer is built.
    pub fn beta(&self) -> &Array1<f32> {
        &self.beta
    }

    /// The moving mean, one value per channel; empty before build.
    pub fn moving_mean(&self) -> &Array1<f32> {
        &self.moving_mean
    }

    /// The moving variance, one value per channel; empty before build.
    pub fn moving_variance(&self) -> &Array1<f32> {
        &self.moving_variance
    }

    /// Builds a layer from its [`config`](Layer::config), the fields Keras
    /// names, all optional, with the defaults of
    /// [`new`](BatchNormalization::new): `name`, `axis` (-1, or the index
    /// of the last axis counting the batch axis), `momentum`, `epsilon`,
    /// `center`, `scale` and the four initializers (`"zeros"`, `"ones"`,
    /// ...). Keras' `beta_regularizer`, `gamma_regularizer`,
    /// `beta_constraint`, `gamma_constraint` and `renorm_clipping` are
    /// accepted as null only, `renorm` and `synchronized` as false only, and
    /// `renorm_momentum` at any number, as it is unused without `renorm`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not
    /// an object, a field has the wrong type or a value kerust does not
    /// support (a momentum outside [0, 1], an epsilon that is not positive),
    /// or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{BatchNormalization, Layer};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let config = json!({ "name": "bn", "momentum": 0.9, "center": false });
    /// let layer = BatchNormalization::from_config(&config)?;
    /// assert_eq!(layer.config()["epsilon"], json!(0.001));
    /// let renorm = json!({ "renorm": true });
    /// let message = BatchNormalization::from_config(&renorm).err().map(|e| e.to_string());
    /// assert!(message.is_some_and(|m| m.contains("`renorm`")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        let fields = Fields::new("BatchNormalization", config, FIELDS)?;
        let none = "kerust's BatchNormalization has no regularizers or constraints";
        for key in [
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ] {
            fields.only_default(key, &[Value::Null], none)?;
        }
        fields.only_default(
            "renorm",
            &[json!(false)],
            "kerust's BatchNormalization has no batch renormalization",
        )?;
        fields.only_default(
            "renorm_clipping",
            &[Value::Null],
            "kerust's BatchNormalization has no batch renormalization",
        )?;
        fields.optional::<f64>("renorm_momentum")?;
        fields.only_default(
            "synchronized",
            &[json!(false)],
            "kerust's BatchNormalization does not synchronise across devices",
        )?;

        let mut layer = BatchNormalization::new();
        layer.name = fields.name()?;
        if let Some(axis) = fields.optional("axis")? {
            layer.axis = axis;
        }
        if let Some(momentum) = fields.optional("momentum")? {
            layer.momentum = momentum;
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
        let initializers = [
            ("beta_initializer", &mut layer.beta_initializer),
            ("gamma_initializer", &mut layer.gamma_initializer),
            (
                "moving_mean_initializer",
                &mut layer.moving_mean_initializer,
            ),
            (
                "moving_variance_initializer",
                &mut layer.moving_variance_initializer,
            ),
        ];
        for (key, initializer) in initializers {
            if let Some(value) = fields.optional(key)? {
                *initializer = value;
            }
        }
        layer.check_options()?;
        Ok(layer)
    }

    /// Refuses a momentum outside [0, 1] and an epsilon that is not
    /// positive and finite.
    fn check_options(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::invalid(
                "momentum",
                self.momentum,
                "expected a value in [0, 1]",
            ));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::invalid(
                "epsilon",
                self.epsilon,
                "expected a positive, finite number",
            ));
        }
        Ok(())
    }

    /// The number of channels of samples of `input_shape`, after checking
    /// that `axis` names their last axis.
    fn channels_of(&self, input_shape: &[usize]) -> Result<usize> {
        let Some(&channels) = input_shape.last().filter(|&&c| c > 0) else {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: "(None, ..., channels), with at least one channel".to_string(),
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
                    "kerust's BatchNormalization normalises the last axis only: -1, or {last} \
                     for inputs of shape {}",
                    format_batch_shape(input_shape)
                ),
            ));
        }
        Ok(channels)
    }

    /// The number of channels built for, after checking that `input` is a
    /// batch of the samples it was built for.
    fn built_channels(&self, input: &ArrayViewD<'_, f32>) -> Result<usize> {
        check_input(&self.name, self.input_shape.as_deref(), input)?;
        Ok(self.moving_mean.len())
    }

    /// Whether a training-mode pass normalises by the batch's statistics:
    /// a frozen layer uses its moving ones, as in inference.
    fn uses_batch_statistics(&self, training: bool) -> bool {
        training && self.trainable
    }

    fn check_weight(&self, name: &str, weight: &ArrayD<f32>) -> Result<()> {
        if weight.shape() != self.moving_mean.shape() {
            return Err(Error::shape(
                &self.name,
                format!("{name} {:?}", self.moving_mean.shape()),
                weight.shape(),
            ));
        }
        Ok(())
    }

    /// The names of the weights, in order.
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::with_capacity(4);
        if self.scale {
            names.push("gamma");
        }
        if self.center {
            names.push("beta");
        }
        names.extend(["moving_mean", "moving_variance"]);
        names
    }
}

impl Layer for BatchNormalization {
    fn class_name(&self) -> &str {
        "BatchNormalization"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        self.check_options()?;
        let channels = self.channels_of(input_shape)?;
        let mut make = |initializer: Initializer, wanted: bool| -> Array1<f32> {
            let len = if wanted { channels } else { 0 };
            initializer
                .initialize(&[len], rng)
                .into_dimensionality::<Ix1>()
                .expect("one axis was asked for")
        };
        // Keras' order, which is also the order of any random draws.
        self.gamma = make(self.gamma_initializer, self.scale);
        self.beta = make(self.beta_initializer, self.center);
        self.moving_mean = make(self.moving_mean_initializer, true);
        self.moving_variance = make(self.moving_variance_initializer, true);
        self.gamma_grad = Array1::zeros(self.gamma.len());
        self.beta_grad = Array1::zeros(self.beta.len());
        self.input_shape = Some(input_shape.to_vec());
        Ok(input_shape.to_vec())
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        training: bool,
    ) -> Result<()> {
        let channels = self.built_channels(&input)?;
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        resize(output, input.shape());
        let y = output
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");

        // `predict` runs `forward` on several threads at once: the first
        // takes the kept buffers, the others use their own.
        let mut own = Statistics::default();
        let mut kept = match self.scratch.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let statistics = kept.as_deref_mut().unwrap_or(&mut own);
        if self.uses_batch_statistics(training) {
            statistics.of_batch(x, channels);
        } else {
            statistics.moving(&self.moving_mean, &self.moving_variance);
        }
        statistics.affine(self, channels);
        for (xs, ys) in x.chunks_exact(channels).zip(y.chunks_exact_mut(channels)) {
            for (((y, &x), &a), &b) in ys
                .iter_mut()
                .zip(xs)
                .zip(&statistics.multiplier)
                .zip(&statistics.offset)
            {
                *y = x * a + b;
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
        let channels = self.built_channels(&input)?;
        if grad_output.shape() != input.shape() {
            return Err(Error::shape(
                &self.name,
                crate::error::format_shape(input.shape()),
                grad_output.shape(),
            ));
        }
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        let grad_output = grad_output.as_standard_layout();
        let dy = grad_output.as_slice().expect("standard layout");
        let batch_statistics = self.uses_batch_statistics(true);
        let statistics = &mut self.statistics;
        if batch_statistics {
            statistics.of_batch(x, channels);
        } else {
            statistics.moving(&self.moving_mean, &self.moving_variance);
        }
        let epsilon = self.epsilon as f32;
        statistics.inverse_deviation(epsilon);

        // Per channel, in f64: the sum of the gradients (beta's gradient)
        // and of the gradients times the normalised input (gamma's).
        let sums = &mut statistics.sums;
        sums.clear();
        sums.resize(2 * channels, 0.0);
        let (sum_dy, sum_dy_normal) = sums.split_at_mut(channels);
        for (xs, dys) in x.chunks_exact(channels).zip(dy.chunks_exact(channels)) {
            for c in 0..channels {
                let normal = (xs[c] - statistics.mean[c]) * statistics.multiplier[c];
                sum_dy[c] += f64::from(dys[c]);
                sum_dy_normal[c] += f64::from(dys[c]) * f64::from(normal);
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

        let Some(grad_input) = grad_input else {
            return Ok(());
        };
        resize(grad_input, input.shape());
        let dx = grad_input
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        // With the batch's statistics, the mean and the variance depend on
        // every input of the channel:
        //   dx = gamma / std * (dy - mean(dy) - normal * mean(dy * normal))
        // With the moving ones, they are constants: dx = gamma / std * dy.
        let rows = (x.len() / channels).max(1) as f64;
        for ((xs, dys), dxs) in x
            .chunks_exact(channels)
            .zip(dy.chunks_exact(channels))
            .zip(dx.chunks_exact_mut(channels))
        {
            for c in 0..channels {
                let inverse = f64::from(statistics.multiplier[c]);
                let gain = if self.scale {
                    f64::from(self.gamma[c]) * inverse
                } else {
                    inverse
                };
                let grad = f64::from(dys[c]);
                dxs[c] = if batch_statistics {
                    let normal = f64::from((xs[c] - statistics.mean[c]) * statistics.multiplier[c]);
                    let centred = grad - sum_dy[c] / rows - normal * sum_dy_normal[c] / rows;
                    (gain * centred) as f32
                } else {
                    (gain * grad) as f32
                };
            }
        }
        Ok(())
    }

    fn update_state(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _output: ArrayViewD<'_, f32>,
    ) -> Result<()> {
        let channels = self.built_channels(&input)?;
        if !self.trainable || input.is_empty() {
            return Ok(());
        }
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        self.statistics.of_batch(x, channels);
        // As Keras: the momentum and its complement rounded to f32 each.
        let keep = self.momentum as f32;
        let take = (1.0 - self.momentum) as f32;
        let moving = [
            (&mut self.moving_mean, &self.statistics.mean),
            (&mut self.moving_variance, &self.statistics.variance),
        ];
        for (moving, batch) in moving {
            for (m, &b) in moving.iter_mut().zip(batch) {
                *m = *m * keep + b * take;
            }
        }
        Ok(())
    }

    fn on_trainable_changed(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    fn weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
        if self.input_shape.is_none() {
            return Vec::new();
        }
        let mut weights = self.trainable_weights();
        weights.push((
            "moving_mean".to_string(),
            self.moving_mean.view().into_dyn(),
        ));
        weights.push((
            "moving_variance".to_string(),
            self.moving_variance.view().into_dyn(),
        ));
        weights
    }

    fn trainable_weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
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
        if self.input_shape.is_none() || weights.len() != names.len() {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("{} weights ({})", names.len(), names.join(", ")),
                got: format!("{} arrays", weights.len()),
            });
        }
        for (name, weight) in names.iter().zip(weights) {
            self.check_weight(name, weight)?;
        }
        let mut weights = weights.iter().map(|w| {
            w.view()
                .into_dimensionality::<Ix1>()
                .expect("checked shape")
        });
        let mut targets: Vec<&mut Array1<f32>> = Vec::with_capacity(4);
        if self.scale {
            targets.push(&mut self.gamma);
        }
        if self.center {
            targets.push(&mut self.beta);
        }
        targets.push(&mut self.moving_mean);
        targets.push(&mut self.moving_variance);
        for target in targets {
            target.assign(&weights.next().expect("counted above"));
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

    fn param_count(&self) -> usize {
        self.gamma.len() + self.beta.len() + self.moving_mean.len() + self.moving_variance.len()
    }

    fn trainable_param_count(&self) -> usize {
        self.gamma.len() + self.beta.len()
    }

    fn config(&self) -> Value {
        json!({
            "name": self.name,
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
        })
    }
}

/// Per-channel statistics and the affine map they give, in buffers kept
/// from one batch to the next.
#[derive(Debug, Clone, Default)]
struct Statistics {
    mean: Vec<f32>,
    variance: Vec<f32>,
    /// `gamma / sqrt(variance + epsilon)` after [`affine`](Self::affine),
    /// `1 / sqrt(variance + epsilon)` after
    /// [`inverse_deviation`](Self::inverse_deviation).
    multiplier: Vec<f32>,
    /// `beta - mean * multiplier`.
    offset: Vec<f32>,
    /// Sums in f64, two per channel.
    sums: Vec<f64>,
}

impl Statistics {
    /// The mean and biased variance of each channel of `x`, rows of
    /// `channels` values, summed in f64 (the variance from the deviations
    /// from the mean, in a second pass) and rounded once to f32.
    fn of_batch(&mut self, x: &[f32], channels: usize) {
        let rows = (x.len() / channels).max(1) as f64;
        self.sums.clear();
        self.sums.resize(2 * channels, 0.0);
        let (means, squares) = self.sums.split_at_mut(channels);
        for row in x.chunks_exact(channels) {
            for (s, &v) in means.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        means.iter_mut().for_each(|s| *s /= rows);
        for row in x.chunks_exact(channels) {
            for ((s, &v), &mean) in squares.iter_mut().zip(row).zip(means.iter()) {
                let deviation = f64::from(v) - mean;
                *s += deviation * deviation;
            }
        }
        self.mean.clear();
        self.mean.extend(means.iter().map(|&m| m as f32));
        self.variance.clear();
        self.variance
            .extend(squares.iter().map(|&s| (s / rows) as f32));
    }

    /// The moving statistics in place of a batch's.
    fn moving(&mut self, mean: &Array1<f32>, variance: &Array1<f32>) {
        self.mean.clear();
        self.mean.extend(mean.iter());
        self.variance.clear();
        self.variance.extend(variance.iter());
    }

    /// `multiplier = 1 / sqrt(variance + epsilon)`.
    fn inverse_deviation(&mut self, epsilon: f32) {
        self.multiplier.clear();
        self.multiplier
            .extend(self.variance.iter().map(|&v| 1.0 / (v + epsilon).sqrt()));
    }

    /// The map `output = input * multiplier + offset` of `layer`, in
    /// Keras' order of operations.
    fn affine(&mut self, layer: &BatchNormalization, channels: usize) {
        self.inverse_deviation(layer.epsilon as f32);
        if layer.scale {
            for (m, &g) in self.multiplier.iter_mut().zip(&layer.gamma) {
                *m *= g;
            }
        }
        self.offset.clear();
        self.offset.extend(
            self.mean
                .iter()
                .zip(&self.multiplier)
                .map(|(&mean, &m)| -mean * m),
        );
        if layer.center {
            for (o, &b) in self.offset.iter_mut().zip(&layer.beta) {
                *o += b;
            }
        }
        debug_assert_eq!(self.offset.len(), channels);
    }
}

/// The statistics buffers of `forward`. A clone starts with empty ones.
#[derive(Debug, Default)]
struct Scratch(Mutex<Statistics>);

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};

    fn built(layer: BatchNormalization, input_shape: &[usize]) -> BatchNormalization {
        let mut layer = layer;
        layer
            .build(input_shape, &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        layer
    }

    fn batch() -> ArrayD<f32> {
        ArrayD::from_shape_vec(vec![4, 2], vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 60.0])
            .unwrap()
    }

    #[test]
    fn training_normalises_each_channel_by_the_batch() {
        let layer = built(BatchNormalization::new().epsilon(1e-9), &[2]);
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(batch().view(), &mut y, true).unwrap();
        for channel in y.columns() {
            let mean = channel.mean().unwrap();
            let variance = channel.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
            assert!(mean.abs() < 1e-6, "{y}");
            assert!((variance - 1.0).abs() < 1e-5, "{y}");
        }
    }

    #[test]
    fn inference_uses_the_moving_statistics() {
        let layer = built(BatchNormalization::new(), &[2]);
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(batch().view(), &mut y, false).unwrap();
        // Moving mean 0, variance 1: x / sqrt(1 + 1e-3).
        let scale = 1.0 / (1.0_f32 + 1e-3).sqrt();
        assert_eq!(y, batch().mapv(|v| v * scale));
    }

    #[test]
    fn update_state_moves_the_statistics_by_one_minus_momentum() {
        let mut layer = built(BatchNormalization::new().momentum(0.5), &[2]);
        let x = batch();
        layer.update_state(x.view(), x.view()).unwrap();
        // Means 3 and 30, biased variances 3.5 and 350.
        assert_eq!(layer.moving_mean().to_vec(), [1.5, 15.0]);
        assert_eq!(layer.moving_variance().to_vec(), [2.25, 175.5]);
    }

    #[test]
    fn a_frozen_layer_keeps_its_statistics_and_runs_as_in_inference() {
        let mut layer = built(BatchNormalization::new(), &[2]);
        layer.on_trainable_changed(false);
        let x = batch();
        layer.update_state(x.view(), x.view()).unwrap();
        assert_eq!(layer.moving_mean().to_vec(), [0.0, 0.0]);
        let (mut training, mut inference) = (ArrayD::zeros(vec![0]), ArrayD::zeros(vec![0]));
        layer.forward(x.view(), &mut training, true).unwrap();
        layer.forward(x.view(), &mut inference, false).unwrap();
        assert_eq!(training, inference);
    }
}
