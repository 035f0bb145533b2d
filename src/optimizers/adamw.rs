//! AdamW: Adam with decoupled weight decay, Keras 3's `AdamW`.

use super::base::base_options;
use super::{Adam, Optimizer, OptimizerState};
use crate::{Error, Result};

/// AdamW (Loshchilov and Hutter): [`Adam`] whose weights decay by
/// `weight_decay * learning_rate` of their value before each step, as
/// Keras 3's `AdamW` computes it.
///
/// At step `t`, for each weight `w` with gradient `g` (after any clipping):
///
/// ```text
/// w = w - w * weight_decay * learning_rate
/// w = (Adam's step of w with g)
/// ```
///
/// Its defaults are Keras': learning rate 0.001, weight decay 0.004, beta_1
/// 0.9, beta_2 0.999, epsilon 1e-7, no AMSGrad. Its state is Adam's (`m`,
/// `v`, and `v_hat` with AMSGrad), and its config is Adam's under the name
/// `"adamw"`, with `weight_decay` always present.
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{AdamW, Optimizer};
///
/// let mut adamw = AdamW::new().learning_rate(0.01).weight_decay(0.5);
/// let mut w = [1.0_f32];
/// adamw.begin_step();
/// adamw.update(0, &mut w, &[0.0]);
/// // A zero gradient leaves only the decay: 1 - 1 * 0.5 * 0.01.
/// assert!((w[0] - 0.995).abs() < 1e-6);
/// ```
///
/// # References
///
/// I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization",
/// ICLR 2019, <https://arxiv.org/abs/1711.05101>.
#[derive(Debug, Clone)]
pub struct AdamW {
    adam: Adam,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW::new()
    }
}

impl AdamW {
    /// AdamW with Keras' defaults: learning rate 0.001, weight decay 0.004,
    /// beta_1 0.9, beta_2 0.999, epsilon 1e-7, no AMSGrad or clipping.
    pub fn new() -> Self {
        AdamW {
            adam: Adam::new().weight_decay(0.004),
        }
    }

    /// AdamW that runs `adam`, options and all, under AdamW's name.
    pub(crate) fn from_adam(adam: Adam) -> Self {
        AdamW { adam }
    }

    /// The learning rate (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.adam = self.adam.learning_rate(learning_rate);
        self
    }

    /// Decay rate of the first moment (default 0.9).
    pub fn beta_1(mut self, beta_1: f64) -> Self {
        self.adam = self.adam.beta_1(beta_1);
        self
    }

    /// Decay rate of the second moment (default 0.999).
    pub fn beta_2(mut self, beta_2: f64) -> Self {
        self.adam = self.adam.beta_2(beta_2);
        self
    }

    /// Added to `sqrt(v)` for stability (default 1e-7, Keras' value).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.adam = self.adam.epsilon(epsilon);
        self
    }

    /// Whether to use the AMSGrad variant (default false); see
    /// [`Adam::amsgrad`].
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.adam = self.adam.amsgrad(amsgrad);
        self
    }

    /// Checks the hyperparameters; `compile` calls this.
    ///
    /// # Errors
    ///
    /// As [`Adam::validate`], and [`Error::InvalidArgument`] naming
    /// `weight_decay` when it is unset (Keras' `AdamW` requires one).
    pub fn validate(&self) -> Result<()> {
        if self.adam.base.weight_decay.is_none() {
            return Err(Error::invalid(
                "weight_decay",
                "none",
                "AdamW needs a weight decay (Keras' default is 0.004)",
            ));
        }
        self.adam.validate()
    }
}

base_options!(AdamW, "0.004, Keras' value", adam.base);

impl Optimizer for AdamW {
    fn name(&self) -> &str {
        "adamw"
    }

    fn learning_rate(&self) -> f32 {
        Optimizer::learning_rate(&self.adam)
    }

    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.adam.set_learning_rate(learning_rate);
    }

    fn begin_step(&mut self) {
        self.adam.begin_step();
    }

    fn needs_all_gradients(&self) -> bool {
        self.adam.needs_all_gradients()
    }

    fn observe_gradient(&mut self, slot: usize, gradient: &[f32]) {
        self.adam.observe_gradient(slot, gradient);
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        self.adam.update(slot, value, gradient);
    }

    fn iterations(&self) -> u64 {
        self.adam.iterations()
    }

    fn state(&self) -> OptimizerState {
        self.adam.state()
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.adam.load_state(state)
    }

    fn validate(&self) -> Result<()> {
        AdamW::validate(self)
    }

    fn config(&self) -> serde_json::Value {
        let mut config = self.adam.config();
        config["name"] = "adamw".into();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adamw_is_adam_after_the_decay() {
        let mut adamw = AdamW::new().learning_rate(0.01).weight_decay(0.1);
        let mut adam = Adam::new().learning_rate(0.01);
        let (mut a, mut b) = ([0.5_f32, -2.0], [0.5_f32, -2.0]);
        for _ in 0..3 {
            adamw.begin_step();
            adamw.update(0, &mut a, &[0.25, 0.125]);
            adam.begin_step();
            for w in b.iter_mut() {
                *w -= *w * 0.1 * 0.01;
            }
            adam.update(0, &mut b, &[0.25, 0.125]);
        }
        assert_eq!(a, b);
        assert_eq!(adamw.state(), adam.state());
    }

    #[test]
    fn the_config_names_adamw_and_its_weight_decay() {
        let config = AdamW::new().config();
        assert_eq!(config["name"], "adamw");
        assert_eq!(config["weight_decay"], 0.004);
    }
}
