//! A small convolutional network on MNIST, the model Keras' examples start
//! with: Conv2D(32, 3x3, relu) -> MaxPooling2D(2x2) -> Conv2D(64, 3x3, relu)
//! -> MaxPooling2D(2x2) -> Flatten -> Dropout(0.5) -> Dense(10, softmax),
//! Adam, sparse categorical cross-entropy, batch 128, seed 42, validated on
//! the 10,000 test digits.
//!
//! ```text
//! cargo run --release --example mnist_cnn
//! cargo run --release --example mnist_cnn -- --epochs 1 --out /tmp/cnn
//! ```
//!
//! It prints the summary and one line per epoch, writes history.csv and
//! model.safetensors into `--out` (default `runs/mnist_cnn`), and prints as
//! its last line a JSON object with the test figures and timings.

use std::path::PathBuf;
use std::time::Instant;

use kerust::callbacks::CsvLogger;
use kerust::datasets::mnist;
use kerust::prelude::*;

const USAGE: &str = "\
usage: mnist_cnn [--epochs N] [--seed N] [--data DIR] [--out DIR]

Trains a small convolutional network on MNIST (two Conv2D and MaxPooling2D
stages, Dropout, Dense softmax) with Adam and writes its history and model.

options (default in brackets):
  --epochs N   epochs to train [5]
  --seed N     seed of the weights, the order and the dropout [42]
  --data DIR   folder holding the four MNIST files [data/mnist]
  --out DIR    where history.csv and model.safetensors go [runs/mnist_cnn]
  -h, --help   this text
";

struct Args {
    epochs: usize,
    seed: u64,
    data: PathBuf,
    out: PathBuf,
}

fn parse_args() -> std::result::Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        epochs: 5,
        seed: 42,
        data: PathBuf::from("data/mnist"),
        out: PathBuf::from("runs/mnist_cnn"),
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("epochs") => args.epochs = parser.value()?.parse()?,
            Long("seed") => args.seed = parser.value()?.parse()?,
            Long("data") => args.data = parser.value()?.into(),
            Long("out") => args.out = parser.value()?.into(),
            Short('h') | Long("help") => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if args.epochs == 0 {
        return Err("--epochs must be at least 1".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("mnist_cnn: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("mnist_cnn: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> kerust::Result<()> {
    let (train, test) = mnist::load_data_from(&args.data)?;
    let (x_train, y_train) = (train.images_f32(), train.labels());
    let (x_test, y_test) = (test.images_f32(), test.labels());

    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .seed(args.seed)
        .add(Conv2D::new(32, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dropout::new(0.5))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )?;
    model.build()?;
    println!("{}", model.summary());

    std::fs::create_dir_all(&args.out).map_err(|e| kerust::Error::io(&args.out, e))?;
    let epoch_lines = LambdaCallback::new().on_epoch_end(|epoch, _, logs| {
        println!("epoch {:>2}: {logs}", epoch + 1);
    });
    let options = FitOptions::new()
        .epochs(args.epochs)
        .batch_size(128)
        .seed(args.seed)
        .validation_data(&x_test, &y_test)
        .verbose(Verbosity::Silent)
        .callback(CsvLogger::new(args.out.join("history.csv")))
        .callback(epoch_lines);
    let started = Instant::now();
    model.fit((&x_train, &y_train), options)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let scores = model.evaluate(&x_test, &y_test)?;
    model.save(args.out.join("model.safetensors"))?;
    let report = serde_json::json!({
        "epochs": args.epochs,
        "seed": args.seed,
        "test_accuracy": scores.get("accuracy"),
        "test_loss": scores.get("loss"),
        "train_seconds": train_seconds,
        "out": args.out,
    });
    println!("{report}");
    Ok(())
}
