//! The Adam optimizer, with Keras 3's update rule.

use serde_json::json;

use super::base::{base_options, BaseOptions};
use super::{fraction, positive, slot_mut, Optimizer, OptimizerState};
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
/// With [`amsgrad`](Adam::amsgrad), the step divides by the square root of
/// the largest `v` seen so far, `v_hat = max(v_hat, v)`, rather than of `v`
/// (Reddi, Kale and Kumar).
///
/// It also takes the options every optimizer shares with Keras:
/// [`weight_decay`](Adam::weight_decay), [`clipnorm`](Adam::clipnorm),
/// [`clipvalue`](Adam::clipvalue) and
/// [`global_clipnorm`](Adam::global_clipnorm). Adam with weight decay is
/// [`AdamW`](super::AdamW) with another default.
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
/// ICLR 2015, <https://arxiv.org/abs/1412.6980>; S. J. Reddi, S. Kale,
/// S. Kumar, "On the Convergence of Adam and Beyond", ICLR 2018,
/// <https://openreview.net/forum?id=ryQu7f-RZ> (AMSGrad).
#[derive(Debug, Clone)]
pub struct Adam {
    learning_rate: f32,
    beta_1: f64,
    beta_2: f64,
    epsilon: f32,
    amsgrad: bool,
    pub(crate) base: BaseOptions,
    iterations: u64,
    alpha: f32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    v_hat: Vec<Vec<f32>>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new()
    }
}

impl Adam {
    /// Adam with Keras' defaults: learning rate 0.001, beta_1 0.9, beta_2
    /// 0.999, epsilon 1e-7, no AMSGrad, no weight decay or clipping.
    pub fn new() -> Self {
        Adam {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            base: BaseOptions::default(),
            iterations: 0,
            alpha: 0.0,
            m: Vec::new(),
            v: Vec::new(),
            v_hat: Vec::new(),
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

    /// Whether to use the AMSGrad variant (default false): divide by the
    /// largest second moment seen so far, kept in a third state array,
    /// `v_hat`.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
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
}

base_options!(Adam, "none");

/// The constants of one Adam step.
struct Step {
    alpha: f32,
    epsilon: f32,
    keep_1: f32,
    keep_2: f32,
}

impl Step {
    /// Updates `value`, `m` and `v` (all of one length) from `gradient`.
    ///
    /// Where the processor has AVX, or AVX-512, the same loop is compiled
    /// for it: two or four times the lanes for the square roots and
    /// divisions that dominate the update. The results are identical to the
    /// bit, since every version does the same IEEE operations in the same
    /// order (no fused multiply-add); a test compares them with a plain
    /// loop.
    fn apply(&self, value: &mut [f32], gradient: &[f32], m: &mut [f32], v: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor supports AVX-512F, checked just above.
            unsafe { self.apply_avx512(value, gradient, m, v) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the processor supports AVX, checked just above.
            unsafe { self.apply_avx(value, gradient, m, v) };
            return;
        }
        self.apply_portable(value, gradient, m, v);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn apply_avx512(
        &self,
        value: &mut [f32],
        gradient: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        self.apply_portable(value, gradient, m, v);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn apply_avx(&self, value: &mut [f32], gradient: &[f32], m: &mut [f32], v: &mut [f32]) {
        self.apply_portable(value, gradient, m, v);
    }

    /// An indexed loop over slices of one length: the compiler drops the
    /// bounds checks and uses vector instructions, square root and division
    /// included.
    #[inline(always)]
    fn apply_portable(&self, value: &mut [f32], gradient: &[f32], m: &mut [f32], v: &mut [f32]) {
        let n = value.len();
        let (gradient, m, v) = (&gradient[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let g = gradient[i];
            m[i] = flush_tiny(m[i] + (g - m[i]) * self.keep_1);
            v[i] = flush_tiny(v[i] + (g * g - v[i]) * self.keep_2);
            value[i] -= m[i] * self.alpha / (v[i].sqrt() + self.epsilon);
        }
    }

    /// The AMSGrad update: as [`apply_portable`](Step::apply_portable),
    /// dividing by the square root of `v_hat`, the largest `v` so far.
    fn apply_amsgrad(
        &self,
        value: &mut [f32],
        gradient: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        v_hat: &mut [f32],
    ) {
        let n = value.len();
        let (gradient, m, v, v_hat) = (&gradient[..n], &mut m[..n], &mut v[..n], &mut v_hat[..n]);
        for i in 0..n {
            let g = gradient[i];
            m[i] = flush_tiny(m[i] + (g - m[i]) * self.keep_1);
            v[i] = flush_tiny(v[i] + (g * g - v[i]) * self.keep_2);
            // A NaN `v` is kept, as XLA's maximum keeps it.
            if v[i] > v_hat[i] || v[i].is_nan() {
                v_hat[i] = v[i];
            }
            value[i] -= m[i] * self.alpha / (v_hat[i].sqrt() + self.epsilon);
        }
    }
}

/// Moments smaller than this in size are stored as zero: 2^-100, about
/// 7.9e-31.
const TINY: f32 = 7.888_609e-31;

/// `x`, or zero when it is smaller than [`TINY`] in size.
///
/// The moments of a weight whose gradient stays zero (the weights of a
/// pixel that is blank in every image of a batch) decay towards zero. Once
/// they come within a factor of a thousand or so of the subnormal range,
/// the decay `(g - m) * (1 - beta_1)` and the step `m * alpha` produce
/// subnormal numbers, each of which costs an x86 processor a hundred cycles
/// or more; a few hundred such weights in the reference MLP cost a tenth
/// of its training step. TensorFlow's CPU kernels avoid this by flushing
/// subnormal numbers to zero. kerust stores a moment below 2^-100 as zero
/// instead, which keeps every operation of the update on normal numbers
/// (for step sizes above 2^-26) and changes no weight of ordinary size: a
/// first moment of 2^-100 moves a weight by at most
/// `2^-100 * alpha / epsilon`, about 1e-26 with Keras' defaults, and a
/// second moment of 2^-100 adds 2^-50 to `sqrt(v)`, less than half the last
/// bit of the default `epsilon`.
#[inline(always)]
fn flush_tiny(x: f32) -> f32 {
    if x.abs() < TINY {
        0.0
    } else {
        x
    }
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
        self.base.begin_step();
        self.iterations += 1;
        let t = self.iterations as f32;
        // As Keras: the betas are cast to float32 and raised in float32.
        let (beta_1, beta_2) = (self.beta_1 as f32, self.beta_2 as f32);
        let correction_2 = (1.0 - beta_2.powf(t)).sqrt();
        self.alpha = self.learning_rate * correction_2 / (1.0 - beta_1.powf(t));
    }

    fn needs_all_gradients(&self) -> bool {
        self.base.needs_all_gradients()
    }

    fn observe_gradient(&mut self, _slot: usize, gradient: &[f32]) {
        self.base.observe(gradient);
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        let gradient = self.base.apply(value, gradient, self.learning_rate);
        let (alpha, epsilon) = (self.alpha, self.epsilon);
        // `1 - beta` is taken in double precision, then rounded, as Keras
        // does with its Python float: 1 - 0.999 gives 0.001 exactly.
        let (keep_1, keep_2) = ((1.0 - self.beta_1) as f32, (1.0 - self.beta_2) as f32);
        let n = value.len();
        let m = &mut slot_mut(&mut self.m, slot, n)[..n];
        let v = &mut slot_mut(&mut self.v, slot, n)[..n];
        let step = Step {
            alpha,
            epsilon,
            keep_1,
            keep_2,
        };
        if self.amsgrad {
            let v_hat = &mut slot_mut(&mut self.v_hat, slot, n)[..n];
            step.apply_amsgrad(value, &gradient[..n], m, v, v_hat);
        } else {
            step.apply(value, &gradient[..n], m, v);
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
        for (i, v_hat) in self.v_hat.iter().enumerate() {
            slots.push(("v_hat".to_string(), i, v_hat.clone()));
        }
        OptimizerState {
            iterations: self.iterations,
            slots,
        }
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let (mut m, mut v, mut v_hat) = (Vec::new(), Vec::new(), Vec::new());
        for (name, slot, values) in &state.slots {
            let target = match name.as_str() {
                "m" => &mut m,
                "v" => &mut v,
                "v_hat" if self.amsgrad => &mut v_hat,
                other => {
                    let kept = if self.amsgrad {
                        "Adam with AMSGrad keeps only `m`, `v` and `v_hat` slots"
                    } else {
                        "Adam keeps only `m` and `v` slots"
                    };
                    return Err(Error::invalid("optimizer state", other, kept));
                }
            };
            *slot_mut(target, *slot, values.len()) = values.clone();
        }
        self.m = m;
        self.v = v;
        self.v_hat = v_hat;
        self.iterations = state.iterations;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        Adam::validate(self)
    }

    /// Keras' fields; `amsgrad` and the shared options appear only when
    /// they are set, so that a plain Adam's config is what earlier versions
    /// of kerust wrote.
    fn config(&self) -> serde_json::Value {
        let mut config = json!({
            "name": "adam",
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        });
        if self.amsgrad {
            config["amsgrad"] = json!(true);
        }
        self.base.write_config(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnormal(x: f32) -> bool {
        x != 0.0 && x.abs() < f32::MIN_POSITIVE
    }

    /// A weight that had one gradient and then none: its first moment
    /// decays to exactly zero, and neither it nor the values the update
    /// computes from it (`m * alpha`, the decay `(0 - m) * (1 - beta_1)`)
    /// is ever subnormal.
    #[test]
    fn decaying_moments_reach_zero_without_subnormal_values() {
        let mut adam = Adam::new();
        let keep_1 = (1.0 - adam.beta_1) as f32;
        let mut w = [0.25_f32, -0.5];
        adam.begin_step();
        adam.update(0, &mut w, &[1e-3, -2e-7]);
        for step in 0..2000 {
            adam.begin_step();
            for (name, _, values) in &adam.state().slots {
                for &x in values {
                    assert!(!subnormal(x), "{name} = {x:e} before step {step}");
                    if name == "m" {
                        assert!(!subnormal(x * adam.alpha), "m * alpha, step {step}");
                        assert!(!subnormal((0.0 - x) * keep_1), "decay, step {step}");
                    }
                }
            }
            adam.update(0, &mut w, &[0.0, 0.0]);
        }
        // m shrinks by 0.9 a step from about 1e-4: zero after some 580
        // steps.
        assert_eq!(adam.state().slots[0].2, vec![0.0, 0.0]);
        assert!(w.iter().all(|x| x.is_finite()));
    }

    /// One compiled version of [`Step::apply`].
    type Update = fn(&Step, &mut [f32], &[f32], &mut [f32], &mut [f32]);

    /// The update of one weight as the documentation writes it, one
    /// element at a time.
    fn plain(step: &Step, value: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let m = flush_tiny(m + (g - m) * step.keep_1);
        let v = flush_tiny(v + (g * g - v) * step.keep_2);
        (value - m * step.alpha / (v.sqrt() + step.epsilon), m, v)
    }

    /// Every compiled version of the update (plain x86-64, AVX, AVX-512,
    /// whichever the processor has) gives the plain loop's values to the
    /// bit, for lengths with and without a remainder of 8 or 16, zero and
    /// tiny gradients, and moments on both sides of the flush.
    #[test]
    fn compiled_updates_equal_the_plain_loop_to_the_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let step = Step {
            alpha: 1.3e-3,
            epsilon: 1e-7,
            keep_1: 0.1,
            keep_2: 0.001,
        };
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 100, 1027] {
            let mut draw = |scale: f32| -> Vec<f32> {
                (0..n)
                    .map(|i| match i % 4 {
                        0 => 0.0,
                        1 => rng.random_range(-1.0..1.0) * scale * 1e-28,
                        _ => rng.random_range(-1.0..1.0) * scale,
                    })
                    .collect()
            };
            let (value, gradient, m) = (draw(1.0), draw(1e-2), draw(1e-3));
            let v: Vec<f32> = draw(1e-5).iter().map(|x| x * x).collect();
            let expected: Vec<(f32, f32, f32)> = (0..n)
                .map(|i| plain(&step, value[i], gradient[i], m[i], v[i]))
                .collect();
            let bits = |w: &[f32], m: &[f32], v: &[f32]| -> Vec<[u32; 3]> {
                (0..n)
                    .map(|i| [w[i].to_bits(), m[i].to_bits(), v[i].to_bits()])
                    .collect()
            };
            let want: Vec<[u32; 3]> = expected
                .iter()
                .map(|&(w, m, v)| [w.to_bits(), m.to_bits(), v.to_bits()])
                .collect();
            let mut versions: Vec<(&str, Update)> = vec![
                ("dispatch", Step::apply),
                ("portable", Step::apply_portable),
            ];
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx") {
                    // SAFETY: the processor supports AVX.
                    versions.push(("avx", |s, w, g, m, v| unsafe { s.apply_avx(w, g, m, v) }));
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the processor supports AVX-512F.
                    versions.push(("avx512", |s, w, g, m, v| unsafe {
                        s.apply_avx512(w, g, m, v)
                    }));
                }
            }
            for (name, apply) in versions {
                let (mut w, mut m, mut v) = (value.clone(), m.clone(), v.clone());
                apply(&step, &mut w, &gradient, &mut m, &mut v);
                assert_eq!(bits(&w, &m, &v), want, "{name}, {n} weights");
            }
        }
    }

    /// AMSGrad's step divides by the largest `v`: after a large gradient
    /// and then small ones, `v_hat` stays at its peak while `v` decays, and
    /// a state with `v_hat` loads only into Adam with AMSGrad.
    #[test]
    fn amsgrad_keeps_the_largest_second_moment_and_its_state() {
        let mut adam = Adam::new().amsgrad(true);
        let mut w = [0.0_f32];
        for g in [10.0, 0.1, 0.1] {
            adam.begin_step();
            adam.update(0, &mut w, &[g]);
        }
        let state = adam.state();
        let (v, v_hat) = (state.slots[1].2[0], state.slots[2].2[0]);
        assert_eq!(state.slots[2].0, "v_hat");
        // The first step's v: 100 * (1 - beta_2), in float32.
        assert_eq!(v_hat, 100.0_f32 * (1.0 - 0.999_f64) as f32);
        assert!(v < v_hat, "{v} < {v_hat}");

        let mut again = Adam::new().amsgrad(true);
        again.load_state(&state).unwrap();
        assert_eq!(again.state(), state);
        let err = Adam::new().load_state(&state).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("v_hat") && err.contains("only `m` and `v`"),
            "{err}"
        );
    }

    #[test]
    fn tiny_is_two_to_the_minus_100() {
        assert_eq!(TINY, 2.0_f32.powi(-100));
    }
}
