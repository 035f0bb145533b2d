//! The Adam optimizer, with Keras 3's update rule.

use serde_json::json;

use super::{Optimizer, OptimizerState};
use crate::{Error, Result};

/// Adam (Kingma and Ba), exactly as Keras 3 computes it in float32.
///
/// At step `t` (from 1), for each weight `w` with gradient `g`:
///
/// ```text
/// alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
/// m     = m + (g - m) * (1 - beta_1)
/// v     = v + (g * g - v) * (1 - beta_2)
/// w     = w - m * alpha / (sqrt(v) + epsilon)
/// ```
///
/// The bias correction is folded into the step size and `epsilon` is added to
/// the square root of the *uncorrected* `v`, as in Keras (PyTorch adds it to
/// the corrected one, so its `eps` means something slightly different).
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{Adam, Optimizer};
///
/// let mut adam = Adam::new().learning_rate(0.01);
/// let mut w = [1.0_f32, -1.0];
/// adam.begin_step();
/// adam.update(0, &mut w, &[0.5, -0.5]);
/// // The first step moves every weight by about the learning rate.
/// assert!((w[0] - 0.99).abs() < 1e-6 && (w[1] + 0.99).abs() < 1e-6);
/// ```
///
/// # References
///
/// D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization",
/// ICLR 2015, <https://arxiv.org/abs/1412.6980>.
#[derive(Debug, Clone)]
pub struct Adam {
    learning_rate: f32,
    beta_1: f64,
    beta_2: f64,
    epsilon: f32,
    iterations: u64,
    alpha: f32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new()
    }
}

impl Adam {
    /// Adam with Keras' defaults: learning rate 0.001, beta_1 0.9, beta_2
    /// 0.999, epsilon 1e-7.
    pub fn new() -> Self {
        Adam {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            iterations: 0,
            alpha: 0.0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// The learning rate (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Decay rate of the first moment (default 0.9).
    pub fn beta_1(mut self, beta_1: f64) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Decay rate of the second moment (default 0.999).
    pub fn beta_2(mut self, beta_2: f64) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Added to `sqrt(v)` for stability (default 1e-7, Keras' value).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Checks the hyperparameters; `compile` calls this.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a learning rate or epsilon that is not
    /// positive and finite, or a beta outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        positive("learning_rate", self.learning_rate)?;
        positive("epsilon", self.epsilon)?;
        for (name, beta) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::invalid(name, beta, "expected a value in [0, 1)"));
            }
        }
        Ok(())
    }
}

pub(crate) fn positive(name: &str, value: f32) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            value,
            "expected a positive, finite number",
        ))
    }
}

fn slot_mut(slots: &mut Vec<Vec<f32>>, slot: usize, len: usize) -> &mut Vec<f32> {
    if slots.len() <= slot {
        slots.resize_with(slot + 1, Vec::new);
    }
    let state = &mut slots[slot];
    if state.len() != len {
        *state = vec![0.0; len];
    }
    state
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        "adam"
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.learning_rate = learning_rate;
    }

    fn begin_step(&mut self) {
        self.iterations += 1;
        let t = self.iterations as f32;
        // As Keras: the betas are cast to float32 and raised in float32.
        let (beta_1, beta_2) = (self.beta_1 as f32, self.beta_2 as f32);
        let correction_2 = (1.0 - beta_2.powf(t)).sqrt();
        self.alpha = self.learning_rate * correction_2 / (1.0 - beta_1.powf(t));
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        let (alpha, epsilon) = (self.alpha, self.epsilon);
        // `1 - beta` is taken in double precision, then rounded, as Keras
        // does with its Python float: 1 - 0.999 gives 0.001 exactly.
        let (keep_1, keep_2) = ((1.0 - self.beta_1) as f32, (1.0 - self.beta_2) as f32);
        let n = value.len();
        let m = &mut slot_mut(&mut self.m, slot, n)[..n];
        let v = &mut slot_mut(&mut self.v, slot, n)[..n];
        let gradient = &gradient[..n];
        // An indexed loop over slices of one length: the compiler drops the
        // bounds checks and uses vector instructions, sqrt and division
        // included.
        for i in 0..n {
            let g = gradient[i];
            m[i] += (g - m[i]) * keep_1;
            v[i] += (g * g - v[i]) * keep_2;
            value[i] -= m[i] * alpha / (v[i].sqrt() + epsilon);
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
                        "Adam keeps only `m` and `v` slots",
                    ))
                }
            };
            *slot_mut(target, *slot, values.len()) = values.clone();
        }
        self.m = m;
        self.v = v;
        self.iterations = state.iterations;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        Adam::validate(self)
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": "adam",
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        })
    }
}
