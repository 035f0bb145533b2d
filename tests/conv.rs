//! Conv2D and MaxPooling2D in a model: learning an image task, the same
//! weights from the same seed, saving and loading, and the errors for bad
//! shapes and bad configs.

use kerust::prelude::*;
use kerust::random::{stream, Purpose};
use ndarray::{Array1, Array4, ArrayD};
use serde_json::json;

/// 8x8 images of one bar, horizontal (label 0) or vertical (label 1), at
/// each of the eight rows or columns, on a faint uneven background.
fn bars() -> (Array4<f32>, Array1<f32>) {
    let count = 32;
    let label = |n: usize| (n % 2) as f32;
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
    (x, Array1::from_shape_fn(count, label))
}

fn model(seed: u64) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([8, 8, 1])
        .seed(seed)
        .add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(2).activation(Activation::Softmax));
    model
        .compile(
            Adam::new().learning_rate(0.01),
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
        .epochs(15)
        .batch_size(8)
        .verbose(Verbosity::Silent);
    model.fit((&x, &y), options).unwrap();
    model
}

#[test]
fn a_small_convolutional_model_learns_horizontal_from_vertical_bars() {
    let (x, y) = bars();
    let mut model = trained(7);
    let scores = model.evaluate(&x, &y).unwrap();
    assert_eq!(scores.get("accuracy"), Some(1.0), "{scores:?}");
    assert_eq!(model.output_shape().unwrap(), vec![2]);
    // 3 * 3 * 1 * 4 + 4 for the convolution, 3 * 3 * 4 * 2 + 2 for Dense.
    assert_eq!(model.count_params(), 40 + 74);
}

#[test]
fn two_runs_with_one_seed_give_the_same_weights_to_the_bit() {
    let (a, b) = (trained(11), trained(11));
    assert_eq!(a.get_weights(), b.get_weights());
    assert_ne!(a.get_weights(), trained(12).get_weights());
}

#[test]
fn a_saved_convolutional_model_loads_and_predicts_the_same_to_the_bit() {
    let (x, _) = bars();
    let mut model = trained(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conv.safetensors");
    model.save(&path).unwrap();
    let mut loaded = load_model(&path).unwrap();
    assert_eq!(loaded.get_weights(), model.get_weights());
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
    let configs = |m: &Sequential| m.layers().iter().map(|l| l.config()).collect::<Vec<_>>();
    assert_eq!(configs(&loaded), configs(&model));
}

#[test]
fn every_conv2d_option_survives_its_config() {
    let layer = Conv2D::new(5, (3, 2))
        .strides((2, 1))
        .padding(Padding::Same)
        .activation(Activation::Tanh)
        .use_bias(false)
        .kernel_initializer(kerust::initializers::Initializer::HeNormal)
        .bias_initializer(kerust::initializers::Initializer::Ones)
        .name("c");
    let config = layer.config();
    assert_eq!(
        config,
        json!({
            "name": "c", "filters": 5, "kernel_size": [3, 2], "strides": [2, 1],
            "padding": "same", "activation": "tanh", "use_bias": false,
            "kernel_initializer": "he_normal", "bias_initializer": "ones",
        })
    );
    assert_eq!(Conv2D::from_config(&config).unwrap().config(), config);

    let pool = MaxPooling2D::new((3, 2))
        .strides((1, 2))
        .padding(Padding::Same)
        .name("p");
    let config = pool.config();
    assert_eq!(
        config,
        json!({ "name": "p", "pool_size": [3, 2], "strides": [1, 2], "padding": "same" })
    );
    assert_eq!(MaxPooling2D::from_config(&config).unwrap().config(), config);
}

#[test]
fn keras_defaults_of_unsupported_options_are_accepted_and_others_refused() {
    let base = json!({ "filters": 2, "kernel_size": [3, 3] });
    let with = |key: &str, value: serde_json::Value| {
        let mut config = base.clone();
        config[key] = value;
        Conv2D::from_config(&config)
    };
    assert!(with("data_format", json!("channels_last")).is_ok());
    assert!(with("dilation_rate", json!([1, 1])).is_ok());
    assert!(with("groups", json!(1)).is_ok());
    for (key, value) in [
        ("data_format", json!("channels_first")),
        ("dilation_rate", json!([2, 2])),
        ("groups", json!(2)),
    ] {
        let err = with(key, value).unwrap_err().to_string();
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }
}

/// Each bad config is an error that names the field at fault.
#[test]
fn bad_configs_are_errors_that_name_the_field() {
    for (class, config, field) in [
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": 3, "dilation": 2 }),
            "`dilation`",
        ),
        (
            "Conv2D",
            json!({ "filters": "2", "kernel_size": 3 }),
            "`filters`",
        ),
        (
            "Conv2D",
            json!({ "filters": -2, "kernel_size": 3 }),
            "`filters`",
        ),
        ("Conv2D", json!({ "kernel_size": 3 }), "`filters`"),
        ("Conv2D", json!({ "filters": 2 }), "`kernel_size`"),
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": [3, 3, 3] }),
            "`kernel_size`",
        ),
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": 3, "padding": "full" }),
            "`padding`",
        ),
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": 3, "strides": [1.5, 1] }),
            "`strides`",
        ),
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": 3, "activation": "gelu" }),
            "`activation`",
        ),
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": 3, "use_bias": 1 }),
            "`use_bias`",
        ),
        (
            "Conv2D",
            json!({ "filters": 2, "kernel_size": 3, "name": 4 }),
            "`name`",
        ),
        ("Conv2D", json!([2, 3]), "`config`"),
        (
            "MaxPooling2D",
            json!({ "pool_size": 2, "pool": 2 }),
            "`pool`",
        ),
        ("MaxPooling2D", json!({}), "`pool_size`"),
        ("MaxPooling2D", json!({ "pool_size": "2" }), "`pool_size`"),
        (
            "MaxPooling2D",
            json!({ "pool_size": 2, "padding": "causal" }),
            "`padding`",
        ),
        (
            "MaxPooling2D",
            json!({ "pool_size": 2, "data_format": "channels_first" }),
            "`data_format`",
        ),
    ] {
        let made = kerust::saving::LayerRegistry::with_builtins().make(class, &config);
        let Err(err) = made else {
            panic!("{class} was made from {config}");
        };
        let err = err.to_string();
        assert!(err.contains(field), "{class} {config}: {err}");
    }
}

fn build(layer: &mut dyn Layer, input_shape: &[usize]) -> kerust::Result<Vec<usize>> {
    layer.build(input_shape, &mut stream(0, Purpose::Init, 0, 0))
}

#[test]
fn an_input_that_is_not_an_image_is_a_shape_error() {
    for shape in [&[784][..], &[28, 28], &[2, 28, 28, 1]] {
        let err = build(&mut Conv2D::new(2, (3, 3)).name("c"), shape).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("expected shape (None, height, width, channels)"),
            "{err}"
        );
        let err = build(&mut MaxPooling2D::new((2, 2)), shape)
            .unwrap_err()
            .to_string();
        assert!(err.contains("(None, height, width, channels)"), "{err}");
    }
    let err = build(&mut Conv2D::new(2, (1, 1)), &[4, 4, 0])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("each at least 1") && err.contains("(None, 4, 4, 0)"),
        "{err}"
    );
}

#[test]
fn a_kernel_larger_than_the_input_is_a_shape_error_with_either_padding() {
    for padding in [Padding::Valid, Padding::Same] {
        let mut layer = Conv2D::new(2, (5, 3)).padding(padding).name("c");
        let err = build(&mut layer, &[4, 6, 1]).unwrap_err().to_string();
        assert_eq!(
            err,
            "`c` expected shape (None, height >= 5, width >= 3, channels) for a 5x3 kernel, \
             got (None, 4, 6, 1)"
        );
    }
    let err = build(&mut MaxPooling2D::new((3, 3)).name("p"), &[2, 2, 1]).unwrap_err();
    assert!(err.to_string().contains("for a 3x3 pool"), "{err}");
    // With same padding a pool may be larger than the input, as in Keras.
    let mut pool = MaxPooling2D::new((3, 3)).padding(Padding::Same);
    assert_eq!(build(&mut pool, &[2, 2, 1]).unwrap(), vec![1, 1, 1]);
}

#[test]
fn zero_filters_sizes_and_strides_are_invalid_arguments() {
    let cases: Vec<(Box<dyn Layer>, &str)> = vec![
        (Box::new(Conv2D::new(0, (3, 3))), "`filters` = 0"),
        (Box::new(Conv2D::new(2, (0, 3))), "`kernel_size` = (0, 3)"),
        (
            Box::new(Conv2D::new(2, (3, 3)).strides((1, 0))),
            "`strides` = (1, 0)",
        ),
        (Box::new(MaxPooling2D::new((2, 0))), "`pool_size` = (2, 0)"),
        (
            Box::new(MaxPooling2D::new((2, 2)).strides((0, 0))),
            "`strides` = (0, 0)",
        ),
    ];
    for (mut layer, expected) in cases {
        let err = build(layer.as_mut(), &[6, 6, 1]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn a_batch_of_other_images_than_built_for_is_a_shape_error() {
    let mut conv = Conv2D::new(2, (3, 3)).name("c");
    build(&mut conv, &[6, 6, 1]).unwrap();
    let x = ArrayD::<f32>::zeros(vec![2, 6, 5, 1]);
    let mut out = ArrayD::zeros(vec![0]);
    let err = conv.forward(x.view(), &mut out, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`c` expected shape (None, 6, 6, 1), got (2, 6, 5, 1)"
    );
    let unbuilt = MaxPooling2D::new((2, 2));
    let err = unbuilt.forward(x.view(), &mut out, false).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err}");

    // A gradient of the wrong shape is refused too.
    let x = ArrayD::<f32>::zeros(vec![2, 6, 6, 1]);
    conv.forward(x.view(), &mut out, true).unwrap();
    let wrong = ArrayD::<f32>::zeros(vec![2, 4, 4, 3]);
    let err = conv
        .backward(x.view(), out.view(), wrong.view(), None)
        .unwrap_err();
    assert!(err.to_string().contains("(2, 4, 4, 2)"), "{err}");
}

/// The bytes of `bytes`, a model file, with `from` replaced by `to` in its
/// `model_config`.
fn edit_model_config(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let metadata = &mut header["__metadata__"]["model_config"];
    let config = metadata.as_str().unwrap().to_string();
    let edited = config.replacen(from, to, 1);
    assert_ne!(config, edited, "`{from}` is not in {config}");
    *metadata = json!(edited);
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

/// A model file's shapes are checked through Conv2D and MaxPooling2D
/// before anything is built: a Conv2D config that does not match its
/// kernel is refused, and so is an input shape that the convolution and
/// the pooling turn into another Dense input than the file's kernel has.
#[test]
fn a_model_file_whose_config_does_not_match_its_kernels_is_refused() {
    let mut model = Sequential::new()
        .input_shape([6, 6, 2])
        .add(Conv2D::new(3, (3, 3)).name("c"))
        .add(MaxPooling2D::new((2, 2)).name("p"))
        .add(Flatten::new())
        .add(Dense::new(2).name("d"));
    model.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(load_model(&path).is_ok());

    for (from, to, expected) in [
        (
            "\"filters\":3",
            "\"filters\":3000000000",
            "weight `c/kernel` has shape [3, 3, 2, 3] in the file, but the model config \
             makes it [3, 3, 2, 3000000000]",
        ),
        (
            // 8x8 -> 6x6x3 -> 3x3x3: 27 inputs for Dense; the file's have
            // 6x6 -> 4x4x3 -> 2x2x3, 12.
            "\"input_shape\":[6,6,2]",
            "\"input_shape\":[8,8,2]",
            "weight `d/kernel` has shape [12, 2] in the file, but the model config makes it \
             [27, 2]",
        ),
    ] {
        std::fs::write(&path, edit_model_config(&bytes, from, to)).unwrap();
        let Err(err) = load_model(&path) else {
            panic!("a file edited with `{to}` loaded");
        };
        let err = err.to_string();
        assert!(err.contains(expected), "{err}");
    }
}
