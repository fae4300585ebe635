//! The registry of live temporary paths: every temporary file of an [`AtomicFile`](super::AtomicFile)
//! and every staging directory of an [`OutputSet`](super::OutputSet) or
//! [`StagedDir`](super::StagedDir) is listed here while it exists, so that a signal handler can
//! remove them all ([`remove_live_temp_files`]) before the process exits.
//!
//! # How
//! One `Mutex<BTreeMap<id, path>>`. A registration is a guard ([`LiveTemp`]) that removes its entry
//! when dropped. Renames that turn a temporary path into the output (the commits) run *under the
//! lock* ([`LiveTemp::commit_with`]), so a cleanup that runs concurrently sees either the temporary
//! path before the rename (and removes it: the old output stays) or nothing after it (the new
//! output stays): it never removes a committed output.
//!
//! The cleanup is not async-signal-safe (it takes a lock and allocates), so it must not run in a
//! signal handler: the `nsl` binary blocks `SIGINT`, `SIGTERM` and `SIGHUP` in every thread and
//! waits for them in a dedicated thread (`sigwait`), which calls [`remove_live_temp_files`] and
//! exits with status 128 + the signal number (130 for Ctrl-C, 143 for `SIGTERM`).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

static LIVE: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The registry, even if a thread panicked while holding it (the map stays consistent: every
/// operation on it is a single insert or remove).
fn live() -> MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A registered temporary path (a file or a directory); dropping it unregisters the path (it
/// does not remove it: its owner does).
#[derive(Debug)]
pub(crate) struct LiveTemp {
    id: u64,
}

impl LiveTemp {
    /// Registers `path` (which exists already).
    #[cfg(test)]
    pub(crate) fn register(path: &Path) -> LiveTemp {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        live().insert(id, path.to_path_buf());
        LiveTemp { id }
    }

    /// Creates a temporary file or directory at `path` with `create` and registers `path`, both
    /// under the registry's lock: a concurrent cleanup runs either before the creation (and the
    /// process exits before the creation can happen) or after the registration (and removes it).
    pub(crate) fn create<T>(path: &Path, create: impl FnOnce() -> io::Result<T>) -> io::Result<(T, LiveTemp)> {
        let mut map = live();
        let value = create()?;
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        map.insert(id, path.to_path_buf());
        Ok((value, LiveTemp { id }))
    }

    /// Runs `commit` (the rename that publishes the temporary path) under the registry's lock and
    /// unregisters the path in the same critical section.
    pub(crate) fn commit_with<T>(self, commit: impl FnOnce() -> T) -> T {
        let mut map = live();
        let result = commit();
        map.remove(&self.id);
        drop(map);
        std::mem::forget(self);
        result
    }
}

/// [`LiveTemp::commit_with`] for several paths at once: `commit` (every rename of a set of
/// outputs) runs under one hold of the registry's lock, so a concurrent cleanup runs before all of
/// the renames or after all of them, never between two.
pub(crate) fn commit_all<T>(temps: Vec<LiveTemp>, commit: impl FnOnce() -> T) -> T {
    let mut map = live();
    let result = commit();
    for temp in temps {
        map.remove(&temp.id);
        std::mem::forget(temp);
    }
    result
}

impl Drop for LiveTemp {
    fn drop(&mut self) {
        live().remove(&self.id);
    }
}

/// The temporary files and staging directories that exist right now (written by this process and
/// not yet committed or removed).
pub fn live_temp_files() -> Vec<PathBuf> {
    live().values().cloned().collect()
}

/// Removes every live temporary file and staging directory, and returns how many were removed.
/// A signal handler should call [`remove_live_temp_files_and_exit`] instead, which keeps the
/// registry locked until the exit so that no commit publishes an output after the cleanup.
pub fn remove_live_temp_files() -> usize {
    let map = live();
    remove_all(&map)
}

/// [`remove_live_temp_files`], then exits the process with `code` while still holding the
/// registry, so that no commit runs between the cleanup and the exit.
pub fn remove_live_temp_files_and_exit(code: i32) -> ! {
    let map = live();
    remove_all(&map);
    std::process::exit(code)
}

fn remove_all(map: &BTreeMap<u64, PathBuf>) -> usize {
    let mut removed = 0;
    for path in map.values() {
        let gone = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).is_ok(),
            Ok(_) => std::fs::remove_file(path).is_ok(),
            Err(_) => false,
        };
        removed += usize::from(gone);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_paths_are_listed_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.abc.tmp");
        std::fs::write(&path, "x").unwrap();
        let guard = LiveTemp::register(&path);
        assert!(live_temp_files().contains(&path));
        drop(guard);
        assert!(!live_temp_files().contains(&path));
        assert!(path.exists(), "unregistering does not remove");
    }

    #[test]
    fn committed_paths_are_no_longer_listed() {
        let path = PathBuf::from("/nonexistent/.y.abc.tmp");
        let guard = LiveTemp::register(&path);
        assert_eq!(guard.commit_with(|| 7), 7);
        assert!(!live_temp_files().contains(&path));
    }
}
