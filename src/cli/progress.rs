//! Progress indicators on standard error; hidden automatically when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
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
                eprintln!("{stage}: {:.1}% ({done}/{total}), {elapsed:.0} s elapsed, ETA {eta:.0} s", 100.0 * fraction);
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
