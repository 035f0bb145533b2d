//! Randomly zeroes inputs during training.

use ndarray::{ArrayD, ArrayViewD};
use rand::{Rng, RngCore};
use serde_json::json;

use super::config::Fields;
use super::{check_input, resize, Layer};
use crate::random::{stream, Purpose};
use crate::{Error, Result};

/// Keras' `Dropout`: while training, sets each input to zero with
/// probability `rate` and divides the others by `1 - rate`, so that
/// the expected sum is unchanged; at inference (`evaluate`, `predict`) it
/// passes its input through.
///
/// # Randomness
///
/// The mask of a training step depends only on the layer's seed and the
/// step's place in training, `(epoch, step)`, which [`fit`] gives every
/// layer through [`Layer::start_step`]. So two runs with one seed drop the
/// same units, with any number of threads, and a run resumed from a
/// checkpoint with `initial_epoch` drops the units the uninterrupted run
/// dropped. The seed is [`seed`](Dropout::seed)'s, or, by default, drawn
/// from the model's seed when the layer is built (Keras draws it from its
/// global generator instead) and kept in the layer's config, so a saved
/// model draws the same masks once loaded. [`train_on_batch`] numbers its
/// calls as the steps of an epoch of its own.
///
/// [`fit`]: crate::model::Sequential::fit
/// [`train_on_batch`]: crate::model::Sequential::train_on_batch
///
/// # Shapes
///
/// Any input `(batch, ...)`; the output has the same shape.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([28, 28, 1])
///     .add(Flatten::new())
///     .add(Dense::new(128).activation(Activation::Relu))
///     .add(Dropout::new(0.2))
///     .add(Dense::new(10).activation(Activation::Softmax));
/// model.build()?;
/// assert_eq!(model.layers()[2].name(), "dropout");
///
/// // Inference passes the values through.
/// let x = ndarray::Array4::<f32>::from_elem((2, 28, 28, 1), 0.5);
/// let with_dropout = model.predict(&x)?;
/// assert_eq!(with_dropout.shape(), &[2, 10]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    name: String,
    rate: f64,
    seed: Option<u64>,
    noise_seed: u64,
    epoch: u64,
    step: u64,
    input_shape: Option<Vec<usize>>,
}

impl Dropout {
    /// Drops each input with probability `rate`, in `[0, 1)`; checked when
    /// the layer is built.
    pub fn new(rate: f64) -> Self {
        Dropout {
            name: String::new(),
            rate,
            seed: None,
            noise_seed: 0,
            epoch: 0,
            step: 0,
            input_shape: None,
        }
    }

    /// Draws the masks from `seed` instead of a seed taken from the model's.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The probability of dropping an input.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Builds a layer from its [`config`](Layer::config):
    /// `{"name": ..., "rate": 0.2, "seed": null}`, `name` and `seed` being
    /// optional.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config is not an object, `rate`
    /// is missing or not a number, `seed` is neither null nor an unsigned
    /// integer, or a field is not one of these three.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Dropout, Layer};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = Dropout::from_config(&serde_json::json!({ "name": "drop", "rate": 0.5 }))?;
    /// assert_eq!((layer.name(), layer.rate()), ("drop", 0.5));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        let fields = Fields::new("Dropout", config, &["name", "rate", "seed"])?;
        let name = fields.name()?;
        let rate: f64 = fields.required("rate")?;
        let seed: Option<u64> = fields.optional::<Option<u64>>("seed")?.flatten();
        let mut layer = Dropout::new(rate);
        layer.name = name;
        layer.seed = seed;
        Ok(layer)
    }

    /// Applies the mask of the current step to `values`: a kept value is
    /// divided by the keep probability `1 - rate`, as Keras does, a dropped
    /// one becomes zero. Forward and backward draw the same mask.
    fn apply_mask(&self, values: &mut [f32]) {
        let keep = 1.0 - self.rate as f32;
        let mut rng = stream(self.noise_seed, Purpose::Dropout, self.epoch, self.step);
        for v in values {
            *v = if rng.random::<f32>() < keep {
                *v / keep
            } else {
                0.0
            };
        }
    }
}

impl Layer for Dropout {
    fn class_name(&self) -> &str {
        "Dropout"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(
                "rate",
                self.rate,
                "expected a probability in [0, 1)",
            ));
        }
        self.noise_seed = self.seed.unwrap_or_else(|| rng.next_u64());
        self.input_shape = Some(input_shape.to_vec());
        Ok(input_shape.to_vec())
    }

    fn start_step(&mut self, epoch: usize, step: usize) {
        self.epoch = epoch as u64;
        self.step = step as u64;
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        training: bool,
    ) -> Result<()> {
        check_input(&self.name, self.input_shape.as_deref(), &input)?;
        resize(output, input.shape());
        output.assign(&input);
        if training && self.rate > 0.0 {
            let Some(values) = output.as_slice_mut() else {
                unreachable!("`resize` makes standard-layout arrays");
            };
            self.apply_mask(values);
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
        check_input(&self.name, self.input_shape.as_deref(), &input)?;
        if grad_output.shape() != input.shape() {
            return Err(Error::shape(
                &self.name,
                crate::error::format_shape(input.shape()),
                grad_output.shape(),
            ));
        }
        let Some(grad_input) = grad_input else {
            return Ok(());
        };
        resize(grad_input, input.shape());
        grad_input.assign(&grad_output);
        if self.rate > 0.0 {
            let Some(values) = grad_input.as_slice_mut() else {
                unreachable!("`resize` makes standard-layout arrays");
            };
            self.apply_mask(values);
        }
        Ok(())
    }

    /// `{"name", "rate", "seed"}`. Once built, `seed` is the one the masks
    /// are drawn from, also when it came from the model's, so that a saved
    /// and loaded model (or a resumed checkpoint) drops the same units.
    fn config(&self) -> serde_json::Value {
        let seed = self
            .seed
            .or_else(|| self.input_shape.is_some().then_some(self.noise_seed));
        json!({ "name": self.name, "rate": self.rate, "seed": seed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn built(rate: f64, seed: u64) -> Dropout {
        let mut layer = Dropout::new(rate).seed(seed);
        let mut rng = stream(0, Purpose::Init, 0, 0);
        layer.build(&[1000], &mut rng).unwrap();
        layer
    }

    #[test]
    fn training_drops_about_rate_and_keeps_the_expected_sum() {
        let layer = built(0.3, 7);
        let x = Array2::<f32>::ones((20, 1000)).into_dyn();
        let mut out = ArrayD::zeros(ndarray::IxDyn(&[0]));
        layer.forward(x.view(), &mut out, true).unwrap();
        let dropped = out.iter().filter(|&&v| v == 0.0).count() as f64 / out.len() as f64;
        assert!((dropped - 0.3).abs() < 0.01, "{dropped}");
        let scale = 1.0 / (1.0 - 0.3_f32);
        assert!(out.iter().all(|&v| v == 0.0 || v == scale));
        let mean = out.iter().map(|&v| f64::from(v)).sum::<f64>() / out.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
    }

    #[test]
    fn inference_is_the_identity() {
        let layer = built(0.5, 1);
        let x = Array2::from_shape_fn((3, 1000), |(i, j)| (i * j) as f32 - 7.0).into_dyn();
        let mut out = ArrayD::zeros(ndarray::IxDyn(&[0]));
        layer.forward(x.view(), &mut out, false).unwrap();
        assert_eq!(out, x);
    }

    #[test]
    fn the_mask_follows_the_step_and_backward_uses_the_forward_mask() {
        let mut layer = built(0.5, 3);
        let x = Array2::<f32>::ones((2, 1000)).into_dyn();
        let (mut a, mut b) = (
            ArrayD::zeros(ndarray::IxDyn(&[0])),
            ArrayD::zeros(ndarray::IxDyn(&[0])),
        );
        layer.start_step(0, 4);
        layer.forward(x.view(), &mut a, true).unwrap();
        layer.start_step(0, 5);
        layer.forward(x.view(), &mut b, true).unwrap();
        assert_ne!(a, b, "another step draws another mask");
        layer.start_step(0, 4);
        layer.forward(x.view(), &mut b, true).unwrap();
        assert_eq!(a, b, "the same step draws the same mask");

        let mut grad = ArrayD::zeros(ndarray::IxDyn(&[0]));
        layer
            .backward(x.view(), a.view(), x.view(), Some(&mut grad))
            .unwrap();
        assert_eq!(grad, a, "the gradient of a kept unit is its factor");
    }

    #[test]
    fn a_rate_outside_zero_to_one_is_refused_at_build() {
        let mut rng = stream(0, Purpose::Init, 0, 0);
        for rate in [-0.1, 1.0, f64::NAN] {
            let err = Dropout::new(rate).build(&[4], &mut rng).unwrap_err();
            assert!(err.to_string().contains("[0, 1)"), "{err}");
        }
    }
}
