//! The progress display of `fit`, as Keras' `ProgbarLogger`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use super::{Callback, Logs, TrainParams};
use crate::model::{Sequential, Verbosity};
use crate::Result;

/// Shows training progress: a live bar per epoch on a terminal, or one line
/// per epoch, as Keras' `verbose=1` and `verbose=2`.
///
/// `fit` adds one from its `verbose` option, after the user's callbacks. The
/// epoch line reads
///
/// ```text
/// Epoch 3/15
/// 1875/1875 - 1.02s - 544us/step - loss: 0.0953 - accuracy: 0.9711 - val_loss: ...
/// ```
///
/// On an output that is not a terminal the bar becomes that line: a log
/// file gets no carriage returns, backspaces or colour escapes.
///
/// [`evaluate_with`](crate::model::Sequential::evaluate_with) and
/// [`predict_with`](crate::model::Sequential::predict_with) show their
/// batches the same way, from their own `verbose` option, as one pass
/// without an `Epoch` line: `313/313 - 0.21s - 671us/step - loss: 0.0839 -
/// accuracy: 0.9731` (`predict_with` shows no figures).
pub struct ProgbarLogger {
    mode: Verbosity,
    out: Box<dyn Write + Send>,
    params: Option<TrainParams>,
    epoch_start: Instant,
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
    #[cfg(feature = "progress")]
    last_draw: Instant,
}

impl ProgbarLogger {
    /// Writes to standard output. [`Verbosity::Auto`] and
    /// [`Verbosity::ProgressBar`] draw a bar only when standard output is a
    /// terminal.
    pub fn new(verbose: Verbosity) -> Self {
        let terminal = std::io::stdout().is_terminal();
        Self::with_writer(verbose, Box::new(std::io::stdout()), terminal)
    }

    /// Writes to `out`; `terminal` says whether it is a terminal that can
    /// show a live bar.
    pub fn with_writer(verbose: Verbosity, out: Box<dyn Write + Send>, terminal: bool) -> Self {
        let mode = match verbose {
            Verbosity::Auto | Verbosity::ProgressBar if terminal && cfg!(feature = "progress") => {
                Verbosity::ProgressBar
            }
            Verbosity::Silent => Verbosity::Silent,
            _ => Verbosity::EpochLines,
        };
        ProgbarLogger {
            mode,
            out,
            params: None,
            epoch_start: Instant::now(),
            #[cfg(feature = "progress")]
            bar: None,
            #[cfg(feature = "progress")]
            last_draw: Instant::now(),
        }
    }

    fn epochs(&self) -> usize {
        self.params.as_ref().map_or(0, |p| p.epochs)
    }

    fn steps(&self) -> usize {
        self.params.as_ref().map_or(0, |p| p.steps)
    }

    /// Starts a pass of `steps` batches: an epoch of `fit`, or a whole
    /// `evaluate_with` or `predict_with`, which show no `Epoch` line.
    pub(crate) fn begin_pass(&mut self, steps: usize) {
        self.epoch_start = Instant::now();
        #[cfg(feature = "progress")]
        if self.mode == Verbosity::ProgressBar {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(steps as u64),
                indicatif::ProgressDrawTarget::stdout(),
            );
            let style = indicatif::ProgressStyle::with_template(
                "{pos:>5}/{len:5} [{bar:30}] {elapsed_precise} (eta {eta}){msg}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            self.bar = Some(bar);
        }
        let _ = steps;
    }

    /// Batch `step` (counted from zero) of the pass is done; `logs` hold
    /// the figures so far.
    pub(crate) fn batch_end(&mut self, step: usize, logs: &Logs) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64 + 1);
            // Formatting the metrics costs more than a small step: redraw
            // them ten times a second at most.
            if self.last_draw.elapsed() > std::time::Duration::from_millis(100) {
                bar.set_message(format_logs(logs));
                self.last_draw = Instant::now();
            }
        }
        let _ = (step, logs);
    }

    /// Ends the pass of `steps` batches: clears the bar and writes the
    /// pass' line, `steps/steps - time - time/step - logs`.
    pub(crate) fn end_pass(&mut self, steps: usize, logs: &Logs) {
        #[cfg(feature = "progress")]
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode == Verbosity::Silent {
            return;
        }
        let seconds = self.epoch_start.elapsed().as_secs_f64();
        let per_step = format_duration(seconds / steps.max(1) as f64);
        let _ = writeln!(
            self.out,
            "{steps}/{steps} - {} - {per_step}/step{}",
            format_duration(seconds),
            format_logs(logs)
        );
        let _ = self.out.flush();
    }
}

/// ` - loss: 0.1234 - accuracy: 0.9876 ...`, as [`Logs`] displays them.
fn format_logs(logs: &Logs) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!(" - {logs}")
    }
}

fn format_duration(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2}s")
    } else if seconds >= 1e-3 {
        format!("{:.0}ms", seconds * 1e3)
    } else {
        format!("{:.0}us", seconds * 1e6)
    }
}

impl Callback for ProgbarLogger {
    fn set_params(&mut self, params: &TrainParams) {
        self.params = Some(params.clone());
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _model: &mut Sequential,
        _logs: &Logs,
    ) -> Result<()> {
        if self.mode != Verbosity::Silent {
            let _ = writeln!(self.out, "Epoch {}/{}", epoch + 1, self.epochs());
        }
        self.begin_pass(self.steps());
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        step: usize,
        _model: &mut Sequential,
        logs: &Logs,
    ) -> Result<()> {
        self.batch_end(step, logs);
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _model: &mut Sequential,
        logs: &mut Logs,
    ) -> Result<()> {
        self.end_pass(self.steps(), logs);
        Ok(())
    }
}
