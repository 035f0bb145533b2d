//! BatchNormalization, AveragePooling2D and the global poolings in a model:
//! learning an image task, the same bits from the same seed, saving and
//! loading, the moving statistics a training step updates, freezing, and
//! the errors for bad configs and shapes. Then LayerNormalization, Reshape,
//! LeakyReLU and the Activation layer: names, shapes and parameter counts,
//! their configs and Keras', and their errors.

use kerust::prelude::*;
use kerust::random::{stream, Purpose};
use ndarray::{Array1, Array2, Array4, ArrayD, Axis};
use serde_json::json;

/// 8x8 images of one bar, horizontal (label 0) or vertical (label 1), at
/// each of the eight rows or columns, on a faint uneven background.
fn bars() -> (Array4<f32>, Array1<f32>) {
    let count = 32;
    let x = Array4::from_shape_fn((count, 8, 8, 1), |(n, r, c, _)| {
        let at = (n / 2) % 8;
        let on = if n % 2 == 0 { r == at } else { c == at };
        let background = ((n * 31 + r * 7 + c * 3) % 5) as f32 * 0.02;
        if on {
            1.0
        } else {
            background
        }
    });
    (x, Array1::from_shape_fn(count, |n| (n % 2) as f32))
}

/// Conv2D, BatchNormalization, ReLU, GlobalAveragePooling2D, Dense.
fn model(seed: u64) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([8, 8, 1])
        .seed(seed)
        .add(Conv2D::new(4, (3, 3)))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(2).activation(Activation::Softmax));
    model
        .compile(
            Adam::new().learning_rate(0.02),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

fn trained(seed: u64) -> Sequential {
    let (x, y) = bars();
    let mut model = model(seed);
    let options = FitOptions::new()
        .epochs(30)
        .batch_size(8)
        .verbose(Verbosity::Silent);
    model.fit((&x, &y), options).unwrap();
    model
}

/// The weights of the model's `batch_normalization` layer, by name.
fn statistics(model: &Sequential) -> Vec<(String, Vec<f32>)> {
    model
        .layer("batch_normalization")
        .unwrap()
        .weights()
        .into_iter()
        .map(|(name, w)| (name, w.iter().copied().collect()))
        .collect()
}

#[test]
fn conv_batch_norm_and_global_average_pooling_learn_horizontal_from_vertical_bars() {
    let (x, y) = bars();
    let mut model = model(7);
    let before = model.evaluate(&x, &y).unwrap();
    let mut model = trained(7);
    let scores = model.evaluate(&x, &y).unwrap();
    assert_eq!(
        scores.get("accuracy"),
        Some(1.0),
        "{before:?} -> {scores:?}"
    );
    assert!(scores.get("loss").unwrap() < 0.2, "{scores:?}");
    // The moving statistics moved away from (0, 1) in training.
    let stats = statistics(&model);
    assert!(stats[2].1.iter().all(|&m| m != 0.0), "{stats:?}");
    assert!(stats[3].1.iter().all(|&v| v != 1.0), "{stats:?}");
}

#[test]
fn two_runs_with_one_seed_give_the_same_weights_and_statistics_to_the_bit() {
    let (a, b) = (trained(11), trained(11));
    assert_eq!(a.get_weights(), b.get_weights());
    assert_eq!(statistics(&a), statistics(&b));
    assert_ne!(a.get_weights(), trained(12).get_weights());
}

#[test]
fn a_saved_model_loads_its_moving_statistics_and_predicts_the_same_to_the_bit() {
    let (x, y) = bars();
    let mut model = trained(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    model.save(&path).unwrap();
    let mut loaded = load_model(&path).unwrap();
    assert_eq!(statistics(&loaded), statistics(&model));
    assert_eq!(loaded.get_weights(), model.get_weights());
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
    let configs = |m: &Sequential| m.layers().iter().map(|l| l.config()).collect::<Vec<_>>();
    assert_eq!(configs(&loaded), configs(&model));

    // The optimizer's state covers gamma and beta, not the statistics, and
    // both models train on alike.
    model.train_on_batch(&x, &y).unwrap();
    loaded.train_on_batch(&x, &y).unwrap();
    assert_eq!(loaded.get_weights(), model.get_weights());
}

/// The model's first layer is the BatchNormalization, so the batch's
/// statistics are those of `x`'s columns, and a step moves the moving mean
/// to `moving * 0.5 + mean * 0.5`: once per batch, through `fit` and
/// `train_on_batch` alike.
#[test]
fn each_training_step_updates_the_moving_statistics_once() {
    let x = Array2::from_shape_fn((8, 3), |(i, j)| (i * (j + 1)) as f32 * 0.25 - j as f32);
    let y = Array1::from_shape_fn(8, |i| (i % 2) as f32);
    let make = || {
        let mut model = Sequential::new()
            .input_shape([3])
            .add(BatchNormalization::new().momentum(0.5))
            .add(Dense::new(2).activation(Activation::Softmax));
        model
            .compile(
                Sgd::new(),
                SparseCategoricalCrossentropy::new(),
                ["accuracy"],
            )
            .unwrap();
        model
    };
    let mean = |rows: ndarray::ArrayView2<'_, f32>| rows.mean_axis(Axis(0)).unwrap();
    let variance = |rows: ndarray::ArrayView2<'_, f32>| rows.var_axis(Axis(0), 0.0);
    let close = |actual: &[f32], expected: &Array1<f32>| {
        actual
            .iter()
            .zip(expected)
            .all(|(a, e)| (a - e).abs() <= 1e-6 * (1.0 + e.abs()))
    };

    let mut model = make();
    model.train_on_batch(&x, &y).unwrap();
    let stats = statistics(&model);
    let expected_mean = mean(x.view()) * 0.5;
    let expected_variance = variance(x.view()) * 0.5 + 0.5;
    assert!(close(&stats[2].1, &expected_mean), "{stats:?}");
    assert!(close(&stats[3].1, &expected_variance), "{stats:?}");

    // Two batches of four, in order: two updates.
    let mut model = make();
    let options = FitOptions::new()
        .epochs(1)
        .batch_size(4)
        .shuffle(false)
        .verbose(Verbosity::Silent);
    model.fit((&x, &y), options).unwrap();
    let (first, second) = x.view().split_at(Axis(0), 4);
    let expected_mean = (mean(first) * 0.5) * 0.5 + mean(second) * 0.5;
    let expected_variance = (variance(first) * 0.5 + 0.5) * 0.5 + variance(second) * 0.5;
    let stats = statistics(&model);
    assert!(close(&stats[2].1, &expected_mean), "{stats:?}");
    assert!(close(&stats[3].1, &expected_variance), "{stats:?}");

    // Prediction and evaluation use the statistics and leave them alone.
    model.predict(&x).unwrap();
    model.evaluate(&x, &y).unwrap();
    assert_eq!(statistics(&model), stats);
}

#[test]
fn a_frozen_batch_normalization_keeps_gamma_beta_and_its_statistics() {
    let (x, y) = bars();
    let mut model = model(5);
    model.set_trainable("batch_normalization", false).unwrap();
    let before = statistics(&model);
    let conv_before = model.layer("conv2d").unwrap().weights()[0].1.to_owned();
    let options = FitOptions::new()
        .epochs(2)
        .batch_size(8)
        .verbose(Verbosity::Silent);
    model.fit((&x, &y), options).unwrap();
    assert_eq!(statistics(&model), before);
    let conv_after = model.layer("conv2d").unwrap().weights()[0].1.to_owned();
    assert_ne!(conv_after, conv_before, "the layers around it train");

    // Frozen, it normalises by the moving statistics in training too: a
    // step's loss is the loss `evaluate` gives for the same weights.
    let scores = model.evaluate(&x, &y).unwrap();
    let loss = model.train_on_batch(&x, &y).unwrap();
    let expected = scores.get("loss").unwrap();
    assert!(
        (f64::from(loss) - expected).abs() < 1e-6,
        "{loss} vs {expected}"
    );

    // The flag survives a model file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frozen.safetensors");
    model.save(&path).unwrap();
    let mut loaded = load_model(&path).unwrap();
    assert_eq!(loaded.is_trainable("batch_normalization"), Some(false));
    let before = statistics(&loaded);
    loaded.train_on_batch(&x, &y).unwrap();
    assert_eq!(statistics(&loaded), before);

    // Unfrozen, it trains again.
    loaded.set_trainable("batch_normalization", true).unwrap();
    loaded.train_on_batch(&x, &y).unwrap();
    assert_ne!(statistics(&loaded), before);
}

#[test]
fn the_summary_counts_the_moving_statistics_as_non_trainable() {
    let mut model = model(0);
    model.build().unwrap();
    let summary = model.summary();
    // Conv2D 3 * 3 * 4 + 4, BatchNormalization 4 * 4, Dense 4 * 2 + 2.
    assert_eq!(summary.total_params(), 40 + 16 + 10);
    assert_eq!(summary.trainable_params(), 40 + 8 + 10);
    assert_eq!(summary.non_trainable_params(), 8);
    let text = summary.to_string();
    assert!(
        text.contains("batch_normalization (BatchNormalization)"),
        "{text}"
    );
    assert!(text.contains("(None, 6, 6, 4)"), "{text}");
    assert!(
        text.contains(" Non-trainable params: 8 (32.00 B)"),
        "{text}"
    );
    // The name column widens for the longest name: every output shape
    // starts where the header's does.
    let lines: Vec<&str> = text.lines().collect();
    let column = lines[2].find("Output Shape").unwrap();
    let rows = &lines[4..lines.len() - 4];
    assert_eq!(rows.len(), model.layers().len(), "{text}");
    for row in rows {
        assert_eq!(row.find("(None"), Some(column), "{text}");
    }

    model.set_trainable("batch_normalization", false).unwrap();
    assert_eq!(model.summary().non_trainable_params(), 16);
}

#[test]
fn layers_are_named_as_keras_names_them() {
    let mut model = Sequential::new()
        .input_shape([6, 6, 2])
        .add(BatchNormalization::new())
        .add(AveragePooling2D::new((2, 2)))
        .add(BatchNormalization::new())
        .add(GlobalMaxPooling2D::new().keepdims(true))
        .add(GlobalAveragePooling2D::new());
    model.build().unwrap();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [
            "batch_normalization",
            "average_pooling2d",
            "batch_normalization_1",
            "global_max_pooling2d",
            "global_average_pooling2d"
        ]
    );
    assert_eq!(model.output_shape().unwrap(), vec![2]);
}

#[test]
fn every_option_survives_its_config() {
    let layer = BatchNormalization::new()
        .momentum(0.9)
        .epsilon(1e-5)
        .center(false)
        .scale(true)
        .beta_initializer(kerust::initializers::Initializer::Ones)
        .gamma_initializer(kerust::initializers::Initializer::Zeros)
        .moving_mean_initializer(kerust::initializers::Initializer::Ones)
        .moving_variance_initializer(kerust::initializers::Initializer::Zeros)
        .name("b");
    let config = layer.config();
    assert_eq!(
        config,
        json!({
            "name": "b", "axis": -1, "momentum": 0.9, "epsilon": 1e-5, "center": false,
            "scale": true, "beta_initializer": "ones", "gamma_initializer": "zeros",
            "moving_mean_initializer": "ones", "moving_variance_initializer": "zeros",
        })
    );
    assert_eq!(
        BatchNormalization::from_config(&config).unwrap().config(),
        config
    );

    let pool = AveragePooling2D::new((3, 2))
        .strides((1, 2))
        .padding(Padding::Same)
        .name("a");
    let config = pool.config();
    assert_eq!(
        config,
        json!({ "name": "a", "pool_size": [3, 2], "strides": [1, 2], "padding": "same" })
    );
    assert_eq!(
        AveragePooling2D::from_config(&config).unwrap().config(),
        config
    );
    let config = GlobalMaxPooling2D::new().keepdims(true).name("g").config();
    assert_eq!(config, json!({ "name": "g", "keepdims": true }));
}

/// A Keras config of these layers, with the fields kerust accepts at their
/// default, makes the layer.
#[test]
fn keras_configs_at_their_defaults_are_accepted() {
    let registry = kerust::saving::LayerRegistry::with_builtins();
    let keras_batch_norm = json!({
        "name": "batch_normalization", "axis": -1, "momentum": 0.99, "epsilon": 0.001,
        "center": true, "scale": true, "beta_initializer": "zeros", "gamma_initializer": "ones",
        "moving_mean_initializer": "zeros", "moving_variance_initializer": "ones",
        "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null,
        "gamma_constraint": null, "synchronized": false, "renorm": false,
        "renorm_clipping": null, "renorm_momentum": 0.99,
    });
    assert!(registry
        .make("BatchNormalization", &keras_batch_norm)
        .is_ok());
    let pool = json!({
        "name": "p", "pool_size": [2, 2], "padding": "valid", "strides": null,
        "data_format": "channels_last",
    });
    assert!(registry.make("AveragePooling2D", &pool).is_ok());
    for class in ["GlobalAveragePooling2D", "GlobalMaxPooling2D"] {
        let config = json!({ "name": "g", "data_format": "channels_last", "keepdims": false });
        assert!(registry.make(class, &config).is_ok());
    }
}

/// Each bad config is an error that names the field at fault.
#[test]
fn bad_configs_are_errors_that_name_the_field() {
    for (class, config, field) in [
        (
            "BatchNormalization",
            json!({ "momentun": 0.9 }),
            "`momentun`",
        ),
        (
            "BatchNormalization",
            json!({ "momentum": 1.5 }),
            "`momentum`",
        ),
        (
            "BatchNormalization",
            json!({ "momentum": "0.9" }),
            "`momentum`",
        ),
        ("BatchNormalization", json!({ "epsilon": 0.0 }), "`epsilon`"),
        (
            "BatchNormalization",
            json!({ "epsilon": -1e-3 }),
            "`epsilon`",
        ),
        ("BatchNormalization", json!({ "axis": 1.5 }), "`axis`"),
        ("BatchNormalization", json!({ "center": "yes" }), "`center`"),
        ("BatchNormalization", json!({ "renorm": true }), "`renorm`"),
        (
            "BatchNormalization",
            json!({ "synchronized": true }),
            "`synchronized`",
        ),
        (
            "BatchNormalization",
            json!({ "gamma_regularizer": "l2" }),
            "`gamma_regularizer`",
        ),
        (
            "BatchNormalization",
            json!({ "beta_initializer": "orthogonal" }),
            "`beta_initializer`",
        ),
        ("BatchNormalization", json!([1]), "`config`"),
        ("AveragePooling2D", json!({}), "`pool_size`"),
        (
            "AveragePooling2D",
            json!({ "pool_size": 2, "pool": 2 }),
            "`pool`",
        ),
        (
            "AveragePooling2D",
            json!({ "pool_size": 2, "padding": "causal" }),
            "`padding`",
        ),
        (
            "AveragePooling2D",
            json!({ "pool_size": 2, "data_format": "channels_first" }),
            "`data_format`",
        ),
        (
            "GlobalAveragePooling2D",
            json!({ "keep_dims": true }),
            "`keep_dims`",
        ),
        ("GlobalMaxPooling2D", json!({ "keepdims": 1 }), "`keepdims`"),
        (
            "GlobalMaxPooling2D",
            json!({ "data_format": "channels_first" }),
            "`data_format`",
        ),
    ] {
        let made = kerust::saving::LayerRegistry::with_builtins().make(class, &config);
        let Err(err) = made else {
            panic!("{class} was made from {config}");
        };
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        let err = err.to_string();
        assert!(err.contains(field), "{class} {config}: {err}");
    }
}

fn build(layer: &mut dyn Layer, input_shape: &[usize]) -> kerust::Result<Vec<usize>> {
    layer.build(input_shape, &mut stream(0, Purpose::Init, 0, 0))
}

#[test]
fn bad_options_and_shapes_are_errors_when_built() {
    let cases: Vec<(Box<dyn Layer>, &[usize], &str)> = vec![
        (
            Box::new(BatchNormalization::new().momentum(-0.1)),
            &[4],
            "`momentum` = -0.1",
        ),
        (
            Box::new(BatchNormalization::new().epsilon(f64::NAN)),
            &[4],
            "`epsilon` = NaN",
        ),
        (
            Box::new(BatchNormalization::from_config(&json!({ "axis": 1 })).unwrap()),
            &[6, 6, 3],
            "normalises the last axis only: -1, or 3",
        ),
        (
            Box::new(BatchNormalization::new()),
            &[],
            "(None, ..., channels)",
        ),
        (
            Box::new(BatchNormalization::new()),
            &[5, 0],
            "at least one channel",
        ),
        (
            Box::new(AveragePooling2D::new((3, 3))),
            &[2, 2, 1],
            "for a 3x3 pool",
        ),
        (
            Box::new(AveragePooling2D::new((0, 3))),
            &[4, 4, 1],
            "`pool_size` = (0, 3)",
        ),
        (
            Box::new(AveragePooling2D::new((2, 2))),
            &[16],
            "(None, height, width, channels)",
        ),
        (
            Box::new(GlobalAveragePooling2D::new()),
            &[4, 4],
            "(None, height, width, channels)",
        ),
        (
            Box::new(GlobalMaxPooling2D::new()),
            &[4, 0, 2],
            "each at least 1",
        ),
    ];
    for (mut layer, shape, expected) in cases {
        let err = build(layer.as_mut(), shape).unwrap_err();
        assert!(err.to_string().contains(expected), "{shape:?}: {err}");
    }
    // Keras' index of the last axis, counting the batch axis, is the last
    // axis too.
    let mut by_index = BatchNormalization::from_config(&json!({ "axis": 3 })).unwrap();
    assert_eq!(build(&mut by_index, &[6, 6, 3]).unwrap(), vec![6, 6, 3]);
    // With same padding a pool may be larger than the input, as in Keras.
    let mut pool = AveragePooling2D::new((3, 3)).padding(Padding::Same);
    assert_eq!(build(&mut pool, &[2, 2, 1]).unwrap(), vec![1, 1, 1]);
}

#[test]
fn batches_weights_and_gradients_of_the_wrong_shape_are_errors() {
    let mut layer = BatchNormalization::new().name("b");
    let x = ArrayD::<f32>::zeros(vec![2, 3]);
    let mut out = ArrayD::zeros(vec![0]);
    let err = layer.forward(x.view(), &mut out, true).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err}");
    assert!(layer.update_state(x.view(), x.view()).is_err());
    build(&mut layer, &[4]).unwrap();
    let err = layer.forward(x.view(), &mut out, true).unwrap_err();
    assert_eq!(err.to_string(), "`b` expected shape (None, 4), got (2, 3)");
    let err = layer.update_state(x.view(), x.view()).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");

    let x = ArrayD::<f32>::ones(vec![2, 4]);
    layer.forward(x.view(), &mut out, true).unwrap();
    let wrong = ArrayD::<f32>::zeros(vec![2, 5]);
    let err = layer
        .backward(x.view(), out.view(), wrong.view(), None)
        .unwrap_err();
    assert!(err.to_string().contains("(2, 4)"), "{err}");

    let err = layer.set_weights(&[ArrayD::zeros(vec![4])]).unwrap_err();
    assert!(
        err.to_string()
            .contains("4 weights (gamma, beta, moving_mean, moving_variance)"),
        "{err}"
    );
    let mut weights = vec![ArrayD::<f32>::zeros(vec![4]); 4];
    weights[3] = ArrayD::zeros(vec![5]);
    let err = layer.set_weights(&weights).unwrap_err();
    assert!(err.to_string().contains("moving_variance [4]"), "{err}");

    let mut pool = GlobalMaxPooling2D::new().name("g");
    build(&mut pool, &[3, 3, 2]).unwrap();
    let x = ArrayD::<f32>::zeros(vec![1, 3, 3, 2]);
    pool.forward(x.view(), &mut out, true).unwrap();
    let wrong = ArrayD::<f32>::zeros(vec![1, 1, 1, 2]);
    let err = pool
        .backward(x.view(), out.view(), wrong.view(), None)
        .unwrap_err();
    assert!(err.to_string().contains("(1, 2)"), "{err}");
}

/// An empty batch gives an empty output and leaves the statistics alone,
/// rather than averaging nothing into them.
#[test]
fn an_empty_batch_leaves_the_moving_statistics_alone() {
    let mut layer = BatchNormalization::new();
    build(&mut layer, &[3]).unwrap();
    let x = ArrayD::<f32>::zeros(vec![0, 3]);
    let mut out = ArrayD::zeros(vec![0]);
    layer.forward(x.view(), &mut out, true).unwrap();
    assert_eq!(out.shape(), &[0, 3]);
    layer.update_state(x.view(), out.view()).unwrap();
    assert_eq!(layer.moving_mean().to_vec(), [0.0; 3]);
    assert_eq!(layer.moving_variance().to_vec(), [1.0; 3]);
}

/// A model file whose moving statistics have the wrong shape is refused,
/// naming the tensor.
#[test]
fn a_model_file_with_a_moving_statistic_of_the_wrong_size_is_refused() {
    let mut small = Sequential::new()
        .input_shape([3])
        .add(BatchNormalization::new().name("b"));
    let mut large = Sequential::new()
        .input_shape([4])
        .add(BatchNormalization::new().name("b"));
    small.build().unwrap();
    large.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    small.save_weights(&path).unwrap();
    let err = large.load_weights(&path).unwrap_err().to_string();
    assert!(err.contains("`b/gamma`") && err.contains("[3]"), "{err}");
    assert_eq!(large.get_weights()[2], ArrayD::<f32>::zeros(vec![4]));
}

// ---------------------------------------------------------------------------
// LayerNormalization, Reshape, LeakyReLU and the Activation layer

/// Reshape, Dense, LayerNormalization, LeakyReLU, Dense, Activation: named,
/// shaped and counted as Keras shows them.
#[test]
fn new_layers_are_named_shaped_and_counted_as_in_keras() {
    let mut model = Sequential::new()
        .input_shape([12])
        .add(Reshape::new([3, 4]))
        .add(Dense::new(5))
        .add(LayerNormalization::new())
        .add(LeakyReLU::new())
        .add(LayerNormalization::new().center(false))
        .add(Reshape::new([-1]))
        .add(Dense::new(2))
        .add(ActivationLayer::new(Activation::Softmax));
    model.build().unwrap();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [
            "reshape",
            "dense",
            "layer_normalization",
            "leaky_re_lu",
            "layer_normalization_1",
            "reshape_1",
            "dense_1",
            "activation"
        ]
    );
    assert_eq!(model.output_shape().unwrap(), vec![2]);
    let summary = model.summary();
    // Dense 4 * 5 + 5, gamma and beta 5 + 5, gamma 5, Dense 15 * 2 + 2.
    assert_eq!(summary.total_params(), 25 + 10 + 5 + 32);
    assert_eq!(summary.trainable_params(), 25 + 10 + 5 + 32);
    assert_eq!(summary.non_trainable_params(), 0);
    let text = summary.to_string();
    for row in [
        "reshape (Reshape)",
        "(None, 3, 4)",
        "layer_normalization (LayerNormalization)",
        "leaky_re_lu (LeakyReLU)",
        "reshape_1 (Reshape)",
        "(None, 15)",
        "activation (Activation)",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }
    let params: Vec<usize> = model.layers().iter().map(|l| l.param_count()).collect();
    assert_eq!(params, [0, 25, 10, 0, 5, 0, 32, 0]);
    // A model ending in an Activation softmax trains with the fused loss.
    assert!(model.layers()[7].ends_in_softmax());
    model
        .compile(
            Sgd::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    let x = Array2::from_shape_fn((4, 12), |(i, j)| ((i * 5 + j * 3) % 7) as f32 - 3.0);
    let y = ndarray::array![0.0_f32, 1.0, 1.0, 0.0];
    let before = model.get_weights();
    model.train_on_batch(&x, &y).unwrap();
    let after = model.get_weights();
    // Both LayerNormalizations' weights moved: gamma and beta, then gamma.
    for i in 2..5 {
        assert_ne!(after[i], before[i], "weight {i}");
    }
}

#[test]
fn options_of_the_new_layers_survive_their_configs() {
    let norm = LayerNormalization::new()
        .epsilon(1e-5)
        .center(false)
        .beta_initializer(kerust::initializers::Initializer::Ones)
        .gamma_initializer(kerust::initializers::Initializer::Zeros)
        .name("n");
    let leaky = LeakyReLU::new().negative_slope(0.05).name("l");
    let activation = ActivationLayer::new(Activation::Tanh).name("a");
    let reshape = Reshape::new([2, -1, 3]).name("r");
    let cases: Vec<(Box<dyn Layer>, serde_json::Value)> = vec![
        (
            Box::new(norm),
            json!({
                "name": "n", "axis": -1, "epsilon": 1e-5, "center": false, "scale": true,
                "beta_initializer": "ones", "gamma_initializer": "zeros",
            }),
        ),
        (
            Box::new(leaky),
            json!({ "name": "l", "negative_slope": 0.05 }),
        ),
        (
            Box::new(activation),
            json!({ "name": "a", "activation": "tanh" }),
        ),
        (
            Box::new(reshape),
            json!({ "name": "r", "target_shape": [2, -1, 3] }),
        ),
    ];
    let registry = kerust::saving::LayerRegistry::with_builtins();
    for (layer, expected) in cases {
        assert_eq!(layer.config(), expected);
        let again = registry.make(layer.class_name(), &expected).unwrap();
        assert_eq!(again.config(), expected);
    }
    // The defaults, as Keras has them.
    assert_eq!(
        LeakyReLU::new().config(),
        json!({ "name": "", "negative_slope": 0.3 })
    );
    let defaults = LayerNormalization::new().config();
    assert_eq!(defaults["epsilon"], json!(0.001));
    assert_eq!(defaults["axis"], json!(-1));
    assert_eq!(defaults["gamma_initializer"], json!("ones"));
    assert_eq!(defaults["beta_initializer"], json!("zeros"));
}

/// Keras' configs of these layers, with the fields kerust accepts at their
/// default and `axis` as Keras writes it once built, make the layers.
#[test]
fn keras_configs_of_the_new_layers_are_accepted() {
    let registry = kerust::saving::LayerRegistry::with_builtins();
    for (class, config) in [
        (
            "LayerNormalization",
            json!({
                "name": "layer_normalization", "axis": [-1], "epsilon": 0.001,
                "center": true, "scale": true, "rms_scaling": false,
                "beta_initializer": "zeros", "gamma_initializer": "ones",
                "beta_regularizer": null, "gamma_regularizer": null,
                "beta_constraint": null, "gamma_constraint": null,
            }),
        ),
        ("LayerNormalization", json!({ "axis": 2 })),
        (
            "LeakyReLU",
            json!({ "name": "leaky_re_lu", "negative_slope": 0.3 }),
        ),
        ("LeakyReLU", json!({ "alpha": 0.2 })),
        (
            "Activation",
            json!({ "name": "activation", "activation": "relu" }),
        ),
        (
            "Reshape",
            json!({ "name": "reshape", "target_shape": [3, 4] }),
        ),
        ("Reshape", json!({ "target_shape": [] })),
    ] {
        let made = registry.make(class, &config);
        assert!(made.is_ok(), "{class} {config}: {:?}", made.err());
    }
    let mut by_index = LayerNormalization::from_config(&json!({ "axis": [2] })).unwrap();
    assert_eq!(build(&mut by_index, &[3, 4]).unwrap(), vec![3, 4]);
}

/// Each bad config of the new layers is an error that names the field.
#[test]
fn bad_configs_of_the_new_layers_are_errors_that_name_the_field() {
    for (class, config, field) in [
        ("LayerNormalization", json!({ "epsilon": 0.0 }), "`epsilon`"),
        (
            "LayerNormalization",
            json!({ "epsilon": "small" }),
            "`epsilon`",
        ),
        ("LayerNormalization", json!({ "axis": [1, 2] }), "`axis`"),
        ("LayerNormalization", json!({ "axis": 1.5 }), "`axis`"),
        ("LayerNormalization", json!({ "axis": [] }), "`axis`"),
        (
            "LayerNormalization",
            json!({ "rms_scaling": true }),
            "`rms_scaling`",
        ),
        (
            "LayerNormalization",
            json!({ "gamma_regularizer": "l2" }),
            "`gamma_regularizer`",
        ),
        (
            "LayerNormalization",
            json!({ "momentum": 0.99 }),
            "`momentum`",
        ),
        (
            "LeakyReLU",
            json!({ "negative_slope": -0.1 }),
            "`negative_slope`",
        ),
        (
            "LeakyReLU",
            json!({ "negative_slope": "0.3" }),
            "`negative_slope`",
        ),
        (
            "LeakyReLU",
            json!({ "negative_slope": 0.3, "alpha": 0.3 }),
            "`alpha`",
        ),
        ("LeakyReLU", json!({ "alpha": -1 }), "`negative_slope`"),
        ("Activation", json!({}), "`activation`"),
        (
            "Activation",
            json!({ "activation": "gelu" }),
            "`activation`",
        ),
        (
            "Activation",
            json!({ "activation": "relu", "max_value": 6 }),
            "`max_value`",
        ),
        ("Reshape", json!({}), "`target_shape`"),
        (
            "Reshape",
            json!({ "target_shape": [-1, -1] }),
            "`target_shape`",
        ),
        (
            "Reshape",
            json!({ "target_shape": [3, -2] }),
            "`target_shape`",
        ),
        (
            "Reshape",
            json!({ "target_shape": [1.5] }),
            "`target_shape`",
        ),
        ("Reshape", json!({ "target_shape": 12 }), "`target_shape`"),
    ] {
        let made = kerust::saving::LayerRegistry::with_builtins().make(class, &config);
        let Err(err) = made else {
            panic!("{class} was made from {config}");
        };
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        let err = err.to_string();
        assert!(err.contains(field), "{class} {config}: {err}");
    }
}

#[test]
fn bad_options_and_shapes_of_the_new_layers_are_errors_when_built() {
    let cases: Vec<(Box<dyn Layer>, &[usize], &str)> = vec![
        (
            Box::new(LayerNormalization::new().epsilon(f64::NAN)),
            &[4],
            "`epsilon` = NaN",
        ),
        (
            Box::new(LayerNormalization::from_config(&json!({ "axis": 1 })).unwrap()),
            &[3, 4],
            "normalises the last axis only: -1, or 2",
        ),
        (
            Box::new(LayerNormalization::new()),
            &[],
            "(None, ..., features)",
        ),
        (
            Box::new(LayerNormalization::new()),
            &[5, 0],
            "at least one feature",
        ),
        (
            Box::new(LeakyReLU::new().negative_slope(-0.5)),
            &[4],
            "`negative_slope` = -0.5",
        ),
        (
            Box::new(LeakyReLU::new().negative_slope(f64::INFINITY)),
            &[4],
            "`negative_slope` = inf",
        ),
        (
            Box::new(Reshape::new([-1, 5]).name("r")),
            &[12],
            "`r` expected shape (None, ...) of a multiple of 5 values per sample, for \
             target_shape (-1, 5), got (None, 12)",
        ),
        (
            Box::new(Reshape::new([-1, 0])),
            &[12],
            "`target_shape` = (-1, 0)",
        ),
        (
            Box::new(Reshape::new([-2])),
            &[12],
            "`target_shape` = (-2,)",
        ),
        (
            Box::new(Reshape::new([2, 3])),
            &[3, 0],
            "6 values per sample, for target_shape (2, 3), got (None, 3, 0)",
        ),
    ];
    for (mut layer, shape, expected) in cases {
        let err = build(layer.as_mut(), shape).unwrap_err();
        assert!(err.to_string().contains(expected), "{shape:?}: {err}");
    }
    // The sizes disagree: both shapes are named.
    let mut model = Sequential::new()
        .input_shape([12])
        .add(Reshape::new([5, 3]));
    let err = model.build().unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "`reshape` expected shape (None, ...) of 15 values per sample, for target_shape \
         (5, 3), got (None, 12)"
    );
}

#[test]
fn batches_weights_and_gradients_of_the_wrong_shape_are_errors_for_the_new_layers() {
    let x = ArrayD::<f32>::zeros(vec![2, 3]);
    let mut out = ArrayD::zeros(vec![0]);
    let unbuilt: Vec<Box<dyn Layer>> = vec![
        Box::new(LayerNormalization::new()),
        Box::new(LeakyReLU::new()),
        Box::new(ActivationLayer::new(Activation::Relu)),
        Box::new(Reshape::new([-1])),
    ];
    for layer in unbuilt {
        let err = layer.forward(x.view(), &mut out, true).unwrap_err();
        assert!(matches!(err, Error::NotBuilt { .. }), "{err}");
    }

    let mut norm = LayerNormalization::new().name("n");
    let err = norm.set_weights(&[]).unwrap_err();
    assert!(err.to_string().contains("of a built layer"), "{err}");
    build(&mut norm, &[4]).unwrap();
    let err = norm.forward(x.view(), &mut out, true).unwrap_err();
    assert_eq!(err.to_string(), "`n` expected shape (None, 4), got (2, 3)");
    let x = ArrayD::<f32>::ones(vec![2, 4]);
    norm.forward(x.view(), &mut out, true).unwrap();
    let wrong = ArrayD::<f32>::zeros(vec![2, 5]);
    let err = norm
        .backward(x.view(), out.view(), wrong.view(), None)
        .unwrap_err();
    assert_eq!(err.to_string(), "`n` expected shape (2, 4), got (2, 5)");
    let err = norm.set_weights(&[ArrayD::zeros(vec![4])]).unwrap_err();
    assert!(err.to_string().contains("2 weights (gamma, beta)"), "{err}");
    let err = norm
        .set_weights(&[ArrayD::zeros(vec![4]), ArrayD::zeros(vec![5])])
        .unwrap_err();
    assert!(err.to_string().contains("beta [4]"), "{err}");
    assert_eq!(norm.gamma().to_vec(), [1.0; 4]);

    let mut reshape = Reshape::new([2, 2]).name("r");
    build(&mut reshape, &[4]).unwrap();
    reshape.forward(x.view(), &mut out, true).unwrap();
    assert_eq!(out.shape(), &[2, 2, 2]);
    let err = reshape
        .backward(x.view(), out.view(), x.view(), None)
        .unwrap_err();
    assert_eq!(err.to_string(), "`r` expected shape (2, 2, 2), got (2, 4)");

    let mut leaky = LeakyReLU::new().name("k");
    build(&mut leaky, &[4]).unwrap();
    let err = leaky
        .backward(x.view(), x.view(), wrong.view(), None)
        .unwrap_err();
    assert_eq!(err.to_string(), "`k` expected shape (2, 4), got (2, 5)");
}

/// An empty batch passes through; NaN stays NaN, in its own sample only.
#[test]
fn empty_batches_and_nan_inputs_pass_through_the_new_layers() {
    let mut norm = LayerNormalization::new();
    build(&mut norm, &[3]).unwrap();
    let mut reshape = Reshape::new([3, 1]);
    build(&mut reshape, &[3]).unwrap();
    let mut out = ArrayD::zeros(vec![0]);
    let empty = ArrayD::<f32>::zeros(vec![0, 3]);
    norm.forward(empty.view(), &mut out, true).unwrap();
    assert_eq!(out.shape(), &[0, 3]);
    reshape.forward(empty.view(), &mut out, true).unwrap();
    assert_eq!(out.shape(), &[0, 3, 1]);

    let x = ndarray::array![[1.0_f32, f32::NAN, 2.0], [1.0, 2.0, 4.0]].into_dyn();
    norm.forward(x.view(), &mut out, true).unwrap();
    assert!(
        out.index_axis(Axis(0), 0).iter().all(|v| v.is_nan()),
        "{out}"
    );
    assert!(
        out.index_axis(Axis(0), 1).iter().all(|v| v.is_finite()),
        "{out}"
    );
    let mut dx = ArrayD::zeros(vec![0]);
    norm.backward(x.view(), out.view(), x.view(), Some(&mut dx))
        .unwrap();
    assert!(
        dx.index_axis(Axis(0), 1).iter().all(|v| v.is_finite()),
        "{dx}"
    );
}
