//! Preparing the 100 drawn digits of `tests/fixtures/drawn-digits/` (grey,
//! RGB, RGBA with opaque or transparent paper, palette, 16-bit grey and
//! JPEG pictures of many sizes) for a model trained on MNIST.
#![cfg(feature = "images")]

use std::path::{Path, PathBuf};

use kerust::preprocessing::digits::{self, Preparation, CENTRE, FRAME, INK_BOX};
use ndarray::Array2;

/// One row of `labels.csv`.
struct Drawing {
    path: PathBuf,
    label: u8,
    encoding: String,
    width: usize,
    height: usize,
}

fn drawings() -> Vec<Drawing> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drawn-digits");
    let csv = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("file,label,font,encoding,width,height"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 6, "{line}");
            Drawing {
                path: dir.join(fields[0]),
                label: fields[1].parse().unwrap(),
                encoding: fields[3].to_string(),
                width: fields[4].parse().unwrap(),
                height: fields[5].parse().unwrap(),
            }
        })
        .collect()
}

fn centre_of_mass(image: &Array2<f32>) -> (f32, f32) {
    let mass: f32 = image.sum();
    let (mut y_sum, mut x_sum) = (0.0, 0.0);
    for ((y, x), &v) in image.indexed_iter() {
        y_sum += v * y as f32;
        x_sum += v * x as f32;
    }
    (y_sum / mass, x_sum / mass)
}

/// Rows and columns spanned by pixels above zero.
fn ink_extent(image: &Array2<f32>) -> (usize, usize) {
    let inked = |v: &f32| *v > 0.0;
    let rows: Vec<usize> = image
        .outer_iter()
        .enumerate()
        .filter(|(_, row)| row.iter().any(inked))
        .map(|(y, _)| y)
        .collect();
    let cols: Vec<usize> = image
        .columns()
        .into_iter()
        .enumerate()
        .filter(|(_, col)| col.iter().any(inked))
        .map(|(x, _)| x)
        .collect();
    (
        rows.last().unwrap() - rows[0] + 1,
        cols.last().unwrap() - cols[0] + 1,
    )
}

#[test]
fn the_fixture_holds_a_hundred_labelled_pictures_in_seven_encodings() {
    let drawings = drawings();
    assert_eq!(drawings.len(), 100);
    for digit in 0..10 {
        assert_eq!(drawings.iter().filter(|d| d.label == digit).count(), 10);
    }
    let mut encodings: Vec<&str> = drawings.iter().map(|d| d.encoding.as_str()).collect();
    encodings.sort_unstable();
    encodings.dedup();
    assert_eq!(
        encodings,
        [
            "I16",
            "JPEG",
            "L",
            "P",
            "RGB",
            "RGBA-opaque",
            "RGBA-transparent"
        ]
    );
}

#[test]
fn every_drawing_loads_at_its_size_on_white_paper() {
    for drawing in drawings() {
        let grey = digits::load_grey(&drawing.path).unwrap();
        let name = drawing.path.display();
        assert_eq!(grey.dim(), (drawing.height, drawing.width), "{name}");
        assert!(grey.iter().all(|v| (0.0..=255.0).contains(v)), "{name}");

        // The paper, transparent or not, reads as white (JPEG near white).
        let corners = [
            grey[[0, 0]],
            grey[[0, drawing.width - 1]],
            grey[[drawing.height - 1, 0]],
            grey[[drawing.height - 1, drawing.width - 1]],
        ];
        assert!(
            corners.iter().all(|&v| v >= 245.0),
            "{name} ({}): {corners:?}",
            drawing.encoding
        );
        // And there is dark ink somewhere.
        let darkest = grey.fold(255.0_f32, |m, &v| m.min(v));
        assert!(darkest < 128.0, "{name}: darkest {darkest}");
    }
}

#[test]
fn every_drawing_prepares_like_an_mnist_digit() {
    let mut extents = Vec::new();
    for drawing in drawings() {
        let input = digits::prepare_file(&drawing.path, Preparation::Mnist).unwrap();
        let name = drawing.path.display();
        assert_eq!(input.dim(), (FRAME, FRAME), "{name}");
        assert!(input.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
        assert!(input.sum() > 20.0, "{name}: ink sum {}", input.sum());
        assert_eq!(input.fold(0.0_f32, |m, &v| m.max(v)), 1.0, "{name}");

        // MNIST: the ink's centre of mass at the centre of the frame.
        let (y, x) = centre_of_mass(&input);
        assert!(
            (y - CENTRE).abs() <= 1.0 && (x - CENTRE).abs() <= 1.0,
            "{name}: ({y}, {x})"
        );

        // MNIST: the longer side of the ink fills the 20-pixel box (a pixel
        // more where area averaging spreads an edge over two pixels).
        let (rows, cols) = ink_extent(&input);
        let longer = rows.max(cols);
        assert!(
            (INK_BOX..=INK_BOX + 1).contains(&longer),
            "{name}: {rows}x{cols}"
        );
        // No frame edge is touched: nothing was cut off.
        assert!(
            input.row(0).sum() == 0.0 && input.row(FRAME - 1).sum() == 0.0,
            "{name}"
        );
        assert!(
            input.column(0).sum() == 0.0 && input.column(FRAME - 1).sum() == 0.0,
            "{name}"
        );
        extents.push((rows, cols));
    }

    // Digits are taller than wide, in these fonts as in MNIST, and the
    // aspect ratio survives: the height is the longer side every time.
    assert!(
        extents.iter().all(|&(rows, cols)| rows >= cols),
        "{extents:?}"
    );
}

#[test]
fn every_drawing_prepares_naively_with_ink_on_black() {
    for drawing in drawings() {
        let input = digits::prepare_file(&drawing.path, Preparation::Naive).unwrap();
        let name = drawing.path.display();
        assert_eq!(input.dim(), (FRAME, FRAME), "{name}");
        assert!(input.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
        assert!(input.sum() > 1.0, "{name}: ink sum {}", input.sum());
        // White paper becomes black: most of the frame is (near) zero.
        let dark = input.iter().filter(|&&v| v < 0.05).count();
        assert!(dark > FRAME * FRAME / 2, "{name}: {dark} dark pixels");
    }
}

#[test]
fn prepared_digits_can_be_saved_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let drawing = &drawings()[0];
    let input = digits::prepare_file(&drawing.path, Preparation::Mnist).unwrap();
    let path = dir.path().join("prepared.png");
    digits::save_grey_png(&path, &input).unwrap();

    let back = digits::load_grey(&path).unwrap() / 255.0;
    let worst = back
        .iter()
        .zip(&input)
        .fold(0.0_f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= 0.5 / 255.0 + 1e-6, "{worst}");
}

/// The first `count` MNIST test digits drawn as a person would: black ink
/// on white paper, four times larger, each MNIST pixel a 4x4 square, with
/// 12 pixels of paper around (136x136), so that a frame drawn near the
/// edge does not touch a stroke.
fn mnist_drawings(count: usize) -> Vec<Array2<f32>> {
    let (_, test) = kerust::datasets::mnist::load_data_from(kerust::datasets::mnist::default_dir())
        .expect("the repository ships MNIST in data/mnist");
    test.images()
        .outer_iter()
        .take(count)
        .map(|digit| {
            Array2::from_shape_fn((136, 136), |(y, x)| {
                let inside = (12..124).contains(&y) && (12..124).contains(&x);
                if inside {
                    255.0 - f32::from(digit[[(y - 12) / 4, (x - 12) / 4]])
                } else {
                    255.0
                }
            })
        })
        .collect()
}

/// The largest difference between two prepared inputs.
fn max_difference(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Draws a rectangle outline `thickness` pixels wide, `margin` pixels in
/// from the picture's edges, at grey level `level`.
fn draw_frame(picture: &mut Array2<f32>, margin: usize, thickness: usize, level: f32) {
    let (height, width) = picture.dim();
    for ((y, x), v) in picture.indexed_iter_mut() {
        let inside = y >= margin && y < height - margin && x >= margin && x < width - margin;
        let near_edge = y < margin + thickness
            || y >= height - margin - thickness
            || x < margin + thickness
            || x >= width - margin - thickness;
        if inside && near_edge {
            *v = level;
        }
    }
}

#[test]
fn a_frame_around_the_digit_is_taken_away_not_read_as_ink_or_paper() {
    let digits = mnist_drawings(200);
    for (i, clean) in digits.iter().enumerate() {
        let expected = digits::prepare(clean, Preparation::Mnist).unwrap();
        // A black frame on the picture's edge (whose border is then all
        // ink), and a rectangle drawn around the digit with a margin.
        for (margin, thickness) in [(0, 4), (0, 1), (2, 3)] {
            let mut framed = clean.clone();
            draw_frame(&mut framed, margin, thickness, 0.0);
            let got = digits::prepare(&framed, Preparation::Mnist).unwrap();
            let difference = max_difference(&got, &expected);
            assert!(
                difference < 1e-6,
                "digit {i}, frame at {margin} of {thickness} px: differs by {difference}"
            );
        }
        // White ink on black paper, with a white frame.
        let mut dark = clean.mapv(|v| 255.0 - v);
        draw_frame(&mut dark, 0, 3, 255.0);
        let got = digits::prepare(&dark, Preparation::Mnist).unwrap();
        assert!(
            max_difference(&got, &expected) < 1e-6,
            "digit {i} on dark paper"
        );
    }
}

#[test]
fn specks_of_dust_away_from_the_strokes_change_nothing() {
    use rand::{Rng, SeedableRng};

    // Off the outermost rows and columns, where the paper's level is read.
    let digits = mnist_drawings(200);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for (i, clean) in digits.iter().enumerate() {
        let expected = digits::prepare(clean, Preparation::Mnist).unwrap();
        let mut dusty = clean.clone();
        let mut specks = 0;
        while specks < 60 {
            let (y, x): (usize, usize) = (rng.random_range(1..135), rng.random_range(1..135));
            // Two pixels of paper all round, so that the speck stays apart.
            let clear = (y.saturating_sub(2)..(y + 3).min(136)).all(|yy| {
                (x.saturating_sub(2)..(x + 3).min(136)).all(|xx| clean[[yy, xx]] == 255.0)
            });
            if clear {
                dusty[[y, x]] = 0.0;
                specks += 1;
            }
        }
        let got = digits::prepare(&dusty, Preparation::Mnist).unwrap();
        let difference = max_difference(&got, &expected);
        assert!(difference < 1e-6, "digit {i}: differs by {difference}");
    }
}
