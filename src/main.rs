//! The `nsl` command: parses the command line and hands over to the subcommands in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_malloc();
    cli::main()
}

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
