//! What nsl shows: reports on standard output ([`print_out`], through `outln!`), messages on
//! standard error ([`print_err`], through `errln!`), both without panicking on a closed pipe, and
//! progress indicators on standard error, hidden automatically when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// `--quiet`: no progress bars, spinners or progress lines (warnings and reports still appear).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences progress (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress is silenced (`--quiet`).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Seconds between two plain progress lines (standard error not a terminal) within a stage.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// A spinner with a message, for work of unknown length (reading or writing a file).
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    if quiet() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs `work` under a spinner showing `message`, and clears the spinner afterwards.
pub fn with_spinner<T>(message: impl Into<String>, work: impl FnOnce() -> T) -> T {
    let bar = spinner(message);
    let out = work();
    bar.finish_and_clear();
    out
}

/// Whether standard output was closed by its reader (`nsl graph stats … | head`) or failed; from
/// then on the report lines are dropped.
static STDOUT_DONE: AtomicBool = AtomicBool::new(false);

/// The first error of writing standard output other than a closed pipe (a full disk under
/// `> report.txt`), reported by [`finish_stdout`].
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes a report line (`outln!`) or text (`out!`) to standard output without ever panicking
/// (`println!` panics when stdout is a closed pipe: `failed printing to stdout: Broken pipe`).
///
/// What is printed is a report of work whose results are files; so a reader that goes away (`|
/// head`, `| true`) does not stop the command: the rest of the report is dropped, the outputs are
/// still committed, and the exit status is 0, as ripgrep and Unix tools report a closed pipe.
/// Any other error (a full disk under `> report.txt`) drops the rest as well and makes the
/// command fail at the end ([`finish_stdout`]), after its outputs are committed. When an output
/// goes to standard output (`--output /dev/stdout`), the report goes to standard error instead.
pub fn print_out(args: fmt::Arguments<'_>, newline: bool) {
    if nsl::io::stdout_is_an_output() {
        // `--output /dev/stdout`: the report must not be mixed into the output.
        return write_stderr(args, newline);
    }
    if STDOUT_DONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = written {
        stdout_failed(e);
    }
}

/// Writes a message (`errln!`) to standard error, ignoring errors: a message that cannot be shown
/// (stderr a closed pipe) is no reason to stop, and `eprintln!` would panic.
pub fn print_err(args: fmt::Arguments<'_>) {
    write_stderr(args, true);
}

fn write_stderr(args: fmt::Arguments<'_>, newline: bool) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| if newline { err.write_all(b"\n") } else { Ok(()) });
}

fn stdout_failed(e: io::Error) {
    STDOUT_DONE.store(true, Ordering::Relaxed);
    if e.kind() != io::ErrorKind::BrokenPipe {
        let mut first = STDOUT_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert(e);
    }
}

/// Flushes standard output at the end of a command.
///
/// # Errors
/// The first error of writing standard output, unless it was a closed pipe.
pub fn finish_stdout() -> io::Result<()> {
    if !STDOUT_DONE.load(Ordering::Relaxed) {
        if let Err(e) = io::stdout().lock().flush() {
            stdout_failed(e);
        }
    }
    match STDOUT_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A progress bar for long work measured in units (the attacks of `nsl evaluate`): a bar with the
/// stage, the fraction and the ETA on a terminal; when standard error is not a terminal (a log
/// file, a pipe, a notebook), a plain line with the same figures every 10 seconds and when a stage
/// ends. Nothing with `--quiet`.
pub struct WorkBar {
    bar: Option<ProgressBar>,
    plain: std::sync::Mutex<PlainProgress>,
}

/// The plain-line state: the current stage, when it started and when the last line was printed.
struct PlainProgress {
    stage: String,
    started: std::time::Instant,
    printed: std::time::Instant,
    /// The stage's last line (at 100 %) is printed.
    ended: bool,
}

impl WorkBar {
    /// A bar on standard error (nothing is shown until the first update).
    pub fn new() -> WorkBar {
        use std::io::IsTerminal;
        let bar = (std::io::stderr().is_terminal() && !quiet()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% ({elapsed}, ETA {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        let now = std::time::Instant::now();
        WorkBar {
            bar,
            plain: std::sync::Mutex::new(PlainProgress {
                stage: String::new(),
                started: now,
                printed: now,
                ended: false,
            }),
        }
    }

    /// `done` of `total` units of `stage`.
    pub fn update(&self, stage: &str, done: u64, total: u64) {
        let Ok(mut plain) = self.plain.lock() else { return };
        let now = std::time::Instant::now();
        if plain.stage != stage {
            plain.stage = stage.to_string();
            plain.started = now;
            plain.printed = now;
            plain.ended = false;
            if let Some(bar) = &self.bar {
                bar.reset();
                bar.set_length(total);
                bar.set_message(stage.to_string());
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if !plain.ended
                && !quiet()
                && (now.duration_since(plain.printed) >= PLAIN_EVERY || (done == total && total > 0)) =>
            {
                plain.printed = now;
                plain.ended = done == total;
                let elapsed = now.duration_since(plain.started).as_secs_f64();
                let fraction = if total == 0 { 1.0 } else { done as f64 / total as f64 };
                let eta = if fraction > 0.0 { elapsed * (1.0 - fraction) / fraction } else { f64::NAN };
                errln!("{stage}: {:.1}% ({done}/{total}), {elapsed:.0} s elapsed, ETA {eta:.0} s", 100.0 * fraction);
            }
            None => {}
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The training bar of `nsl train`: on a terminal a bar with the epoch, the last epoch's loss and
/// accuracy (as Keras shows them) and the ETA; when standard error is not a terminal, a plain line
/// with the fraction, the ETA, the loss and the accuracy every 10 seconds within an epoch and when
/// an epoch ends (at most one every 2 seconds, and always the last). Nothing with `--quiet`.
pub struct TrainBar {
    bar: Option<ProgressBar>,
    /// Batches in all epochs, those done before this process (a resumed run), and done.
    total: u64,
    skipped: u64,
    done: u64,
    started: std::time::Instant,
    printed: std::time::Instant,
    /// The last completed epoch's loss and accuracy (NaN for tasks without), once known.
    last: Option<(usize, f64, f64)>,
    /// Epoch ends are reported by [`TrainBar::epoch_done`] (else by the last batch, without figures).
    epoch_figures: bool,
}

impl TrainBar {
    /// A bar for `epochs` epochs of `batches` batches, `done_epochs` of them done before;
    /// `epoch_figures`: [`TrainBar::epoch_done`] will be called at the end of every epoch.
    pub fn new(epochs: usize, batches: usize, done_epochs: usize, epoch_figures: bool) -> TrainBar {
        use std::io::IsTerminal;
        let (total, skipped) = ((epochs * batches) as u64, (done_epochs * batches) as u64);
        let bar = (std::io::stderr().is_terminal() && !quiet()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_position(skipped);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} epoch {msg} ({elapsed}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let now = std::time::Instant::now();
        TrainBar { bar, total, skipped, done: skipped, started: now, printed: now, last: None, epoch_figures }
    }

    /// The last completed epoch's figures, as shown.
    fn figures(&self) -> String {
        match self.last {
            Some((_, loss, accuracy)) if accuracy.is_finite() => format!(", loss {loss:.4}, accuracy {accuracy:.4}"),
            Some((_, loss, _)) => format!(", loss {loss:.4}"),
            None => String::new(),
        }
    }

    /// Batch `batch` of `batches` of epoch `epoch` of `epochs` is done.
    pub fn update(&mut self, epoch: usize, epochs: usize, batch: usize, batches: usize) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            let figures = self.figures().replace(", ", " · ");
            bar.set_message(format!("{epoch}/{epochs}{figures}"));
            bar.inc(1);
            return;
        }
        let now = std::time::Instant::now();
        let epoch_end = batch == batches;
        let due = match epoch_end {
            true => !self.epoch_figures && self.end_due(epoch == epochs),
            false => now.duration_since(self.printed) >= PLAIN_EVERY,
        };
        if due {
            let at = if epoch_end { "done".to_string() } else { format!("batch {batch}/{batches}") };
            let figures = match self.last {
                Some((e, ..)) => format!(" (epoch {e}{})", self.figures()),
                None => String::new(),
            };
            self.line(&format!("epoch {epoch}/{epochs} {at}"), &figures);
        }
    }

    /// Epoch `epoch` of `epochs` ended with training `loss` and `accuracy` (NaN: none).
    pub fn epoch_done(&mut self, epoch: usize, epochs: usize, loss: f64, accuracy: f64) {
        self.last = Some((epoch, loss, accuracy));
        if self.bar.is_none() && self.end_due(epoch == epochs) {
            let figures = self.figures();
            self.line(&format!("epoch {epoch}/{epochs} done"), &figures);
        }
    }

    /// Whether a plain line is due at the end of an epoch.
    fn end_due(&self, last_epoch: bool) -> bool {
        !quiet() && self.bar.is_none() && (last_epoch || self.printed.elapsed() >= Duration::from_secs(2))
    }

    /// Prints a plain line: `what`, the fraction, the times, then `figures`.
    fn line(&mut self, what: &str, figures: &str) {
        if quiet() {
            return;
        }
        let now = std::time::Instant::now();
        self.printed = now;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let fraction = self.done as f64 / self.total.max(1) as f64;
        let mine = (self.done - self.skipped) as f64 / (self.total - self.skipped).max(1) as f64;
        let eta = if mine > 0.0 { elapsed * (1.0 - mine) / mine } else { f64::NAN };
        errln!("{what}: {:.1}% of training, {elapsed:.0} s elapsed, ETA {eta:.0} s{figures}", 100.0 * fraction);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
