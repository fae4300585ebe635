//! The commit journal of an [`OutputSet`](super::OutputSet): what makes a set of files, possibly in
//! several directories, become visible as a whole even when the process is killed (`SIGKILL`, a
//! power cut) between two of its renames.
//!
//! # How
//! Once every staged file is written and `fsync`ed, and before the first rename, the set writes a
//! journal `.nsl-commit.<token>.journal` into every destination directory (atomically, each one
//! `fsync`ed with its directory). A journal lists every `(staged file, destination)` pair of the
//! set and every journal of the set. From then on the commit is decided: the renames run, then the
//! journals are removed.
//!
//! A process killed in between leaves a journal behind. Every reader of an output
//! ([`read_samples`](crate::data::read_samples), [`read_graph`](crate::graph::read_graph)) and every
//! new output set first calls [`finish_pending_commits`] for the file's directory, which rolls the
//! decided commit forward: it renames each staged file that still exists into place and removes
//! the journals and staging directories. A reader therefore sees the complete old set (the kill
//! came before the journal) or the complete new set, never a mix. Rolling forward is idempotent:
//! two processes may finish the same journal at the same time.
//!
//! Paths are stored as hex-encoded bytes, one pair per line, so that any file name round-trips.

use super::atomic::{parent_dir, sync_dir};
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: &str = "nsl-commit 1";
const PREFIX: &str = ".nsl-commit.";
const SUFFIX: &str = ".journal";

/// A decided commit: its renames and the journals that record them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Journal {
    /// `(staged file, destination)` pairs.
    pub renames: Vec<(PathBuf, PathBuf)>,
    /// Every journal file of the commit (one per destination directory).
    pub journals: Vec<PathBuf>,
}

impl Journal {
    /// The journal of `renames`, to be written as `.nsl-commit.<token>.journal` into every
    /// destination directory.
    pub(super) fn new(renames: Vec<(PathBuf, PathBuf)>, token: u64) -> Journal {
        let mut dirs: Vec<PathBuf> = renames.iter().map(|(_, dest)| parent_dir(dest)).collect();
        dirs.sort();
        dirs.dedup();
        let journals = dirs.into_iter().map(|dir| dir.join(format!("{PREFIX}{token:016x}{SUFFIX}"))).collect();
        Journal { renames, journals }
    }

    /// Writes every journal file durably.
    pub(super) fn write(&self) -> io::Result<()> {
        let text = self.encode();
        for path in &self.journals {
            super::write_bytes(path, text.as_bytes())
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Renames each staged file that still exists into place, making each rename durable.
    pub(super) fn apply(&self) -> io::Result<()> {
        for (staged, dest) in &self.renames {
            match std::fs::rename(staged, dest) {
                Ok(()) => {}
                // Renamed already (by an earlier attempt or a concurrent reader).
                Err(e) if e.kind() == io::ErrorKind::NotFound && !staged.exists() => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dest.display()))),
            }
            sync_dir(&parent_dir(dest)).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dest.display())))?;
        }
        Ok(())
    }

    /// Removes the journals (the commit is complete) and the emptied staging directories.
    pub(super) fn finish(&self) -> io::Result<()> {
        for path in &self.journals {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
                }
                _ => {}
            }
            sync_dir(&parent_dir(path)).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        for (staged, _) in &self.renames {
            // The hidden staging directory `.<name>.<random>.tmp/`, empty once its file moved.
            if let Some(dir) = staged.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Ok(())
    }

    fn encode(&self) -> String {
        let mut text = format!("{MAGIC}\n");
        for (staged, dest) in &self.renames {
            text.push_str(&format!("rename {} {}\n", hex(staged), hex(dest)));
        }
        for path in &self.journals {
            text.push_str(&format!("journal {}\n", hex(path)));
        }
        text
    }

    fn decode(text: &str) -> Option<Journal> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut renames, mut journals) = (Vec::new(), Vec::new());
        for line in lines {
            let mut words = line.split(' ');
            match (words.next()?, words.next(), words.next(), words.next()) {
                ("rename", Some(a), Some(b), None) => renames.push((unhex(a)?, unhex(b)?)),
                ("journal", Some(a), None, None) => journals.push(unhex(a)?),
                _ => return None,
            }
        }
        Some(Journal { renames, journals })
    }
}

/// Finishes the commits that a killed process decided but did not complete in the directory of
/// `path` (see the module docs), and returns how many it finished. A journal that cannot be
/// parsed (not written by nsl) is left alone.
///
/// # Errors
/// The error of listing the directory (other than it not existing), or of a rename, naming the path.
pub fn finish_pending_commits(path: &Path) -> io::Result<usize> {
    let dir = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => path.to_path_buf(),
        _ => parent_dir(path),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(0),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    };
    let mut finished = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let Some(journal) = Journal::decode(&text) else { continue };
        journal.apply()?;
        journal.finish()?;
        finished += 1;
    }
    Ok(finished)
}

fn hex(path: &Path) -> String {
    bytes(path).iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<PathBuf> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect();
    Some(from_bytes(bytes?))
}

#[cfg(unix)]
fn bytes(path: &Path) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec()
}

#[cfg(unix)]
fn from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
}

#[cfg(not(unix))]
fn bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_round_trips_any_path() {
        let journal = Journal::new(
            vec![
                (PathBuf::from("/a/.x.1.tmp/x"), PathBuf::from("/a/x")),
                (PathBuf::from("/b/.y z\n.2.tmp/y z\n"), PathBuf::from("/b/y z\n")),
            ],
            7,
        );
        assert_eq!(journal.journals.len(), 2, "one journal per destination directory");
        assert_eq!(Journal::decode(&journal.encode()), Some(journal));
        assert_eq!(Journal::decode("something else\n"), None);
    }
}
