//! What nsl shows: reports on standard output ([`print_out`], through `outln!`), messages on
//! standard error ([`print_err`], through `errln!`), both without panicking on a closed pipe, and
//! progress indicators on standard error, hidden automatically when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A spinner with a message, for work of unknown length (reading or writing a file).
pub fn spinner(message: impl Into<String>) -> ProgressBar {
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
/// file, a pipe), a plain line with the same figures every 30 seconds and when a stage ends.
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
        let bar = std::io::stderr().is_terminal().then(|| {
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
                && (now.duration_since(plain.printed) >= Duration::from_secs(30) || (done == total && total > 0)) =>
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
