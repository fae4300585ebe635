//! The `nsl` command: parses the command line and hands over to the subcommands in `cli/`.

mod cli;

use std::process::ExitCode;

/// `SIGPIPE` keeps the disposition Rust's runtime gives it before `main` (ignored), on purpose:
/// with the default disposition a closed pipe (`nsl train … | head`) would kill the process between
/// two writes of an output, skipping the cleanup and the commit. Ignored, a write to a closed pipe
/// fails with `EPIPE`, which the one printer of reports (`cli::progress::print_out`) turns into
/// "drop the rest of the report"; the command still commits its outputs and exits 0.
fn main() -> ExitCode {
    tune_malloc();
    remove_temp_files_on_signals();
    cli::main()
}

/// On `SIGINT` (Ctrl-C), `SIGTERM` and `SIGHUP`, removes the temporary files and staging
/// directories of outputs being written (`nsl::io::remove_live_temp_files_and_exit`) and exits with
/// 128 + the signal number (130, 143, 129), as a shell reports a process killed by the signal.
///
/// Removing files takes a lock and allocates, which a signal handler must not do; so the signals
/// are blocked here, before any other thread exists (threads inherit the mask), and one thread
/// waits for them with `sigwait` and cleans up as ordinary code. A signal the parent set to be
/// ignored (`nohup`) stays ignored: a blocked, ignored signal is discarded, never delivered.
/// During training a first `SIGINT` only sets the run's stop flag (`cli::interrupt`): the run
/// saves its last completed epoch for `--resume` and exits 130; a second one ends it at once.
#[cfg(unix)]
fn remove_temp_files_on_signals() {
    // SAFETY: plain libc calls on a local, initialized signal set; no other thread exists yet.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is a valid signal set and `signal` a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            // A first Ctrl-C during training stops it gracefully (a checkpoint, then exit 130).
            if signal == libc::SIGINT && cli::interrupt() {
                continue;
            }
            nsl::io::remove_live_temp_files_and_exit(128 + signal);
        }
    });
    if spawned.is_err() {
        // Without the waiting thread, let the signals act as usual (terminate the process).
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
fn remove_temp_files_on_signals() {}

/// Keeps freed memory in the process instead of returning it to the kernel after every training
/// step. glibc serves blocks above 128 KiB with `mmap` and trims the heap's free top, so the
/// per-batch buffers of a layer (a few hundred KiB) would be page-faulted in afresh on every step,
/// a visible share of a step in `perf`. Raising both thresholds costs at most a few tens of MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: `mallopt` only sets allocator parameters; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
