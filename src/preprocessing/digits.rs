//! Digits drawn by a person, prepared for a model trained on MNIST.
//!
//! A model trained on MNIST has only seen digits made in one particular way:
//! white ink on black, the ink's bounding box scaled to fit 20x20 pixels with
//! its aspect ratio kept and anti-aliased, then placed in a 28x28 frame so
//! that its centre of mass is at the centre. A picture from a paint program
//! is nothing like that: black ink on white paper, any size, off centre,
//! maybe in colour, with a transparent background or 16-bit samples.
//!
//! Preparing such a picture takes two steps:
//!
//! 1. [`load_grey`] reads a PNG, JPEG, BMP or GIF file in any colour type and
//!    returns its grey levels in [0, 255]: transparency is composited over
//!    white paper, 16-bit samples are brought to the 8-bit range, colour is
//!    converted with the Rec. 601 weights of Pillow's `convert("L")`.
//! 2. [`prepare`] turns those grey levels into a 28x28 array in [0, 1] with
//!    one of two [`Preparation`]s: [`Preparation::Mnist`] (the default)
//!    repeats MNIST's own normalisation; [`Preparation::Naive`] only resizes
//!    and inverts, as the reference study's proof of concept did.
//!
//! [`prepare_file`] does both; [`save_grey_png`] writes the result out to
//! look at.
//!
//! # Examples
//!
//! ```
//! use kerust::preprocessing::digits::{prepare, Preparation};
//! use ndarray::Array2;
//!
//! # fn main() -> kerust::Result<()> {
//! // A black vertical bar on white paper, off centre in a wide canvas.
//! let mut grey = Array2::from_elem((60, 90), 255.0_f32);
//! grey.slice_mut(ndarray::s![10..50, 5..15]).fill(0.0);
//!
//! let input = prepare(&grey, Preparation::Mnist)?;
//! assert_eq!(input.shape(), &[28, 28]);
//! // The bar is white on black now, and sits in the middle of the frame.
//! assert!(input[[14, 14]] > 0.9);
//! assert_eq!(input[[0, 0]], 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! # References
//!
//! Y. LeCun, C. Cortes, C. J. C. Burges, *The MNIST database of handwritten
//! digits*, which describes the normalisation: size-normalised to fit a
//! 20x20 box preserving the aspect ratio, anti-aliased, centred by the
//! centre of mass in a 28x28 field.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageEncoder, ImageError, ImageFormat, ImageReader, Limits};
use ndarray::{s, Array2};

use crate::{Error, Result};

/// Side of the square MNIST frame, in pixels.
pub const FRAME: usize = 28;

/// Side of the box the ink is scaled to fit, in pixels (MNIST's 20x20).
pub const INK_BOX: usize = 20;

/// Where the ink's centre of mass lands, as a row and column index of the
/// 28x28 frame (pixel centres sit on integer coordinates).
pub const CENTRE: f32 = 14.0;

/// Largest width or height [`load_grey`] decodes, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// Largest picture file [`load_grey`] reads, in bytes.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Largest memory the image decoder may allocate, in bytes.
const MAX_DECODER_BYTES: u64 = 256 * 1024 * 1024;

/// Smallest difference between ink and paper, in grey levels out of 255,
/// for a picture to count as having ink at all.
const MIN_INK_CONTRAST: f32 = 32.0;

/// Fraction of the strongest ink below which a pixel counts as paper:
/// faint specks, JPEG ringing and paper texture.
const INK_THRESHOLD: f32 = 0.2;

/// Share of a picture's pixels beyond which what differs from the border's
/// level may not be ink: the border may be a frame or a dark edge around
/// the paper (see [`FRAME_DEPTH`]).
const MAX_INK_SHARE: f64 = 0.5;

/// How far in from the edges, as a share of the picture's shorter side,
/// the paper is looked for again when the border may be a frame.
const FRAME_DEPTH: f64 = 0.08;

/// Ink of a separate speck, relative to the largest stroke, below which it
/// is dust, not part of the digit: a single pixel against a few hundred.
const SPECK_SHARE: f64 = 0.02;

/// Share of a frame's ink that lies near the edges of its own bounding box:
/// a drawn rectangle has nearly all of it there, a round `0` does not.
const FRAME_EDGE_SHARE: f64 = 0.9;

/// Thinnest stroke, in pixels of the 28x28 frame, that [`prepare`] leaves
/// alone: the lower quartile of MNIST's stroke widths. Measured as
/// [`stroke_width`] does (twice the area over the outline length of the
/// pixels of at least one half), the 60,000 training digits have strokes
/// of 2.03 pixels on average, median 1.96, lower quartile 1.65, tenth
/// percentile 1.41. Strokes thinner than this are widened to it; strokes
/// within MNIST's usual range are not changed.
const MNIST_STROKE_WIDTH: f64 = 1.65;

/// Boldest stroke, in pixels of the 28x28 frame, that [`prepare`] leaves
/// alone: the 95th percentile of MNIST's stroke widths, measured as for
/// [`MNIST_STROKE_WIDTH`] (upper quartile 2.33, 90th percentile 2.74, 99th
/// 3.61). Bolder strokes are thinned to it.
const MNIST_BOLD_STROKE_WIDTH: f64 = 3.02;

/// How a grey picture becomes a 28x28 MNIST-like input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preparation {
    /// The reference study's recipe: resize the whole picture to 28x28,
    /// invert (255 - v) and divide by 255. It assumes dark ink on light
    /// paper, and keeps the digit wherever and however small it was drawn.
    Naive,

    /// MNIST's own normalisation, the default: find the paper's colour from
    /// the border and invert only when the paper is light, crop to the ink,
    /// scale it to fit 20x20 keeping its aspect ratio, and place it in 28x28
    /// with its centre of mass at the centre.
    #[default]
    Mnist,
}

/// Reads a picture (PNG, JPEG, BMP or GIF, any colour type) and returns its
/// grey levels, shape `(height, width)`, in [0, 255].
///
/// - Transparent pixels are composited over white paper: a fully transparent
///   pixel is white, whatever colour it stores. (Pillow's `convert("L")`
///   drops the alpha channel instead, which turns the usual transparent
///   black background into black ink.)
/// - 16-bit samples are divided by 257, which maps 65535 to 255 exactly;
///   the result keeps its fraction.
/// - Palette pictures are expanded to their colours.
/// - Colour becomes grey with the Rec. 601 weights that Pillow's
///   `convert("L")` (and so Keras' `load_img(color_mode="grayscale")`) uses:
///
/// ```text
/// L = R * 299/1000 + G * 587/1000 + B * 114/1000
/// ```
///
/// For 8-bit pictures `L` is rounded to an integer as Pillow does, so pure
/// red, green and blue give 76, 150 and 29.
///
/// # Errors
///
/// - [`Error::Io`] naming the file when it cannot be opened or read.
/// - [`Error::Format`] naming the file when it is empty, not a picture in one
///   of the four formats, corrupt or truncated, or larger than the limits.
///
/// # Limitations
///
/// Pictures wider or taller than [`MAX_SIDE`] pixels, or needing more than
/// 256 MiB to decode, are refused; scale them down first. An animated GIF
/// gives its first frame. A JPEG's EXIF orientation is not applied.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::digits::{load_grey, save_grey_png};
/// use ndarray::Array2;
///
/// # fn main() -> kerust::Result<()> {
/// let path = std::env::temp_dir().join("kerust-doc-load-grey.png");
/// save_grey_png(&path, &Array2::from_elem((3, 5), 0.2))?;
///
/// let grey = load_grey(&path)?;
/// assert_eq!(grey.shape(), &[3, 5]);
/// assert_eq!(grey[[0, 0]], 51.0);
/// # Ok(())
/// # }
/// ```
pub fn load_grey(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    let path = path.as_ref();
    let picture = decode(path)?;
    let (width, height) = (picture.width() as usize, picture.height() as usize);
    if width == 0 || height == 0 {
        return Err(Error::format(
            path,
            format!("the picture is {width}x{height} pixels, expected at least 1x1"),
        ));
    }

    let grey = grey_levels(picture);
    Array2::from_shape_vec((height, width), grey).map_err(|e| Error::format(path, e.to_string()))
}

/// Turns grey levels in [0, 255] (as [`load_grey`] returns them) into a
/// 28x28 input in [0, 1], white ink on black as in MNIST.
///
/// See [`Preparation`] for the two recipes. With [`Preparation::Mnist`]:
///
/// 1. The paper's level is the mean of the border pixels. Light paper
///    (mean above 127.5) means dark ink, and the picture is inverted; dark
///    paper means the ink is already light, and it is not inverted again.
///    When more than half of the picture then differs from the paper, the
///    border may be a frame or a dark edge: if the ring of pixels 8 % of
///    the shorter side further in is of the other polarity, and leaves
///    less of the picture as ink, its mean is the paper instead. A bold
///    digit on plain paper keeps the border's polarity.
/// 2. Ink is how far a pixel is from the paper's level, on the ink's side.
///    Pixels below a fifth of the strongest ink count as paper; the rest is
///    scaled so that the strongest ink is 1.
/// 3. What is not the digit is taken away, with a pixel around it, and the
///    rest is scaled again: a rectangle drawn around the digit (a piece of
///    8-connected ink whose box holds all the other ink, with nine tenths
///    of its own ink near the edges of that box, which a round `0` does
///    not have), then specks, pieces with less than 2 % of the ink of the
///    largest piece.
/// 4. Strokes too thin or too bold for MNIST are brought into its range.
///    The stroke width is estimated on the cropped ink as twice its area
///    over its outline length (pixels of at least half the strongest ink).
///    Scaled down with the ink, it should be at least 1.65 pixels, the
///    lower quartile of MNIST's stroke widths measured the same way (their
///    mean is 2.03), and at most 3.02 pixels, their 95th percentile.
///    Thinner strokes (a one-pixel pen on a large canvas becomes a line a
///    fraction of a pixel wide) are widened by drawing around them with a
///    round, anti-aliased pen, so that they reach the lower bound once
///    scaled. Bolder strokes (a marker on a small canvas) are thinned by
///    taking the same width off both sides of every stroke, with a soft
///    edge, so that they come down to the upper bound once scaled (the
///    amount allows for the ink's box shrinking with its strokes). Strokes
///    within that range are left as they are.
/// 5. The ink's bounding box is scaled to fit 20x20, keeping its aspect
///    ratio, with area averaging when it shrinks (thin strokes become grey
///    rather than vanish) and linear interpolation when it grows. The
///    result is stretched again so that its strongest pixel is 1.
/// 6. It is placed in the 28x28 frame so that its centre of mass falls on
///    row and column [`CENTRE`], rounded to whole pixels; anything shifted
///    past the frame's edge is cut off.
///
/// # Shapes
///
/// `(height, width)` in, `(28, 28)` out.
///
/// # Errors
///
/// - [`Error::InvalidArgument`] when `grey` has no pixels, or holds a value
///   that is not finite or not in [0, 255].
/// - [`Error::InvalidArgument`] for [`Preparation::Mnist`] when no ink is
///   found: every pixel is within 32 grey levels of the paper. A blank or
///   uniform picture is refused rather than turned into a guess.
///
/// # Limitations
///
/// - A second digit, a frame that touches a stroke, a frame that is not
///   closed, or a large blot counts as ink: it widens the bounding box and
///   shrinks the digit. Crop such pictures first.
/// - The border, or the ring 8 % further in, must be mostly paper: a digit
///   that covers most of both, or a frame thicker than 8 % of the picture,
///   can have its polarity misjudged.
/// - A very bold pen can fill a small loop, such as the upper loop of an 8;
///   thinning narrows the strokes around it but does not open it again.
/// - The width estimate is one number for the whole digit: a drawing that
///   mixes hairlines with bold strokes is judged by their average.
/// - Thinning takes the same width off every stroke: in a drawing that mixes
///   hairlines with very bold strokes, the hairlines can vanish.
/// - Widening and thinning work at the picture's own resolution, so a large
///   picture whose strokes are out of range costs a distance transform over
///   its ink's bounding box: about 16 bytes a pixel of that box, briefly.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::digits::{prepare, Preparation};
/// use ndarray::Array2;
///
/// # fn main() -> kerust::Result<()> {
/// let blank = Array2::from_elem((50, 50), 255.0_f32);
/// assert!(prepare(&blank, Preparation::Mnist).is_err());
///
/// let naive = prepare(&blank, Preparation::Naive)?;
/// assert_eq!(naive.sum(), 0.0);
/// # Ok(())
/// # }
/// ```
pub fn prepare(grey: &Array2<f32>, how: Preparation) -> Result<Array2<f32>> {
    check_grey(grey)?;
    match how {
        Preparation::Naive => Ok(prepare_naive(grey)),
        Preparation::Mnist => prepare_mnist(grey),
    }
}

/// [`load_grey`] followed by [`prepare`].
///
/// # Errors
///
/// The errors of [`load_grey`], and [`Error::Format`] naming the file when
/// [`prepare`] finds no ink in it.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::digits::{prepare_file, save_grey_png, Preparation};
/// use ndarray::Array2;
///
/// # fn main() -> kerust::Result<()> {
/// let mut drawing = Array2::from_elem((40, 30), 1.0_f32);
/// drawing.slice_mut(ndarray::s![5..35, 12..16]).fill(0.0);
/// let path = std::env::temp_dir().join("kerust-doc-prepare-file.png");
/// save_grey_png(&path, &drawing)?;
///
/// let input = prepare_file(&path, Preparation::default())?;
/// assert_eq!(input.shape(), &[28, 28]);
/// # Ok(())
/// # }
/// ```
pub fn prepare_file(path: impl AsRef<Path>, how: Preparation) -> Result<Array2<f32>> {
    let path = path.as_ref();
    let grey = load_grey(path)?;
    prepare(&grey, how).map_err(|err| match err {
        Error::InvalidArgument { reason, .. } => {
            Error::format(path, format!("{reason}{}", transparency_hint(path)))
        }
        other => other,
    })
}

/// For a picture where no ink was found: a hint when it has transparent
/// pixels, which read as white paper, so that light ink drawn on them
/// vanishes. Empty otherwise.
fn transparency_hint(path: &Path) -> &'static str {
    let transparent = decode(path).is_ok_and(|picture| {
        picture.color().has_alpha() && colour_levels(picture).0.iter().any(|&(_, a)| a < 1.0)
    });
    if transparent {
        "; the picture has transparent pixels, which read as white paper, so light ink \
         on them does not show: draw dark ink, or flatten the picture onto a background \
         of the paper's colour"
    } else {
        ""
    }
}

/// Writes an image with values in [0, 1] (as [`prepare`] returns them) as an
/// 8-bit grey PNG, 0 black and 1 white, atomically. Values outside [0, 1]
/// are clamped.
///
/// # Errors
///
/// - [`Error::InvalidArgument`] when the image has no pixels, is wider or
///   taller than `u32::MAX`, or holds a value that is not finite.
/// - [`Error::Io`] naming the path when the file cannot be written.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::digits::save_grey_png;
/// use ndarray::Array2;
///
/// # fn main() -> kerust::Result<()> {
/// let path = std::env::temp_dir().join("kerust-doc-save-grey.png");
/// save_grey_png(&path, &Array2::eye(28))?;
/// # Ok(())
/// # }
/// ```
pub fn save_grey_png(path: impl AsRef<Path>, image: &Array2<f32>) -> Result<()> {
    let (height, width) = image.dim();
    let shape = format!("{height}x{width}");
    let (Ok(width32), Ok(height32)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(Error::invalid("image", shape, "expected sides below 2^32"));
    };
    if image.is_empty() {
        return Err(Error::invalid(
            "image",
            shape,
            "expected at least one pixel",
        ));
    }
    if let Some(bad) = image.iter().find(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "image",
            bad,
            "expected finite values in [0, 1]",
        ));
    }

    let bytes: Vec<u8> = image
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(Cursor::new(&mut png))
        .write_image(&bytes, width32, height32, image::ExtendedColorType::L8)
        .map_err(|e| Error::invalid("image", shape, e.to_string()))?;
    crate::io::write_atomic(path, &png)
}

/// Reads, identifies and decodes a picture within the limits.
pub(crate) fn decode(path: &Path) -> Result<DynamicImage> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if size == 0 {
        return Err(Error::format(
            path,
            "the file is empty (0 bytes), expected a picture",
        ));
    }
    if size > MAX_FILE_BYTES {
        return Err(Error::format(
            path,
            format!("the file holds {size} bytes, expected at most {MAX_FILE_BYTES} for a picture"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;

    // The format comes from the file's first bytes, not from its name.
    let mut reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let Some(format) = reader.format() else {
        return Err(Error::format(
            path,
            "not a picture: expected a PNG, JPEG, BMP or GIF file",
        ));
    };
    // The JPEG decoder fills a cut-off picture with grey instead of failing.
    if format == ImageFormat::Jpeg && jpeg_is_truncated(&bytes) {
        return Err(Error::format(
            path,
            "the JPEG data is truncated: no end-of-image marker after the image data",
        ));
    }

    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODER_BYTES);
    reader.limits(limits);

    let picture = reader.decode().map_err(|e| decode_error(path, format, e))?;
    log::debug!(
        "decoded {} as {format:?}, {}x{} {:?}",
        path.display(),
        picture.width(),
        picture.height(),
        picture.color()
    );
    Ok(picture)
}

/// Whether a JPEG stream ends before its end-of-image marker.
///
/// The header segments are skipped by their lengths (so that a thumbnail
/// inside an APP segment, with its own markers, is not mistaken for the
/// picture) up to the first start of scan; an end-of-image marker must
/// follow. Entropy-coded data never holds `FF D9`, since the encoder stuffs
/// every `FF` byte with a zero. Streams whose structure is unexpected are
/// left to the decoder.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    const START_OF_SCAN: u8 = 0xDA;
    const END_OF_IMAGE: u8 = 0xD9;

    let mut at = 2;
    loop {
        let (Some(&prefix), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return true;
        };
        if prefix != 0xFF {
            return false;
        }
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            START_OF_SCAN => break,
            END_OF_IMAGE => return false,
            // Markers without a length: TEM and the restart markers.
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let Some(length) = bytes.get(at + 2..at + 4) else {
                    return true;
                };
                at += 2 + usize::from(u16::from_be_bytes([length[0], length[1]]));
            }
        }
    }
    !bytes[at..]
        .windows(2)
        .any(|pair| pair == [0xFF, END_OF_IMAGE])
}

/// A decoder error as an [`Error::Format`] naming the file. The file is
/// already in memory, so even the decoder's I/O errors (running out of
/// bytes) are about its contents.
fn decode_error(path: &Path, format: ImageFormat, error: ImageError) -> Error {
    // The formats read are named by their initials: PNG, JPEG, BMP, GIF.
    let format = format!("{format:?}").to_uppercase();
    let what = match error {
        ImageError::IoError(e) => format!("the {format} data is truncated or corrupt: {e}"),
        ImageError::Limits(e) => format!(
            "the picture exceeds the decoding limits ({MAX_SIDE} pixels a side, \
             {MAX_DECODER_BYTES} bytes): {e}"
        ),
        other => format!("cannot decode it as {format}: {other}"),
    };
    Error::format(path, what)
}

/// The grey level of every pixel, row by row, as [`load_grey`] describes.
fn grey_levels(picture: DynamicImage) -> Vec<f32> {
    let (colours, whole) = colour_levels(picture);
    colours
        .into_iter()
        .map(|(rgb, alpha)| {
            let grey = grey_over_white(rgb, alpha);
            if whole {
                grey.round()
            } else {
                grey
            }
        })
        .collect()
}

/// Every pixel's colour in [0, 255] and opacity in [0, 1], row by row, and
/// whether the picture has 8-bit samples (whole levels): 16-bit samples are
/// brought to the 8-bit range, floating-point ones (in [0, 1] by the image
/// crate's convention) clipped and scaled.
pub(crate) fn colour_levels(picture: DynamicImage) -> (Vec<([f32; 3], f32)>, bool) {
    match picture {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => {
            let levels = picture
                .into_rgba8()
                .pixels()
                .map(|p| {
                    let [r, g, b, a] = p.0.map(f32::from);
                    ([r, g, b], a / 255.0)
                })
                .collect();
            (levels, true)
        }
        DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_) => {
            let levels = picture
                .into_rgba16()
                .pixels()
                .map(|p| {
                    let [r, g, b, a] = p.0.map(|v| f32::from(v) / 257.0);
                    ([r, g, b], a / 255.0)
                })
                .collect();
            (levels, false)
        }
        _ => {
            let levels = picture
                .into_rgba32f()
                .pixels()
                .map(|p| {
                    let [r, g, b, a] = p.0.map(|v| v.clamp(0.0, 1.0));
                    ([r * 255.0, g * 255.0, b * 255.0], a)
                })
                .collect();
            (levels, false)
        }
    }
}

/// Rec. 601 grey of a colour in [0, 255] with opacity `alpha` in [0, 1],
/// composited over white.
pub(crate) fn grey_over_white(rgb: [f32; 3], alpha: f32) -> f32 {
    let [r, g, b] = rgb.map(|c| c * alpha + 255.0 * (1.0 - alpha));
    (r * 299.0 + g * 587.0 + b * 114.0) / 1000.0
}

/// Refuses arrays that are not grey levels.
fn check_grey(grey: &Array2<f32>) -> Result<()> {
    let (height, width) = grey.dim();
    if grey.is_empty() {
        return Err(Error::invalid(
            "grey",
            format!("{height}x{width} array"),
            "expected a picture of at least 1x1 pixel",
        ));
    }
    if let Some(bad) = grey.iter().find(|v| !(0.0..=255.0).contains(*v)) {
        return Err(Error::invalid(
            "grey",
            bad,
            "expected grey levels in [0, 255], as `load_grey` returns them",
        ));
    }
    Ok(())
}

/// Resize to 28x28, invert, scale to [0, 1].
fn prepare_naive(grey: &Array2<f32>) -> Array2<f32> {
    resample(grey, FRAME, FRAME).mapv(|v| ((255.0 - v) / 255.0).clamp(0.0, 1.0))
}

/// MNIST's normalisation; see [`prepare`].
fn prepare_mnist(grey: &Array2<f32>) -> Result<Array2<f32>> {
    let ink = keep_the_digit(ink_from_paper(grey)?);
    let ((top, bottom), (left, right)) = bounding_box(&ink);
    let cropped = fit_stroke_width(ink.slice(s![top..bottom, left..right]).to_owned());

    let fitted = stretch(fit_into_box(&cropped, INK_BOX));
    log::debug!(
        "ink box rows {top}..{bottom}, columns {left}..{right}, scaled to {:?}",
        fitted.dim()
    );
    Ok(place_by_centre_of_mass(&fitted))
}

/// Ink in grey levels, how far each pixel is from the paper on the ink's
/// side, from a picture on light or dark paper.
fn ink_from_paper(grey: &Array2<f32>) -> Result<Array2<f32>> {
    let ink_at = |paper: f32| {
        let light_paper = paper > 127.5;
        grey.mapv(|v| (if light_paper { paper - v } else { v - paper }).max(0.0))
    };
    let inked = |ink: &Array2<f32>| ink.iter().filter(|&&v| v >= MIN_INK_CONTRAST).count();
    let mut paper = border_mean(grey, 0);
    let mut ink = ink_at(paper);
    let (height, width) = grey.dim();
    let depth = (height.min(width) as f64 * FRAME_DEPTH) as usize;
    if inked(&ink) as f64 > MAX_INK_SHARE * ink.len() as f64 && depth > 0 {
        // Most of the picture differs from its border. If a ring further in
        // is of the other polarity, the border is a frame or a dark edge
        // around the paper, and that ring is the paper; otherwise the
        // digit is simply bold.
        let inner = border_mean(grey, depth);
        if (inner > 127.5) != (paper > 127.5) {
            let inner_ink = ink_at(inner);
            if inked(&inner_ink) < inked(&ink) {
                (paper, ink) = (inner, inner_ink);
            }
        }
    }
    let light_paper = paper > 127.5;

    let peak = ink.fold(0.0_f32, |m, &v| m.max(v));
    log::debug!("paper level {paper:.1} (light: {light_paper}), strongest ink {peak:.1}");
    if peak < MIN_INK_CONTRAST {
        let (height, width) = grey.dim();
        return Err(Error::invalid(
            "grey",
            format!("{height}x{width} picture"),
            format!(
                "no ink found: every pixel is within {peak:.1} grey levels of the paper \
                 ({paper:.1}), expected ink differing by at least {MIN_INK_CONTRAST}"
            ),
        ));
    }

    Ok(ink)
}

/// Ink scaled so that its strongest pixel is 1, with what is under
/// [`INK_THRESHOLD`] of it taken as paper.
fn scaled_ink(ink: &Array2<f32>) -> Array2<f32> {
    let peak = ink.fold(0.0_f32, |m, &v| m.max(v));
    let threshold = INK_THRESHOLD * peak;
    ink.mapv(|v| if v < threshold { 0.0 } else { v / peak })
}

/// One piece of ink: 8-connected non-zero pixels.
struct Piece {
    /// Its pixels, as indices into the picture's row-major order.
    pixels: Vec<usize>,
    /// The sum of its ink.
    mass: f64,
    /// Its bounding box: top, bottom, left, right (bottom and right past
    /// the end).
    rows: (usize, usize),
    cols: (usize, usize),
}

impl Piece {
    /// Whether nearly all its ink lies near the edges of its box, as a
    /// drawn rectangle's does: within a tenth of the box's shorter side,
    /// and at least two pixels.
    fn is_ring_shaped(&self, ink: &[f32], width: usize) -> bool {
        let (height, breadth) = (self.rows.1 - self.rows.0, self.cols.1 - self.cols.0);
        let margin = (height.min(breadth) / 10).max(2);
        let near_edge: f64 = self
            .pixels
            .iter()
            .filter(|&&i| {
                let (y, x) = (i / width, i % width);
                y < self.rows.0 + margin
                    || y + margin >= self.rows.1
                    || x < self.cols.0 + margin
                    || x + margin >= self.cols.1
            })
            .map(|&i| f64::from(ink[i]))
            .sum();
        near_edge >= FRAME_EDGE_SHARE * self.mass
    }
}

/// The 8-connected pieces of non-zero ink.
fn pieces(ink: &[f32], height: usize, width: usize) -> Vec<Piece> {
    let mut seen = vec![false; ink.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..ink.len() {
        if seen[start] || ink[start] <= 0.0 {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut piece = Piece {
            pixels: Vec::new(),
            mass: 0.0,
            rows: (usize::MAX, 0),
            cols: (usize::MAX, 0),
        };
        while let Some(i) = stack.pop() {
            let (y, x) = (i / width, i % width);
            piece.pixels.push(i);
            piece.mass += f64::from(ink[i]);
            piece.rows = (piece.rows.0.min(y), piece.rows.1.max(y + 1));
            piece.cols = (piece.cols.0.min(x), piece.cols.1.max(x + 1));
            for ny in y.saturating_sub(1)..(y + 2).min(height) {
                for nx in x.saturating_sub(1)..(x + 2).min(width) {
                    let j = ny * width + nx;
                    if !seen[j] && ink[j] > 0.0 {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        found.push(piece);
    }
    found
}

/// The ink, scaled as [`scaled_ink`] does, without what is not the digit:
/// a rectangle drawn around it (a ring-shaped piece whose box holds the
/// other ink), then specks whose ink is under [`SPECK_SHARE`] of the
/// largest piece's. What is taken away is taken with a pixel around it
/// before the rest is scaled again, so that the digit comes out as it
/// would without them. A picture of one piece is only scaled.
fn keep_the_digit(mut ink: Array2<f32>) -> Array2<f32> {
    let (height, width) = ink.dim();
    let scaled = scaled_ink(&ink);
    let Some(values) = scaled.as_slice() else {
        return scaled;
    };
    let mut found = pieces(values, height, width);
    if found.len() < 2 {
        return scaled;
    }
    found.sort_by(|a, b| b.mass.total_cmp(&a.mass));
    let mut dropped = vec![false; found.len()];
    let weighty = |piece: &Piece, largest: f64| piece.mass >= SPECK_SHARE * largest;
    // A frame: the heaviest ring-shaped piece whose box holds all the
    // others of any weight, that is the box around all of them. (A frame
    // of no weight goes with the specks.)
    let heavy = found
        .iter()
        .take_while(|p| weighty(p, found[0].mass))
        .count();
    if heavy >= 2 {
        let around = found[..heavy].iter().fold(
            ((usize::MAX, 0), (usize::MAX, 0)),
            |((top, bottom), (left, right)), p| {
                (
                    (top.min(p.rows.0), bottom.max(p.rows.1)),
                    (left.min(p.cols.0), right.max(p.cols.1)),
                )
            },
        );
        let frame = found[..heavy]
            .iter()
            .position(|p| (p.rows, p.cols) == around && p.is_ring_shaped(values, width));
        if let Some(k) = frame {
            dropped[k] = true;
        }
    }
    let largest = found
        .iter()
        .zip(&dropped)
        .filter(|&(_, &drop)| !drop)
        .map(|(piece, _)| piece.mass)
        .fold(0.0, f64::max);
    for (piece, drop) in found.iter().zip(dropped.iter_mut()) {
        *drop |= !weighty(piece, largest);
    }
    let count = dropped.iter().filter(|&&drop| drop).count();
    if count == 0 {
        return scaled;
    }
    log::debug!("{count} of {} pieces of ink are not the digit", found.len());
    for (piece, _) in found.iter().zip(&dropped).filter(|&(_, &drop)| drop) {
        for &i in &piece.pixels {
            let (y, x) = (i / width, i % width);
            ink.slice_mut(s![
                y.saturating_sub(1)..(y + 2).min(height),
                x.saturating_sub(1)..(x + 2).min(width)
            ])
            .fill(0.0);
        }
    }
    scaled_ink(&ink)
}

/// Mean of the pixels on the rectangle `depth` pixels in from the edges:
/// with `depth` 0, the picture's outermost rows and columns. `depth` is
/// less than half the shorter side.
fn border_mean(grey: &Array2<f32>, depth: usize) -> f32 {
    let (height, width) = grey.dim();
    let on_border = |(y, x): (usize, usize)| {
        let within = (depth..height - depth).contains(&y) && (depth..width - depth).contains(&x);
        within && (y == depth || x == depth || y + 1 + depth == height || x + 1 + depth == width)
    };
    let (sum, count) = grey
        .indexed_iter()
        .filter(|&(index, _)| on_border(index))
        .fold((0.0_f64, 0_usize), |(s, c), (_, &v)| {
            (s + f64::from(v), c + 1)
        });
    (sum / count as f64) as f32
}

/// Half-open row and column ranges holding every non-zero pixel. The caller
/// guarantees that one exists.
fn bounding_box(ink: &Array2<f32>) -> ((usize, usize), (usize, usize)) {
    let (mut top, mut bottom, mut left, mut right) = (usize::MAX, 0, usize::MAX, 0);
    for ((y, x), &v) in ink.indexed_iter() {
        if v > 0.0 {
            top = top.min(y);
            bottom = bottom.max(y + 1);
            left = left.min(x);
            right = right.max(x + 1);
        }
    }
    ((top, bottom), (left, right))
}

/// Scales `ink` so that its longer side is `side` pixels, keeping its
/// aspect ratio; the shorter side is rounded and at least one pixel.
fn fit_into_box(ink: &Array2<f32>, side: usize) -> Array2<f32> {
    let (height, width) = ink.dim();
    let scale = side as f64 / height.max(width) as f64;
    let rows = ((height as f64 * scale).round() as usize).clamp(1, side);
    let cols = ((width as f64 * scale).round() as usize).clamp(1, side);
    resample(ink, rows, cols)
}

/// Stroke width of `ink` in pixels, as twice its area over its outline
/// length, counting the pixels of at least one half as ink and the outline
/// as the sides between an ink pixel and a paper pixel (or the edge). A
/// straight stroke of width `w` and length `l` much longer than `w` gives
/// about `w`; diagonal strokes come out a little thinner, since their
/// outline is a staircase. `None` when no pixel reaches one half.
fn stroke_width(ink: &Array2<f32>) -> Option<f64> {
    let (height, width) = ink.dim();
    let is_ink = |y: usize, x: usize| ink[[y, x]] >= 0.5;
    let (mut area, mut outline) = (0_usize, 0_usize);
    for y in 0..height {
        for x in 0..width {
            if !is_ink(y, x) {
                continue;
            }
            area += 1;
            outline += usize::from(y == 0 || !is_ink(y - 1, x))
                + usize::from(y + 1 == height || !is_ink(y + 1, x))
                + usize::from(x == 0 || !is_ink(y, x - 1))
                + usize::from(x + 1 == width || !is_ink(y, x + 1));
        }
    }
    (area > 0).then(|| 2.0 * area as f64 / outline as f64)
}

/// Brings the strokes of cropped `ink` (strongest ink 1) into MNIST's range
/// of widths once its longer side is scaled to [`INK_BOX`]: widened when
/// thinner than [`MNIST_STROKE_WIDTH`], thinned when bolder than
/// [`MNIST_BOLD_STROKE_WIDTH`], unchanged otherwise; see step 3 of
/// [`prepare`].
fn fit_stroke_width(ink: Array2<f32>) -> Array2<f32> {
    let (height, width) = ink.dim();
    let Some(width_now) = stroke_width(&ink) else {
        return ink;
    };
    let scale = INK_BOX as f64 / height.max(width) as f64;
    let widen_by = (MNIST_STROKE_WIDTH / scale - width_now) / 2.0;
    // Thinning by `r` a side also shrinks the longer side by `2 r`, which
    // enlarges the scale: solve `(w - 2 r) * box / (side - 2 r) = bound`.
    let longer = height.max(width) as f64;
    let bold_ratio = MNIST_BOLD_STROKE_WIDTH / INK_BOX as f64;
    let thin_by = (width_now - bold_ratio * longer) / (2.0 * (1.0 - bold_ratio));
    if widen_by > 0.0 {
        log::debug!(
            "stroke width {width_now:.2} pixels ({:.2} once scaled), thickened by {widen_by:.2} a side",
            width_now * scale
        );
        thicken_strokes(ink, widen_by)
    } else if thin_by > 0.0 {
        log::debug!(
            "stroke width {width_now:.2} pixels ({:.2} once scaled), thinned by {thin_by:.2} a side",
            width_now * scale
        );
        thin_strokes(ink, thin_by)
    } else {
        ink
    }
}

/// Widens every stroke of `ink` by `radius` pixels a side: every pixel
/// within `radius` of a stroke pixel (at least one half) becomes ink, with a
/// soft edge one pixel wide; the result is cropped to its ink again.
fn thicken_strokes(ink: Array2<f32>, radius: f64) -> Array2<f32> {
    let (height, width) = ink.dim();
    let pad = radius.ceil() as usize + 1;
    let mut padded = Array2::<f32>::zeros((height + 2 * pad, width + 2 * pad));
    padded
        .slice_mut(s![pad..pad + height, pad..pad + width])
        .assign(&ink);
    let distance = distance_to_strokes(&padded);
    for (v, &d) in padded.iter_mut().zip(distance.iter()) {
        let pen = (radius + 0.5 - f64::from(d).sqrt()).clamp(0.0, 1.0) as f32;
        *v = v.max(pen);
    }
    let ((top, bottom), (left, right)) = bounding_box(&padded);
    padded.slice(s![top..bottom, left..right]).to_owned()
}

/// Thins every stroke of `ink` by `radius` pixels a side: a stroke pixel (at
/// least one half) keeps its ink in proportion to how far beyond `radius`
/// it lies from the paper (pixels below one half, or outside the picture),
/// from none within `radius + 0.5` to all from `radius + 1.5`, and fainter
/// pixels become paper. The result is cropped to its ink again; `ink` is
/// returned unchanged when thinning would leave nothing.
fn thin_strokes(ink: Array2<f32>, radius: f64) -> Array2<f32> {
    let (height, width) = ink.dim();
    // The paper as strokes of its own, with a ring of it around the picture.
    let mut paper = Array2::<f32>::ones((height + 2, width + 2));
    paper
        .slice_mut(s![1..=height, 1..=width])
        .assign(&ink.mapv(|v| if v >= 0.5 { 0.0 } else { 1.0 }));
    let distance = distance_to_strokes(&paper);
    let mut thinned = Array2::<f32>::zeros((height, width));
    for ((y, x), v) in thinned.indexed_iter_mut() {
        let d = f64::from(distance[[y + 1, x + 1]]).sqrt();
        *v = ink[[y, x]] * (d - radius - 0.5).clamp(0.0, 1.0) as f32;
    }
    if thinned.iter().all(|&v| v <= 0.0) {
        return ink;
    }
    let ((top, bottom), (left, right)) = bounding_box(&thinned);
    thinned.slice(s![top..bottom, left..right]).to_owned()
}

/// Squared Euclidean distance from every pixel to the nearest pixel of at
/// least one half, exactly, with the two-pass transform of Felzenszwalb and
/// Huttenlocher (*Distance transforms of sampled functions*, 2012). The
/// caller guarantees that such a pixel exists.
fn distance_to_strokes(ink: &Array2<f32>) -> Array2<f32> {
    // Far beyond any squared distance inside a picture of at most 2^13 + 2^13
    // pixels a side, yet finite, so that differences stay defined.
    const FAR: f64 = 1e18;
    let (height, width) = ink.dim();
    let mut along_rows = Array2::<f32>::zeros((height, width));
    let mut line = Vec::new();
    let mut out = Vec::new();
    for y in 0..height {
        line.clear();
        line.extend((0..width).map(|x| if ink[[y, x]] >= 0.5 { 0.0 } else { FAR }));
        squared_distance_1d(&line, &mut out);
        for (x, &d) in out.iter().enumerate() {
            along_rows[[y, x]] = d.min(FAR) as f32;
        }
    }
    let mut distance = Array2::<f32>::zeros((height, width));
    for x in 0..width {
        line.clear();
        line.extend((0..height).map(|y| f64::from(along_rows[[y, x]])));
        squared_distance_1d(&line, &mut out);
        for (y, &d) in out.iter().enumerate() {
            distance[[y, x]] = d as f32;
        }
    }
    distance
}

/// `out[q] = min over p of (q - p)^2 + f[p]`: the lower envelope of the
/// parabolas rooted at each sample, in one pass.
fn squared_distance_1d(f: &[f64], out: &mut Vec<f64>) {
    let n = f.len();
    out.clear();
    if n == 0 {
        return;
    }
    // Roots of the parabolas on the envelope, and where each takes over.
    let mut roots = vec![0_usize; n];
    let mut starts = vec![0.0_f64; n + 1];
    let mut k = 0;
    starts[0] = f64::NEG_INFINITY;
    starts[1] = f64::INFINITY;
    for q in 1..n {
        let crossing =
            |p: usize| ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * (q - p) as f64);
        let mut s = crossing(roots[k]);
        while s <= starts[k] {
            k -= 1;
            s = crossing(roots[k]);
        }
        k += 1;
        roots[k] = q;
        starts[k] = s;
        starts[k + 1] = f64::INFINITY;
    }
    k = 0;
    for q in 0..n {
        while starts[k + 1] < q as f64 {
            k += 1;
        }
        let d = q as f64 - roots[k] as f64;
        out.push(d * d + f[roots[k]]);
    }
}

/// Divides by the largest value, so that the strongest ink is 1.
fn stretch(ink: Array2<f32>) -> Array2<f32> {
    let peak = ink.fold(0.0_f32, |m, &v| m.max(v));
    if peak > 0.0 {
        ink.mapv(|v| (v / peak).min(1.0))
    } else {
        ink
    }
}

/// Pastes `ink` into a 28x28 frame so that its centre of mass lands on
/// ([`CENTRE`], [`CENTRE`]), shifted by whole pixels and clipped.
fn place_by_centre_of_mass(ink: &Array2<f32>) -> Array2<f32> {
    let (centre_y, centre_x) = centre_of_mass(ink);
    let top = (CENTRE - centre_y).round() as isize;
    let left = (CENTRE - centre_x).round() as isize;

    let mut frame = Array2::<f32>::zeros((FRAME, FRAME));
    for ((y, x), &v) in ink.indexed_iter() {
        let (row, col) = (y as isize + top, x as isize + left);
        if (0..FRAME as isize).contains(&row) && (0..FRAME as isize).contains(&col) {
            frame[[row as usize, col as usize]] = v;
        }
    }
    frame
}

/// Row and column of the centre of mass, pixel centres on integers; the
/// middle of the array when it holds no mass.
fn centre_of_mass(image: &Array2<f32>) -> (f32, f32) {
    let (mut mass, mut sum_y, mut sum_x) = (0.0_f64, 0.0_f64, 0.0_f64);
    for ((y, x), &v) in image.indexed_iter() {
        let v = f64::from(v);
        mass += v;
        sum_y += v * y as f64;
        sum_x += v * x as f64;
    }
    if mass <= 0.0 {
        let (height, width) = image.dim();
        return ((height as f32 - 1.0) / 2.0, (width as f32 - 1.0) / 2.0);
    }
    ((sum_y / mass) as f32, (sum_x / mass) as f32)
}

/// Resizes to `rows` x `cols`, one axis at a time.
///
/// Sums run in `f64` over weights that add up to one, so that a uniform
/// area keeps its exact value (white paper stays 255.0, not 254.99998).
fn resample(image: &Array2<f32>, rows: usize, cols: usize) -> Array2<f32> {
    let (height, width) = image.dim();
    let column_weights = axis_weights(width, cols);
    let row_weights = axis_weights(height, rows);

    let mut across = Array2::<f64>::zeros((height, cols));
    for ((y, x), out) in across.indexed_iter_mut() {
        *out = column_weights[x]
            .iter()
            .map(|&(j, w)| w * f64::from(image[[y, j]]))
            .sum();
    }
    let mut result = Array2::<f32>::zeros((rows, cols));
    for ((y, x), out) in result.indexed_iter_mut() {
        let value: f64 = row_weights[y]
            .iter()
            .map(|&(i, w)| w * across[[i, x]])
            .sum();
        *out = value as f32;
    }
    result
}

/// For each of `to` output samples, the input samples and weights that make
/// it from `from` input samples (both at least 1). Each list of weights
/// adds up to one.
///
/// Shrinking averages the input over the output sample's footprint, each
/// input sample weighted by its overlap (area averaging, the anti-aliasing
/// MNIST used). Growing interpolates linearly between the two nearest input
/// samples, pixel centres aligned, edges repeated.
fn axis_weights(from: usize, to: usize) -> Vec<Vec<(usize, f64)>> {
    let step = from as f64 / to as f64;
    (0..to)
        .map(|i| {
            if to <= from {
                let (start, end) = (i as f64 * step, (i + 1) as f64 * step);
                let last = (end.ceil() as usize).min(from);
                let overlaps: Vec<(usize, f64)> = (start.floor() as usize..last)
                    .map(|j| (j, end.min(j as f64 + 1.0) - start.max(j as f64)))
                    .filter(|&(_, overlap)| overlap > 0.0)
                    .collect();
                let total: f64 = overlaps.iter().map(|&(_, overlap)| overlap).sum();
                overlaps
                    .into_iter()
                    .map(|(j, overlap)| (j, overlap / total))
                    .collect()
            } else {
                let position = ((i as f64 + 0.5) * step - 0.5).clamp(0.0, (from - 1) as f64);
                let j = position.floor() as usize;
                let t = position - j as f64;
                if j + 1 < from && t > 0.0 {
                    vec![(j, 1.0 - t), (j + 1, t)]
                } else {
                    vec![(j, 1.0)]
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    fn assert_close(got: f32, want: f32, tolerance: f32) {
        assert!(
            (got - want).abs() <= tolerance,
            "got {got}, expected {want} ± {tolerance}"
        );
    }

    /// A black digit-like shape ("7") on white paper, off centre.
    fn seven(height: u32, width: u32) -> GrayImage {
        GrayImage::from_fn(width, height, |x, y| {
            let top_bar = (10..16).contains(&y) && (20..60).contains(&x);
            let stem_x = 60 - (y as i64 - 10) / 2;
            let stem = (10..80).contains(&y) && (x as i64 - stem_x).abs() < 4;
            Luma([if top_bar || stem { 0 } else { 255 }])
        })
    }

    fn save(image: &DynamicImage, dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        image.save(&path).unwrap();
        path
    }

    fn max_difference(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
    }

    #[test]
    fn pure_red_green_blue_give_pillow_grey_levels() {
        let dir = tempfile::tempdir().unwrap();
        let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
        let picture = RgbImage::from_fn(4, 1, |x, _| Rgb(colours[x as usize]));
        let path = save(&DynamicImage::ImageRgb8(picture), dir.path(), "rgb.png");
        let grey = load_grey(&path).unwrap();
        assert_eq!(grey.row(0).to_vec(), vec![76.0, 150.0, 29.0, 255.0]);
    }

    #[test]
    fn transparent_pixels_are_white_paper() {
        let dir = tempfile::tempdir().unwrap();
        // Transparent black everywhere, which a plain grey conversion would
        // turn into a black picture, and an opaque black stroke.
        let mut picture = RgbaImage::from_pixel(60, 50, Rgba([0, 0, 0, 0]));
        for y in 10..40 {
            for x in 28..32 {
                picture.put_pixel(x, y, Rgba([0, 0, 0, 255]));
            }
        }
        let path = save(&DynamicImage::ImageRgba8(picture), dir.path(), "stroke.png");

        let grey = load_grey(&path).unwrap();
        assert_eq!(grey[[0, 0]], 255.0);
        assert_eq!(grey[[20, 30]], 0.0);

        let input = prepare(&grey, Preparation::Mnist).unwrap();
        let ((top, bottom), (left, right)) = bounding_box(&input);
        // A 30x4 stroke fits 20 rows high and about 3 columns wide.
        assert_eq!(bottom - top, 20);
        assert!((2..=4).contains(&(right - left)), "{left}..{right}");
        assert!(input.slice(s![.., ..left]).iter().all(|&v| v == 0.0));
        assert!(input.slice(s![.., right..]).iter().all(|&v| v == 0.0));
        assert_eq!(input.fold(0.0_f32, |m, &v| m.max(v)), 1.0);

        let naive = prepare(&grey, Preparation::Naive).unwrap();
        assert_eq!(naive[[0, 0]], 0.0);
        assert!(naive[[14, 14]] > 0.5, "{}", naive[[14, 14]]);
    }

    #[test]
    fn partly_transparent_ink_is_blended_with_the_paper() {
        let dir = tempfile::tempdir().unwrap();
        let colours = [
            [0, 0, 0, 128],
            [255, 0, 0, 51],
            [0, 0, 0, 0],
            [255, 255, 255, 0],
        ];
        let picture = RgbaImage::from_fn(4, 1, |x, _| Rgba(colours[x as usize]));
        let path = save(&DynamicImage::ImageRgba8(picture), dir.path(), "blend.png");
        let grey = load_grey(&path).unwrap();
        // 255 * (1 - 128/255) = 127; red at alpha 0.2 over white is
        // (255, 204, 204), whose Rec. 601 grey is 76.245 + 119.748 + 23.256.
        assert_eq!(grey.row(0).to_vec(), vec![127.0, 219.0, 255.0, 255.0]);
    }

    #[test]
    fn sixteen_bit_and_palette_pictures_prepare_like_eight_bit() {
        let dir = tempfile::tempdir().unwrap();
        let eight = seven(100, 90);
        let path8 = save(
            &DynamicImage::ImageLuma8(eight.clone()),
            dir.path(),
            "eight.png",
        );

        let sixteen: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(90, 100, |x, y| {
            Luma([u16::from(eight.get_pixel(x, y).0[0]) * 257])
        });
        let path16 = save(
            &DynamicImage::ImageLuma16(sixteen),
            dir.path(),
            "sixteen.png",
        );
        let path_palette = dir.path().join("palette.png");
        write_palette_png(&path_palette, &eight);

        let reference = load_grey(&path8).unwrap();
        for path in [&path16, &path_palette] {
            let grey = load_grey(path).unwrap();
            assert!(
                max_difference(&grey, &reference) <= 0.5,
                "{}",
                path.display()
            );
            for how in [Preparation::Naive, Preparation::Mnist] {
                let got = prepare(&grey, how).unwrap();
                let want = prepare(&reference, how).unwrap();
                assert!(
                    max_difference(&got, &want) <= 1.0 / 255.0,
                    "{how:?} {}",
                    path.display()
                );
            }
        }
    }

    /// Writes `picture` as an 8-bit indexed (palette) PNG whose entry `k`
    /// holds grey `255 - k`, so that indices differ from grey levels. The
    /// image crate writes no palette PNGs, so the chunks are built here.
    fn write_palette_png(path: &Path, picture: &GrayImage) {
        use flate2::write::ZlibEncoder;
        use std::io::Write;

        fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&crc.sum().to_be_bytes());
        }

        let (width, height) = picture.dimensions();
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        // Bit depth 8, colour type 3 (indexed), default compression,
        // filter and interlace methods.
        header.extend_from_slice(&[8, 3, 0, 0, 0]);
        let palette: Vec<u8> = (0..=255u8).flat_map(|k| [255 - k; 3]).collect();
        let mut rows = Vec::new();
        for row in picture.rows() {
            rows.push(0); // filter type None
            rows.extend(row.map(|p| 255 - p.0[0]));
        }
        let mut zlib = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&rows).unwrap();

        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &header);
        chunk(&mut png, b"PLTE", &palette);
        chunk(&mut png, b"IDAT", &zlib.finish().unwrap());
        chunk(&mut png, b"IEND", &[]);
        std::fs::write(path, png).unwrap();
    }

    #[test]
    fn a_wide_bar_keeps_its_aspect_ratio() {
        // 6 by 40 pixels: 3 by 20 once scaled, a stroke within MNIST's range.
        let mut grey = Array2::from_elem((100, 200), 255.0_f32);
        grey.slice_mut(s![30..36, 50..90]).fill(0.0);
        let input = prepare(&grey, Preparation::Mnist).unwrap();
        let ((top, bottom), (left, right)) = bounding_box(&input);
        assert_eq!((bottom - top, right - left), (3, 20));
        assert!(input
            .slice(s![top..bottom, left..right])
            .iter()
            .all(|&v| v > 0.99));

        let tall = grey.t().to_owned();
        let input = prepare(&tall, Preparation::Mnist).unwrap();
        let ((top, bottom), (left, right)) = bounding_box(&input);
        assert_eq!((bottom - top, right - left), (20, 3));
    }

    #[test]
    fn white_ink_on_black_is_not_inverted_again() {
        let black_on_white = seven(100, 90);
        let grey = Array2::from_shape_fn((100, 90), |(y, x)| {
            f32::from(black_on_white.get_pixel(x as u32, y as u32).0[0])
        });
        let white_on_black = grey.mapv(|v| 255.0 - v);
        let a = prepare(&grey, Preparation::Mnist).unwrap();
        let b = prepare(&white_on_black, Preparation::Mnist).unwrap();
        assert!(max_difference(&a, &b) < 1e-6);
        assert!(a.sum() > 10.0);
    }

    #[test]
    fn the_centre_of_mass_lands_in_the_middle() {
        for (height, width) in [(100, 90), (120, 300), (300, 100)] {
            let picture = seven(height, width);
            let grey = picture.enumerate_pixels().fold(
                Array2::zeros((height as usize, width as usize)),
                |mut grey, (x, y, p)| {
                    grey[[y as usize, x as usize]] = f32::from(p.0[0]);
                    grey
                },
            );
            let input = prepare(&grey, Preparation::Mnist).unwrap();
            let (y, x) = centre_of_mass(&input);
            assert_close(y, CENTRE, 0.5);
            assert_close(x, CENTRE, 0.5);
            assert!(input.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn a_tiny_drawing_is_enlarged_to_twenty_pixels() {
        let mut grey = Array2::from_elem((30, 30), 255.0_f32);
        grey.slice_mut(s![10..15, 12..14]).fill(0.0);
        let input = prepare(&grey, Preparation::Mnist).unwrap();
        let ((top, bottom), (left, right)) = bounding_box(&input);
        assert_eq!(bottom - top, 20);
        assert_eq!(right - left, 8);
    }

    /// A black ring ("0") of `stroke` pixels drawn with an anti-aliased
    /// pen on white paper, `side` pixels square, off centre.
    fn ring(side: usize, radius: f32, stroke: f32) -> Array2<f32> {
        let (cy, cx) = (side as f32 * 0.45, side as f32 * 0.55);
        Array2::from_shape_fn((side, side), |(y, x)| {
            let r = ((y as f32 - cy).powi(2) + (x as f32 - cx).powi(2)).sqrt();
            let cover = (stroke / 2.0 + 0.5 - (r - radius).abs()).clamp(0.0, 1.0);
            255.0 * (1.0 - cover)
        })
    }

    #[test]
    fn thin_and_bold_pens_give_strokes_of_similar_width() {
        // Without thickening the rings scale down to hairlines of 0.74,
        // 0.74 and 0.89 pixels; MNIST's strokes are 1.65 or more in three
        // digits out of four (a ring's staircase outline makes it measure a
        // little thinner than it is).
        let widths: Vec<f64> = [1.0, 4.0, 12.0]
            .iter()
            .map(|&pen| {
                let input = prepare(&ring(300, 100.0, pen), Preparation::Mnist).unwrap();
                stroke_width(&input).unwrap()
            })
            .collect();
        for &w in &widths {
            assert!((1.25..=2.8).contains(&w), "{widths:?}");
        }
        assert!((widths[0] - widths[2]).abs() < 0.5, "{widths:?}");
    }

    #[test]
    fn strokes_wide_enough_are_left_alone() {
        // 30 pixels wide on a 200-pixel ring: about 2.5 pixels once scaled.
        let mut ink = ring(240, 85.0, 30.0).mapv(|v| 1.0 - v / 255.0);
        ink.mapv_inplace(|v| if v < 0.2 { 0.0 } else { v });
        let ((top, bottom), (left, right)) = bounding_box(&ink);
        let cropped = ink.slice(s![top..bottom, left..right]).to_owned();
        assert_eq!(fit_stroke_width(cropped.clone()), cropped);
    }

    #[test]
    fn bold_pens_are_thinned_into_mnist_range() {
        // Pens of 60 and 80 pixels on a 180-pixel ring measure 3.9 and 4.7
        // pixels once scaled, bolder than 99 MNIST digits in 100 (3.61).
        // Thinned, they come down near MNIST's 95th percentile (3.02).
        for pen in [60.0, 80.0] {
            let grey = ring(300, 90.0, pen);
            let input = prepare(&grey, Preparation::Mnist).unwrap();
            let width = stroke_width(&input).unwrap();
            assert!((2.6..=3.5).contains(&width), "pen {pen}: {width}");

            let mut ink = grey.mapv(|v| 1.0 - v / 255.0);
            ink.mapv_inplace(|v| if v < 0.2 { 0.0 } else { v });
            let ((top, bottom), (left, right)) = bounding_box(&ink);
            let cropped = ink.slice(s![top..bottom, left..right]).to_owned();
            let scaled = stretch(fit_into_box(&cropped, INK_BOX));
            let untouched = stroke_width(&scaled).unwrap();
            assert!(untouched > 3.8, "pen {pen}: {untouched}");
        }
    }

    #[test]
    fn thinning_takes_the_same_width_off_every_side() {
        let ink = Array2::<f32>::ones((100, 10));
        let thin = thin_strokes(ink, 2.0);
        // Pixels 1 and 2 from the paper go, pixel 3 keeps half its ink.
        assert_eq!(thin.dim(), (96, 6));
        assert_eq!(thin.row(48).to_vec(), vec![0.5, 1.0, 1.0, 1.0, 1.0, 0.5]);
        // Faint pixels are paper; a stroke too thin to survive is kept.
        let mut faint = Array2::<f32>::from_elem((20, 20), 0.3);
        faint.slice_mut(s![5..15, 8..12]).fill(1.0);
        let thin = thin_strokes(faint.clone(), 0.6);
        assert_eq!(thin.dim(), (8, 2));
        assert!(thin.iter().all(|&v| v > 0.5), "{thin:?}");
        assert_eq!(thin_strokes(faint.clone(), 3.0), faint);
    }

    #[test]
    fn stroke_width_of_a_bar_is_twice_area_over_outline() {
        let mut ink = Array2::<f32>::zeros((50, 50));
        ink.slice_mut(s![5..45, 10..14]).fill(1.0);
        // Faint pixels are not stroke.
        ink.slice_mut(s![5..45, 14..16]).fill(0.4);
        let got = stroke_width(&ink).unwrap();
        assert!((got - 2.0 * 160.0 / 88.0).abs() < 1e-12, "{got}");
        assert_eq!(stroke_width(&Array2::from_elem((3, 3), 0.4)), None);
    }

    #[test]
    fn thickening_widens_a_hairline_by_the_missing_width() {
        // A 1-pixel line 200 pixels long scales by 0.1: it needs 16.5.
        let mut ink = Array2::<f32>::zeros((200, 1));
        ink.fill(1.0);
        let thick = fit_stroke_width(ink);
        // 2 * 200 / 402 = 0.995 now, so a radius of (16.5 - 0.995) / 2 =
        // 7.75 pixels a side; the soft edge reaches 8 pixels out.
        assert_eq!(thick.dim(), (216, 17));
        assert_eq!(thick[[108, 8]], 1.0);
        assert_close(thick[[108, 0]], 7.7525 + 0.5 - 8.0, 1e-4);
        // The round caps at both ends lengthen the outline: about 15.
        let width = stroke_width(&thick).unwrap();
        assert!((13.5..=16.5).contains(&width), "{width}");
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for (height, width) in [(1, 1), (1, 9), (7, 1), (13, 17), (30, 8)] {
            let ink = Array2::from_shape_fn((height, width), |_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state % 7 == 0 {
                    1.0
                } else {
                    0.3
                }
            });
            let mut ink = ink;
            ink[[height / 2, width / 2]] = 0.5;
            let got = distance_to_strokes(&ink);
            for ((y, x), &d) in got.indexed_iter() {
                let want = ink
                    .indexed_iter()
                    .filter(|&(_, &v)| v >= 0.5)
                    .map(|((i, j), _)| {
                        (i as f32 - y as f32).powi(2) + (j as f32 - x as f32).powi(2)
                    })
                    .fold(f32::INFINITY, f32::min);
                assert_eq!(d, want, "{height}x{width} at {y},{x}");
            }
        }
    }

    #[test]
    fn a_picture_without_ink_is_refused() {
        for level in [0.0, 128.0, 255.0] {
            let mut grey = Array2::from_elem((40, 40), level);
            // Faint noise stays below the contrast an ink stroke needs.
            grey[[20, 20]] = (level + 20.0_f32).min(255.0);
            grey[[21, 20]] = (level - 20.0_f32).max(0.0);
            let err = prepare(&grey, Preparation::Mnist).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
            assert!(err.to_string().contains("no ink found"), "{err}");
        }
    }

    #[test]
    fn values_out_of_range_and_empty_arrays_are_refused() {
        for grey in [
            Array2::from_elem((0, 5), 0.0_f32),
            Array2::from_elem((3, 3), 256.0_f32),
            Array2::from_elem((3, 3), f32::NAN),
            Array2::from_elem((3, 3), -1.0_f32),
        ] {
            for how in [Preparation::Naive, Preparation::Mnist] {
                let err = prepare(&grey, how).unwrap_err();
                assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
            }
        }
    }

    #[test]
    fn uniform_paper_keeps_its_exact_level_through_any_resize() {
        for (height, width) in [(50, 50), (37, 401), (13, 9), (1, 1), (299, 28)] {
            let paper = Array2::from_elem((height, width), 255.0_f32);
            let naive = prepare(&paper, Preparation::Naive).unwrap();
            assert!(naive.iter().all(|&v| v == 0.0), "{height}x{width}");
        }
    }

    #[test]
    fn naive_preparation_resizes_and_inverts() {
        let mut grey = Array2::from_elem((56, 56), 255.0_f32);
        grey.slice_mut(s![..28, ..]).fill(0.0);
        let input = prepare(&grey, Preparation::Naive).unwrap();
        assert_eq!(input.dim(), (FRAME, FRAME));
        assert!(input.slice(s![..14, ..]).iter().all(|&v| v == 1.0));
        assert!(input.slice(s![14.., ..]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn area_weights_sum_to_one_and_cover_the_input() {
        for (from, to) in [
            (1, 1),
            (7, 3),
            (100, 20),
            (28, 28),
            (3, 7),
            (1, 28),
            (401, 20),
        ] {
            let weights = axis_weights(from, to);
            assert_eq!(weights.len(), to);
            for (i, w) in weights.iter().enumerate() {
                let total: f64 = w.iter().map(|&(_, w)| w).sum();
                assert!((total - 1.0).abs() < 1e-12, "{from}->{to} at {i}: {total}");
                assert!(w.iter().all(|&(j, _)| j < from), "{from}->{to} at {i}");
            }
        }
        // Shrinking by a whole factor averages whole blocks.
        assert_eq!(axis_weights(4, 2)[1], vec![(2, 0.5), (3, 0.5)]);
    }

    #[test]
    fn saved_pngs_read_back_as_the_same_levels() {
        let dir = tempfile::tempdir().unwrap();
        let image = Array2::from_shape_fn((28, 28), |(y, x)| ((y * 28 + x) % 256) as f32 / 255.0);
        let path = dir.path().join("prepared.png");
        save_grey_png(&path, &image).unwrap();
        let grey = load_grey(&path).unwrap();
        assert!(max_difference(&grey.mapv(|v| v / 255.0), &image) < 1e-6);
    }

    #[test]
    fn saving_refuses_non_finite_values_and_names_unwritable_paths() {
        let err = save_grey_png("/tmp/x.png", &Array2::from_elem((2, 2), f32::NAN)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        let err = save_grey_png("/nonexistent/x.png", &Array2::zeros((2, 2))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.png"), "{err}");
    }

    #[test]
    fn bad_files_give_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = save(
            &DynamicImage::ImageLuma8(seven(100, 90)),
            dir.path(),
            "good.png",
        );
        let png = std::fs::read(&good).unwrap();
        let mut jpeg = Vec::new();
        DynamicImage::ImageLuma8(seven(100, 90))
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();

        let encoded = |format| {
            let mut bytes = Vec::new();
            DynamicImage::ImageLuma8(seven(100, 90))
                .to_rgb8()
                .write_to(&mut Cursor::new(&mut bytes), format)
                .unwrap();
            bytes
        };
        let (gif, bmp) = (encoded(ImageFormat::Gif), encoded(ImageFormat::Bmp));
        let mut corrupt = png.clone();
        for byte in corrupt.iter_mut().skip(40).step_by(7) {
            *byte ^= 0x5a;
        }
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty.png", Vec::new()),
            ("text.png", b"this is a text file, not a picture\n".to_vec()),
            ("text.txt", b"this is a text file, not a picture\n".to_vec()),
            ("truncated.png", png[..png.len() / 2].to_vec()),
            ("header-only.png", png[..20].to_vec()),
            ("corrupt.png", corrupt),
            ("truncated.jpg", jpeg[..jpeg.len() / 3].to_vec()),
            ("almost-whole.jpg", jpeg[..jpeg.len() - 2].to_vec()),
            ("jpeg-header-only.jpg", jpeg[..100].to_vec()),
            ("truncated.gif", gif[..gif.len() / 2].to_vec()),
            ("truncated.bmp", bmp[..bmp.len() / 2].to_vec()),
        ];
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let err = load_grey(&path).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{name}: {err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }

        let err = load_grey(dir.path().join("missing.png")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.png"), "{err}");
    }

    #[test]
    fn a_blank_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let blank = GrayImage::from_pixel(50, 40, Luma([250]));
        let path = save(&DynamicImage::ImageLuma8(blank), dir.path(), "blank.bmp");
        let err = prepare_file(&path, Preparation::Mnist).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("blank.bmp") && message.contains("no ink found"),
            "{message}"
        );
        assert!(!message.contains("transparent"), "{message}");
    }

    #[test]
    fn white_ink_on_a_transparent_canvas_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        // White strokes on a fully transparent canvas: over white paper,
        // nothing shows.
        let mut picture = image::RgbaImage::from_pixel(30, 40, image::Rgba([0, 0, 0, 0]));
        for y in 5..35 {
            for x in 12..16 {
                picture.put_pixel(x, y, image::Rgba([255, 255, 255, 255]));
            }
        }
        let path = save(&DynamicImage::ImageRgba8(picture), dir.path(), "white.png");
        let message = prepare_file(&path, Preparation::Mnist)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("white.png")
                && message.contains("no ink found")
                && message.contains("transparent pixels"),
            "{message}"
        );
    }

    fn encoded_seven(format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        DynamicImage::ImageLuma8(seven(40, 36))
            .to_rgba8()
            .write_to(&mut Cursor::new(&mut bytes), format)
            .or_else(|_| {
                // JPEG takes no alpha channel.
                bytes.clear();
                DynamicImage::ImageLuma8(seven(40, 36))
                    .to_rgb8()
                    .write_to(&mut Cursor::new(&mut bytes), format)
            })
            .unwrap();
        bytes
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn mutated_picture_files_never_panic(
            format in proptest::sample::select(vec![
                ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::Bmp,
            ]),
            edits in proptest::collection::vec((0usize..4000, proptest::num::u8::ANY), 0..8),
            cut in proptest::option::of(0usize..4000),
        ) {
            let mut bytes = encoded_seven(format);
            for (position, value) in edits {
                let at = position % bytes.len();
                bytes[at] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mutated.pic");
            std::fs::write(&path, &bytes).unwrap();
            match load_grey(&path) {
                Ok(grey) => {
                    proptest::prop_assert!(grey.iter().all(|v| (0.0..=255.0).contains(v)));
                    let _ = prepare(&grey, Preparation::Mnist);
                }
                Err(err) => {
                    proptest::prop_assert!(err.to_string().contains("mutated.pic"), "{}", err);
                }
            }
        }

        #[test]
        fn any_grey_picture_prepares_into_the_unit_range_or_is_refused(
            height in 1usize..40,
            width in 1usize..40,
            seed in proptest::num::u64::ANY,
            how in proptest::sample::select(vec![Preparation::Naive, Preparation::Mnist]),
        ) {
            let mut state = seed | 1;
            let grey = Array2::from_shape_fn((height, width), |_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly paper, some ink of any level.
                if state % 5 == 0 { (state >> 40) as f32 % 256.0 } else { 255.0 }
            });
            match prepare(&grey, how) {
                Ok(input) => {
                    proptest::prop_assert_eq!(input.dim(), (FRAME, FRAME));
                    proptest::prop_assert!(input.iter().all(|v| (0.0..=1.0).contains(v)));
                }
                Err(err) => {
                    proptest::prop_assert!(how == Preparation::Mnist, "{}", err);
                    proptest::prop_assert!(err.to_string().contains("no ink found"), "{}", err);
                }
            }
        }
    }

    #[test]
    fn every_format_loads() {
        let dir = tempfile::tempdir().unwrap();
        let picture = DynamicImage::ImageLuma8(seven(100, 90));
        for name in ["d.png", "d.bmp", "d.gif", "d.jpg"] {
            let path = save(&picture.to_rgb8().into(), dir.path(), name);
            let input = prepare_file(&path, Preparation::Mnist).unwrap();
            let want = prepare(
                &load_grey(dir.path().join("d.png")).unwrap(),
                Preparation::Mnist,
            );
            // JPEG is lossy; the others are exact.
            let tolerance = if name.ends_with("jpg") { 0.25 } else { 1e-6 };
            assert!(
                max_difference(&input, &want.unwrap()) <= tolerance,
                "{name}"
            );
        }
    }
}
