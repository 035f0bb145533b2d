//! RMSprop: steps scaled by a running mean of the squared gradients.

use serde_json::json;

use super::base::{base_options, BaseOptions};
use super::{fraction, positive, slot_mut, Optimizer, OptimizerState};
use crate::{Error, Result};

/// RMSprop (Hinton's lecture notes), as Keras 3's `RMSprop` computes it in
/// float32.
///
/// For each weight `w` with gradient `g`:
///
/// ```text
/// v   = rho * v + (1 - rho) * g * g
/// a   = rho * a + (1 - rho) * g              (centered only)
/// d   = v + epsilon, or v - a * a + epsilon  (centered)
/// inc = learning_rate * g / sqrt(d)
/// w   = w - inc                              (momentum 0)
/// m   = momentum * m + inc; w = w - m        (momentum > 0)
/// ```
///
/// `epsilon` is added under the square root, as Keras does (PyTorch adds it
/// outside). `1 - rho` is formed in double precision and then rounded, as
/// Keras' Python arithmetic does: for `rho` 0.9 it is exactly `0.1_f32`.
///
/// It also takes the options every optimizer shares with Keras:
/// [`weight_decay`](RmsProp::weight_decay), [`clipnorm`](RmsProp::clipnorm),
/// [`clipvalue`](RmsProp::clipvalue) and
/// [`global_clipnorm`](RmsProp::global_clipnorm).
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{Optimizer, RmsProp};
///
/// let mut rmsprop = RmsProp::new().learning_rate(0.01);
/// let mut w = [1.0_f32];
/// rmsprop.begin_step();
/// rmsprop.update(0, &mut w, &[0.5]);
/// // v = 0.1 * 0.25, so the first step is 0.01 * 0.5 / sqrt(0.025).
/// assert!((w[0] - (1.0 - 0.005 / 0.025_f32.sqrt())).abs() < 1e-6);
/// ```
///
/// # References
///
/// G. Hinton, N. Srivastava, K. Swersky, *Neural Networks for Machine
/// Learning*, lecture 6e; A. Graves, "Generating Sequences With Recurrent
/// Neural Networks", 2013, <https://arxiv.org/abs/1308.0850> (the centered
/// variant).
#[doc(alias = "RMSprop")]
#[derive(Debug, Clone)]
pub struct RmsProp {
    learning_rate: f32,
    rho: f64,
    momentum: f64,
    epsilon: f32,
    centered: bool,
    base: BaseOptions,
    iterations: u64,
    velocity: Vec<Vec<f32>>,
    momenta: Vec<Vec<f32>>,
    average_gradient: Vec<Vec<f32>>,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp::new()
    }
}

/// The names of RMSprop's per-weight arrays in a saved state.
const VELOCITY: &str = "velocity";
const MOMENTUM: &str = "momentum";
const AVERAGE_GRADIENT: &str = "average_gradient";

impl RmsProp {
    /// RMSprop with Keras' defaults: learning rate 0.001, rho 0.9, no
    /// momentum, epsilon 1e-7, not centered, no weight decay or clipping.
    pub fn new() -> Self {
        RmsProp {
            learning_rate: 0.001,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            base: BaseOptions::default(),
            iterations: 0,
            velocity: Vec::new(),
            momenta: Vec::new(),
            average_gradient: Vec::new(),
        }
    }

    /// The learning rate (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Decay rate of the running mean of squared gradients, in `[0, 1)`
    /// (default 0.9).
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Momentum, in `[0, 1)` (default 0, none).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// The small constant added under the square root (default 1e-7).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to divide by the running variance of the gradients rather
    /// than their running mean square (default false).
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// Checks the hyperparameters; `compile` calls this.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a learning rate that is negative or not
    /// finite (0 is allowed, as in Keras), an epsilon that is not positive and
    /// finite, a rho or momentum outside `[0, 1)`, a negative
    /// weight decay, a clipping bound that is not positive, or two kinds of
    /// clipping at once.
    pub fn validate(&self) -> Result<()> {
        super::learning_rate(self.learning_rate)?;
        positive("epsilon", self.epsilon)?;
        fraction("rho", self.rho)?;
        fraction("momentum", self.momentum)?;
        self.base.validate()
    }
}

base_options!(RmsProp, "none");

impl Optimizer for RmsProp {
    fn name(&self) -> &str {
        "rmsprop"
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
    }

    fn needs_all_gradients(&self) -> bool {
        self.base.needs_all_gradients()
    }

    fn observe_gradient(&mut self, _slot: usize, gradient: &[f32]) {
        self.base.observe(gradient);
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        let n = value.len().min(gradient.len());
        let (value, gradient) = (&mut value[..n], &gradient[..n]);
        let lr = self.learning_rate;
        let gradient = self.base.apply(value, gradient, lr);
        let epsilon = self.epsilon;
        let rho = self.rho as f32;
        let keep = (1.0 - self.rho) as f32;
        let momentum = self.momentum as f32;

        for (v, &g) in slot_mut(&mut self.velocity, slot, n)
            .iter_mut()
            .zip(gradient)
        {
            *v = rho * *v + keep * (g * g);
        }
        if self.centered {
            let average = slot_mut(&mut self.average_gradient, slot, n);
            for (a, &g) in average.iter_mut().zip(gradient) {
                *a = rho * *a + keep * g;
            }
        }
        let velocity = &self.velocity[slot];
        let average = self.centered.then(|| &self.average_gradient[slot][..]);
        let increment = |i: usize| {
            let denominator = match average {
                Some(a) => velocity[i] - a[i] * a[i] + epsilon,
                None => velocity[i] + epsilon,
            };
            lr * gradient[i] / denominator.sqrt()
        };
        if self.momentum > 0.0 {
            let momenta = slot_mut(&mut self.momenta, slot, n);
            for (i, (w, m)) in value.iter_mut().zip(momenta).enumerate() {
                *m = momentum * *m + increment(i);
                *w -= *m;
            }
        } else {
            for (i, w) in value.iter_mut().enumerate() {
                *w -= increment(i);
            }
        }
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn state(&self) -> OptimizerState {
        let named = |name: &str, arrays: &[Vec<f32>]| {
            arrays
                .iter()
                .enumerate()
                .map(|(i, values)| (name.to_string(), i, values.clone()))
                .collect::<Vec<_>>()
        };
        let mut slots = named(VELOCITY, &self.velocity);
        slots.extend(named(MOMENTUM, &self.momenta));
        slots.extend(named(AVERAGE_GRADIENT, &self.average_gradient));
        OptimizerState {
            iterations: self.iterations,
            slots,
        }
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let (mut velocity, mut momenta, mut average) = (Vec::new(), Vec::new(), Vec::new());
        for (name, slot, values) in &state.slots {
            let arrays: &mut Vec<Vec<f32>> =
                match name.as_str() {
                    VELOCITY => &mut velocity,
                    MOMENTUM => &mut momenta,
                    AVERAGE_GRADIENT => &mut average,
                    other => return Err(Error::invalid(
                        "optimizer state",
                        other,
                        "RMSprop keeps only `velocity`, `momentum` and `average_gradient` slots",
                    )),
                };
            *slot_mut(arrays, *slot, values.len()) = values.clone();
        }
        self.velocity = velocity;
        self.momenta = momenta;
        self.average_gradient = average;
        self.iterations = state.iterations;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        RmsProp::validate(self)
    }

    fn config(&self) -> serde_json::Value {
        let mut config = json!({
            "name": "rmsprop",
            "learning_rate": self.learning_rate,
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        });
        self.base.write_config(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimises `(w - 3)^2` from `w = 0` and returns the final `w`.
    fn minimise(mut rmsprop: RmsProp, steps: usize) -> f32 {
        let mut w = [0.0_f32];
        for _ in 0..steps {
            let gradient = [2.0 * (w[0] - 3.0)];
            rmsprop.begin_step();
            rmsprop.update(0, &mut w, &gradient);
        }
        w[0]
    }

    #[test]
    fn every_variant_finds_the_minimum_of_a_parabola() {
        let variants = [
            RmsProp::new().learning_rate(0.01),
            RmsProp::new().learning_rate(0.01).momentum(0.5),
            RmsProp::new().learning_rate(0.01).centered(true),
            RmsProp::new()
                .learning_rate(0.01)
                .momentum(0.5)
                .centered(true),
        ];
        for rmsprop in variants {
            let config = rmsprop.config();
            let w = minimise(rmsprop, 2000);
            assert!((w - 3.0).abs() < 0.05, "{config}: {w}");
        }
    }

    #[test]
    fn bad_hyperparameters_are_refused_by_name() {
        for (rmsprop, name) in [
            (RmsProp::new().learning_rate(-0.001), "learning_rate"),
            (RmsProp::new().epsilon(-1e-7), "epsilon"),
            (RmsProp::new().rho(1.0), "rho"),
            (RmsProp::new().rho(f64::NAN), "rho"),
            (RmsProp::new().momentum(-0.1), "momentum"),
        ] {
            let err = rmsprop.validate().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { name: n, .. } if n == name),
                "{err}"
            );
        }
        assert!(RmsProp::new().validate().is_ok());
    }

    #[test]
    fn a_state_is_restored_whole_and_a_foreign_one_refused() {
        let mut rmsprop = RmsProp::new().momentum(0.9).centered(true);
        let mut w = [1.0_f32, 2.0];
        for _ in 0..3 {
            rmsprop.begin_step();
            rmsprop.update(0, &mut w, &[0.5, -0.25]);
        }
        let state = rmsprop.state();
        assert_eq!(state.iterations, 3);
        assert_eq!(state.slots.len(), 3);

        let mut again = RmsProp::new().momentum(0.9).centered(true);
        again.load_state(&state).unwrap();
        assert_eq!(again.state(), state);

        let adam_like = OptimizerState {
            iterations: 1,
            slots: vec![("m".to_string(), 0, vec![0.0])],
        };
        let err = again.load_state(&adam_like).unwrap_err();
        assert!(err.to_string().contains("`velocity`"), "{err}");
    }
}
