//! Nadam: Adam with Nesterov momentum, Keras 3's `Nadam`.

use serde_json::json;

use super::base::{base_options, BaseOptions};
use super::{fraction, positive, slot_mut, Optimizer, OptimizerState};
use crate::{Error, Result};

/// Nadam (Dozat), exactly as Keras 3's `Nadam` computes it in float32.
///
/// A momentum schedule `u_t = beta_1 * (1 - 0.5 * 0.96^t)` and its running
/// product `P_t = u_1 * ... * u_t` are kept per step. At step `t` (from 1),
/// for each weight `w` with gradient `g`:
///
/// ```text
/// m     = m + (g - m) * (1 - beta_1)
/// v     = v + (g * g - v) * (1 - beta_2)
/// m_hat = u_{t+1} * m / (1 - P_t * u_{t+1}) + (1 - u_t) * g / (1 - P_t)
/// v_hat = v / (1 - beta_2^t)
/// w     = w - m_hat * learning_rate / (sqrt(v_hat) + epsilon)
/// ```
///
/// As in Keras, `1 - beta` is taken in float32 here (Adam takes it in double
/// precision), and `epsilon` is added to the square root of the corrected
/// `v_hat`. The three divisions by a number of the step (`1 - P_t * u_{t+1}`,
/// `1 - P_t`, `1 - beta_2^t`) are products with its reciprocal, as XLA
/// computes a division of an array by a scalar on Keras' JAX backend.
///
/// The product `P_t` follows from the step count, so a checkpoint keeps
/// only `m` and `v`.
///
/// It also takes the options every optimizer shares with Keras:
/// [`weight_decay`](Nadam::weight_decay), [`clipnorm`](Nadam::clipnorm),
/// [`clipvalue`](Nadam::clipvalue) and
/// [`global_clipnorm`](Nadam::global_clipnorm).
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{Nadam, Optimizer};
///
/// let mut nadam = Nadam::new().learning_rate(0.01);
/// let mut w = [1.0_f32, -1.0];
/// nadam.begin_step();
/// nadam.update(0, &mut w, &[0.5, -0.5]);
/// // Like Adam, the first step moves each weight by about the learning rate.
/// assert!((w[0] - 0.99).abs() < 1e-3 && (w[1] + 0.99).abs() < 1e-3);
/// ```
///
/// # References
///
/// T. Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016
/// workshop, <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>.
#[derive(Debug, Clone)]
pub struct Nadam {
    learning_rate: f32,
    beta_1: f64,
    beta_2: f64,
    epsilon: f32,
    base: BaseOptions,
    iterations: u64,
    /// `P_t`, the product of the momentum schedule up to this step.
    u_product: f32,
    step: Step,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

/// The constants of one Nadam step, the same for every weight.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    /// `u_{t+1}`.
    u_next: f32,
    /// `1 - u_t`.
    one_minus_u: f32,
    /// `1 / (1 - P_t * u_{t+1})`.
    inverse_product_next: f32,
    /// `1 / (1 - P_t)`.
    inverse_product: f32,
    /// `1 / (1 - beta_2^t)`.
    inverse_beta_2_power: f32,
}

impl Default for Nadam {
    fn default() -> Self {
        Nadam::new()
    }
}

impl Nadam {
    /// Nadam with Keras' defaults: learning rate 0.001, beta_1 0.9, beta_2
    /// 0.999, epsilon 1e-7, no weight decay or clipping.
    pub fn new() -> Self {
        Nadam {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            base: BaseOptions::default(),
            iterations: 0,
            u_product: 1.0,
            step: Step::default(),
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// The learning rate (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Decay rate of the first moment, in `[0, 1)` (default 0.9).
    pub fn beta_1(mut self, beta_1: f64) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Decay rate of the second moment, in `[0, 1)` (default 0.999).
    pub fn beta_2(mut self, beta_2: f64) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Added to `sqrt(v_hat)` for stability (default 1e-7, Keras' value).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Checks the hyperparameters; `compile` calls this.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a learning rate that is negative or not
    /// finite (0 is allowed, as in Keras), an epsilon that is not positive and
    /// finite, a beta outside `[0, 1)`, a negative weight
    /// decay, a clipping bound that is not positive, or two kinds of
    /// clipping at once.
    pub fn validate(&self) -> Result<()> {
        super::learning_rate(self.learning_rate)?;
        positive("epsilon", self.epsilon)?;
        fraction("beta_1", self.beta_1)?;
        fraction("beta_2", self.beta_2)?;
        self.base.validate()
    }

    /// `u_t`, the momentum of step `t`.
    fn momentum_at(&self, t: f32) -> f32 {
        self.beta_1 as f32 * (1.0 - 0.5 * 0.96_f32.powf(t))
    }

    /// The product `P_t` after `steps` steps, multiplied in the order Keras
    /// multiplies it, one step at a time.
    fn u_product_after(&self, steps: u64) -> f32 {
        let mut product = 1.0_f32;
        for t in 1..=steps {
            product = product * self.beta_1 as f32 * (1.0 - 0.5 * 0.96_f32.powf(t as f32));
        }
        product
    }
}

base_options!(Nadam, "none");

impl Optimizer for Nadam {
    fn name(&self) -> &str {
        "nadam"
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.learning_rate = learning_rate;
    }

    fn begin_step(&mut self) {
        self.base.begin_step();
        self.iterations += 1;
        let t = self.iterations as f32;
        // Keras multiplies the running product by `beta_1` and then by the
        // schedule's factor, rather than by `u_t` at once; the two can
        // differ in the last bit.
        let factor = 1.0 - 0.5 * 0.96_f32.powf(t);
        self.u_product = self.u_product * self.beta_1 as f32 * factor;
        let u = self.momentum_at(t);
        let u_next = self.momentum_at(t + 1.0);
        self.step = Step {
            u_next,
            one_minus_u: 1.0 - u,
            inverse_product_next: 1.0 / (1.0 - self.u_product * u_next),
            inverse_product: 1.0 / (1.0 - self.u_product),
            inverse_beta_2_power: 1.0 / (1.0 - (self.beta_2 as f32).powf(t)),
        };
    }

    fn needs_all_gradients(&self) -> bool {
        self.base.needs_all_gradients()
    }

    fn observe_gradient(&mut self, _slot: usize, gradient: &[f32]) {
        self.base.observe(gradient);
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        let n = value.len().min(gradient.len());
        let value = &mut value[..n];
        let lr = self.learning_rate;
        let gradient = self.base.apply(value, &gradient[..n], lr);
        let epsilon = self.epsilon;
        // `1 - beta` in float32, as Keras' Nadam computes it.
        let keep_1 = 1.0 - self.beta_1 as f32;
        let keep_2 = 1.0 - self.beta_2 as f32;
        let s = self.step;
        let m = &mut slot_mut(&mut self.m, slot, n)[..n];
        let v = &mut slot_mut(&mut self.v, slot, n)[..n];
        for i in 0..n {
            let g = gradient[i];
            m[i] += (g - m[i]) * keep_1;
            v[i] += (g * g - v[i]) * keep_2;
            let m_hat =
                s.u_next * m[i] * s.inverse_product_next + s.one_minus_u * g * s.inverse_product;
            let v_hat = v[i] * s.inverse_beta_2_power;
            value[i] -= m_hat * lr / (v_hat.sqrt() + epsilon);
        }
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn state(&self) -> OptimizerState {
        let mut slots = Vec::new();
        for (i, m) in self.m.iter().enumerate() {
            slots.push(("m".to_string(), i, m.clone()));
        }
        for (i, v) in self.v.iter().enumerate() {
            slots.push(("v".to_string(), i, v.clone()));
        }
        OptimizerState {
            iterations: self.iterations,
            slots,
        }
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for (name, slot, values) in &state.slots {
            let target = match name.as_str() {
                "m" => &mut m,
                "v" => &mut v,
                other => {
                    return Err(Error::invalid(
                        "optimizer state",
                        other,
                        "Nadam keeps only `m` and `v` slots",
                    ))
                }
            };
            *slot_mut(target, *slot, values.len()) = values.clone();
        }
        self.m = m;
        self.v = v;
        self.iterations = state.iterations;
        self.u_product = self.u_product_after(state.iterations);
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        Nadam::validate(self)
    }

    fn config(&self) -> serde_json::Value {
        let mut config = json!({
            "name": "nadam",
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        });
        self.base.write_config(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_made_again_from_the_step_count_is_the_running_one() {
        let mut nadam = Nadam::new().beta_1(0.85);
        for _ in 0..300 {
            nadam.begin_step();
        }
        let again = nadam.u_product_after(300);
        assert_eq!(again.to_bits(), nadam.u_product.to_bits());
        assert!(nadam.u_product > 0.0);
    }

    #[test]
    fn bad_hyperparameters_are_refused_by_name() {
        for (nadam, name) in [
            (Nadam::new().learning_rate(f32::NAN), "learning_rate"),
            (Nadam::new().epsilon(-1.0), "epsilon"),
            (Nadam::new().beta_1(1.0), "beta_1"),
            (Nadam::new().beta_2(-0.5), "beta_2"),
            (Nadam::new().weight_decay(f64::INFINITY), "weight_decay"),
        ] {
            let err = nadam.validate().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { name: n, .. } if n == name),
                "{err}"
            );
        }
        assert!(Nadam::new().validate().is_ok());
    }
}
