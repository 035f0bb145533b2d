//! kerust against values computed by Keras 3.15.1 (JAX backend).
//!
//! The fixtures in `tests/fixtures/` come from `make_refs.py --set shared`
//! (see `tests/fixtures/REFERENCE.md`), except `rmsprop.json`,
//! `optimizers.json`, `conv.json`, `layers.json`, `layers2.json`,
//! `class_weight.json`, `binary.json`, `metrics.json` and
//! `sample_weight.json`, which the scripts beside them write: each float is
//! the shortest decimal that parses to the float32 Keras produced.
//! Tolerances follow that README: 1e-6 relative for layers, losses and
//! Adam, 1e-6 for metric values (which lie in [0, 1]), 1e-5 for the training
//! steps and the convolution.

mod common;

use common::{array, assert_close, fixture};
use kerust::prelude::*;
use kerust::random::{stream, Purpose};
use ndarray::{ArrayD, Axis};

/// The gradients a layer stored in its last backward pass, in weight order.
fn stored_gradients(layer: &mut dyn Layer) -> Vec<ArrayD<f32>> {
    let shapes: Vec<Vec<usize>> = layer
        .weights()
        .iter()
        .map(|(_, w)| w.shape().to_vec())
        .collect();
    let mut grads = Vec::new();
    layer.visit_parameters(&mut |_, g| grads.push(g.to_vec()));
    grads
        .into_iter()
        .zip(shapes)
        .map(|(g, s)| ArrayD::from_shape_vec(s, g).unwrap())
        .collect()
}

#[test]
fn dense_forward_and_backward_match_keras_for_every_activation() {
    let reference = fixture("dense.json");
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let activation = match case["activation"].as_str().unwrap() {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "softmax" => Activation::Softmax,
            other => panic!("unexpected activation {other}"),
        };
        let (x, kernel, bias) = (array(&case["x"]), array(&case["W"]), array(&case["b"]));
        let mut layer = Dense::new(kernel.shape()[1]).activation(activation);
        layer
            .build(&[kernel.shape()[0]], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        layer.set_weights(&[kernel, bias]).unwrap();

        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        assert_close(&y, &array(&case["Y"]), 1e-6, 1e-7, &format!("{name}: Y"));

        let mut dx = ArrayD::zeros(vec![0]);
        let dy = array(&case["dY"]);
        layer
            .backward(x.view(), y.view(), dy.view(), Some(&mut dx))
            .unwrap();
        assert_close(&dx, &array(&case["dX"]), 1e-5, 1e-7, &format!("{name}: dX"));
        let grads = stored_gradients(&mut layer);
        assert_close(
            &grads[0],
            &array(&case["dW"]),
            1e-5,
            1e-7,
            &format!("{name}: dW"),
        );
        assert_close(
            &grads[1],
            &array(&case["db"]),
            1e-5,
            1e-7,
            &format!("{name}: db"),
        );
    }
}

/// The loss of each sample alone, as Keras' per-sample losses.
fn per_sample(loss: &dyn Loss, labels: &ArrayD<f32>, scores: &ArrayD<f32>) -> ArrayD<f32> {
    let values: Vec<f32> = (0..labels.len())
        .map(|i| {
            let label = labels.slice_axis(Axis(0), (i..i + 1).into()).to_owned();
            let row = scores.slice_axis(Axis(0), (i..i + 1).into()).to_owned();
            loss.compute(label.view(), row.view(), None).unwrap()
        })
        .collect();
    ArrayD::from_shape_vec(vec![values.len()], values).unwrap()
}

#[test]
fn sparse_crossentropy_matches_keras_from_logits_and_from_clipped_probabilities() {
    let reference = fixture("softmax_sce.json");
    for case in reference["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let logits = array(&case["logits"]);
        let labels = array(&case["labels"]);

        let probs = kerust::losses::softmax(logits.view());
        assert_close(
            &probs,
            &array(&case["softmax"]),
            1e-6,
            1e-7,
            &format!("{name}: softmax"),
        );

        let loss = SparseCategoricalCrossentropy::new().from_logits(true);
        let expected = &case["from_logits"];
        let what = format!("{name}, from logits");
        check_loss_case(
            &loss,
            &labels,
            &logits,
            expected,
            "grad_logits",
            1e-6,
            &what,
        );

        let loss = SparseCategoricalCrossentropy::new();
        let expected = &case["from_probs_keras_clip"];
        let what = format!("{name}, clipped probabilities");
        let grad = check_loss_case(&loss, &labels, &probs, expected, "grad_probs", 1e-5, &what);

        // Through the Softmax layer's Jacobian, as Keras differentiates it.
        let mut layer = Softmax::new();
        layer
            .build(&[logits.shape()[1]], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let mut dlogits = ArrayD::zeros(vec![0]);
        layer
            .backward(logits.view(), probs.view(), grad.view(), Some(&mut dlogits))
            .unwrap();
        let want = array(&expected["grad_logits_through_softmax"]);
        assert_close(
            &dlogits,
            &want,
            1e-5,
            1e-7,
            &format!("{name}: through softmax"),
        );
    }
}

/// Checks the mean loss, its gradient (`grad_key`, within `grad_rtol`) and
/// the per-sample losses against one case of Keras' values; returns the
/// gradient.
fn check_loss_case(
    loss: &dyn Loss,
    labels: &ArrayD<f32>,
    scores: &ArrayD<f32>,
    expected: &serde_json::Value,
    grad_key: &str,
    grad_rtol: f32,
    what: &str,
) -> ArrayD<f32> {
    let mut grad = ArrayD::zeros(vec![0]);
    let mean = loss
        .compute(labels.view(), scores.view(), Some(&mut grad))
        .unwrap();
    let want = expected["loss_mean"].as_f64().unwrap() as f32;
    assert!(
        (mean - want).abs() <= 1e-6 * want.abs(),
        "{what}: {mean} vs {want}"
    );
    let want_grad = array(&expected[grad_key]);
    assert_close(
        &grad,
        &want_grad,
        grad_rtol,
        1e-7,
        &format!("{what}: {grad_key}"),
    );
    let samples = per_sample(loss, labels, scores);
    let want_samples = array(&expected["per_sample_loss"]);
    assert_close(&samples, &want_samples, 1e-6, 1e-7, what);
    grad
}

#[test]
fn extreme_logits_give_finite_losses_and_exact_gradients() {
    let reference = fixture("softmax_sce.json");
    let case = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "extreme")
        .expect("an extreme case");
    let logits = array(&case["logits"]);
    let labels = array(&case["labels"]);
    let probs = kerust::losses::softmax(logits.view());
    let loss = SparseCategoricalCrossentropy::new();
    let value = loss.compute(labels.view(), probs.view(), None).unwrap();
    assert!(value.is_finite());
    // The fused gradient that fit uses is the from-logits one, never zeroed
    // by the clip.
    let mut fused = ArrayD::zeros(vec![0]);
    loss.softmax_logits_gradient(labels.view(), probs.view(), &mut fused)
        .unwrap()
        .unwrap();
    let want = array(&case["from_logits"]["grad_logits"]);
    assert_close(&fused, &want, 1e-6, 1e-8, "fused gradient");
}

#[test]
fn rmsprop_steps_match_keras() {
    let reference = fixture("rmsprop.json");
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    // The weights agree to the bit: the same float32 operations in the same
    // order as Keras' update_step.
    for case in cases {
        let config = &case["config"];
        let mut rmsprop = RmsProp::new()
            .learning_rate(config["learning_rate"].as_f64().unwrap() as f32)
            .rho(config["rho"].as_f64().unwrap())
            .momentum(config["momentum"].as_f64().unwrap())
            .epsilon(config["epsilon"].as_f64().unwrap() as f32)
            .centered(config["centered"].as_bool().unwrap());
        let mut param = array(&case["param0"]).into_raw_vec_and_offset().0;
        let grads = case["grads"].as_array().unwrap();
        for (k, (grad, step)) in grads
            .iter()
            .zip(case["steps"].as_array().unwrap())
            .enumerate()
        {
            rmsprop.begin_step();
            let grad = array(grad).into_raw_vec_and_offset().0;
            rmsprop.update(0, &mut param, &grad);
            let what = format!("{} step {k}", case["name"]);
            let got = ArrayD::from_shape_vec(vec![param.len()], param.clone()).unwrap();
            assert_close(
                &got,
                &array(&step["param"]),
                0.0,
                0.0,
                &format!("{what}: param"),
            );
            let state = rmsprop.state();
            let keys = ["velocity", "momentum", "average_gradient"];
            for key in keys.iter().filter(|key| !step[**key].is_null()) {
                let (_, _, values) = state
                    .slots
                    .iter()
                    .find(|(name, slot, _)| name == key && *slot == 0)
                    .unwrap_or_else(|| panic!("{what}: no {key} in the state"));
                let values = ArrayD::from_shape_vec(vec![param.len()], values.clone()).unwrap();
                assert_close(
                    &values,
                    &array(&step[*key]),
                    1e-6,
                    0.0,
                    &format!("{what}: {key}"),
                );
            }
            // The state holds what this variant keeps, and no more.
            let kept = state.slots.iter().filter(|(_, slot, _)| *slot == 0).count();
            let expected = keys.iter().filter(|key| !step[**key].is_null()).count();
            assert_eq!(kept, expected, "{what}");
        }
    }
}

#[test]
fn adam_steps_match_keras() {
    let reference = fixture("adam.json");
    for case in reference["cases"].as_array().unwrap() {
        let config = &case["config"];
        let mut adam = Adam::new()
            .learning_rate(config["learning_rate"].as_f64().unwrap() as f32)
            .beta_1(config["beta_1"].as_f64().unwrap())
            .beta_2(config["beta_2"].as_f64().unwrap())
            .epsilon(config["epsilon"].as_f64().unwrap() as f32);
        let mut param = array(&case["param0"]).into_raw_vec_and_offset().0;
        let grads = case["grads"].as_array().unwrap();
        for (k, (grad, step)) in grads
            .iter()
            .zip(case["steps"].as_array().unwrap())
            .enumerate()
        {
            adam.begin_step();
            let grad = array(grad).into_raw_vec_and_offset().0;
            adam.update(0, &mut param, &grad);
            let state = adam.state();
            let what = format!("{} step {k}", case["name"]);
            let got = ArrayD::from_shape_vec(vec![param.len()], param.clone()).unwrap();
            assert_close(
                &got,
                &array(&step["param"]),
                1e-6,
                0.0,
                &format!("{what}: param"),
            );
            for (slot, key) in [(0, "m"), (1, "v")] {
                let values =
                    ArrayD::from_shape_vec(vec![param.len()], state.slots[slot].2.clone()).unwrap();
                assert_close(
                    &values,
                    &array(&step[key]),
                    1e-6,
                    0.0,
                    &format!("{what}: {key}"),
                );
            }
        }
    }
}

/// The largest difference between `got` and the float32 values `expected`
/// holds, as a nested list.
fn max_difference(got: &[f32], expected: &serde_json::Value) -> f32 {
    let want = array(expected).into_raw_vec_and_offset().0;
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(&want)
        .map(|(g, w)| {
            if g.to_bits() == w.to_bits() {
                0.0
            } else {
                (g - w).abs()
            }
        })
        .fold(0.0, f32::max)
}

/// AdamW, Adagrad, Nadam, Adam with AMSGrad, and the shared clipping and
/// weight decay options, each made from the config Keras wrote (its `null`
/// options included), over five steps on two parameters at once.
#[test]
fn optimizers_and_their_shared_options_match_keras_to_the_bit() {
    let reference = fixture("optimizers.json");
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 18);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut optimizer = kerust::saving::optimizer_from_config(&case["config"])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut params: Vec<Vec<f32>> = case["params0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| array(p).into_raw_vec_and_offset().0)
            .collect();
        let grads = case["grads"].as_array().unwrap();
        let steps = case["steps"].as_array().unwrap();
        let mut worst = 0.0_f32;
        for (k, (step_grads, step)) in grads.iter().zip(steps).enumerate() {
            let step_grads: Vec<Vec<f32>> = step_grads
                .as_array()
                .unwrap()
                .iter()
                .map(|g| array(g).into_raw_vec_and_offset().0)
                .collect();
            optimizer.begin_step();
            if optimizer.needs_all_gradients() {
                for (slot, g) in step_grads.iter().enumerate() {
                    optimizer.observe_gradient(slot, g);
                }
            }
            for (slot, (p, g)) in params.iter_mut().zip(&step_grads).enumerate() {
                optimizer.update(slot, p, g);
            }
            for (i, p) in params.iter().enumerate() {
                worst = worst.max(max_difference(p, &step["params"][i]));
            }
            let state = optimizer.state();
            let expected = step["slots"].as_object().unwrap();
            for (key, arrays) in expected {
                for (i, want) in arrays.as_array().unwrap().iter().enumerate() {
                    let (_, _, values) = state
                        .slots
                        .iter()
                        .find(|(n, slot, _)| n == key && *slot == i)
                        .unwrap_or_else(|| panic!("{name} step {k}: no {key}/{i} in the state"));
                    worst = worst.max(max_difference(values, want));
                }
            }
            // The state holds what Keras keeps for this variant, and no more.
            let kept: usize = expected.values().map(|a| a.as_array().unwrap().len()).sum();
            assert_eq!(state.slots.len(), kept, "{name} step {k}");
        }
        eprintln!("{name}: max difference {worst:e}");
        assert_eq!(worst, 0.0, "{name}: max difference {worst:e}");
    }
}

#[test]
fn three_training_steps_of_a_tiny_mlp_match_keras() {
    let reference = fixture("mlp_train_steps.json");
    let x = array(&reference["x"]);
    let y = array(&reference["y"]);
    let initial = &reference["initial_weights"];
    let mut model = Sequential::new()
        .input_shape([x.shape()[1]])
        .add(Dense::new(5).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    model
        .compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    let weights: Vec<ArrayD<f32>> = ["W1", "b1", "W2", "b2"]
        .iter()
        .map(|k| array(&initial[*k]))
        .collect();
    model.set_weights(&weights).unwrap();

    for step in reference["steps"].as_array().unwrap() {
        let bounds = step["batch_rows"].as_array().unwrap();
        let (start, end) = (
            bounds[0].as_u64().unwrap() as usize,
            bounds[1].as_u64().unwrap() as usize,
        );
        let rows: Vec<usize> = (start..end).collect();
        let xb = x.select(Axis(0), &rows);
        let yb = y.select(Axis(0), &rows);
        let what = format!("step {}", step["step"]);

        let probs = model.predict(&xb).unwrap();
        assert_close(
            &probs,
            &array(&step["probs_before_step"]),
            1e-5,
            1e-7,
            &format!("{what}: probs"),
        );
        let loss = model.train_on_batch(&xb, &yb).unwrap();
        let want = step["loss"].as_f64().unwrap() as f32;
        assert!(
            (loss - want).abs() <= 1e-5 * want.abs(),
            "{what}: loss {loss} vs {want}"
        );

        let mut grads = Vec::new();
        for layer in model.layers_mut() {
            grads.extend(stored_gradients(layer.as_mut()));
        }
        let after = model.get_weights();
        for (i, key) in ["W1", "b1", "W2", "b2"].iter().enumerate() {
            assert_close(
                &grads[i],
                &array(&step["grads"][*key]),
                1e-5,
                1e-7,
                &format!("{what}: d{key}"),
            );
            let want = array(&step["weights_after"][*key]);
            assert_close(
                &after[i],
                &want,
                1e-5,
                1e-7,
                &format!("{what}: {key} after"),
            );
        }
    }
}

/// The largest `|actual - expected| / max(|expected|, 1e-3)` and the
/// largest `|actual - expected|`, for the report of how close kerust comes
/// to Keras (`--nocapture` shows it).
fn differences(actual: &ArrayD<f32>, expected: &ArrayD<f32>) -> [f32; 2] {
    actual
        .iter()
        .zip(expected.iter())
        .map(|(a, e)| [(a - e).abs() / e.abs().max(1e-3), (a - e).abs()])
        .fold([0.0, 0.0], |[r, d], [r2, d2]| [r.max(r2), d.max(d2)])
}

/// Conv2D's output and its gradients with respect to input, kernel and bias
/// for an upstream gradient, against `tests/fixtures/conv.json`, written by
/// `tests/fixtures/make_conv.py` from Keras 3.15.1 on JAX:
///
/// ```text
/// layer = keras.layers.Conv2D(**config); layer.build(x.shape)
/// layer.set_weights([kernel, bias])
/// jax.grad(lambda x, w: sum(layer.stateless_call(w, [], x)[0] * upstream),
///          argnums=(0, 1))(x, [kernel, bias])
/// ```
///
/// The sums run in another order than XLA's (patch rows times kernel
/// columns, in matrixmultiply's blocks), so values agree to rounding:
/// 1e-5 relative, with 1e-6 absolute for sums that cancel to near zero.
#[test]
fn conv2d_forward_and_gradients_match_keras() {
    let reference = fixture("conv.json");
    let cases = reference["conv2d"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let mut worst = [[0.0_f32; 2]; 4];
    let mut note = |i: usize, actual: &ArrayD<f32>, expected: &ArrayD<f32>| {
        let [r, d] = differences(actual, expected);
        worst[i] = [worst[i][0].max(r), worst[i][1].max(d)];
    };
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let layer = Conv2D::from_config(&case["config"]).unwrap();
        let mut layer = layer.name(name);
        let x = array(&case["x"]);
        layer
            .build(&x.shape()[1..], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let mut weights = vec![array(&case["kernel"])];
        let use_bias = case["config"]["use_bias"].as_bool().unwrap();
        if use_bias {
            weights.push(array(&case["bias"]));
        }
        layer.set_weights(&weights).unwrap();

        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        let expected_y = array(&case["y"]);
        assert_close(&y, &expected_y, 1e-5, 1e-6, &format!("{name}: y"));

        let mut dx = ArrayD::zeros(vec![0]);
        let upstream = array(&case["upstream"]);
        layer
            .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
            .unwrap();
        let expected_dx = array(&case["dx"]);
        assert_close(&dx, &expected_dx, 1e-5, 1e-6, &format!("{name}: dx"));
        let grads = stored_gradients(&mut layer);
        let expected_dkernel = array(&case["dkernel"]);
        assert_close(
            &grads[0],
            &expected_dkernel,
            1e-5,
            1e-6,
            &format!("{name}: dkernel"),
        );
        note(0, &y, &expected_y);
        note(1, &dx, &expected_dx);
        note(2, &grads[0], &expected_dkernel);
        if use_bias {
            let expected_dbias = array(&case["dbias"]);
            assert_close(
                &grads[1],
                &expected_dbias,
                1e-5,
                1e-6,
                &format!("{name}: dbias"),
            );
            note(3, &grads[1], &expected_dbias);
        }
    }
    for (what, [relative, absolute]) in ["y", "dx", "dkernel", "dbias"].iter().zip(worst) {
        println!(
            "conv2d {what}: largest difference from Keras {relative:e} relative, {absolute:e}"
        );
    }
}

/// MaxPooling2D's output and input gradient against
/// `tests/fixtures/conv.json`, made as for Conv2D. A maximum involves no
/// arithmetic and each input gradient is one upstream value or a sum of a
/// few, so they agree exactly. The cases `pool_ties` and
/// `pool_ties_overlapping` hold windows whose maximum appears twice, with
/// upstream values 1, 2, 3...: Keras gives each window's gradient to its
/// first maximum in row-major order, and so must kerust.
#[test]
fn max_pooling2d_forward_and_gradient_match_keras_including_ties() {
    let reference = fixture("conv.json");
    let cases = reference["max_pooling2d"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut layer = MaxPooling2D::from_config(&case["config"])
            .unwrap()
            .name(name);
        let x = array(&case["x"]);
        layer
            .build(&x.shape()[1..], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        assert_eq!(y, array(&case["y"]), "{name}: y");
        let mut dx = ArrayD::zeros(vec![0]);
        let upstream = array(&case["upstream"]);
        layer
            .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
            .unwrap();
        assert_eq!(dx, array(&case["dx"]), "{name}: dx");
    }
}

/// BatchNormalization against `tests/fixtures/layers.json`, written by
/// `tests/fixtures/make_layers.py` from Keras 3.15.1 on JAX:
///
/// ```text
/// layer = keras.layers.BatchNormalization(**config); layer.build(x.shape)
/// layer.set_weights([gamma, beta, moving_mean, moving_variance])
/// for x in batches[:3]:   # training: the batch's statistics
///     y, non_trainable = layer.stateless_call(w, non_trainable, x, training=True)
///     jax.grad(sum(y * upstream)) with respect to x, gamma and beta
/// y = layer.stateless_call(w, non_trainable, batches[3], training=False)
/// ```
///
/// Each training step checks the output, the gradients and the moving
/// statistics that step leaves, which start from the last step's. The
/// inference pass is checked through a frozen layer, whose backward pass is
/// the inference one. kerust sums the statistics in f64, XLA in f32: the
/// largest difference measured is 7.8e-7 (in dx; 1.9e-9 in the moving
/// mean, none in the moving variance and the inference output), checked
/// to 1e-6 absolute plus 2e-6 relative.
#[test]
fn batch_normalization_training_and_inference_match_keras() {
    let reference = fixture("layers.json");
    let cases = reference["batch_normalization"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    // The largest differences of each case and quantity, over its steps.
    let mut worst = std::collections::BTreeMap::<(String, &str), [f32; 2]>::new();
    let mut check = |what: &'static str, actual: &ArrayD<f32>, expected: &ArrayD<f32>, at: &str| {
        assert_close(actual, expected, 2e-6, 1e-6, &format!("{at}: {what}"));
        let [r, d] = differences(actual, expected);
        let case = at.split(',').next().unwrap_or(at).to_string();
        let entry = worst.entry((case, what)).or_default();
        *entry = [entry[0].max(r), entry[1].max(d)];
    };
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut layer = BatchNormalization::from_config(&case["config"])
            .unwrap()
            .name(name);
        let upstream = array(&case["upstream"]);
        layer
            .build(&upstream.shape()[1..], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let channels = upstream.shape().last().copied().unwrap();
        let center = case["config"]["center"].as_bool().unwrap();
        let mut weights = vec![array(&case["gamma"])];
        if center {
            weights.push(array(&case["beta"]));
        }
        weights.push(ArrayD::zeros(vec![channels]));
        weights.push(ArrayD::ones(vec![channels]));
        layer.set_weights(&weights).unwrap();

        for (step, expected) in case["training_steps"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let at = format!("{name}, step {}", step + 1);
            let x = array(&expected["x"]);
            let mut y = ArrayD::zeros(vec![0]);
            layer.forward(x.view(), &mut y, true).unwrap();
            check("y", &y, &array(&expected["y"]), &at);
            let mut dx = ArrayD::zeros(vec![0]);
            layer
                .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
                .unwrap();
            check("dx", &dx, &array(&expected["dx"]), &at);
            let grads = stored_gradients(&mut layer);
            check("dgamma", &grads[0], &array(&expected["dgamma"]), &at);
            if center {
                check("dbeta", &grads[1], &array(&expected["dbeta"]), &at);
            }
            layer.update_state(x.view(), y.view()).unwrap();
            let moving_mean = layer.moving_mean().clone().into_dyn();
            check(
                "moving_mean",
                &moving_mean,
                &array(&expected["moving_mean"]),
                &at,
            );
            let moving_variance = layer.moving_variance().clone().into_dyn();
            let expected_variance = array(&expected["moving_variance"]);
            check("moving_variance", &moving_variance, &expected_variance, &at);
        }

        let inference = &case["inference"];
        let at = format!("{name}, inference");
        let x = array(&inference["x"]);
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, false).unwrap();
        check("inference y", &y, &array(&inference["y"]), &at);
        layer.on_trainable_changed(false);
        let mut frozen_y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut frozen_y, true).unwrap();
        assert_eq!(frozen_y, y, "{at}: a frozen layer trains as it infers");
        let mut dx = ArrayD::zeros(vec![0]);
        layer
            .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
            .unwrap();
        check("inference dx", &dx, &array(&inference["dx"]), &at);
    }
    for ((case, what), [relative, absolute]) in worst {
        println!(
            "batch_normalization {case} {what}: largest difference from Keras {relative:e} \
             relative, {absolute:e}"
        );
    }
}

/// AveragePooling2D and the global poolings against
/// `tests/fixtures/layers.json`, made as for BatchNormalization (without a
/// `training` argument, which these layers do not take). A mean sums in
/// another order than XLA's: the largest difference measured is 3e-8, and
/// values are checked to 5e-8 absolute plus 6e-7 relative. A maximum and
/// its gradient involve no sum and agree exactly. The case `max_ties` holds
/// a channel whose maximum appears three times and one where it appears
/// twice, with upstream values 1 and 2: Keras on JAX shares the gradient
/// equally among them, and so must kerust.
#[test]
fn average_and_global_poolings_match_keras_including_ties() {
    let reference = fixture("layers.json");
    let mut cases: Vec<&serde_json::Value> = Vec::new();
    cases.extend(reference["average_pooling2d"].as_array().unwrap());
    cases.extend(reference["global_pooling2d"].as_array().unwrap());
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let class = case["class_name"].as_str().unwrap();
        let mut config = case["config"].clone();
        config["name"] = serde_json::json!(name);
        let mut layer = kerust::saving::LayerRegistry::with_builtins()
            .make(class, &config)
            .unwrap();
        let x = array(&case["x"]);
        layer
            .build(&x.shape()[1..], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        let mut dx = ArrayD::zeros(vec![0]);
        let upstream = array(&case["upstream"]);
        layer
            .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
            .unwrap();
        let (expected_y, expected_dx) = (array(&case["y"]), array(&case["dx"]));
        if class == "GlobalMaxPooling2D" {
            assert_eq!(y, expected_y, "{name}: y");
            assert_eq!(dx, expected_dx, "{name}: dx");
            continue;
        }
        assert_close(&y, &expected_y, 6e-7, 5e-8, &format!("{name}: y"));
        assert_close(&dx, &expected_dx, 6e-7, 5e-8, &format!("{name}: dx"));
        for (what, actual, expected) in [("y", &y, &expected_y), ("dx", &dx, &expected_dx)] {
            let [relative, absolute] = differences(actual, expected);
            println!(
                "{class} {name} {what}: largest difference from Keras {relative:e} relative, \
                 {absolute:e}"
            );
        }
    }
}

/// The inputs and labels of a fixture's case.
fn inputs(case: &serde_json::Value) -> (ArrayD<f32>, ArrayD<f32>) {
    (array(&case["x"]), array(&case["y"]))
}

/// Trains `model` as a `fit` case of a fixture says Keras did: from its
/// initial weights, on its inputs and labels `(x, y)`, three epochs of
/// unshuffled batches of 4, with the weighting and validation `options`
/// add. Then compares every figure of the history and the weights after
/// training with Keras', to 1e-5 relative.
fn fit_as_keras_did<'a>(
    model: &mut Sequential,
    case: &serde_json::Value,
    (x, y): (&'a ArrayD<f32>, &'a ArrayD<f32>),
    options: FitOptions<'a>,
    what: &str,
) {
    let initial: Vec<ArrayD<f32>> = case["initial_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(array)
        .collect();
    model.set_weights(&initial).unwrap();
    let options = options
        .epochs(3)
        .batch_size(4)
        .shuffle(false)
        .verbose(Verbosity::Silent);
    let history = model.fit((x, y), options).unwrap();
    let logged = case["history"].as_object().unwrap();
    assert!(
        logged.contains_key("loss"),
        "{what}: no loss in the fixture"
    );
    let mut keys: Vec<&str> = history.keys().filter(|k| *k != "learning_rate").collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        logged.keys().map(String::as_str).collect::<Vec<_>>(),
        "{what}: the keys Keras logged"
    );
    let mut worst_history = 0.0_f64;
    for (key, expected) in logged {
        let expected: Vec<f64> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = history
            .get(key)
            .unwrap_or_else(|| panic!("{what}: no {key} in the history"));
        assert_eq!(got.len(), expected.len(), "{what} {key}");
        for (g, e) in got.iter().zip(&expected) {
            worst_history = worst_history.max((g - e).abs() / e.abs());
            assert!(
                (g - e).abs() <= 1e-5 * e.abs(),
                "{what} {key}: {got:?} against {expected:?}"
            );
        }
    }
    let mut worst_weight = 0.0_f32;
    for (i, (got, expected)) in model
        .get_weights()
        .iter()
        .zip(case["final_weights"].as_array().unwrap())
        .enumerate()
    {
        let expected = array(expected);
        assert_close(got, &expected, 1e-5, 1e-6, &format!("{what} weight {i}"));
        for (g, e) in got.iter().zip(&expected) {
            worst_weight = worst_weight.max((g - e).abs());
        }
    }
    eprintln!("{what}: history within {worst_history:e} relative, weights within {worst_weight:e}");
}

/// [`fit_as_keras_did`] on a case that holds its own inputs and labels, and
/// its validation data when it has some, with `class_weight`.
fn fit_case_as_keras_did(
    model: &mut Sequential,
    case: &serde_json::Value,
    class_weight: &[(usize, f32)],
    what: &str,
) {
    let (x, y) = inputs(case);
    let validation = case
        .get("x_val")
        .map(|x_val| (array(x_val), array(&case["y_val"])));
    let mut options = FitOptions::new().class_weight(class_weight.iter().copied());
    if let Some((x_val, y_val)) = &validation {
        options = options.validation_data(x_val, y_val);
    }
    fit_as_keras_did(model, case, (&x, &y), options, what);
}

/// `(class, weight)` pairs as a fixture lists them.
fn class_weights(case: &serde_json::Value) -> Vec<(usize, f32)> {
    case["class_weight"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let class = pair[0].as_u64().unwrap() as usize;
            (class, pair[1].as_f64().unwrap() as f32)
        })
        .collect()
}

/// Dense(4, relu) -> Dense(3, softmax) on three inputs, with SGD(0.1),
/// the fixtures' model, compiled with the sparse or the categorical
/// cross-entropy and accuracy.
fn small_classifier(sparse: bool) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([3])
        .add(Dense::new(4).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    let sgd = Sgd::new().learning_rate(0.1);
    if sparse {
        model.compile(sgd, SparseCategoricalCrossentropy::new(), ["accuracy"])
    } else {
        model.compile(sgd, CategoricalCrossentropy::new(), ["accuracy"])
    }
    .unwrap();
    model
}

#[test]
fn fit_with_class_weight_matches_keras() {
    let reference = fixture("class_weight.json");
    for name in ["sparse", "categorical"] {
        let case = &reference[name];
        let mut model = small_classifier(name == "sparse");
        let (x, y) = inputs(case);
        let options = FitOptions::new().class_weight(class_weights(case));
        fit_as_keras_did(&mut model, case, (&x, &y), options, name);
    }
}

/// `fit` with `sample_weight`: the loss and gradient of each batch weighted
/// (a batch of 2 at the end of each epoch, a sample of weight 0), metrics
/// unweighted, `val_loss` weighted by the validation data's own weights or,
/// under `validation_split`, by the held-out samples' weights; and sample
/// weights times class weights, against Keras given their product.
#[test]
fn fit_with_sample_weight_matches_keras() {
    let reference = fixture("sample_weight.json");

    let case = &reference["fit"];
    let (x, y) = inputs(case);
    let weights = array(&case["sample_weight"]);
    let (vx, vy) = (array(&case["validation_x"]), array(&case["validation_y"]));
    let vw = array(&case["validation_sample_weight"]);
    let options = FitOptions::new()
        .sample_weight(&weights)
        .validation_data(&vx, &vy)
        .validation_sample_weight(&vw);
    let model = &mut small_classifier(true);
    fit_as_keras_did(model, case, (&x, &y), options, "fit");

    let mut split = case.clone();
    for key in ["history", "final_weights"] {
        split[key] = reference["fit_split"][key].clone();
    }
    let fraction = reference["fit_split"]["validation_split"].as_f64().unwrap();
    let options = FitOptions::new()
        .sample_weight(&weights)
        .validation_split(fraction);
    let model = &mut small_classifier(true);
    fit_as_keras_did(model, &split, (&x, &y), options, "fit_split");

    let case = &reference["fit_class_weight"];
    let (x, y) = inputs(case);
    let weights = array(&case["sample_weight"]);
    let options = FitOptions::new()
        .sample_weight(&weights)
        .class_weight(class_weights(case));
    let model = &mut small_classifier(false);
    fit_as_keras_did(model, case, (&x, &y), options, "fit_class_weight");
}

/// `evaluate_with` at batch sizes 4, 3 and 32 on ten samples, with and
/// without sample weights, and `predict_with` at batch size 3, against
/// Keras' `evaluate` and `predict`. The loss is the batches' losses
/// weighted by their sizes, and a weighted loss is divided by the number of
/// samples, not by the sum of the weights: either mistake is far outside
/// the tolerance.
#[test]
fn evaluate_and_predict_with_options_match_keras() {
    let reference = fixture("sample_weight.json");
    let case = &reference["fit"];
    let (x, y) = inputs(case);
    let weights = array(&case["sample_weight"]);
    let initial: Vec<ArrayD<f32>> = case["initial_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(array)
        .collect();
    let mut model = small_classifier(true);
    model.set_weights(&initial).unwrap();
    let runs = reference["evaluate"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    let mut worst = 0.0_f64;
    for run in runs {
        let mut options = EvaluateOptions::new().verbose(Verbosity::Silent);
        if let Some(batch_size) = run["batch_size"].as_u64() {
            options = options.batch_size(batch_size as usize);
        }
        if run["weighted"].as_bool().unwrap() {
            options = options.sample_weight(&weights);
        }
        let scores = model.evaluate_with(&x, &y, &options).unwrap();
        let expected = run["scores"].as_object().unwrap();
        assert_eq!(scores.len(), expected.len(), "{run}");
        for (key, want) in expected {
            let (got, want) = (scores.get(key).unwrap(), want.as_f64().unwrap());
            worst = worst.max((got - want).abs() / want.abs());
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{key}: {got} against {want} in {run}"
            );
        }
    }
    eprintln!("evaluate: largest relative difference {worst:e}");

    let batch_size = reference["evaluate"]["predict_batch_size"]
        .as_u64()
        .unwrap();
    let options = PredictOptions::new()
        .batch_size(batch_size as usize)
        .verbose(Verbosity::Silent);
    let predictions = model.predict_with(&x, &options).unwrap();
    let expected = array(&reference["evaluate"]["predictions"]);
    assert_close(&predictions, &expected, 1e-6, 1e-7, "predict_with");
    assert_eq!(predictions, model.predict(&x).unwrap());
}

#[test]
fn binary_crossentropy_and_binary_accuracy_match_keras() {
    let reference = fixture("binary.json");
    for case in reference["losses"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let loss = BinaryCrossentropy::new().from_logits(case["from_logits"].as_bool().unwrap());
        let (y_true, y_pred) = (array(&case["y_true"]), array(&case["y_pred"]));
        let mut gradient = ArrayD::zeros(ndarray::IxDyn(&[0]));
        let value = loss
            .compute(y_true.view(), y_pred.view(), Some(&mut gradient))
            .unwrap();
        let expected = case["loss"].as_f64().unwrap() as f32;
        assert!(
            (value - expected).abs() <= 1e-6 * expected.abs(),
            "{name}: loss {value}, expected {expected}"
        );
        assert_close(&gradient, &array(&case["gradient"]), 1e-6, 1e-12, name);
        // Labels of one value per sample, for one output unit.
        if y_true.shape()[1] == 1 {
            let labels = y_true
                .clone()
                .into_shape_with_order(vec![y_true.len()])
                .unwrap();
            assert_eq!(
                loss.compute(labels.view(), y_pred.view(), None).unwrap(),
                value
            );
        }
    }

    let case = &reference["fit"];
    let mut model = Sequential::new()
        .input_shape([3])
        .add(Dense::new(4).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model
        .compile(
            Sgd::new().learning_rate(0.5),
            BinaryCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    let (x, y) = inputs(case);
    fit_as_keras_did(&mut model, case, (&x, &y), FitOptions::new(), "sigmoid");
    let predictions = model.predict(&x).unwrap();
    assert_close(
        &predictions,
        &array(&case["predictions"]),
        1e-5,
        1e-6,
        "predictions",
    );
}

// ---------------------------------------------------------------------------
// Metrics (`metrics.json`, written by `make_metrics.py`)

/// The tolerance of a metric's value: its values lie in [0, 1], and Keras
/// computes them in float32.
const METRIC_TOLERANCE: f64 = 1e-6;

/// Updates `metric` with each batch of a case and compares the result after
/// each with Keras', to [`METRIC_TOLERANCE`].
fn accumulate_as_keras_did(metric: &mut dyn Metric, case: &serde_json::Value) {
    let name = case["name"].as_str().unwrap();
    let batches = case["batches"].as_array().unwrap();
    let results = case["results"].as_array().unwrap();
    assert_eq!(batches.len(), results.len());
    assert!(batches.len() >= 2, "{name}: several batches");
    for (i, (batch, expected)) in batches.iter().zip(results).enumerate() {
        let (y_true, y_pred) = (array(&batch["y_true"]), array(&batch["y_pred"]));
        metric.update(y_true.view(), y_pred.view()).unwrap();
        // Keras' result is a float32, written as its shortest decimal.
        let expected = f64::from(expected.to_string().parse::<f32>().unwrap());
        let got = metric.result();
        assert!(
            (got - expected).abs() <= METRIC_TOLERANCE,
            "{name}, after batch {}: {got}, Keras {expected}",
            i + 1
        );
    }
}

fn counts(value: &serde_json::Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn auc_matches_keras_over_batches_with_ties_and_predictions_on_thresholds() {
    use kerust::metrics::Auc;

    let reference = fixture("metrics.json");
    let cases = reference["auc"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let config = &case["config"];
        let mut auc = Auc::new()
            .num_thresholds(config["num_thresholds"].as_u64().unwrap() as usize)
            .curve(config["curve"].as_str().unwrap().parse().unwrap())
            .summation_method(
                config["summation_method"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
            .from_logits(config["from_logits"].as_bool().unwrap());
        let thresholds: Vec<f64> = case["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(auc.thresholds(), thresholds, "{name}: thresholds");
        accumulate_as_keras_did(&mut auc, case);
        // The confusion counts at every threshold, to the sample.
        assert_eq!(
            auc.true_positives(),
            counts(&case["true_positives"]),
            "{name}"
        );
        assert_eq!(
            auc.false_positives(),
            counts(&case["false_positives"]),
            "{name}"
        );
        assert_eq!(
            auc.true_negatives(),
            counts(&case["true_negatives"]),
            "{name}"
        );
        assert_eq!(
            auc.false_negatives(),
            counts(&case["false_negatives"]),
            "{name}"
        );
        // The same from its config, as a model file makes it.
        let mut again = kerust::saving::metric_from_config(&auc.config()).unwrap();
        accumulate_as_keras_did(again.as_mut(), case);
    }
}

#[test]
fn f1_and_fbeta_scores_match_keras_for_every_average_and_threshold() {
    use kerust::metrics::{Average, F1Score, FBetaScore};

    let reference = fixture("metrics.json");
    let cases = reference["f_score"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let config = &case["config"];
        let average: Average = config["average"].as_str().unwrap().parse().unwrap();
        let threshold = config["threshold"].as_f64().map(|t| t as f32);
        let mut metric: Box<dyn Metric> = match case["class_name"].as_str().unwrap() {
            "F1Score" => Box::new(F1Score::new(average).threshold(threshold)),
            _ => Box::new(
                FBetaScore::new(average)
                    .beta(config["beta"].as_f64().unwrap())
                    .threshold(threshold),
            ),
        };
        let batch = &case["batches"][0];
        let units = array(&batch["y_pred"]).shape()[1];
        if units == 1 && threshold.is_none() {
            // Keras counts every prediction above 0 of a single unit as a
            // positive; kerust asks for a threshold instead.
            let err = metric
                .update(
                    array(&batch["y_true"]).view(),
                    array(&batch["y_pred"]).view(),
                )
                .unwrap_err();
            assert!(
                matches!(&err, kerust::Error::InvalidArgument { name, .. } if name == "threshold"),
                "{err}"
            );
            assert!(err.to_string().contains(".threshold(0.5)"), "{err}");
            continue;
        }
        accumulate_as_keras_did(metric.as_mut(), case);
        let mut again = kerust::saving::metric_from_config(&metric.config()).unwrap();
        accumulate_as_keras_did(again.as_mut(), case);
    }
}

#[test]
fn top_k_accuracies_match_keras_including_tied_scores() {
    use kerust::metrics::{SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy};

    let reference = fixture("metrics.json");
    let cases = reference["top_k"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let k = case["k"].as_u64().unwrap() as usize;
        let mut metric: Box<dyn Metric> = match case["class_name"].as_str().unwrap() {
            "SparseTopKCategoricalAccuracy" => Box::new(SparseTopKCategoricalAccuracy::new().k(k)),
            _ => Box::new(TopKCategoricalAccuracy::new().k(k)),
        };
        accumulate_as_keras_did(metric.as_mut(), case);
    }
}

#[test]
fn fit_logs_auc_f_scores_and_top_k_and_their_validation_figures_as_keras_did() {
    use kerust::metrics::{
        Auc, Average, Curve, F1Score, FBetaScore, IntoMetric, SparseTopKCategoricalAccuracy,
        SummationMethod, TopKCategoricalAccuracy,
    };

    let reference = fixture("metrics.json");
    let model = |units: usize, activation: Activation| {
        Sequential::new()
            .input_shape([3])
            .add(Dense::new(4).activation(Activation::Relu))
            .add(Dense::new(units).activation(activation))
    };
    let sgd = || Sgd::new().learning_rate(0.5);

    let mut one_hot = model(7, Activation::Softmax);
    let metrics: Vec<Box<dyn Metric>> = vec![
        "auc".into_metric().unwrap(),
        Box::new(Auc::new().curve(Curve::Pr).named("pr_auc")),
        Box::new(F1Score::new(Average::Macro)),
        Box::new(FBetaScore::new(Average::Weighted).beta(2.0).threshold(0.3)),
        "top_k_categorical_accuracy".into_metric().unwrap(),
        Box::new(TopKCategoricalAccuracy::new().k(2).named("top_2")),
    ];
    one_hot
        .compile(sgd(), CategoricalCrossentropy::new(), metrics)
        .unwrap();
    fit_case_as_keras_did(&mut one_hot, &reference["fit"]["one_hot"], &[], "one-hot");

    let mut sparse = model(7, Activation::Softmax);
    let metrics: Vec<Box<dyn Metric>> = vec![
        "sparse_top_k_categorical_accuracy".into_metric().unwrap(),
        Box::new(SparseTopKCategoricalAccuracy::new().k(2).named("top_2")),
    ];
    sparse
        .compile(sgd(), SparseCategoricalCrossentropy::new(), metrics)
        .unwrap();
    fit_case_as_keras_did(&mut sparse, &reference["fit"]["sparse"], &[], "sparse");

    let mut binary = model(1, Activation::Sigmoid);
    let metrics: Vec<Box<dyn Metric>> = vec![
        "auc".into_metric().unwrap(),
        Box::new(
            Auc::new()
                .curve(Curve::Pr)
                .summation_method(SummationMethod::Majoring)
                .named("pr_auc"),
        ),
    ];
    binary
        .compile(sgd(), BinaryCrossentropy::new(), metrics)
        .unwrap();
    fit_case_as_keras_did(&mut binary, &reference["fit"]["binary"], &[], "binary");
}

/// LayerNormalization against `tests/fixtures/layers2.json`, written by
/// `tests/fixtures/make_layers2.py` from Keras 3.15.1 on JAX as
/// `make_layers.py` does for BatchNormalization: the output and the
/// gradients with respect to the input, `gamma` and `beta` of `sum(y *
/// upstream)`, and the same computed in float64 from the same values (the
/// `exact` ones). Each layer is made from the config Keras wrote once built
/// (`axis` as the list `[-1]`, `rms_scaling` false). Six cases: 2-D and 3-D
/// inputs, without `beta` and with epsilon 0.1, without `gamma`, with
/// neither, and one whose samples are a constant (variance 0: epsilon alone
/// bounds the gradient, of about 30 here) and four values near 100.
///
/// kerust computes the output in Keras' order of operations, and agrees
/// with Keras' to 2e-6 relative plus 1e-6 absolute (largest difference
/// measured 9.5e-7, in the sample near 100, where both round
/// `x * multiplier` near 350). It sums each sample's statistics and the
/// gradients in f64: the gradients agree with the exact ones to 2e-6
/// relative plus 1e-6 absolute, and with Keras' to the same, except in the
/// sample near 100, where Keras' float32 gradient cancels `sum(dy * x)`
/// against `mean * sum(dy)` and lies 1.8e-5 from the exact one: there the
/// comparison with Keras allows 3e-5 absolute.
#[test]
fn layer_normalization_matches_keras() {
    let reference = fixture("layers2.json");
    let cases = reference["layer_normalization"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut config = case["config"].clone();
        config["name"] = serde_json::json!(name);
        let mut layer = LayerNormalization::from_config(&config).unwrap();
        let x = array(&case["x"]);
        layer
            .build(&x.shape()[1..], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let mut weights = Vec::new();
        for key in ["gamma", "beta"] {
            if !case[key].is_null() {
                weights.push(array(&case[key]));
            }
        }
        layer.set_weights(&weights).unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        let mut inference = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut inference, false).unwrap();
        assert_eq!(inference, y, "{name}: training and inference differ");
        let upstream = array(&case["upstream"]);
        let mut dx = ArrayD::zeros(vec![0]);
        layer
            .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
            .unwrap();
        let grads = stored_gradients(&mut layer);
        let mut computed = vec![("y", &y), ("dx", &dx)];
        let weight_grads: Vec<&str> = ["dgamma", "dbeta"]
            .into_iter()
            .filter(|key| !case[key].is_null())
            .collect();
        assert_eq!(grads.len(), weight_grads.len(), "{name}");
        computed.extend(weight_grads.iter().copied().zip(&grads));
        for (what, actual) in computed {
            let keras = array(&case[what]);
            let exact = array(&case["exact"][what]);
            let at = format!("{name}: {what}");
            // Keras' own rounding, in the sample of values near 100.
            let keras_atol = if name.starts_with("constant") && what != "y" {
                3e-5
            } else {
                1e-6
            };
            assert_close(actual, &keras, 2e-6, keras_atol, &at);
            if what != "y" {
                assert_close(actual, &exact, 2e-6, 1e-6, &format!("{at} (exact)"));
            }
            let [relative, absolute] = differences(actual, &keras);
            let [exact_relative, exact_absolute] = differences(actual, &exact);
            let [keras_relative, keras_absolute] = differences(&keras, &exact);
            println!(
                "layer_normalization {at}: from Keras {relative:e} relative, {absolute:e}; \
                 from exact {exact_relative:e}, {exact_absolute:e}; Keras from exact \
                 {keras_relative:e}, {keras_absolute:e}"
            );
        }
    }
}

/// LeakyReLU for Keras' default slope and three others (0, 0.05, 1.5), on
/// inputs holding 0, -0 and -1e-30, and the Activation layer for each of
/// kerust's activations, against `tests/fixtures/layers2.json`. LeakyReLU
/// is one product per value, and agrees to the bit, sign of zero included,
/// with its derivative 1 at 0 as on JAX. The activations' outputs agree to
/// 1e-6 relative (XLA's tanh and sigmoid are a rounding away from Rust's
/// in 5 values of 12), and their gradients to 1e-6 relative plus 3e-7
/// absolute: where tanh is near 1, a rounding of `y` moves `1 - y` by
/// 2e-5 relative. Given Keras' own `y`, the element-wise derivatives are
/// Keras' to the bit (tanh's as JAX computes it in reverse, `m + m * y`
/// with `m = (1 - y) * dy`), and softmax's to 1e-6.
#[test]
fn leaky_relu_and_the_activation_layer_match_keras() {
    let reference = fixture("layers2.json");
    let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let registry = kerust::saving::LayerRegistry::with_builtins();
    let leaky = reference["leaky_relu"].as_array().unwrap();
    let activation = reference["activation"].as_array().unwrap();
    assert_eq!((leaky.len(), activation.len()), (4, 5));
    for (class, case) in leaky
        .iter()
        .map(|c| ("LeakyReLU", c))
        .chain(activation.iter().map(|c| ("Activation", c)))
    {
        let what = format!("{class} {}", case["config"]);
        let mut layer = registry.make(class, &case["config"]).unwrap();
        let x = array(&case["x"]);
        layer
            .build(&x.shape()[1..], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        let mut dx = ArrayD::zeros(vec![0]);
        let upstream = array(&case["upstream"]);
        layer
            .backward(x.view(), y.view(), upstream.view(), Some(&mut dx))
            .unwrap();
        let (expected_y, expected_dx) = (array(&case["y"]), array(&case["dx"]));
        if class == "LeakyReLU" {
            assert_eq!(bits(&y), bits(&expected_y), "{what}: y");
            assert_eq!(bits(&dx), bits(&expected_dx), "{what}: dx");
            continue;
        }
        assert_close(&y, &expected_y, 1e-6, 1e-7, &format!("{what}: y"));
        assert_close(&dx, &expected_dx, 1e-6, 3e-7, &format!("{what}: dx"));
        for (key, actual, expected) in [("y", &y, &expected_y), ("dx", &dx, &expected_dx)] {
            let [relative, absolute] = differences(actual, expected);
            println!(
                "{what} {key}: largest difference from Keras {relative:e} relative, {absolute:e}"
            );
        }
        // From Keras' own output, an element-wise derivative is Keras' to
        // the bit; softmax's sums over a row, in another order.
        let mut from_keras_y = ArrayD::zeros(vec![0]);
        layer
            .backward(
                x.view(),
                expected_y.view(),
                upstream.view(),
                Some(&mut from_keras_y),
            )
            .unwrap();
        if layer.ends_in_softmax() {
            assert_close(&from_keras_y, &expected_dx, 1e-6, 1e-7, &what);
        } else {
            assert_eq!(
                bits(&from_keras_y),
                bits(&expected_dx),
                "{what}: dx from Keras' y"
            );
        }
    }
}

/// Reshape's output shapes, -1 resolved, and values, against the shapes
/// Keras computes; the target shapes Keras refuses, kerust refuses too,
/// naming both shapes.
#[test]
fn reshape_matches_keras_and_refuses_what_it_refuses() {
    let reference = fixture("layers2.json");
    let as_sizes =
        |v: &serde_json::Value| -> Vec<usize> { serde_json::from_value(v.clone()).unwrap() };
    for case in reference["reshape"].as_array().unwrap() {
        let mut layer = Reshape::from_config(&case["config"]).unwrap();
        let input_shape = as_sizes(&case["input_shape"]);
        let output_shape = layer
            .build(&input_shape, &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        assert_eq!(output_shape, as_sizes(&case["output_shape"]), "{case}");
        let x = array(&case["x"]);
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, false).unwrap();
        let expected = array(&case["y"]);
        // A sample of shape () is one value: the fixture writes a flat list.
        let expected = expected.into_shape_with_order(y.shape()).unwrap();
        assert_eq!(y, expected, "{case}");
    }
    for case in reference["refused_reshapes"].as_array().unwrap() {
        let target: Vec<i64> = serde_json::from_value(case["target_shape"].clone()).unwrap();
        let input_shape = as_sizes(&case["input_shape"]);
        let err = Reshape::new(target.clone())
            .compute_output_shape(&input_shape)
            .unwrap_err()
            .to_string();
        let target = target
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        assert!(err.contains(&format!("({target})")), "{err}");
        assert!(err.contains("12"), "{err}");
    }
}

/// `fit` of a model holding every layer of `layers2.json`: Reshape((-1,)),
/// Dense(5), LayerNormalization, LeakyReLU(0.2), Dense(3) and
/// Activation("softmax"), with SGD at 0.2 and the sparse cross-entropy,
/// three epochs of two unshuffled batches of 4, against Keras' history,
/// weights and predictions, to 1e-5 relative. The layers are named as
/// Keras named them.
#[test]
fn fit_with_reshape_layer_normalization_leaky_relu_and_activation_matches_keras() {
    let reference = fixture("layers2.json");
    let case = &reference["fit"];
    let mut model = Sequential::new()
        .input_shape([2, 3])
        .add(Reshape::new([-1]))
        .add(Dense::new(5))
        .add(LayerNormalization::new())
        .add(LeakyReLU::new().negative_slope(0.2))
        .add(Dense::new(3))
        .add(ActivationLayer::new(Activation::Softmax));
    model
        .compile(
            Sgd::new().learning_rate(0.2),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    let names: Vec<String> = model.layers().iter().map(|l| l.name().into()).collect();
    let classes: Vec<String> = model
        .layers()
        .iter()
        .map(|l| l.class_name().into())
        .collect();
    let expected =
        |key: &str| -> Vec<String> { serde_json::from_value(case[key].clone()).unwrap() };
    assert_eq!(names, expected("names"));
    assert_eq!(classes, expected("layers"));
    fit_case_as_keras_did(&mut model, case, &[], "layers2");
    let predictions = model.predict(&array(&case["x"])).unwrap();
    assert_close(
        &predictions,
        &array(&case["predictions"]),
        1e-5,
        1e-6,
        "predictions",
    );
}
