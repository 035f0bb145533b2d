//! Reading the real MNIST files (in `data/mnist/`) and, when it is
//! installed, Fashion-MNIST.

use std::path::Path;

use kerust::datasets::mnist::{self, Split};

/// Where Debian's `dataset-fashion-mnist` package puts the four files.
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

fn mnist_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("mnist")
}

fn first_labels(split: &Split, n: usize) -> Vec<u8> {
    split.labels_u8().iter().take(n).copied().collect()
}

#[test]
fn mnist_has_sixty_thousand_training_and_ten_thousand_test_digits() {
    let (train, test) = mnist::load_data_from(mnist_dir()).unwrap();

    assert_eq!(train.images().shape(), &[60_000, 28, 28]);
    assert_eq!(test.images().shape(), &[10_000, 28, 28]);
    assert_eq!(first_labels(&train, 10), vec![5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(first_labels(&test, 10), vec![7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(
        test.class_counts(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(
        train.class_counts(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
}

#[test]
fn mnist_training_pixels_have_the_well_known_mean_and_deviation() {
    let (train, _) = mnist::load_data_from(mnist_dir()).unwrap();
    let x = train.images_f32();
    assert_eq!(x.shape(), &[60_000, 28, 28, 1]);

    // The normalisation constants quoted by every MNIST tutorial
    // (`transforms.Normalize((0.1307,), (0.3081,))`): population mean and
    // standard deviation of all training pixels scaled to [0, 1].
    let count = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
    let variance = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / count;
    assert_eq!(format!("{mean:.4}"), "0.1307");
    assert_eq!(format!("{:.4}", variance.sqrt()), "0.3081");
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn load_data_reads_the_repository_folder_or_the_environment_variable() {
    // Both paths lead to the same files; the variable, when set by whoever
    // runs the tests, must name a folder holding MNIST too.
    let (train, test) = mnist::load_data().unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(first_labels(&test, 3), vec![7, 2, 1]);
}

#[test]
fn take_gives_a_subset_for_quick_runs() {
    let (train, _) = mnist::load_data_from(mnist_dir()).unwrap();
    let subset = train.take(1000);
    assert_eq!(subset.images_f32().shape(), &[1000, 28, 28, 1]);
    assert_eq!(subset.labels().len(), 1000);
    assert_eq!(
        subset.images(),
        &train.images().slice(ndarray::s![..1000, .., ..])
    );
}

#[test]
fn fashion_mnist_reads_with_the_same_loader_when_installed() {
    if !Path::new(FASHION_DIR).is_dir() {
        println!(
            "skipped: {FASHION_DIR} is absent (install Debian's dataset-fashion-mnist to run \
             this test)"
        );
        return;
    }
    let (train, test) = mnist::load_data_from(FASHION_DIR).unwrap();

    assert_eq!(train.images().shape(), &[60_000, 28, 28]);
    assert_eq!(test.images().shape(), &[10_000, 28, 28]);
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test pictures of
    // each of its ten kinds of clothing.
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    // Ankle boot, T-shirt, T-shirt, dress, T-shirt, pullover, sneaker, ...
    assert_eq!(first_labels(&train, 10), vec![9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(first_labels(&test, 10), vec![9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
}
