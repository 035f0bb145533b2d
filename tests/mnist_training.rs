//! Training on the real MNIST digits shipped in `data/mnist/`.
//!
//! The short run is part of the normal suite; the full reference run (15
//! epochs, no augmentation, seed 42) is ignored by default:
//! `cargo test --release --test mnist_training -- --ignored`.

use kerust::datasets::mnist;
use kerust::prelude::*;

fn reference_mlp(seed: u64) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .seed(seed)
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    model
        .compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])
        .unwrap();
    model
}

#[test]
fn one_epoch_on_ten_thousand_digits_passes_ninety_percent() {
    let (train, test) = mnist::load_data().unwrap();
    let train = train.take(10_000);
    let (x, y) = (train.images_f32(), train.labels());
    let (x_test, y_test) = (test.images_f32(), test.labels());
    let mut model = reference_mlp(42);
    let options = FitOptions::new()
        .epochs(1)
        .seed(42)
        .verbose(Verbosity::Silent);
    let history = model.fit((&x, &y), options).unwrap();
    let scores = model.evaluate(&x_test, &y_test).unwrap();
    let accuracy = scores.get("accuracy").unwrap();
    // Keras gets about 0.91 from this run; a broken gradient gets 0.1.
    assert!(accuracy > 0.90, "test accuracy {accuracy}");
    assert!(history.get("loss").unwrap()[0] < 0.6, "{history:?}");
}

#[test]
#[ignore = "the full reference run: 15 epochs on 60,000 digits"]
fn the_reference_recipe_without_augmentation_reaches_97_5_percent() {
    let (train, test) = mnist::load_data().unwrap();
    let (x, y) = (train.images_f32(), train.labels());
    let (x_test, y_test) = (test.images_f32(), test.labels());
    let mut model = reference_mlp(42);
    let options = FitOptions::new()
        .epochs(15)
        .batch_size(32)
        .seed(42)
        .validation_data(&x_test, &y_test)
        .verbose(Verbosity::EpochLines);
    model.fit((&x, &y), options).unwrap();
    let accuracy = model.evaluate(&x_test, &y_test).unwrap().get("accuracy").unwrap();
    assert!(accuracy >= 0.975, "test accuracy {accuracy}");
}
