//! Central finite differences against every layer's and loss' backward pass.

use kerust::gradcheck::{check_layer, check_loss};
use kerust::prelude::*;
use kerust::random::{stream, Purpose};
use ndarray::{Array, ArrayD, IxDyn};
use rand::Rng;

const EPSILON: f32 = 1e-2;
const TOLERANCE: f64 = 2e-3;

/// Values in [-1, 1], kept at least 0.05 away from 0 so that no perturbation
/// crosses ReLU's kink.
fn input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = stream(seed, Purpose::User(1), 0, 0);
    Array::from_shape_simple_fn(IxDyn(shape), || {
        let v: f32 = rng.random_range(0.05..1.0);
        if rng.random::<bool>() {
            v
        } else {
            -v
        }
    })
}

fn built(mut layer: impl Layer, input_shape: &[usize]) -> impl Layer {
    layer
        .build(input_shape, &mut stream(3, Purpose::Init, 0, 0))
        .unwrap();
    layer
}

#[test]
fn dense_backward_matches_finite_differences_for_every_activation() {
    for activation in [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        for use_bias in [true, false] {
            let mut layer = built(
                Dense::new(4).activation(activation).use_bias(use_bias),
                &[5],
            );
            let check = check_layer(&mut layer, input(&[3, 5], 1).view(), EPSILON).unwrap();
            assert!(
                check.max_error() < TOLERANCE,
                "{activation:?}, bias {use_bias}: {check:?}"
            );
            assert_eq!(check.checked, 15 + 20 + if use_bias { 4 } else { 0 });
        }
    }
}

#[test]
fn dense_acts_on_the_last_axis_of_higher_rank_inputs() {
    let mut layer = built(Dense::new(2).activation(Activation::Tanh), &[3, 4]);
    let check = check_layer(&mut layer, input(&[2, 3, 4], 2).view(), EPSILON).unwrap();
    assert!(check.max_error() < TOLERANCE, "{check:?}");
}

#[test]
fn flatten_relu_and_softmax_backward_match_finite_differences() {
    let x = input(&[2, 3, 4], 3);
    let mut flatten = built(Flatten::new(), &[3, 4]);
    assert!(
        check_layer(&mut flatten, x.view(), EPSILON)
            .unwrap()
            .max_error()
            < TOLERANCE
    );
    let mut relu = built(ReLU::new(), &[3, 4]);
    assert!(
        check_layer(&mut relu, x.view(), EPSILON)
            .unwrap()
            .max_error()
            < TOLERANCE
    );
    let mut softmax = built(Softmax::new(), &[3, 4]);
    assert!(
        check_layer(&mut softmax, x.view(), EPSILON)
            .unwrap()
            .max_error()
            < TOLERANCE
    );
}

#[test]
fn dropout_backward_matches_finite_differences_with_its_mask() {
    let x = input(&[4, 6], 8);
    let mut dropout = built(Dropout::new(0.4).seed(5), &[6]);
    dropout.start_step(1, 2);
    let check = check_layer(&mut dropout, x.view(), EPSILON).unwrap();
    assert!(check.max_error() < TOLERANCE, "{check:?}");
}

#[test]
fn loss_gradients_match_finite_differences() {
    let logits = input(&[4, 3], 4);
    let probs = kerust::losses::softmax(logits.view());
    let labels = ndarray::array![0.0_f32, 2.0, 1.0, 2.0].into_dyn();
    let one_hot = ndarray::array![
        [1.0_f32, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0],
        [0.2, 0.3, 0.5]
    ]
    .into_dyn();
    type Case<'a> = (&'a str, Box<dyn Loss>, &'a ArrayD<f32>, &'a ArrayD<f32>);
    let cases: Vec<Case> = vec![
        (
            "sparse, logits",
            Box::new(SparseCategoricalCrossentropy::new().from_logits(true)),
            &labels,
            &logits,
        ),
        (
            "sparse, probs",
            Box::new(SparseCategoricalCrossentropy::new()),
            &labels,
            &probs,
        ),
        (
            "categorical, logits",
            Box::new(CategoricalCrossentropy::new().from_logits(true)),
            &one_hot,
            &logits,
        ),
        (
            "categorical, probs",
            Box::new(CategoricalCrossentropy::new()),
            &one_hot,
            &probs,
        ),
        ("mse", Box::new(MeanSquaredError::new()), &one_hot, &probs),
        (
            "binary, logits",
            Box::new(BinaryCrossentropy::new().from_logits(true)),
            &one_hot,
            &logits,
        ),
        (
            "binary, probs",
            Box::new(BinaryCrossentropy::new()),
            &one_hot,
            &probs,
        ),
    ];
    for (name, loss, y_true, y_pred) in cases {
        // Probabilities are small: perturb them by less.
        let epsilon = if name.contains("probs") {
            1e-3
        } else {
            EPSILON
        };
        let error = check_loss(loss.as_ref(), y_true.view(), y_pred.view(), epsilon).unwrap();
        assert!(error < TOLERANCE, "{name}: {error}");
    }
}

#[test]
fn the_fused_softmax_gradient_is_the_derivative_of_the_loss_of_the_logits() {
    // loss(z) = sparse_ce(softmax(z)); its numeric slope in z must equal the
    // gradient fit uses, (softmax(z) - one_hot) / batch.
    let logits = input(&[3, 4], 5);
    let labels = ndarray::array![3.0_f32, 0.0, 1.0].into_dyn();
    let loss = SparseCategoricalCrossentropy::new();
    let probs = kerust::losses::softmax(logits.view());
    let mut fused = ArrayD::zeros(IxDyn(&[0]));
    loss.softmax_logits_gradient(labels.view(), probs.view(), &mut fused)
        .unwrap()
        .unwrap();
    let value = |z: &ArrayD<f32>| {
        let p = kerust::losses::softmax(z.view());
        f64::from(loss.compute(labels.view(), p.view(), None).unwrap())
    };
    for i in 0..logits.len() {
        let mut plus = logits.clone();
        plus.as_slice_mut().unwrap()[i] += EPSILON;
        let mut minus = logits.clone();
        minus.as_slice_mut().unwrap()[i] -= EPSILON;
        let numeric = (value(&plus) - value(&minus)) / (2.0 * f64::from(EPSILON));
        let analytic = f64::from(fused.as_slice().unwrap()[i]);
        assert!(
            (analytic - numeric).abs() < TOLERANCE,
            "logit {i}: {analytic} vs {numeric}"
        );
    }
}

/// A layer whose backward pass is wrong on purpose: `y = 2x`, but it passes
/// the gradient through unscaled.
struct WrongDouble(String);

impl Layer for WrongDouble {
    fn class_name(&self) -> &str {
        "WrongDouble"
    }
    fn name(&self) -> &str {
        &self.0
    }
    fn set_name(&mut self, name: String) {
        self.0 = name;
    }
    fn build(&mut self, shape: &[usize], _: &mut dyn rand::RngCore) -> kerust::Result<Vec<usize>> {
        Ok(shape.to_vec())
    }
    fn forward(
        &self,
        x: ndarray::ArrayViewD<'_, f32>,
        y: &mut ArrayD<f32>,
        _: bool,
    ) -> kerust::Result<()> {
        *y = x.mapv(|v| 2.0 * v);
        Ok(())
    }
    fn backward(
        &mut self,
        _: ndarray::ArrayViewD<'_, f32>,
        _: ndarray::ArrayViewD<'_, f32>,
        g: ndarray::ArrayViewD<'_, f32>,
        dx: Option<&mut ArrayD<f32>>,
    ) -> kerust::Result<()> {
        if let Some(dx) = dx {
            *dx = g.to_owned();
        }
        Ok(())
    }
}

#[test]
fn the_check_catches_a_wrong_backward_pass() {
    let mut layer = WrongDouble(String::new());
    let check = check_layer(&mut layer, input(&[2, 3], 6).view(), EPSILON).unwrap();
    assert!(check.input_error > 0.05, "{check:?}");
}

/// Conv2D's kernel, bias and input gradients against finite differences,
/// for each padding, with strides, several channels and filters, without a
/// bias, and through each activation that has no kink.
#[test]
fn conv2d_backward_matches_finite_differences() {
    let cases = [
        (Conv2D::new(2, (3, 3)), [2, 5, 5, 1]),
        (
            Conv2D::new(3, (4, 3))
                .strides((2, 2))
                .padding(Padding::Same),
            [2, 5, 4, 2],
        ),
        (
            Conv2D::new(3, (2, 2))
                .padding(Padding::Same)
                .activation(Activation::Tanh)
                .use_bias(false),
            [1, 4, 3, 3],
        ),
        (
            Conv2D::new(2, (3, 2))
                .strides((1, 2))
                .activation(Activation::Sigmoid),
            [2, 4, 5, 2],
        ),
        (
            Conv2D::new(3, (1, 1)).activation(Activation::Softmax),
            [1, 3, 3, 2],
        ),
    ];
    for (i, (layer, shape)) in cases.into_iter().enumerate() {
        let mut layer = built(layer, &shape[1..]);
        let x = input(&shape, 40 + i as u64);
        let check = check_layer(&mut layer, x.view(), EPSILON).unwrap();
        assert!(check.max_error() < TOLERANCE, "case {i}: {check:?}");
        assert!(check.checked > x.len(), "case {i}: weights were checked");
    }
}

/// MaxPooling2D's input gradient against finite differences. The inputs
/// are distinct and at least 0.1 apart, ten times the perturbation, so no
/// perturbation changes which value is a window's maximum.
#[test]
fn max_pooling2d_backward_matches_finite_differences() {
    let cases = [
        (MaxPooling2D::new((2, 2)), [2, 4, 5, 3]),
        (
            MaxPooling2D::new((3, 3))
                .strides((2, 2))
                .padding(Padding::Same),
            [1, 5, 6, 2],
        ),
        (MaxPooling2D::new((2, 3)).strides((1, 1)), [2, 3, 4, 1]),
    ];
    for (i, (layer, shape)) in cases.into_iter().enumerate() {
        let mut layer = built(layer, &shape[1..]);
        let len: usize = shape.iter().product();
        // 37 is prime to every length here, so `k * 37 % len` visits each
        // value once.
        let values = (0..len)
            .map(|k| ((k * 37) % len) as f32 * 0.1 - 2.0)
            .collect();
        let x = ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap();
        let check = check_layer(&mut layer, x.view(), EPSILON).unwrap();
        assert!(check.max_error() < TOLERANCE, "case {i}: {check:?}");
    }
}

/// BatchNormalization in training mode, whose output depends on every
/// input of a channel through the batch's mean and variance:
///
/// ```text
/// normal = (x - mean) / sqrt(variance + epsilon)
/// d/dgamma = sum(dy * normal)      d/dbeta = sum(dy)
/// d/dx = gamma / sqrt(variance + epsilon)
///        * (dy - mean(dy) - normal * mean(dy * normal))
/// ```
///
/// Checked after Dense (2-D) and after Conv2D (4-D), without `gamma` or
/// `beta`, and frozen, when it normalises by its moving statistics and
/// `d/dx = gamma / sqrt(moving_variance + epsilon) * dy`.
#[test]
fn batch_normalization_backward_matches_finite_differences_in_training() {
    type Case = (&'static str, BatchNormalization, Vec<usize>, bool);
    let cases: Vec<Case> = vec![
        ("2-D", BatchNormalization::new(), vec![6, 4], true),
        ("4-D", BatchNormalization::new(), vec![2, 3, 3, 2], true),
        (
            "no center",
            BatchNormalization::new().center(false),
            vec![5, 3],
            true,
        ),
        (
            "no scale",
            BatchNormalization::new().scale(false).epsilon(0.1),
            vec![2, 2, 2, 3],
            true,
        ),
        ("frozen", BatchNormalization::new(), vec![2, 2, 3, 2], false),
    ];
    for (name, layer, shape, trainable) in cases {
        let mut layer = built(layer, &shape[1..]);
        let channels = shape[shape.len() - 1];
        // Weights away from their initial values, so that each term of the
        // gradient shows.
        let mut weights: Vec<ArrayD<f32>> =
            layer.weights().iter().map(|(_, w)| w.to_owned()).collect();
        for (i, w) in weights.iter_mut().enumerate() {
            *w = input(&[channels], 40 + i as u64).mapv(|v| v + 1.5);
        }
        layer.set_weights(&weights).unwrap();
        layer.on_trainable_changed(trainable);
        let check = check_layer(&mut layer, input(&shape, 9).view(), EPSILON).unwrap();
        assert!(check.max_error() < TOLERANCE, "{name}: {check:?}");
        let trained = layer.trainable_param_count();
        assert_eq!(check.checked, shape.iter().product::<usize>() + trained);
    }
}

#[test]
fn average_pooling2d_backward_matches_finite_differences() {
    for (pool, strides, padding) in [
        ((2, 2), (2, 2), Padding::Valid),
        ((3, 2), (1, 2), Padding::Valid),
        ((4, 3), (2, 2), Padding::Same),
        ((3, 3), (1, 1), Padding::Same),
    ] {
        let mut layer = built(
            AveragePooling2D::new(pool)
                .strides(strides)
                .padding(padding),
            &[5, 4, 2],
        );
        let check = check_layer(&mut layer, input(&[2, 5, 4, 2], 10).view(), EPSILON).unwrap();
        assert!(
            check.max_error() < TOLERANCE,
            "{pool:?} {strides:?} {padding:?}: {check:?}"
        );
    }
}

/// Random inputs hold no ties, so each channel's maximum moves alone under
/// a small perturbation and its derivative is 1 there, 0 elsewhere.
#[test]
fn global_poolings_backward_match_finite_differences() {
    for keepdims in [false, true] {
        let x = input(&[3, 4, 3, 2], 11);
        let mut average = built(GlobalAveragePooling2D::new().keepdims(keepdims), &[4, 3, 2]);
        let check = check_layer(&mut average, x.view(), EPSILON).unwrap();
        assert!(
            check.max_error() < TOLERANCE,
            "average {keepdims}: {check:?}"
        );
        let mut max = built(GlobalMaxPooling2D::new().keepdims(keepdims), &[4, 3, 2]);
        let check = check_layer(&mut max, x.view(), EPSILON).unwrap();
        assert!(check.max_error() < TOLERANCE, "max {keepdims}: {check:?}");
    }
}

/// LayerNormalization, whose output depends on every feature of its sample
/// through the sample's mean and variance:
///
/// ```text
/// normal = (x - mean) / sqrt(variance + epsilon)     (over the last axis)
/// d/dgamma = sum(dy * normal)      d/dbeta = sum(dy)  (over the samples)
/// g = dy * gamma
/// d/dx = (g - mean(g) - normal * mean(g * normal)) / sqrt(variance + epsilon)
/// ```
///
/// Checked on 2-D and 3-D inputs, without `beta`, without `gamma`, with
/// neither, and with a large epsilon, with `gamma` and `beta` away from
/// their initial ones and zeros so that each term shows. A sample of four
/// features with a spread of 0.15 curves enough that the central
/// difference's own error, which shrinks with the square of the step, is
/// 2e-3 at the usual step of 1e-2: the inputs are perturbed by 3e-3, where
/// it is 1.3e-4.
#[test]
fn layer_normalization_backward_matches_finite_differences() {
    type Case = (&'static str, LayerNormalization, Vec<usize>);
    let cases: Vec<Case> = vec![
        ("2-D", LayerNormalization::new(), vec![4, 5]),
        ("3-D", LayerNormalization::new(), vec![2, 3, 4]),
        (
            "no center",
            LayerNormalization::new().center(false),
            vec![3, 6],
        ),
        (
            "no scale",
            LayerNormalization::new().scale(false),
            vec![3, 4],
        ),
        (
            "neither",
            LayerNormalization::new().center(false).scale(false),
            vec![2, 2, 3],
        ),
        (
            "epsilon 0.5",
            LayerNormalization::new().epsilon(0.5),
            vec![3, 3],
        ),
    ];
    for (name, layer, shape) in cases {
        let mut layer = built(layer, &shape[1..]);
        let features = shape[shape.len() - 1];
        let weights: Vec<ArrayD<f32>> = (0..layer.weights().len())
            .map(|i| input(&[features], 60 + i as u64).mapv(|v| v + 1.5))
            .collect();
        layer.set_weights(&weights).unwrap();
        let check = check_layer(&mut layer, input(&shape, 12).view(), 3e-3).unwrap();
        assert!(check.max_error() < TOLERANCE, "{name}: {check:?}");
        let trained = layer.trainable_param_count();
        assert_eq!(trained, weights.len() * features, "{name}");
        assert_eq!(check.checked, shape.iter().product::<usize>() + trained);
    }
}

/// LeakyReLU at several slopes, Keras' 0.3 and 0 included, on inputs at
/// least 0.05 from its kink; the Activation layer with each activation;
/// Reshape, with a -1.
#[test]
fn leaky_relu_activation_and_reshape_backward_match_finite_differences() {
    let x = input(&[3, 2, 4], 13);
    for slope in [0.3, 0.0, 0.05, 1.5] {
        let mut layer = built(LeakyReLU::new().negative_slope(slope), &[2, 4]);
        let check = check_layer(&mut layer, x.view(), EPSILON).unwrap();
        assert!(check.max_error() < TOLERANCE, "slope {slope}: {check:?}");
    }
    for activation in [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        let mut layer = built(ActivationLayer::new(activation), &[2, 4]);
        let check = check_layer(&mut layer, x.view(), EPSILON).unwrap();
        assert!(check.max_error() < TOLERANCE, "{activation:?}: {check:?}");
    }
    let mut reshape = built(Reshape::new([4, -1]), &[2, 4]);
    let check = check_layer(&mut reshape, x.view(), EPSILON).unwrap();
    assert!(check.max_error() < TOLERANCE, "{check:?}");
}
