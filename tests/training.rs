//! Keras' conventions of fit, evaluate and predict, reproducibility, and the
//! errors bad input gets.

use std::sync::{Arc, Mutex};

use kerust::callbacks::TrainParams;
use kerust::prelude::*;
use ndarray::{array, Array1, Array2, ArrayD, Axis};

/// A small separable problem: is the first input above the second?
fn toy(samples: usize) -> (Array2<f32>, Array1<f32>) {
    let x = Array2::from_shape_fn((samples, 2), |(i, j)| {
        (((i * 37 + j * 11) % 23) as f32 - 11.0) / 11.0
    });
    let y = x.map_axis(Axis(1), |r| f32::from(r[0] > r[1]));
    (x, y)
}

fn model(seed: u64) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([2])
        .seed(seed)
        .add(Dense::new(8).activation(Activation::Relu))
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

/// Records what fit tells its callbacks.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Callback for Recorder {
    fn set_params(&mut self, p: &TrainParams) {
        self.0
            .lock()
            .unwrap()
            .push(format!("params samples={} steps={}", p.samples, p.steps));
    }
    fn on_train_batch_end(
        &mut self,
        step: usize,
        _: &mut Sequential,
        _: &Logs,
    ) -> kerust::Result<()> {
        self.0.lock().unwrap().push(format!("batch {step}"));
        Ok(())
    }
}

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::new().verbose(Verbosity::Silent)
}

#[test]
fn validation_split_holds_out_the_last_samples_before_shuffling() {
    let (x, y) = toy(10);
    let recorder = Recorder::default();
    let mut m = model(0);
    let history = m
        .fit(
            (&x, &y),
            quiet()
                .validation_split(0.25)
                .batch_size(4)
                .callback(recorder.clone()),
        )
        .unwrap();
    let events = recorder.0.lock().unwrap();
    assert_eq!(events[0], "params samples=7 steps=2");
    // The held-out part is exactly the last three samples.
    let scores = m
        .evaluate(&x.slice(ndarray::s![7.., ..]), &y.slice(ndarray::s![7..]))
        .unwrap();
    assert_eq!(
        history.get("val_loss").unwrap()[0],
        scores.get("loss").unwrap()
    );

    // Keras' count, `floor(n * (1 - split))` in double precision: 1,000
    // samples keep 900 at 0.1, 800 at 0.2 and 700 at 0.3.
    let (x, y) = toy(1000);
    for (split, kept) in [
        (0.1, 900_usize),
        (0.2, 800),
        (0.3, 700),
        (0.25, 750),
        (0.999, 1),
    ] {
        let recorder = Recorder::default();
        model(0)
            .fit(
                (&x, &y),
                quiet().validation_split(split).callback(recorder.clone()),
            )
            .unwrap();
        let events = recorder.0.lock().unwrap();
        assert_eq!(
            events[0],
            format!("params samples={kept} steps={}", kept.div_ceil(32)),
            "split {split}"
        );
    }

    let (x, y) = toy(1);
    let err = model(0)
        .fit((&x, &y), quiet().validation_split(0.5))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("0 for training"), "{err}");
}

#[test]
fn the_last_smaller_batch_is_trained() {
    let (x, y) = toy(2000);
    let recorder = Recorder::default();
    model(0)
        .fit((&x, &y), quiet().batch_size(32).callback(recorder.clone()))
        .unwrap();
    let events = recorder.0.lock().unwrap();
    assert_eq!(events[0], "params samples=2000 steps=63");
    assert_eq!(events.iter().filter(|e| e.starts_with("batch")).count(), 63);
}

#[test]
fn history_keys_are_the_compiled_metric_names() {
    let (x, y) = toy(64);
    let history = model(0)
        .fit((&x, &y), quiet().epochs(2).validation_data(&x, &y))
        .unwrap();
    let keys: Vec<&str> = history.keys().collect();
    assert_eq!(
        keys,
        [
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "learning_rate"
        ]
    );
    assert_eq!(history.len(), 2);
    assert_eq!(
        history.get("learning_rate").unwrap(),
        [0.009999999776482582; 2]
    );

    // As in Keras, the metric logs under the name compile was given.
    let mut short = model(0);
    short
        .compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["acc"])
        .unwrap();
    let history = short
        .fit((&x, &y), quiet().validation_data(&x, &y))
        .unwrap();
    let keys: Vec<&str> = history.keys().collect();
    assert_eq!(
        keys,
        ["loss", "acc", "val_loss", "val_acc", "learning_rate"]
    );
    short
        .compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["sparse_categorical_accuracy"],
        )
        .unwrap();
    let history = short.fit((&x, &y), quiet()).unwrap();
    assert!(history.get("sparse_categorical_accuracy").is_some());
    let err = short
        .compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["mae"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"mae\"") && err.contains("\"acc\""), "{err}");
}

#[test]
fn training_learns_a_separable_problem() {
    let (x, y) = toy(256);
    let mut m = model(1);
    let history = m.fit((&x, &y), quiet().epochs(20)).unwrap();
    let losses = history.get("loss").unwrap();
    assert!(losses[19] < 0.5 * losses[0], "{losses:?}");
    assert!(m.evaluate(&x, &y).unwrap().get("accuracy").unwrap() > 0.95);
}

#[test]
fn two_runs_with_one_seed_are_identical_to_the_bit() {
    let (x, y) = toy(500);
    let run = || {
        let mut m = model(42);
        let h = m
            .fit((&x, &y), quiet().epochs(3).seed(42).validation_data(&x, &y))
            .unwrap();
        (serde_json::to_string(&h).unwrap(), m.predict(&x).unwrap())
    };
    let (h1, p1) = run();
    let (h2, p2) = run();
    assert_eq!(h1, h2);
    assert_eq!(p1, p2);

    // Another seed gives another run: the comparison above can fail.
    let mut other = model(7);
    let h3 = other
        .fit((&x, &y), quiet().epochs(3).seed(7).validation_data(&x, &y))
        .unwrap();
    assert_ne!(h1, serde_json::to_string(&h3).unwrap());
}

#[test]
fn one_and_two_threads_give_identical_results() {
    // More samples than one prediction piece, so the work really splits.
    let (x, y) = toy(3000);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut m = model(42);
            let h = m
                .fit((&x, &y), quiet().epochs(2).seed(42).validation_data(&x, &y))
                .unwrap();
            (serde_json::to_string(&h).unwrap(), m.predict(&x).unwrap())
        })
    };
    let (h1, p1) = run(1);
    let (h2, p2) = run(2);
    assert_eq!(h1, h2);
    assert_eq!(p1, p2);
}

#[test]
fn extreme_values_follow_keras() {
    let mut layer = Softmax::new();
    layer
        .build(
            &[2],
            &mut kerust::random::stream(0, kerust::random::Purpose::Init, 0, 0),
        )
        .unwrap();
    let mut out = ArrayD::zeros(vec![0]);
    layer
        .forward(
            array![[1000.0_f32, 1000.0]].into_dyn().view(),
            &mut out,
            false,
        )
        .unwrap();
    assert_eq!(out, array![[0.5_f32, 0.5]].into_dyn());

    let loss = SparseCategoricalCrossentropy::new().from_logits(true);
    let mut grad = ArrayD::zeros(vec![0]);
    let value = loss
        .compute(
            array![1.0_f32].into_dyn().view(),
            array![[1000.0_f32, 0.0]].into_dyn().view(),
            Some(&mut grad),
        )
        .unwrap();
    assert_eq!(value, 1000.0);
    assert_eq!(grad, array![[1.0_f32, -1.0]].into_dyn());

    let value = SparseCategoricalCrossentropy::new()
        .compute(
            array![1.0_f32].into_dyn().view(),
            array![[1.0_f32, 0.0]].into_dyn().view(),
            None,
        )
        .unwrap();
    assert!((value - 16.118_096).abs() < 1e-5, "{value}");
}

#[test]
fn a_label_equal_to_the_class_count_names_index_and_value() {
    let (x, mut y) = toy(8);
    y[5] = 2.0;
    let err = model(0).fit((&x, &y), quiet()).unwrap_err();
    match &err {
        Error::LabelOutOfRange { label, classes, .. } => assert_eq!((*label, *classes), (2.0, 2)),
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("label 2") && text.contains("at index 5") && text.contains("[0, 2)"),
        "{text}"
    );
}

#[test]
fn a_bad_label_in_a_later_batch_names_its_index_in_the_data() {
    let (x, mut y) = toy(64);
    y[37] = 7.0;
    for shuffle in [false, true] {
        let options = quiet().batch_size(32).shuffle(shuffle).seed(3);
        let err = model(0).fit((&x, &y), options).unwrap_err();
        assert!(
            matches!(err, Error::LabelOutOfRange { index: 37, .. }),
            "shuffle {shuffle}: {err}"
        );
    }
    let err = model(0).evaluate(&x, &y).unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { index: 37, .. }),
        "{err}"
    );
    // In the part `validation_split` holds out (rows 48 to 63), too.
    let (sx, mut sy) = toy(64);
    sy[50] = 7.0;
    let err = model(0)
        .fit((&sx, &sy), quiet().validation_split(0.25))
        .unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { index: 50, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("at index 50 of `y`"), "{err}");

    // In `validation_data`, the index is within those labels, and the
    // message says which labels it means.
    let (vx, mut vy) = toy(20);
    vy[11] = -1.0;
    let err = model(0)
        .fit((&x, &toy(64).1), quiet().validation_data(&vx, &vy))
        .unwrap_err();
    assert!(
        matches!(&err, Error::LabelOutOfRange { index: 11, data, .. } if data == "validation_data"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("label -1 at index 11 of `validation_data` is not a class"),
        "{err}"
    );

    // Through the augmenter's flow, shuffled, the index is the image's.
    let images = x.clone().into_shape_with_order((64, 1, 2, 1)).unwrap();
    let flow = ImageDataGenerator::new()
        .flow(&images, &y, 16)
        .unwrap()
        .seed(9);
    let mut m = Sequential::new()
        .input_shape([1, 2, 1])
        .add(Flatten::new())
        .add(Dense::new(2).activation(Activation::Softmax));
    m.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )
    .unwrap();
    let err = m.fit(flow, quiet()).unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { index: 37, .. }),
        "{err}"
    );
}

#[test]
fn dropout_changes_training_not_inference_and_is_reproducible() {
    let (x, y) = toy(64);
    let make = |rate: f64| {
        let mut m = Sequential::new()
            .input_shape([2])
            .seed(4)
            .add(Dense::new(16).activation(Activation::Relu))
            .add(Dropout::new(rate).seed(8))
            .add(Dense::new(2).activation(Activation::Softmax));
        m.compile(
            Adam::new().learning_rate(0.01),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
        m
    };
    let (mut none, mut half, mut again) = (make(0.0), make(0.5), make(0.5));
    // Before training, inference ignores the rate.
    assert_eq!(none.predict(&x).unwrap(), half.predict(&x).unwrap());
    let options = || quiet().epochs(3).batch_size(16).seed(1);
    let h_none = none.fit((&x, &y), options()).unwrap();
    let h_half = half.fit((&x, &y), options()).unwrap();
    let h_again = again.fit((&x, &y), options()).unwrap();
    assert_ne!(h_none.get("loss"), h_half.get("loss"));
    assert_ne!(none.get_weights(), half.get_weights());
    assert_eq!(h_half.get("loss"), h_again.get("loss"));
    assert_eq!(half.get_weights(), again.get_weights());
    // Evaluation uses every unit: the same weights give the same scores.
    assert_eq!(
        half.evaluate(&x, &y).unwrap(),
        again.evaluate(&x, &y).unwrap()
    );
}

#[test]
fn targets_of_the_wrong_kind_are_refused_with_a_hint() {
    let (x, y) = toy(8);
    let one_hot = Array2::from_shape_fn((8, 2), |(i, j)| f32::from(y[i] as usize == j));
    let err = model(0).fit((&x, &one_hot), quiet()).unwrap_err();
    assert!(err.to_string().contains("CategoricalCrossentropy"), "{err}");

    let mut m = model(0);
    m.compile(Adam::new(), CategoricalCrossentropy::new(), ["accuracy"])
        .unwrap();
    let err = m.fit((&x, &y), quiet()).unwrap_err();
    assert!(
        err.to_string().contains("SparseCategoricalCrossentropy"),
        "{err}"
    );
}

#[test]
fn input_of_the_wrong_shape_names_the_expected_shape() {
    let x = Array2::<f32>::zeros((4, 3));
    let y = Array1::<f32>::zeros(4);
    let err = model(0).fit((&x, &y), quiet()).unwrap_err();
    let text = err.to_string();
    assert_eq!(text, "`sequential` expected shape (None, 2), got (4, 3)");
    // Every call counts the samples it was given.
    for rows in [1, 5, 600] {
        let x = Array2::<f32>::zeros((rows, 3));
        let err = model(0).predict(&x).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("`sequential` expected shape (None, 2), got ({rows}, 3)")
        );
        let y = Array1::<f32>::zeros(rows);
        let err = model(0).evaluate(&x, &y).unwrap_err().to_string();
        assert!(err.ends_with(&format!("got ({rows}, 3)")), "{err}");
    }
    let images = ndarray::Array4::<f32>::zeros((5, 28, 28, 1));
    let err = model(0).predict(&images).unwrap_err().to_string();
    assert!(err.ends_with("got (5, 28, 28, 1)"), "{err}");
    // One sample without its batch axis gets a hint.
    let one = Array1::<f32>::zeros(2);
    let err = model(0).predict(&one).unwrap_err().to_string();
    assert!(
        err.contains("got (2,): one sample without the batch axis"),
        "{err}"
    );
}

#[test]
fn empty_data_and_missing_compile_are_errors() {
    let x = Array2::<f32>::zeros((0, 2));
    let y = Array1::<f32>::zeros(0);
    let err = model(0).fit((&x, &y), quiet()).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    let err = model(0).predict(&x).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");

    let (x, y) = toy(4);
    let mut uncompiled = Sequential::new().add(Dense::new(2));
    let err = uncompiled.fit((&x, &y), quiet()).unwrap_err();
    assert!(matches!(err, Error::NotCompiled { .. }), "{err}");
    assert!(err.to_string().contains("compile"), "{err}");
}

#[test]
fn a_model_without_input_shape_builds_on_its_first_data() {
    let (x, y) = toy(16);
    let mut m = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
    assert!(matches!(m.output_shape(), Err(Error::NotBuilt { .. })));
    m.compile(
        Sgd::new().momentum(0.9).nesterov(true),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )
    .unwrap();
    m.fit((&x, &y), quiet()).unwrap();
    assert_eq!(m.output_shape().unwrap(), vec![2]);
    assert_eq!(m.count_params(), 6);
}

#[test]
fn summary_shows_the_keras_table() {
    let mut m = Sequential::new()
        .input_shape([28, 28, 1])
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    m.build().unwrap();
    let text = m.summary().to_string();
    for needle in [
        "flatten (Flatten)",
        "(None, 784)",
        "dense (Dense)",
        "(None, 128)",
        "100,480",
        "dense_1 (Dense)",
        "1,290",
        "Total params: 101,770",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn bad_hyperparameters_are_refused_at_compile() {
    let mut m = Sequential::new().add(Dense::new(2));
    let err = m
        .compile(
            Adam::new().learning_rate(-1.0),
            MeanSquaredError::new(),
            ["accuracy"],
        )
        .unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
    let err = m
        .compile(Adam::new(), MeanSquaredError::new(), ["precision_at_k"])
        .unwrap_err();
    assert!(err.to_string().contains("precision_at_k"), "{err}");
}

#[test]
fn array_options_given_with_a_generator_are_refused() {
    let (x, y) = toy(16);
    let source = |x, y| kerust::model::ArraySource::new(x, y, 4).unwrap().seed(3);
    let data = (x.view().into_dyn(), y.view().into_dyn());
    let err = model(0)
        .fit(
            source(data.0.clone(), data.1.clone()),
            quiet().batch_size(8),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("generator brings its own"),
        "{err}"
    );
    let err = model(0)
        .fit(source(data.0.clone(), data.1.clone()), quiet().seed(1))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    // Without them, the generator trains as it is.
    let history = model(0)
        .fit(source(data.0, data.1), quiet().epochs(2))
        .unwrap();
    assert_eq!(history.len(), 2);
}

/// A Flatten in front of the first Dense views the batch rather than
/// copying it: training is the same, to the bit, as on inputs flattened
/// beforehand.
#[test]
fn a_leading_flatten_trains_as_flat_inputs_do() {
    let images = ndarray::Array4::from_shape_fn((96, 4, 4, 1), |(n, r, c, _)| {
        (((n * 13 + r * 5 + c * 3) % 11) as f32 - 3.0).max(0.0) / 7.0
    });
    let y = Array1::from_shape_fn(96, |n| {
        f32::from(images[[n, 1, 1, 0]] > images[[n, 2, 2, 0]])
    });
    let flat = images.clone().into_shape_with_order((96, 16)).unwrap();
    let build = |with_flatten: bool| {
        let mut model = Sequential::new().seed(5);
        model = if with_flatten {
            model.input_shape([4, 4, 1]).add(Flatten::new())
        } else {
            model.input_shape([16])
        };
        model = model
            .add(Dense::new(16).activation(Activation::Relu))
            .add(Dense::new(2).activation(Activation::Softmax));
        model
            .compile(
                Adam::new().learning_rate(0.01),
                SparseCategoricalCrossentropy::new(),
                ["accuracy"],
            )
            .unwrap();
        model.build().unwrap();
        model
    };
    let mut viewed = build(true);
    let mut copied = build(false);
    copied.set_weights(&viewed.get_weights()).unwrap();
    let h1 = viewed
        .fit((&images, &y), quiet().epochs(2).batch_size(16).seed(1))
        .unwrap();
    let h2 = copied
        .fit((&flat, &y), quiet().epochs(2).batch_size(16).seed(1))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&h1).unwrap(),
        serde_json::to_string(&h2).unwrap()
    );
    let bits = |m: &Sequential| -> Vec<u32> {
        m.get_weights()
            .iter()
            .flat_map(|w| w.iter().map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(bits(&viewed), bits(&copied));
}

/// Asserts that `err` names a non-finite input in `data` at `index` and
/// `position`.
fn assert_non_finite(err: &Error, data: &str, index: usize, position: &[usize]) {
    match err {
        Error::NonFiniteInput {
            data: d,
            index: i,
            position: p,
            ..
        } => assert_eq!(
            (d.as_str(), *i, p.as_slice()),
            (data, index, position),
            "{err}"
        ),
        other => panic!("expected a non-finite input, got: {other}"),
    }
}

#[test]
fn non_finite_inputs_are_named_by_their_data_sample_and_position() {
    let (mut x, y) = toy(64);
    x[[37, 1]] = f32::NAN;
    for shuffle in [false, true] {
        let err = model(0)
            .fit((&x, &y), quiet().shuffle(shuffle))
            .unwrap_err();
        assert_non_finite(&err, "x", 37, &[1]);
        assert_eq!(
            err.to_string(),
            "`x` holds NaN at sample 37, position (1,): expected finite numbers"
        );
    }
    // In the part validation_split holds out, by its index in x.
    let err = model(0)
        .fit((&x, &y), quiet().validation_split(0.5))
        .unwrap_err();
    assert_non_finite(&err, "x", 37, &[1]);

    let (clean, _) = toy(64);
    let (mut vx, vy) = toy(10);
    vx[[3, 0]] = f32::NEG_INFINITY;
    let err = model(0)
        .fit((&clean, &y), quiet().validation_data(&vx, &vy))
        .unwrap_err();
    assert_non_finite(&err, "validation_data", 3, &[0]);
    assert!(err.to_string().contains("holds -inf at sample 3"), "{err}");

    // Prediction and evaluation, in a later piece of the batch.
    let mut big = Array2::<f32>::zeros((1500, 2));
    big[[1200, 1]] = f32::INFINITY;
    let err = model(0).predict(&big).unwrap_err();
    assert_non_finite(&err, "x", 1200, &[1]);
    big[[1200, 1]] = 0.0;
    big[[1300, 0]] = f32::NAN;
    let err = model(0).predict(&big).unwrap_err();
    assert_non_finite(&err, "x", 1300, &[0]);
    big[[1300, 0]] = 0.0;
    big[[1200, 1]] = f32::INFINITY;
    let err = model(0)
        .evaluate(&big, &Array1::<f32>::zeros(1500))
        .unwrap_err();
    assert_non_finite(&err, "x", 1200, &[1]);

    let err = model(0).train_on_batch(&x, &y).unwrap_err();
    assert_non_finite(&err, "x", 37, &[1]);
}

#[test]
fn non_finite_pixels_are_refused_by_the_flow_and_found_in_other_sources() {
    let mut images = ndarray::Array4::<f32>::zeros((12, 3, 2, 1));
    images[[7, 2, 1, 0]] = f32::NAN;
    let labels = Array1::<f32>::zeros(12);
    let err = ImageDataGenerator::new()
        .flow(&images, &labels, 4)
        .unwrap_err();
    assert_non_finite(&err, "x", 7, &[2, 1, 0]);

    /// Hands out its rows in order, unable to tell their indices.
    struct Rows {
        x: Array2<f32>,
        y: Array1<f32>,
        next: usize,
    }
    impl BatchSource for Rows {
        fn len(&self) -> usize {
            self.x.nrows()
        }
        fn sample_shape(&self) -> Vec<usize> {
            vec![2]
        }
        fn steps_per_epoch(&self) -> usize {
            self.len().div_ceil(8)
        }
        fn start_epoch(&mut self, _epoch: usize) -> Result<()> {
            self.next = 0;
            Ok(())
        }
        fn next_batch(&mut self) -> Result<Option<kerust::model::Batch>> {
            if self.next >= self.len() {
                return Ok(None);
            }
            let end = (self.next + 8).min(self.len());
            let batch = kerust::model::Batch {
                x: self
                    .x
                    .slice(ndarray::s![self.next..end, ..])
                    .to_owned()
                    .into_dyn(),
                y: self
                    .y
                    .slice(ndarray::s![self.next..end])
                    .to_owned()
                    .into_dyn(),
            };
            self.next = end;
            Ok(Some(batch))
        }
    }
    let (mut x, y) = toy(40);
    x[[21, 0]] = f32::NAN;
    let err = model(0).fit(Rows { x, y, next: 0 }, quiet()).unwrap_err();
    assert_non_finite(&err, "x", 21, &[0]);
}

/// An optimizer from outside kerust that implements only the methods the
/// trait requires: it counts steps and updates, and moves no weight.
#[derive(Default)]
struct CountingOptimizer {
    iterations: u64,
    updates: usize,
}

impl Optimizer for CountingOptimizer {
    fn name(&self) -> &str {
        "counting"
    }

    fn learning_rate(&self) -> f32 {
        1.0
    }

    fn set_learning_rate(&mut self, _: f32) {}

    fn begin_step(&mut self) {
        self.iterations += 1;
    }

    fn update(&mut self, _: usize, _: &mut [f32], _: &[f32]) {
        self.updates += 1;
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn state(&self) -> kerust::optimizers::OptimizerState {
        kerust::optimizers::OptimizerState {
            iterations: self.iterations,
            slots: vec![("updates".into(), 0, vec![self.updates as f32])],
        }
    }

    fn load_state(&mut self, _: &kerust::optimizers::OptimizerState) -> kerust::Result<()> {
        Ok(())
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": "counting" })
    }
}

/// SGD with `global_clipnorm` in a training step: every weight moves by its
/// gradient times one factor, `clip / norm` with the norm over all four
/// weights. An optimizer that leaves out the gradient pass (the trait's
/// default) is updated as before, once per weight.
#[test]
fn global_clipnorm_scales_all_gradients_of_a_step_by_their_joint_norm() {
    let (x, y) = toy(16);
    let make = |optimizer: Box<dyn Optimizer>| {
        let mut m = Sequential::new()
            .input_shape([2])
            .seed(4)
            .add(Dense::new(8).activation(Activation::Relu))
            .add(Dense::new(2).activation(Activation::Softmax));
        m.compile(
            optimizer,
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
        m
    };
    let mut counted = make(Box::<CountingOptimizer>::default());
    let before = counted.get_weights();
    counted.train_on_batch(&x, &y).unwrap();
    counted.train_on_batch(&x, &y).unwrap();
    let optimizer = counted.optimizer().unwrap();
    assert!(!optimizer.needs_all_gradients());
    assert_eq!(
        optimizer.state().slots[0].2,
        vec![8.0],
        "two steps of four weights"
    );
    assert_eq!(counted.get_weights(), before);

    // Plain SGD at learning rate 1 moves each weight by its gradient.
    let mut plain = make(Box::new(Sgd::new().learning_rate(1.0)));
    plain.train_on_batch(&x, &y).unwrap();
    let gradients: Vec<ArrayD<f32>> = before
        .iter()
        .zip(plain.get_weights())
        .map(|(w0, w1)| w0 - &w1)
        .collect();
    let norm = gradients
        .iter()
        .flatten()
        .map(|g| f64::from(*g) * f64::from(*g))
        .sum::<f64>()
        .sqrt();
    let clip = 0.1;
    assert!(norm > 2.0 * clip, "the step is clipped: norm {norm}");

    let mut clipped = make(Box::new(
        Sgd::new().learning_rate(1.0).global_clipnorm(clip),
    ));
    clipped.train_on_batch(&x, &y).unwrap();
    let scale = clip / norm;
    for ((w0, w1), g) in before.iter().zip(clipped.get_weights()).zip(&gradients) {
        for ((a, b), g) in w0.iter().zip(w1.iter()).zip(g) {
            let expected = f64::from(*a) - f64::from(*g) * scale;
            assert!((f64::from(*b) - expected).abs() < 1e-6, "{b} vs {expected}");
        }
    }
}

/// The bits of every weight array of `model`.
fn weight_bits(model: &Sequential) -> Vec<Vec<u32>> {
    model
        .get_weights()
        .iter()
        .map(|w| w.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn a_frozen_layer_keeps_its_weights_while_the_others_train() {
    let (x, y) = toy(64);
    let mut m = model(5);
    m.set_trainable("dense", false).unwrap();
    assert_eq!(m.is_trainable("dense"), Some(false));
    assert_eq!(m.is_trainable("dense_1"), Some(true));
    m.build().unwrap();
    let before = weight_bits(&m);
    m.fit((&x, &y), quiet().epochs(3).batch_size(8)).unwrap();
    let after = weight_bits(&m);
    assert_eq!(after[..2], before[..2], "the frozen kernel and bias");
    assert_ne!(after[2], before[2], "dense_1's kernel trains");
    assert_ne!(after[3], before[3], "dense_1's bias trains");

    // The optimizer keeps no state for the frozen weights.
    let state = m.optimizer().unwrap().state();
    for (name, slot, values) in &state.slots {
        assert_eq!(values.is_empty(), *slot < 2, "{name} {slot}");
    }

    let summary = m.summary();
    assert_eq!(summary.non_trainable_params(), 2 * 8 + 8);
    assert_eq!(summary.trainable_params(), 8 * 2 + 2);
    let table = summary.to_string();
    assert!(table.contains("Trainable params: 18 ("), "{table}");
    assert!(table.contains("Non-trainable params: 24 ("), "{table}");
}

#[test]
fn gradients_flow_through_a_frozen_layer_to_the_ones_below() {
    // With plain SGD, one step moves the first layer by the same amounts
    // whether the layer above it is frozen or not.
    let (x, y) = toy(16);
    let make = || {
        let mut m = Sequential::new()
            .input_shape([2])
            .seed(9)
            .add(Dense::new(8).activation(Activation::Relu))
            .add(Dense::new(2).activation(Activation::Softmax));
        m.compile(
            Sgd::new().learning_rate(0.5),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
        m
    };
    let (mut free, mut frozen_top) = (make(), make());
    frozen_top.set_trainable("dense_1", false).unwrap();
    free.train_on_batch(&x, &y).unwrap();
    frozen_top.build().unwrap();
    let top_before = weight_bits(&frozen_top)[2..].to_vec();
    frozen_top.train_on_batch(&x, &y).unwrap();
    let (a, b) = (weight_bits(&free), weight_bits(&frozen_top));
    assert_eq!(a[..2], b[..2], "the first layer's step");
    assert_eq!(b[2..], top_before[..], "the frozen top");
    assert_ne!(a[2..], b[2..], "the free model's top moved");
}

#[test]
fn unfreezing_resumes_training_and_the_flag_is_saved() {
    let (x, y) = toy(64);
    let dir = std::env::temp_dir().join(format!("kerust-freeze-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The top frozen, then the bottom: the optimizer has no state yet for
    // the frozen weights, at the end of its slots or at their start.
    for (frozen, other, weights) in [("dense_1", "dense", 2..4), ("dense", "dense_1", 0..2)] {
        let mut m = model(2);
        m.set_trainable(frozen, false).unwrap();
        m.fit((&x, &y), quiet().epochs(1).batch_size(16)).unwrap();
        let while_frozen = weight_bits(&m)[weights.clone()].to_vec();

        let path = dir.join(format!("{frozen}.safetensors"));
        m.save(&path).unwrap();
        let mut loaded = kerust::saving::load_model(&path).unwrap();
        assert_eq!(loaded.is_trainable(frozen), Some(false));
        assert_eq!(loaded.is_trainable(other), Some(true));
        assert_eq!(loaded.summary().to_string(), m.summary().to_string());

        // Training on from the file and in memory gives the same bits.
        for model in [&mut m, &mut loaded] {
            model.set_trainable(frozen, true).unwrap();
            model
                .fit((&x, &y), quiet().epochs(2).initial_epoch(1).batch_size(16))
                .unwrap();
        }
        assert_eq!(weight_bits(&m), weight_bits(&loaded), "{frozen}");
        assert_ne!(
            weight_bits(&m)[weights].to_vec(),
            while_frozen,
            "{frozen} trains again"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let mut m = model(2);
    let err = m.set_trainable("conv", false).unwrap_err().to_string();
    assert!(
        err.contains("\"conv\"") && err.contains("\"dense\", \"dense_1\""),
        "{err}"
    );
    assert_eq!(m.is_trainable("conv"), None);
}

#[test]
fn a_layer_pushed_on_a_trained_model_leaves_the_trained_weights_as_they_are() -> kerust::Result<()>
{
    let x =
        ndarray::Array2::from_shape_fn((32, 3), |(i, j)| ((i * 7 + j * 5) % 11) as f32 / 5.0 - 1.0);
    let y = ndarray::Array1::from_shape_fn(32, |i| f32::from(x[[i, 0]] > x[[i, 1]]));
    let mut model = Sequential::new()
        .seed(4)
        .add(Dense::new(6).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    model.compile(
        Adam::new().learning_rate(0.05),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )?;
    model.fit(
        (&x, &y),
        FitOptions::new().epochs(3).verbose(Verbosity::Silent),
    )?;
    let trained = model.get_weights();

    // Replace the head, freeze the body, train again.
    let head = model.pop().expect("a head");
    assert_eq!(head.class_name(), "Dense");
    assert!(
        !model.is_compiled(),
        "the optimizer's state went with the old stack"
    );
    assert!(model.is_built(), "the body keeps its weights");
    model.push(Box::new(Dense::new(3).activation(Activation::Softmax)));
    assert!(!model.is_built());
    model.set_trainable("dense", false)?;
    model.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )?;
    assert_eq!(
        model.get_weights()[..2],
        trained[..2],
        "building made the new head only"
    );
    model.fit(
        (&x, &y),
        FitOptions::new().epochs(2).verbose(Verbosity::Silent),
    )?;
    assert_eq!(model.get_weights()[..2], trained[..2], "frozen body");
    assert_eq!(model.output_shape()?, [3]);

    // Data of another width cannot rebuild the trained body behind its back.
    let wide = ndarray::Array2::<f32>::zeros((4, 5));
    model.push(Box::new(Dense::new(2)));
    let err = model.predict(&wide).err();
    assert!(matches!(err, Some(Error::ShapeMismatch { .. })), "{err:?}");
    assert_eq!(model.get_weights()[..2], trained[..2]);
    assert!(Sequential::new().pop().is_none());
    Ok(())
}

#[test]
fn a_bad_label_stops_fit_before_any_weight_changes() {
    let (x, y) = toy(64);
    let images = x.clone().into_shape_with_order((64, 1, 2, 1)).unwrap();
    let image_model = |seed: u64| {
        let mut m = Sequential::new()
            .input_shape([1, 2, 1])
            .seed(seed)
            .add(Flatten::new())
            .add(Dense::new(2).activation(Activation::Softmax));
        m.compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
        m
    };
    // The last label of the training arrays, of the validation data, and
    // of a flow's labels: found before the first batch is trained.
    let mut bad = y.clone();
    bad[63] = 2.0;
    let mut m = model(1);
    let before = m.get_weights();
    // In order, the bad label comes in the last batch.
    let err = m
        .fit((&x, &bad), quiet().batch_size(8).shuffle(false))
        .unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { index: 63, .. }),
        "{err}"
    );
    assert_eq!(m.get_weights(), before);

    let mut m = model(1);
    let err = m
        .fit((&x, &y), quiet().batch_size(8).validation_data(&x, &bad))
        .unwrap_err();
    assert!(
        matches!(&err, Error::LabelOutOfRange { index: 63, data, .. } if data == "validation_data"),
        "{err}"
    );
    assert_eq!(m.get_weights(), before);

    let mut m = image_model(1);
    let before = m.get_weights();
    let flow = ImageDataGenerator::new()
        .flow(&images, &bad, 8)
        .unwrap()
        .shuffle(false);
    let err = m.fit(flow, quiet()).unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { index: 63, .. }),
        "{err}"
    );
    assert_eq!(m.get_weights(), before);

    // `train_on_batch` checks before its forward pass, which would move a
    // BatchNormalization's statistics.
    let mut m = Sequential::new()
        .input_shape([2])
        .add(BatchNormalization::new())
        .add(Dense::new(2).activation(Activation::Softmax));
    m.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )
    .unwrap();
    m.build().unwrap();
    let before = m.get_weights();
    let err = m.train_on_batch(&x, &bad).unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { index: 63, .. }),
        "{err}"
    );
    assert_eq!(m.get_weights(), before);

    // One-hot rows given to the sparse loss: the hint shows the data's
    // shapes, not a batch's.
    let one_hot = kerust::utils::to_categorical(&y, 2).unwrap();
    let err = model(1)
        .fit((&x, &one_hot), quiet().batch_size(8))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`sparse_categorical_crossentropy` expected shape (64,), one integer label per row \
         of predictions (64, 2), got (64, 2): these look like one-hot rows; use \
         `CategoricalCrossentropy` for them"
    );
}

/// The toy model compiled with plain SGD at `learning_rate`.
fn sgd_model(seed: u64, learning_rate: f32) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([2])
        .seed(seed)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    model
        .compile(
            Sgd::new().learning_rate(learning_rate),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

#[test]
fn class_weight_scales_each_sample_s_loss_and_gradient_as_keras_does() {
    let (x, y) = toy(24);
    let options = || quiet().epochs(3).batch_size(8).seed(5);

    // One weight for every class multiplies every gradient by it: with SGD,
    // the same steps as a learning rate that many times larger, to the bit.
    let mut doubled = sgd_model(2, 0.1);
    doubled
        .fit((&x, &y), options().class_weight([(0, 2.0), (1, 2.0)]))
        .unwrap();
    let mut faster = sgd_model(2, 0.2);
    faster.fit((&x, &y), options()).unwrap();
    assert_eq!(doubled.get_weights(), faster.get_weights());

    // Weights of 1 change nothing.
    let mut ones = sgd_model(2, 0.1);
    ones.fit((&x, &y), options().class_weight([(1, 1.0)]))
        .unwrap();
    let mut plain = sgd_model(2, 0.1);
    plain.fit((&x, &y), options()).unwrap();
    assert_eq!(ones.get_weights(), plain.get_weights());

    // The logged loss of one batch is the sum of each sample's cross-entropy
    // times its class' weight, over the number of samples; the accuracy
    // counts every sample alike, as Keras' (unweighted) `metrics`.
    let mut model = sgd_model(3, 0.1);
    let probs = model.predict(&x).unwrap();
    let weight = |label: f32| if label == 1.0 { 3.0 } else { 0.5 };
    let (mut loss, mut right, mut total) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (i, &label) in y.iter().enumerate() {
        let p = f64::from(probs[[i, label as usize]]);
        let w = weight(label);
        loss -= w * p.ln();
        let guess = usize::from(probs[[i, 1]] > probs[[i, 0]]);
        if guess == label as usize {
            right += 1.0;
        }
        total += 1.0;
    }
    let history = model
        .fit(
            (&x, &y),
            quiet().batch_size(24).class_weight([(0, 0.5), (1, 3.0)]),
        )
        .unwrap();
    let logged = history.get("loss").unwrap()[0];
    let expected = loss / 24.0;
    assert!(
        (logged - expected).abs() < 1e-6 * expected,
        "{logged} against {expected}"
    );
    assert_eq!(history.get("accuracy").unwrap()[0], right / total);
    // Validation figures are not weighted.
    let mut model = sgd_model(3, 0.1);
    let history = model
        .fit(
            (&x, &y),
            quiet()
                .batch_size(24)
                .class_weight([(0, 0.5), (1, 3.0)])
                .validation_data(&x, &y),
        )
        .unwrap();
    let mut after = sgd_model(3, 0.1);
    after.set_weights(&model.get_weights()).unwrap();
    let scores = after.evaluate(&x, &y).unwrap();
    assert_eq!(
        history.get("val_loss").unwrap()[0],
        scores.get("loss").unwrap()
    );

    // One-hot targets take the class of their largest entry.
    let one_hot = kerust::utils::to_categorical(&y, 2).unwrap();
    let mut categorical = Sequential::new()
        .input_shape([2])
        .seed(2)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    categorical
        .compile(
            Sgd::new().learning_rate(0.1),
            CategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    categorical
        .fit((&x, &one_hot), options().class_weight([(0, 2.0), (1, 2.0)]))
        .unwrap();
    assert_eq!(categorical.get_weights(), faster.get_weights());
}

#[test]
fn bad_class_weights_are_refused_by_name() {
    let (x, y) = toy(8);
    for (weights, says) in [
        (vec![(0, -1.0)], "0: -1"),
        (vec![(1, f32::NAN)], "1: NaN"),
        (vec![(0, 1.0), (0, 2.0)], "came twice"),
    ] {
        let err = model(0)
            .fit((&x, &y), quiet().class_weight(weights))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, Error::InvalidArgument { name, .. } if name == "class_weight"),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn validation_data_binary_targets_and_the_head_are_checked_before_training() {
    let (x, y) = toy(16);
    let mut m = model(4);
    m.build().unwrap();
    let before = m.get_weights();

    // Validation inputs of another shape, or targets of another length.
    let wide = Array2::<f32>::zeros((4, 5));
    let err = m
        .fit(
            (&x, &y),
            quiet().validation_data(&wide, &Array1::<f32>::zeros(4)),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`validation_data` expected shape (None, 2), got (4, 5)"
    );
    let err = m
        .fit(
            (&x, &y),
            quiet().validation_data(&x, &Array1::<f32>::zeros(9)),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`validation_data` expected shape (16, ...) targets, one per input, got (9,)"
    );

    // Class weights for a class the model does not predict.
    let err = m
        .fit((&x, &y), quiet().class_weight([(0, 1.0), (7, 2.0)]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not a class of this model, which predicts 2"),
        "{err}"
    );
    assert_eq!(m.get_weights(), before);

    // A softmax over one unit is always 1.
    let mut one = Sequential::new()
        .input_shape([2])
        .add(Dense::new(1).activation(Activation::Softmax));
    one.compile(Adam::new(), BinaryCrossentropy::new(), ["accuracy"])
        .unwrap();
    let err = one.fit((&x, &y), quiet()).unwrap_err();
    assert!(err.to_string().contains("always 1"), "{err}");

    // Labels 0 and 1 for one sigmoid unit need the binary loss.
    let mut sparse = Sequential::new()
        .input_shape([2])
        .add(Dense::new(1).activation(Activation::Sigmoid));
    sparse
        .compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    let err = sparse.fit((&x, &y), quiet()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`sparse_categorical_crossentropy` expected shape predictions (16, classes), one \
         unit per class, got (16, 1): one output unit, for which labels 0 and 1 need \
         `BinaryCrossentropy`"
    );

    // Binary targets are probabilities: soft ones train, 2 does not.
    let mut sigmoid = Sequential::new()
        .input_shape([2])
        .add(Dense::new(1).activation(Activation::Sigmoid));
    sigmoid
        .compile(Adam::new(), BinaryCrossentropy::new(), ["accuracy"])
        .unwrap();
    let soft = y.mapv(|v| 0.1 + 0.8 * v);
    sigmoid.fit((&x, &soft), quiet()).unwrap();
    let before = sigmoid.get_weights();
    let mut bad = y.clone();
    bad[11] = 2.0;
    let err = sigmoid.fit((&x, &bad), quiet()).unwrap_err();
    assert!(
        matches!(&err, Error::TargetOutOfRange { index: 11, value, .. } if *value == 2.0),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "target 2 at index 11 of `y` is out of range: `binary_crossentropy` expected a \
         probability in [0, 1]"
    );
    let err = sigmoid
        .fit((&x, &y), quiet().validation_data(&x, &bad))
        .unwrap_err();
    assert!(
        matches!(&err, Error::TargetOutOfRange { index: 11, data, .. } if data == "validation_data"),
        "{err}"
    );
    assert_eq!(sigmoid.get_weights(), before);
}

#[test]
fn precision_and_recall_are_logged_by_name_and_scored_on_the_validation_data() {
    let (x, y) = toy(64);
    let mut m = Sequential::new()
        .input_shape([2])
        .seed(6)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(
        Adam::new().learning_rate(0.01),
        BinaryCrossentropy::new(),
        ["accuracy", "precision", "recall"],
    )
    .unwrap();
    let history = m
        .fit((&x, &y), quiet().epochs(3).validation_data(&x, &y))
        .unwrap();
    for key in ["precision", "recall", "val_precision", "val_recall"] {
        assert_eq!(history.get(key).map(<[f64]>::len), Some(3), "{key}");
    }
    // The last validation figures, counted again from the predictions.
    let probs = m.predict(&x).unwrap();
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (&p, &t) in probs.iter().zip(y.iter()) {
        match (t == 1.0, p > 0.5) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            _ => {}
        }
    }
    assert_eq!(history.get("val_precision").unwrap()[2], tp / (tp + fp));
    assert_eq!(history.get("val_recall").unwrap()[2], tp / (tp + fn_));
}

#[test]
fn auc_f1_and_top_k_are_logged_by_name_and_scored_on_the_validation_data() {
    use kerust::metrics::{Auc, Average, F1Score, IntoMetric, SparseTopKCategoricalAccuracy};

    let (x, y) = toy(64);
    let mut m = model(12);
    let metrics: Vec<Box<dyn Metric>> = vec![
        "sparse_top_k_categorical_accuracy".into_metric().unwrap(),
        Box::new(SparseTopKCategoricalAccuracy::new().k(1).named("top_1")),
        Box::new(F1Score::new(Average::Macro)),
        Box::new(Auc::new()),
    ];
    m.compile(
        Adam::new().learning_rate(0.01),
        SparseCategoricalCrossentropy::new(),
        metrics,
    )
    .unwrap();
    let (x_val, y_val) = (
        x.slice(ndarray::s![..40, ..]).to_owned(),
        y.slice(ndarray::s![..40]).to_owned(),
    );
    // AUC reads targets of the predictions' shape: with class labels for
    // two units, the first step says so.
    let err = m
        .fit((&x, &y), quiet().epochs(1).validation_data(&x_val, &y_val))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`auc` expected shape one target per prediction"),
        "{err}"
    );

    let metrics: Vec<Box<dyn Metric>> = vec![
        "sparse_top_k_categorical_accuracy".into_metric().unwrap(),
        Box::new(SparseTopKCategoricalAccuracy::new().k(1).named("top_1")),
        Box::new(F1Score::new(Average::Macro)),
    ];
    m.compile(
        Adam::new().learning_rate(0.01),
        SparseCategoricalCrossentropy::new(),
        metrics,
    )
    .unwrap();
    let history = m
        .fit((&x, &y), quiet().epochs(3).validation_data(&x_val, &y_val))
        .unwrap();
    for key in [
        "sparse_top_k_categorical_accuracy",
        "top_1",
        "f1_score",
        "val_sparse_top_k_categorical_accuracy",
        "val_top_1",
        "val_f1_score",
    ] {
        assert_eq!(history.get(key).map(<[f64]>::len), Some(3), "{key}");
    }
    // Two classes: every label is among the top 5.
    assert_eq!(
        history
            .get("val_sparse_top_k_categorical_accuracy")
            .unwrap(),
        [1.0; 3]
    );
    // The last validation figures, counted again from the predictions.
    let probs = m.predict(&x_val).unwrap();
    let mut top_1 = SparseTopKCategoricalAccuracy::new().k(1);
    top_1
        .update(y_val.view().into_dyn(), probs.view().into_dyn())
        .unwrap();
    assert_eq!(history.get("val_top_1").unwrap()[2], top_1.result());
    let mut f1 = F1Score::new(Average::Macro);
    f1.update(y_val.view().into_dyn(), probs.view().into_dyn())
        .unwrap();
    assert_eq!(history.get("val_f1_score").unwrap()[2], f1.result());

    // A sigmoid's AUC, by name.
    let mut sigmoid = Sequential::new()
        .input_shape([2])
        .seed(6)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    sigmoid
        .compile(
            Adam::new().learning_rate(0.01),
            BinaryCrossentropy::new(),
            ["auc"],
        )
        .unwrap();
    let history = sigmoid
        .fit((&x, &y), quiet().epochs(2).validation_data(&x_val, &y_val))
        .unwrap();
    let probs = sigmoid.predict(&x_val).unwrap();
    let mut auc = Auc::new();
    auc.update(y_val.view().into_dyn(), probs.view().into_dyn())
        .unwrap();
    assert_eq!(history.get("val_auc").unwrap()[1], auc.result());
    assert!(history.get("auc").unwrap()[1] > 0.5);
}

/// A sample's weight goes with it when the samples are shuffled: weighing
/// each sample by its class' weight through `sample_weight` trains as
/// `class_weight` does, to the bit, over shuffled epochs whose batches mix
/// the classes. A weight looked up by the sample's place in the batch
/// rather than its index in the data would weigh other samples.
#[test]
fn sample_weights_follow_their_samples_when_shuffled() {
    let (x, y) = toy(30);
    let options = || quiet().epochs(4).batch_size(7).seed(11);
    let per_class = |label: f32| if label == 1.0 { 2.5 } else { 0.25 };
    let weights = y.mapv(per_class);

    let mut by_class = sgd_model(4, 0.1);
    let h1 = by_class
        .fit((&x, &y), options().class_weight([(0, 0.25), (1, 2.5)]))
        .unwrap();
    let mut by_sample = sgd_model(4, 0.1);
    let h2 = by_sample
        .fit((&x, &y), options().sample_weight(&weights))
        .unwrap();
    assert_eq!(by_class.get_weights(), by_sample.get_weights());
    assert_eq!(h1.get("loss"), h2.get("loss"));

    // Weights shaped (n, 1) are the same weights.
    let column = weights.clone().insert_axis(Axis(1));
    let mut by_column = sgd_model(4, 0.1);
    by_column
        .fit((&x, &y), options().sample_weight(&column))
        .unwrap();
    assert_eq!(by_column.get_weights(), by_sample.get_weights());

    // Both together multiply: class weights of 2 on top of the sample
    // weights double every gradient, which with SGD is twice the learning
    // rate, to the bit.
    let mut both = sgd_model(4, 0.1);
    both.fit(
        (&x, &y),
        options()
            .sample_weight(&weights)
            .class_weight([(0, 2.0), (1, 2.0)]),
    )
    .unwrap();
    let mut faster = sgd_model(4, 0.2);
    faster
        .fit((&x, &y), options().sample_weight(&weights))
        .unwrap();
    assert_eq!(both.get_weights(), faster.get_weights());
}

/// `evaluate_with` weighs the loss, not the metrics, and its validation
/// counterpart in `fit` weighs `val_loss` alike.
#[test]
fn sample_weights_weigh_the_evaluated_and_validation_loss_only() {
    let (x, y) = toy(20);
    let weights = Array1::from_shape_fn(20, |i| (i % 4) as f32 * 0.5);
    let mut m = model(9);
    let plain = m.evaluate(&x, &y).unwrap();
    let options = EvaluateOptions::new()
        .verbose(Verbosity::Silent)
        .sample_weight(&weights);
    let weighted = m.evaluate_with(&x, &y, &options).unwrap();
    assert_eq!(weighted.get("accuracy"), plain.get("accuracy"));

    // The weighted loss from each sample's own loss.
    let mut expected = 0.0;
    for i in 0..20 {
        let one = m
            .evaluate(
                &x.slice(ndarray::s![i..=i, ..]),
                &y.slice(ndarray::s![i..=i]),
            )
            .unwrap();
        expected += f64::from(weights[i]) * one.get("loss").unwrap();
    }
    expected /= 20.0;
    let got = weighted.get("loss").unwrap();
    assert!(
        (got - expected).abs() < 1e-6 * expected,
        "{got} against {expected}"
    );

    // `val_loss` of an epoch is the weighted score after it; `val_accuracy`
    // is not weighted.
    let mut trained = model(9);
    let history = trained
        .fit(
            (&x, &y),
            quiet()
                .batch_size(8)
                .validation_data(&x, &y)
                .validation_sample_weight(&weights),
        )
        .unwrap();
    let scores = trained
        .evaluate_with(&x, &y, &options.clone().batch_size(8))
        .unwrap();
    assert_eq!(
        history.get("val_loss").unwrap()[0],
        scores.get("loss").unwrap()
    );
    let unweighted = trained.evaluate(&x, &y).unwrap();
    assert_eq!(
        history.get("val_accuracy").unwrap()[0],
        unweighted.get("accuracy").unwrap()
    );
}

/// Each sample's output depends on it alone, through every kind of layer:
/// predictions are the same to the bit in batches of any size, and so are
/// the metrics of `evaluate_with`; its loss, a mean of batch means, moves
/// by rounding only.
#[test]
fn predictions_and_metrics_do_not_depend_on_the_batch_size() {
    let images = ndarray::Array4::from_shape_fn((70, 6, 6, 1), |(n, r, c, _)| {
        if (n + r * c) % 5 == 0 {
            0.0
        } else {
            ((n * 13 + r * 7 + c * 3) % 17) as f32 / 17.0
        }
    });
    let labels = Array1::from_shape_fn(70, |n| (n % 3) as f32);
    let mut cnn = Sequential::new()
        .input_shape([6, 6, 1])
        .seed(3)
        .add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))
        .add(BatchNormalization::new())
        .add(MaxPooling2D::new((2, 2)))
        .add(Dropout::new(0.3))
        .add(Flatten::new())
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    cnn.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )
    .unwrap();
    cnn.fit((&images, &labels), quiet().epochs(2).batch_size(16))
        .unwrap();

    let reference = cnn.predict(&images).unwrap();
    let scores = cnn.evaluate(&images, &labels).unwrap();
    for batch_size in [1, 3, 16, 69, 70, 500] {
        let options = PredictOptions::new()
            .batch_size(batch_size)
            .verbose(Verbosity::Silent);
        let predictions = cnn.predict_with(&images, &options).unwrap();
        assert_eq!(predictions, reference, "batch size {batch_size}");
        let options = EvaluateOptions::new()
            .batch_size(batch_size)
            .verbose(Verbosity::Silent);
        let other = cnn.evaluate_with(&images, &labels, &options).unwrap();
        assert_eq!(other.get("accuracy"), scores.get("accuracy"));
        let (a, b) = (other.get("loss").unwrap(), scores.get("loss").unwrap());
        assert!(
            (a - b).abs() < 1e-6 * b,
            "batch size {batch_size}: {a} against {b}"
        );
    }
}

#[test]
fn bad_sample_weights_and_batch_sizes_are_refused_by_name() {
    let (x, y) = toy(10);
    let shape_error = |err: &Error, name: &str, says: &str| {
        let text = err.to_string();
        assert!(
            matches!(err, Error::ShapeMismatch { layer, .. } if layer == name),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
    };
    let value_error = |err: &Error, name: &str, says: &str| {
        let text = err.to_string();
        assert!(
            matches!(err, Error::InvalidArgument { name: n, .. } if n == name),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
    };

    // One weight per sample.
    let short = Array1::<f32>::ones(9);
    let mut m = model(0);
    let before = m.get_weights();
    let err = m.fit((&x, &y), quiet().sample_weight(&short)).unwrap_err();
    shape_error(
        &err,
        "sample_weight",
        "expected shape (10,), one weight per sample of x, got (9,)",
    );
    assert_eq!(m.get_weights(), before, "nothing trained");
    let wide = Array2::<f32>::ones((10, 2));
    let err = m.fit((&x, &y), quiet().sample_weight(&wide)).unwrap_err();
    shape_error(&err, "sample_weight", "got (10, 2)");
    let err = m
        .fit(
            (&x, &y),
            quiet()
                .validation_data(&x, &y)
                .validation_sample_weight(&short),
        )
        .unwrap_err();
    shape_error(
        &err,
        "validation_sample_weight",
        "one weight per sample of validation_data, got (9,)",
    );
    let options = EvaluateOptions::new().sample_weight(&short);
    let err = m.evaluate_with(&x, &y, &options).unwrap_err();
    shape_error(&err, "sample_weight", "(10,), one weight per sample of x");

    // Finite and not negative.
    for (bad, says) in [
        (-1.0, "-1 at sample 4"),
        (f32::NAN, "NaN at sample 4"),
        (f32::INFINITY, "inf at sample 4"),
    ] {
        let mut weights = Array1::<f32>::ones(10);
        weights[4] = bad;
        let err = m
            .fit((&x, &y), quiet().sample_weight(&weights))
            .unwrap_err();
        value_error(&err, "sample_weight", says);
        assert!(err
            .to_string()
            .contains("expected a finite weight, 0 or more"));
        let options = EvaluateOptions::new().sample_weight(&weights);
        let err = m.evaluate_with(&x, &y, &options).unwrap_err();
        value_error(&err, "sample_weight", says);
        let err = m
            .fit(
                (&x, &y),
                quiet()
                    .validation_data(&x, &y)
                    .validation_sample_weight(&weights),
            )
            .unwrap_err();
        value_error(&err, "validation_sample_weight", says);
    }
    assert_eq!(m.get_weights(), before, "nothing trained");

    // Validation weights need validation data.
    let ones = Array1::<f32>::ones(10);
    let err = m
        .fit((&x, &y), quiet().validation_sample_weight(&ones))
        .unwrap_err();
    value_error(&err, "validation_sample_weight", "give those too");

    // A generator brings its own samples.
    let flow =
        kerust::model::ArraySource::new(x.view().into_dyn(), y.view().into_dyn(), 4).unwrap();
    let err = m.fit(flow, quiet().sample_weight(&ones)).unwrap_err();
    value_error(&err, "sample_weight", "only arrays can be weighted");

    // A batch holds at least one sample.
    let err = m
        .evaluate_with(&x, &y, &EvaluateOptions::new().batch_size(0))
        .unwrap_err();
    value_error(&err, "batch_size", "expected at least 1");
    let err = m
        .predict_with(&x, &PredictOptions::new().batch_size(0))
        .unwrap_err();
    value_error(&err, "batch_size", "expected at least 1");
    let err = m.fit((&x, &y), quiet().batch_size(0)).unwrap_err();
    value_error(&err, "batch_size", "expected at least 1");
    assert_eq!(m.get_weights(), before, "nothing trained");
}

#[test]
fn two_layers_of_one_name_are_refused_before_any_step() {
    let (x, y) = toy(16);
    let twins = || {
        Sequential::new()
            .add(Dense::new(4).name("hidden"))
            .add(Dense::new(2).name("hidden").activation(Activation::Softmax))
    };
    let named_hidden = |err: Error| {
        assert!(
            matches!(&err, Error::InvalidArgument { value, .. } if value == "\"hidden\""),
            "{err}"
        );
        assert!(err.to_string().contains("unique"), "{err}");
    };

    // With an input shape, `build` and so `compile` refuse them.
    let mut shaped = twins().input_shape([2]);
    named_hidden(shaped.build().unwrap_err());
    named_hidden(
        shaped
            .compile(
                Adam::new(),
                SparseCategoricalCrossentropy::new(),
                ["accuracy"],
            )
            .unwrap_err(),
    );

    // Without one, `fit` does, before its first step: no epoch is logged.
    let mut lazy = twins();
    lazy.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )
    .unwrap();
    let recorder = Recorder::default();
    let err = lazy
        .fit((&x, &y), quiet().callback(recorder.clone()))
        .unwrap_err();
    named_hidden(err);
    assert!(recorder.0.lock().unwrap().is_empty());
    assert!(!lazy.is_built());

    // Names the model gives never collide with a name given.
    let mut auto = Sequential::new()
        .input_shape([2])
        .add(Dense::new(4).name("dense_1"))
        .add(Dense::new(4))
        .add(Dense::new(2));
    auto.build().unwrap();
    let names: Vec<&str> = auto.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["dense_1", "dense", "dense_2"]);
}
