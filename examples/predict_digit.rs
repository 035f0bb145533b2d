//! Classify digits drawn by a person with a model trained on MNIST.
//!
//! Each picture (PNG, JPEG, BMP or GIF, any colour type) is prepared as MNIST
//! was made — paper found from the border, frames and specks taken away, ink
//! cropped, fitted into 20x20 keeping its aspect ratio, centred by its centre
//! of mass in 28x28 — or, with `--preprocess naive`, only greyed, resized and
//! inverted as the original study did. Then the model says which digit it sees and how sure it is.
//!
//! ```text
//! cargo run --release --example mnist_mlp            # trains and saves the model
//! cargo run --release --example predict_digit -- tests/fixtures/drawn-digits/7_dkg_0.png
//! cargo run --release --example predict_digit -- --json --preprocess naive a.png b.jpg
//! ```
//!
//! Options: `--model PATH` (default `runs/mnist_mlp/model.safetensors`),
//! `--preprocess naive|mnist` (default mnist), `--json` (one JSON object per
//! line: file, predicted, confidence, top3), `--save-prepared DIR` (the 28x28
//! inputs as PNG). A file that cannot be read gets an error line naming it;
//! the others go on; the exit status is 1 if any failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kerust::model::Sequential;
use kerust::preprocessing::digits::{prepare_file, save_grey_png, Preparation};
use ndarray::IxDyn;

struct Args {
    model: PathBuf,
    how: Preparation,
    json: bool,
    save_prepared: Option<PathBuf>,
    images: Vec<PathBuf>,
}

const USAGE: &str = "\
usage: predict_digit [OPTIONS] IMAGE...

Says which digit each picture (PNG, JPEG, BMP or GIF) shows, with the model
that mnist_mlp trained, and how sure the model is.

options (default in brackets):
  --model PATH           the saved model [runs/mnist_mlp/model.safetensors,
                         relative to the current folder]
  --preprocess HOW       mnist: paper found from the border, frames and
                         specks taken away, ink cropped, fitted into 20x20,
                         centred by its centre of mass, as MNIST was made;
                         naive: grey, resize to 28x28, invert [mnist]
  --json                 one JSON object per line: file, predicted,
                         confidence, top3
  --save-prepared DIR    write the 28x28 inputs the model saw as PNG files,
                         named after the pictures (DIR is made if missing;
                         a file of the same name in it is replaced)
  -h, --help             this text

A file that cannot be read gets an error line naming it and the others go
on; the exit status is 1 if any failed.
";

fn parse_args() -> std::result::Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        model: PathBuf::from("runs/mnist_mlp/model.safetensors"),
        how: Preparation::Mnist,
        json: false,
        save_prepared: None,
        images: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("model") => args.model = parser.value()?.into(),
            Long("preprocess") => {
                args.how = match parser.value()?.string()?.as_str() {
                    "mnist" => Preparation::Mnist,
                    "naive" => Preparation::Naive,
                    other => {
                        return Err(format!("--preprocess takes naive or mnist, got {other}").into())
                    }
                }
            }
            Long("json") => args.json = true,
            Long("save-prepared") => args.save_prepared = Some(parser.value()?.into()),
            Long("help") | Short('h') => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            Value(path) => args.images.push(path.into()),
            _ => return Err(arg.unexpected()),
        }
    }
    if args.images.is_empty() {
        return Err("give at least one image".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("predict_digit: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut model = match kerust::saving::load_model(&args.model) {
        Ok(model) => model,
        Err(e) => {
            eprintln!("predict_digit: cannot load the model: {e}");
            let missing = matches!(&e, kerust::Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound);
            if missing {
                eprintln!(
                    "(train and save one with `cargo run --release --example mnist_mlp`, \
                     or give its path with --model)"
                );
            }
            return ExitCode::from(2);
        }
    };
    let sample = match input_of(&model) {
        Ok(sample) => sample,
        Err(e) => {
            eprintln!("predict_digit: {}: {e}", args.model.display());
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for path in &args.images {
        if let Err(e) = classify(&mut model, &sample, path, &args) {
            failed += 1;
            if args.json {
                let line = serde_json::json!({ "file": path, "error": e.to_string() });
                println!("{line}");
            } else {
                eprintln!("{}: error: {e}", path.display());
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The shape of one sample the model takes, checked once: a 28x28
/// picture, with or without its channel axis, or its 784 values in a row;
/// and ten outputs, one per digit.
fn input_of(model: &Sequential) -> std::result::Result<Vec<usize>, String> {
    let input = model
        .get_input_shape()
        .ok_or("the model has no input shape")?
        .to_vec();
    if ![&[28, 28, 1][..], &[28, 28], &[784]].contains(&input.as_slice()) {
        return Err(format!(
            "the model takes samples of shape {input:?}, but a prepared digit is a 28x28 \
             picture: (28, 28, 1), (28, 28) or (784)"
        ));
    }
    let output = model.output_shape().map_err(|e| e.to_string())?;
    if output != [10] {
        return Err(format!(
            "the model gives outputs of shape {output:?}, not 10 probabilities, one per digit"
        ));
    }
    Ok(input)
}

fn classify(
    model: &mut Sequential,
    sample: &[usize],
    path: &Path,
    args: &Args,
) -> kerust::Result<()> {
    let prepared = prepare_file(path, args.how)?;
    if let Some(dir) = &args.save_prepared {
        std::fs::create_dir_all(dir).map_err(|e| kerust::Error::io(dir, e))?;
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        save_grey_png(dir.join(format!("{name}.png")), &prepared)?;
    }
    let shape: Vec<usize> = [1].iter().chain(sample).copied().collect();
    let batch = prepared
        .into_shape_with_order(IxDyn(&shape))
        .map_err(|e| kerust::Error::invalid("sample shape", format!("{shape:?}"), e.to_string()))?;
    let probs = model.predict(&batch)?;
    let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top3: Vec<(usize, f32)> = ranked.into_iter().take(3).collect();
    let (digit, confidence) = top3[0];
    if args.json {
        let top: Vec<serde_json::Value> = top3
            .iter()
            .map(|(d, p)| serde_json::json!({ "digit": d, "probability": p }))
            .collect();
        let line = serde_json::json!({
            "file": path,
            "predicted": digit,
            "confidence": confidence,
            "top3": top,
        });
        println!("{line}");
    } else {
        let others: Vec<String> = top3[1..]
            .iter()
            .map(|(d, p)| format!("{d} {:.1} %", p * 100.0))
            .collect();
        println!(
            "{}: {digit} ({:.1} % sure; then {})",
            path.display(),
            confidence * 100.0,
            others.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kerust::prelude::*;

    fn model(input: &[usize], units: usize) -> Sequential {
        let mut model = Sequential::new()
            .input_shape(input.to_vec())
            .add(Flatten::new())
            .add(Dense::new(units).activation(Activation::Softmax));
        model.build().unwrap();
        model
    }

    #[test]
    fn a_28_by_28_input_is_taken_in_any_of_its_three_shapes() {
        for input in [&[28, 28, 1][..], &[28, 28], &[784]] {
            assert_eq!(input_of(&model(input, 10)).unwrap(), input);
        }
    }

    #[test]
    fn another_input_or_output_is_refused_once_naming_both_shapes() {
        let err = input_of(&model(&[32, 32, 3], 10)).unwrap_err();
        assert!(
            err.contains("[32, 32, 3]") && err.contains("(28, 28, 1)"),
            "{err}"
        );
        let err = input_of(&model(&[28, 28, 1], 2)).unwrap_err();
        assert!(
            err.contains("[2]") && err.contains("10 probabilities"),
            "{err}"
        );
        let unbuilt = Sequential::new().add(Dense::new(10));
        assert_eq!(
            input_of(&unbuilt).unwrap_err(),
            "the model has no input shape"
        );
    }
}
