//! Training curves and confusion-matrix heat maps, as PNG or SVG files.
//!
//! Available with the `plots` feature (on by default). The plots are drawn
//! with [plotters] in DejaVu Sans, a font bundled in the crate, so they
//! render the same on a machine with no font installed. The format follows
//! the file's extension: `.png` or `.svg`. Files are written atomically.
//!
//! # Examples
//!
//! ```
//! use kerust::model::History;
//! use kerust::plots::plot_history;
//!
//! # fn main() -> kerust::Result<()> {
//! let mut history = History::new();
//! let losses = [(0.5, 0.4), (0.3, 0.35), (0.2, 0.33)];
//! for (epoch, (loss, val_loss)) in losses.into_iter().enumerate() {
//!     history.push_epoch(epoch, [("loss", loss), ("val_loss", val_loss)])?;
//! }
//! let dir = tempfile::tempdir().map_err(|e| kerust::Error::io("temporary folder", e))?;
//! plot_history(&history, "loss", dir.path().join("loss.svg"))?;
//! # Ok(())
//! # }
//! ```
//!
//! [plotters]: https://docs.rs/plotters

use std::error::Error as StdError;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use ndarray::Array2;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::io::write_atomic;
use crate::metrics::report::{check_label_count, check_square};
use crate::model::History;
use crate::{Error, Result};

/// The family name under which the bundled font is registered.
const FONT: &str = "sans-serif";

/// DejaVu Sans; its licence is in `assets/fonts/DejaVuSans-LICENSE.txt`.
const FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Size of a history plot, in pixels.
const HISTORY_SIZE: (u32, u32) = (900, 600);

/// Size of a confusion-matrix plot, in pixels.
const MATRIX_SIZE: (u32, u32) = (920, 820);

/// Height of the class names and axis title under the grid, in pixels.
const MATRIX_X_LABEL_AREA: u32 = 80;

/// The most epoch numbers written under the horizontal axis.
const MAX_EPOCH_LABELS: usize = 15;

/// The most values written beside the vertical axis of a history plot.
const MAX_VALUE_LABELS: usize = 8;

/// The most counts written beside the colour scale.
const MAX_SCALE_LABELS: usize = 7;

/// Font sizes of the title, the axis titles, the tick labels and the legend.
const TITLE_SIZE: f64 = 32.0;
const AXIS_TITLE_SIZE: f64 = 24.0;
const LABEL_SIZE: f64 = 19.0;
const LEGEND_SIZE: f64 = 20.0;

/// Training and validation line colours (the usual first two of a palette).
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALIDATION_COLOR: RGBColor = RGBColor(255, 127, 14);

/// The sequential "Blues" colour scheme of ColorBrewer, light to dark.
const BLUES: [(u8, u8, u8); 9] = [
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
];

type DrawResult<T = ()> = std::result::Result<T, Box<dyn StdError>>;

/// Draws `metric` and, when logged, `val_{metric}` against the epoch, shown
/// from 1 as Keras shows it, to a PNG or SVG file of 900 by 600 pixels.
/// Non-finite values are left out of the curves.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when the extension of `path` is neither `png`
/// nor `svg`, or when `metric` is not in the history or has no finite value;
/// [`Error::EmptyData`] when the history has no epoch; [`Error::Format`] when
/// drawing fails; [`Error::Io`] when the file cannot be written.
pub fn plot_history(history: &History, metric: &str, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let format = ImageFormat::of(path)?;
    let figure = HistoryFigure::new(history, metric)?;
    render(&figure, format, HISTORY_SIZE, path)
}

/// Draws a confusion matrix (rows true, columns predicted, as
/// [`confusion_matrix`](crate::metrics::confusion_matrix) returns it) as a
/// heat map with the count written in each cell and a colour scale, to a PNG
/// or SVG file.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when the extension of `path` is neither `png`
/// nor `svg`, or when `labels` does not hold one name per class;
/// [`Error::ShapeMismatch`] when the matrix is not square;
/// [`Error::EmptyData`] when it has no class; [`Error::Format`] when drawing
/// fails; [`Error::Io`] when the file cannot be written.
///
/// # Limitations
///
/// The picture is 920 by 820 pixels whatever the number of classes, and the
/// class names under the grid are written horizontally: with more than
/// about a dozen classes, names longer than a few characters overlap. Use
/// short labels, or [`confusion_matrix_csv`] for a table.
///
/// [`confusion_matrix_csv`]: crate::metrics::report::confusion_matrix_csv
pub fn plot_confusion_matrix(
    matrix: &Array2<u64>,
    labels: &[String],
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let format = ImageFormat::of(path)?;
    let classes = check_square(matrix)?;
    check_label_count("labels", labels.len(), classes)?;
    let figure = MatrixFigure { matrix, labels };
    render(&figure, format, MATRIX_SIZE, path)
}

/// The file formats a plot can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// The format named by the extension of `path`, in any case.
    fn of(path: &Path) -> Result<ImageFormat> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => Err(Error::invalid(
                "path",
                path.display(),
                "expected a file name ending in `.png` or `.svg`",
            )),
        }
    }
}

/// Something drawn on a drawing area of any backend.
trait Figure {
    fn draw<DB>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static;
}

/// Draws `figure` in memory, then writes the file in one piece.
fn render(figure: &impl Figure, format: ImageFormat, size: (u32, u32), path: &Path) -> Result<()> {
    register_bundled_font()?;
    let bytes = match format {
        ImageFormat::Png => render_png(figure, size),
        ImageFormat::Svg => render_svg(figure, size),
    };
    let bytes = bytes.map_err(|e| Error::format(path, format!("cannot draw the plot: {e}")))?;
    write_atomic(path, &bytes)
}

fn render_png(figure: &impl Figure, (width, height): (u32, u32)) -> DrawResult<Vec<u8>> {
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        figure.draw(&root)?;
        root.present()?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&pixels, width, height, ExtendedColorType::Rgb8)?;
    Ok(png)
}

fn render_svg(figure: &impl Figure, size: (u32, u32)) -> DrawResult<Vec<u8>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        figure.draw(&root)?;
        root.present()?;
    }
    Ok(svg.into_bytes())
}

/// Registers the bundled font once per process, so that text renders
/// without the system's fonts.
fn register_bundled_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if !registered {
        return Err(Error::format(
            "assets/fonts/DejaVuSans.ttf",
            "the bundled font cannot be parsed",
        ));
    }
    Ok(())
}

/// A metric's curves, ready to draw.
struct HistoryFigure<'a> {
    metric: &'a str,
    train: Vec<(f64, f64)>,
    validation: Option<Vec<(f64, f64)>>,
    epochs: (usize, usize),
    values: (f64, f64),
}

impl<'a> HistoryFigure<'a> {
    fn new(history: &History, metric: &'a str) -> Result<HistoryFigure<'a>> {
        if history.is_empty() {
            return Err(Error::EmptyData {
                what: "history".to_string(),
            });
        }
        let Some(train) = history.get(metric) else {
            let keys = history.keys().collect::<Vec<_>>().join(", ");
            return Err(Error::invalid(
                "metric",
                metric,
                format!("it is not in the history, which holds {keys}"),
            ));
        };
        let train = finite_points(history.epochs(), train);
        let validation = history
            .get(&format!("val_{metric}"))
            .map(|values| finite_points(history.epochs(), values));
        let all_values = train.iter().chain(validation.iter().flatten()).map(|p| p.1);
        let values = padded_range(all_values)
            .ok_or_else(|| Error::invalid("metric", metric, "it has no finite value to draw"))?;

        let shown = |epoch: usize| epoch + 1;
        let first = history.epochs().first().copied().map_or(1, shown);
        let last = history.epochs().last().copied().map_or(1, shown);
        Ok(HistoryFigure {
            metric,
            train,
            validation,
            epochs: (first, last),
            values,
        })
    }

    fn title(&self) -> String {
        match self.validation {
            Some(_) => format!("Training and validation {}", self.metric),
            None => format!("Training {}", self.metric),
        }
    }

    /// Legend in the corner the curves leave free: low for rising curves.
    fn legend_position(&self) -> SeriesLabelPosition {
        let rising = match (self.train.first(), self.train.last()) {
            (Some(first), Some(last)) => last.1 > first.1,
            _ => false,
        };
        if rising {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        }
    }
}

impl Figure for HistoryFigure<'_> {
    fn draw<DB>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (first, last) = self.epochs;
        let epoch_range = (first as f64 - 0.5)..(last as f64 + 0.5);
        let (low, high) = self.values;
        let (value_ticks, decimals) = value_ticks(low, high);
        let format_value = |value: &f64| format!("{value:.decimals$}");
        let widest = value_ticks.iter().map(|v| format_value(v).len()).max();

        let mut chart = ChartBuilder::on(root)
            .caption(self.title(), (FONT, TITLE_SIZE))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(label_area_width(widest.unwrap_or(1)))
            .build_cartesian_2d(
                TickedAxis::new(epoch_range, epoch_ticks(first, last)),
                TickedAxis::new(low..high, value_ticks),
            )?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc(self.metric)
            .axis_desc_style((FONT, AXIS_TITLE_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .x_label_formatter(&|epoch| format!("{epoch:.0}"))
            .y_label_formatter(&format_value)
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()?;

        draw_curve(&mut chart, &self.train, TRAIN_COLOR, "Training")?;
        if let Some(validation) = &self.validation {
            draw_curve(&mut chart, validation, VALIDATION_COLOR, "Validation")?;
        }
        chart
            .configure_series_labels()
            .position(self.legend_position())
            .label_font((FONT, LEGEND_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .margin(15)
            .draw()?;
        Ok(())
    }
}

fn draw_curve<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    color: RGBColor,
    label: &str,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let line = color.stroke_width(3);
    chart
        .draw_series(LineSeries::new(points.iter().copied(), line))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
    let dots = points
        .iter()
        .map(|&point| Circle::new(point, 4, color.filled()));
    chart.draw_series(dots)?;
    Ok(())
}

/// `(epoch shown from 1, value)` for the finite values.
fn finite_points(epochs: &[usize], values: &[f64]) -> Vec<(f64, f64)> {
    epochs
        .iter()
        .zip(values)
        .filter(|(_, value)| value.is_finite())
        .map(|(&epoch, &value)| ((epoch + 1) as f64, value))
        .collect()
}

/// The range of the values with a margin of 5 % on each side, or `None`
/// when there is no value.
fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (low, high) = values.fold(None, |range: Option<(f64, f64)>, value| match range {
        None => Some((value, value)),
        Some((low, high)) => Some((low.min(value), high.max(value))),
    })?;
    let margin = if high > low {
        (high - low) * 0.05
    } else if low != 0.0 {
        low.abs() * 0.05
    } else {
        0.05
    };
    Some((low - margin, high + margin))
}

/// Epoch numbers to label: every epoch, or every 2nd, 5th, 10th, 20th ...
/// so that at most [`MAX_EPOCH_LABELS`] are written.
fn epoch_ticks(first: usize, last: usize) -> Vec<f64> {
    let step = nice_step(last - first + 1, MAX_EPOCH_LABELS);
    (first..=last)
        .filter(|epoch| step == 1 || epoch % step == 0)
        .map(|epoch| epoch as f64)
        .collect()
}

/// Counts to label on the colour scale: 0 and multiples of a round step.
fn count_ticks(max_count: u64) -> Vec<f64> {
    let max_count = usize::try_from(max_count).unwrap_or(usize::MAX);
    let step = nice_step(max_count.saturating_add(1), MAX_SCALE_LABELS);
    (0..=max_count)
        .step_by(step)
        .map(|count| count as f64)
        .collect()
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... that leaves at most
/// `max_labels` labels for `count` consecutive integers.
fn nice_step(count: usize, max_labels: usize) -> usize {
    let mut scale = 1usize;
    loop {
        for base in [1usize, 2, 5] {
            let step = base.saturating_mul(scale);
            if count.div_ceil(step) <= max_labels {
                return step;
            }
        }
        scale = scale.saturating_mul(10);
    }
}

/// A linear axis labelled at chosen values only: epoch numbers, or the
/// centres of the cells of a matrix. The range may run downwards.
struct TickedAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl TickedAxis {
    fn new(range: Range<f64>, ticks: Vec<f64>) -> TickedAxis {
        TickedAxis { range, ticks }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Round values to label between `low` and `high`: the multiples of a step
/// of 1, 2 or 5 times a power of ten, at most [`MAX_VALUE_LABELS`] of them,
/// and the number of decimals that step needs.
fn value_ticks(low: f64, high: f64) -> (Vec<f64>, usize) {
    let span = high - low;
    let magnitude = 10f64.powf((span / MAX_VALUE_LABELS as f64).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|base| base * magnitude)
        .find(|step| span / step <= MAX_VALUE_LABELS as f64)
        .unwrap_or(10.0 * magnitude);
    let (first, last) = ((low / step).ceil() as i64, (high / step).floor() as i64);
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    // A step of 0.05 needs 2 decimals; the small bias absorbs rounding in log10.
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    (ticks, decimals)
}

/// A confusion matrix with its class labels, checked square and named.
struct MatrixFigure<'a> {
    matrix: &'a Array2<u64>,
    labels: &'a [String],
}

impl Figure for MatrixFigure<'_> {
    fn draw<DB>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let body = root.margin(15, 0, 0, 0);
        let body = body.titled("Confusion matrix", (FONT, TITLE_SIZE))?;
        let (width, _) = body.dim_in_pixel();
        let (grid, scale) = body.split_horizontally(width.saturating_sub(130));
        let max_count = self.matrix.iter().copied().max().unwrap_or(0);
        self.draw_grid(&grid, max_count)?;
        draw_color_scale(&scale, max_count)
    }
}

impl MatrixFigure<'_> {
    fn draw_grid<DB>(&self, area: &DrawingArea<DB, Shift>, max_count: u64) -> DrawResult
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
    {
        let classes = self.labels.len() as f64;
        let centres: Vec<f64> = (0..self.labels.len()).map(|i| i as f64 + 0.5).collect();
        // The vertical range runs downwards so that the first class is on top.
        let mut chart = ChartBuilder::on(area)
            .margin(20)
            .x_label_area_size(MATRIX_X_LABEL_AREA)
            .y_label_area_size(label_area_width(longest_label(self.labels)))
            .build_cartesian_2d(
                TickedAxis::new(0.0..classes, centres.clone()),
                TickedAxis::new(classes..0.0, centres),
            )?;
        let label_of = |position: &f64| {
            let index = position.floor() as usize;
            self.labels.get(index).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .set_all_tick_mark_size(6)
            .x_desc("Predicted")
            .y_desc("True")
            .axis_desc_style((FONT, AXIS_TITLE_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .x_label_formatter(&label_of)
            .y_label_formatter(&label_of)
            .draw()?;

        let cells = self.matrix.indexed_iter().map(|((row, column), &count)| {
            let (x, y) = (column as f64, row as f64);
            Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                cell_color(count, max_count).filled(),
            )
        });
        chart.draw_series(cells)?;

        let (cell_width, _) = chart.plotting_area().dim_in_pixel();
        let font_size = count_font_size(cell_width as f64 / classes, max_count);
        let counts = self.matrix.indexed_iter().map(|((row, column), &count)| {
            let style = TextStyle {
                font: (FONT, font_size).into(),
                color: text_color(count, max_count).to_backend_color(),
                pos: Pos::new(HPos::Center, VPos::Center),
            };
            let centre = (column as f64 + 0.5, row as f64 + 0.5);
            Text::new(count.to_string(), centre, style)
        });
        chart.draw_series(counts)?;
        Ok(())
    }
}

fn longest_label(labels: &[String]) -> usize {
    labels
        .iter()
        .map(|label| label.chars().count())
        .max()
        .unwrap_or(1)
}

/// Room for labels of up to `characters` characters left of a plot, with
/// the tick marks and the axis title.
fn label_area_width(characters: usize) -> u32 {
    // A character of DejaVu Sans at the label size is at most 11 pixels wide.
    let characters = u32::try_from(characters).unwrap_or(u32::MAX);
    characters
        .saturating_mul(11)
        .saturating_add(60)
        .clamp(80, 300)
}

/// A vertical colour bar from 0 (bottom) to `max_count` (top), with counts
/// on its right, its top and bottom lined up with the grid.
fn draw_color_scale<DB>(area: &DrawingArea<DB, Shift>, max_count: u64) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let top = max_count.max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_top(20)
        .margin_bottom(20 + MATRIX_X_LABEL_AREA)
        .margin_left(10)
        .margin_right(10)
        .set_label_area_size(LabelAreaPosition::Right, 80)
        .build_cartesian_2d(0.0..1.0, TickedAxis::new(0.0..top, count_ticks(max_count)))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .set_all_tick_mark_size(6)
        .label_style((FONT, LABEL_SIZE))
        .y_label_formatter(&|count| format!("{count:.0}"))
        .draw()?;

    let steps = 256;
    let bands = (0..steps).map(|step| {
        let low = top * step as f64 / steps as f64;
        let high = top * (step + 1) as f64 / steps as f64;
        let color = gradient((step as f64 + 0.5) / steps as f64);
        Rectangle::new([(0.0, low), (1.0, high)], color.filled())
    });
    chart.draw_series(bands)?;
    let border = Rectangle::new([(0.0, 0.0), (1.0, top)], BLACK.mix(0.4));
    chart.draw_series(std::iter::once(border))?;
    Ok(())
}

fn cell_color(count: u64, max_count: u64) -> RGBColor {
    if max_count == 0 {
        return gradient(0.0);
    }
    gradient(count as f64 / max_count as f64)
}

/// The "Blues" colour at `t` in [0, 1], interpolated between its stops.
fn gradient(t: f64) -> RGBColor {
    let position = t.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let index = (position.floor() as usize).min(BLUES.len() - 2);
    let fraction = position - index as f64;
    let (low, high) = (BLUES[index], BLUES[index + 1]);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * fraction).round() as u8;
    RGBColor(mix(low.0, high.0), mix(low.1, high.1), mix(low.2, high.2))
}

/// White on dark cells, black on light ones, grey for zero counts.
fn text_color(count: u64, max_count: u64) -> RGBColor {
    if count == 0 {
        return RGBColor(150, 150, 150);
    }
    let RGBColor(r, g, b) = cell_color(count, max_count);
    let luminance = (0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64) / 255.0;
    if luminance < 0.5 {
        WHITE
    } else {
        BLACK
    }
}

/// A font size at which the widest count fits in a cell `cell` pixels wide.
fn count_font_size(cell: f64, max_count: u64) -> f64 {
    let digits = max_count.max(1).to_string().len() as f64;
    // A digit of DejaVu Sans is about 0.64 em wide; keep a margin.
    let fitting = cell * 0.8 / (0.64 * digits);
    fitting.min(cell * 0.4).clamp(6.0, 24.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension_in_any_case() {
        assert_eq!(
            ImageFormat::of(Path::new("a/b.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::of(Path::new("b.svg")).unwrap(),
            ImageFormat::Svg
        );
        for path in ["b.jpg", "b", "png"] {
            assert!(ImageFormat::of(Path::new(path)).is_err(), "{path}");
        }
    }

    #[test]
    fn epoch_ticks_thin_out_for_long_runs() {
        assert_eq!(epoch_ticks(1, 15).len(), 15);
        let ticks = epoch_ticks(1, 100);
        assert!(ticks.len() <= MAX_EPOCH_LABELS, "{ticks:?}");
        assert_eq!(ticks[0], 10.0);
        assert_eq!(epoch_ticks(3, 3), [3.0]);
        assert_eq!(count_ticks(9), [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(count_ticks(1135), [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(count_ticks(0), [0.0]);
    }

    #[test]
    fn value_ticks_are_round_with_matching_decimals() {
        let (ticks, decimals) = value_ticks(0.853, 0.985);
        assert_eq!(decimals, 2);
        assert_eq!(ticks.len(), 7, "{ticks:?}");
        assert!((ticks[0] - 0.86).abs() < 1e-12 && (ticks[6] - 0.98).abs() < 1e-12);
        let (ticks, decimals) = value_ticks(0.00095, 0.00105);
        assert_eq!((ticks.len(), decimals), (5, 5), "{ticks:?}");
        let (ticks, decimals) = value_ticks(-3.0, 47.0);
        assert_eq!((ticks, decimals), (vec![0.0, 10.0, 20.0, 30.0, 40.0], 0));
    }

    #[test]
    fn padded_range_widens_a_flat_curve() {
        assert_eq!(padded_range([2.0, 2.0].into_iter()), Some((1.9, 2.1)));
        assert_eq!(padded_range([0.0].into_iter()), Some((-0.05, 0.05)));
        let (low, high) = padded_range([0.0, 1.0].into_iter()).unwrap();
        assert!((low + 0.05).abs() < 1e-12 && (high - 1.05).abs() < 1e-12);
        assert_eq!(padded_range(std::iter::empty()), None);
    }

    #[test]
    fn gradient_runs_from_the_first_to_the_last_stop() {
        assert_eq!(gradient(0.0), RGBColor(247, 251, 255));
        assert_eq!(gradient(1.0), RGBColor(8, 48, 107));
        assert_eq!(gradient(0.5), RGBColor(107, 174, 214));
    }

    #[test]
    fn text_is_white_on_dark_cells_and_black_on_light_ones() {
        assert_eq!(text_color(1000, 1000), WHITE);
        assert_eq!(text_color(40, 1000), BLACK);
    }
}
