//! Folders of pictures as data sets, against Keras' reading and resizing of
//! the same files (`tests/fixtures/directory.json`, written by
//! `make_directory.py` beside it), and on folders made here.
#![cfg(feature = "images")]

use std::path::Path;

use kerust::preprocessing::digits::save_grey_png;
use kerust::preprocessing::directory::{
    image_dataset_from_directory, ColorMode, DirectoryOptions, LabelMode, Subset,
};
use kerust::Error;
use ndarray::Array2;
use serde::Deserialize;

const FOLDER: &str = "tests/fixtures/image_folder";

#[derive(Deserialize)]
struct Fixture {
    class_names: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    color_mode: String,
    image_size: (usize, usize),
    crop: bool,
    pictures: Vec<Picture>,
}

#[derive(Deserialize)]
struct Picture {
    file: String,
    values: Vec<f32>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string("tests/fixtures/directory.json").expect("committed");
    serde_json::from_str(&text).expect("parses")
}

#[test]
fn pictures_are_read_and_resized_as_keras_reads_and_resizes_them() -> kerust::Result<()> {
    let fixture = fixture();
    assert_eq!(fixture.cases.len(), 12);
    for case in &fixture.cases {
        let mode = match case.color_mode.as_str() {
            "grayscale" => ColorMode::Grayscale,
            "rgb" => ColorMode::Rgb,
            _ => ColorMode::Rgba,
        };
        let (height, width) = case.image_size;
        let options = DirectoryOptions::new()
            .color_mode(mode)
            .image_size(height, width)
            .crop_to_aspect_ratio(case.crop)
            .shuffle(false);
        let set = image_dataset_from_directory(FOLDER, options)?;
        assert_eq!(set.class_names, fixture.class_names);
        let files: Vec<String> = set
            .file_paths
            .iter()
            .map(|p| {
                p.strip_prefix(FOLDER)
                    .expect("under the folder")
                    .display()
                    .to_string()
            })
            .collect();
        let expected: Vec<&str> = case.pictures.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            files, expected,
            "files in class order, sorted, notes.txt skipped"
        );
        let labels = set.labels.expect("inferred labels");
        assert_eq!(
            labels.as_slice().expect("contiguous"),
            [0.0, 0.0, 1.0, 1.0, 2.0]
        );
        assert_eq!(set.images.shape(), [5, height, width, mode.channels()]);
        for (picture, ours) in case.pictures.iter().zip(set.images.outer_iter()) {
            for (a, b) in ours.iter().zip(&picture.values) {
                // Values of 0 to 255 through two interpolations in f32:
                // the largest difference measured is 3.1e-5.
                let diff = (a - b).abs();
                assert!(
                    diff <= 1e-4,
                    "{} {:?} crop {}: kerust {a}, Keras {b}",
                    picture.file,
                    case.image_size,
                    case.crop
                );
            }
        }
    }
    Ok(())
}

/// `classes` folders under `root` with `per_class` grey pictures each, the
/// pictures of class `k` all of grey level `k * 40`.
fn make_folder(root: &Path, classes: usize, per_class: usize) {
    for k in 0..classes {
        let folder = root.join(format!("class_{k}"));
        std::fs::create_dir_all(&folder).expect("writable");
        for i in 0..per_class {
            let level = (k * 40) as f32 / 255.0;
            save_grey_png(
                folder.join(format!("{i:02}.png")),
                &Array2::from_elem((6, 4), level),
            )
            .expect("writes");
        }
    }
}

#[test]
fn a_split_with_one_seed_shares_no_file_and_covers_them_all() -> kerust::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    make_folder(dir.path(), 3, 7);
    let options = DirectoryOptions::new()
        .color_mode(ColorMode::Grayscale)
        .image_size(6, 4)
        .seed(9);
    let train = image_dataset_from_directory(
        dir.path(),
        options.clone().validation_split(0.25, Subset::Training),
    )?;
    let valid = image_dataset_from_directory(
        dir.path(),
        options.clone().validation_split(0.25, Subset::Validation),
    )?;
    // 21 files: int(0.25 * 21) = 5 for validation, as Keras rounds.
    assert_eq!((train.file_paths.len(), valid.file_paths.len()), (16, 5));
    let mut all: Vec<_> = train
        .file_paths
        .iter()
        .chain(&valid.file_paths)
        .cloned()
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 21);
    // Labels follow their pictures through the shuffle.
    let labels = train.labels.as_ref().expect("labels");
    for (i, picture) in train.images.outer_iter().enumerate() {
        assert_eq!(picture[[0, 0, 0]], labels[i] * 40.0, "picture {i}");
    }
    // The same seed gives the same order; another seed another one.
    let again = image_dataset_from_directory(
        dir.path(),
        options.clone().validation_split(0.25, Subset::Training),
    )?;
    assert_eq!(again, train);
    let other = image_dataset_from_directory(
        dir.path(),
        options.seed(10).validation_split(0.25, Subset::Training),
    )?;
    assert_ne!(other.file_paths, train.file_paths);
    Ok(())
}

#[test]
fn label_modes_and_chosen_classes() -> kerust::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    make_folder(dir.path(), 3, 2);
    let options = || {
        DirectoryOptions::new()
            .color_mode(ColorMode::Grayscale)
            .image_size(3, 2)
            .shuffle(false)
    };
    let one_hot =
        image_dataset_from_directory(dir.path(), options().label_mode(LabelMode::Categorical))?;
    let labels = one_hot.labels.expect("labels");
    assert_eq!(labels.shape(), [6, 3]);
    assert_eq!(labels.row_sums_of_class(), [2.0, 2.0, 2.0]);

    // Two classes, in the order given: class_2 is 0, class_0 is 1.
    let chosen = image_dataset_from_directory(
        dir.path(),
        options()
            .class_names(["class_2", "class_0"])
            .label_mode(LabelMode::Binary),
    )?;
    assert_eq!(chosen.class_names, ["class_2", "class_0"]);
    let labels = chosen.labels.expect("labels");
    assert_eq!(labels.shape(), [4, 1]);
    assert_eq!(labels.as_slice().expect("contiguous"), [0.0, 0.0, 1.0, 1.0]);
    assert_eq!(chosen.images[[0, 0, 0, 0]], 80.0);

    let binary_of_three =
        image_dataset_from_directory(dir.path(), options().label_mode(LabelMode::Binary)).err();
    assert!(
        matches!(&binary_of_three, Some(Error::InvalidArgument { name, .. }) if name == "label_mode"),
        "{binary_of_three:?}"
    );
    let missing = image_dataset_from_directory(dir.path(), options().class_names(["class_9"]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        missing.contains("class_9") && missing.contains("class_1"),
        "{missing}"
    );

    let unlabelled = image_dataset_from_directory(dir.path(), options().no_labels())?;
    assert!(unlabelled.labels.is_none() && unlabelled.class_names.is_empty());
    assert_eq!(unlabelled.images.shape()[0], 6);
    Ok(())
}

trait ClassCounts {
    fn row_sums_of_class(&self) -> Vec<f32>;
}

impl ClassCounts for ndarray::ArrayD<f32> {
    fn row_sums_of_class(&self) -> Vec<f32> {
        self.sum_axis(ndarray::Axis(0)).iter().copied().collect()
    }
}

#[test]
fn bad_folders_and_files_are_errors_that_name_them() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let options = || DirectoryOptions::new().image_size(4, 4);

    let none = image_dataset_from_directory(dir.path().join("absent"), options()).err();
    assert!(matches!(none, Some(Error::Io { .. })), "{none:?}");

    let empty = image_dataset_from_directory(dir.path(), options()).err();
    assert!(matches!(empty, Some(Error::EmptyData { .. })), "{empty:?}");

    make_folder(dir.path(), 2, 1);
    let broken = dir.path().join("class_1").join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").expect("writable");
    let message = image_dataset_from_directory(dir.path(), options())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("broken.png"), "{message}");
    std::fs::remove_file(&broken).expect("removable");

    let too_few = image_dataset_from_directory(
        dir.path(),
        options().validation_split(0.4, Subset::Validation),
    )
    .err();
    assert!(
        matches!(too_few, Some(Error::EmptyData { .. })),
        "{too_few:?}"
    );
    for bad in [
        options().image_size(0, 4),
        options().validation_split(1.0, Subset::Training),
        options().no_labels().class_names(["class_0"]),
    ] {
        let err = image_dataset_from_directory(dir.path(), bad).err();
        assert!(
            matches!(err, Some(Error::InvalidArgument { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn transparent_paper_reads_as_white_and_sixteen_bits_as_eight() -> kerust::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = dir.path().join("ink");
    std::fs::create_dir_all(&folder).expect("writable");
    // A black dot on a transparent 4x4 canvas, and the same grey in 16 bits.
    let mut clear = image::RgbaImage::new(4, 4);
    clear.put_pixel(1, 2, image::Rgba([0, 0, 0, 255]));
    clear.save(folder.join("clear.png")).expect("writes");
    let deep =
        image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(4, 4, image::Luma([0x8080]));
    deep.save(folder.join("deep.png")).expect("writes");

    let options = DirectoryOptions::new().image_size(4, 4).shuffle(false);
    let rgb = image_dataset_from_directory(dir.path(), options.clone())?;
    let clear = rgb.images.index_axis(ndarray::Axis(0), 0);
    assert_eq!(clear[[2, 1, 0]], 0.0);
    assert!(clear.iter().filter(|&&v| v == 255.0).count() == 15 * 3);
    let deep = rgb.images.index_axis(ndarray::Axis(0), 1);
    assert!(deep.iter().all(|&v| v == 128.0), "0x8080 / 257 = 128");

    let rgba = image_dataset_from_directory(dir.path(), options.color_mode(ColorMode::Rgba))?;
    assert_eq!(rgba.images[[0, 0, 0, 3]], 0.0, "alpha kept in Rgba");
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_link_to_a_picture_is_read_and_a_link_to_a_folder_is_not_entered() -> kerust::Result<()> {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = dir.path().join("data");
    make_folder(&root, 2, 2);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("writable");
    save_grey_png(
        elsewhere.join("kept.png"),
        &Array2::from_elem((6, 4), 200.0 / 255.0),
    )?;
    symlink(
        elsewhere.join("kept.png"),
        root.join("class_1").join("linked.png"),
    )
    .expect("a link");
    // A dangling link and a link up the tree are passed over.
    symlink(
        elsewhere.join("gone.png"),
        root.join("class_1").join("gone.png"),
    )
    .expect("a link");
    symlink(&root, root.join("class_0").join("loop")).expect("a link");

    let data = image_dataset_from_directory(
        &root,
        DirectoryOptions::new()
            .color_mode(ColorMode::Grayscale)
            .image_size(6, 4)
            .shuffle(false),
    )?;
    assert_eq!(data.images.shape(), &[5, 6, 4, 1]);
    let names: Vec<String> = data
        .file_paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["00.png", "01.png", "00.png", "01.png", "linked.png"]
    );
    assert_eq!(data.labels.expect("labels")[4], 1.0);
    assert_eq!(data.images[[4, 0, 0, 0]], 200.0);
    Ok(())
}

#[test]
fn pictures_without_class_subfolders_are_counted_in_the_error() -> kerust::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for i in 0..3 {
        save_grey_png(
            dir.path().join(format!("{i}.png")),
            &Array2::from_elem((6, 4), 0.5),
        )?;
    }
    let options = || DirectoryOptions::new().image_size(6, 4);
    let err = image_dataset_from_directory(dir.path(), options()).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { name, .. } if name == "directory"),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("found 3 pictures") && message.contains("no_labels()"),
        "{message}"
    );
    // Read as the error says, they are all there.
    let data = image_dataset_from_directory(dir.path(), options().no_labels())?;
    assert_eq!(data.images.shape()[0], 3);
    assert!(data.labels.is_none());
    Ok(())
}
