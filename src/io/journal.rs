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
//! Paths are stored absolute (each directory's canonical form joined with the file's name), so
//! that a reader started in any working directory finishes the commit; and as hex-encoded bytes,
//! one pair per line, so that any file name round-trips.
//!
//! A journal that cannot be finished (a destination became a directory, a rename fails) never
//! stops the commands that do not touch its outputs: [`finish_pending_commits`] leaves it for the
//! readers (and new writers) of those outputs, which fail with a message naming the journal and
//! what to do.

use super::atomic::{anchored, check_names_file, parent_dir, sync_dir};
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
        // Absolute: the process that finishes the commit may run in another directory.
        let renames: Vec<(PathBuf, PathBuf)> =
            renames.into_iter().map(|(staged, dest)| (anchored(&staged), anchored(&dest))).collect();
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

    /// Checks, before any rename, that every staged file that still exists can be renamed into
    /// place: its destination names a file, is not a directory and has its directory. A commit that
    /// fails here changes nothing.
    ///
    /// # Errors
    /// `InvalidInput`, `IsADirectory` or `NotFound` naming the destination.
    pub(super) fn check(&self) -> io::Result<()> {
        for (staged, dest) in &self.renames {
            if std::fs::symlink_metadata(staged).is_err() {
                continue; // renamed already
            }
            check_names_file(dest)?;
            if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("cannot write {}: it is a directory", dest.display()),
                ));
            }
            if !parent_dir(dest).is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("cannot write {}: its directory does not exist", dest.display()),
                ));
            }
        }
        Ok(())
    }

    /// Whether `path` (absolute, see [`anchored`]) is one of the destinations.
    fn writes(&self, path: &Path) -> bool {
        self.renames.iter().any(|(_, dest)| dest == path)
    }

    /// Makes the relative paths of a journal written by an older nsl (which recorded them as given,
    /// relative to its working directory) absolute: that directory is found from the journal's own
    /// recorded path, which must end the path it was found at.
    fn anchor_relative(&mut self, found_at: &Path) {
        let Some(base) = self
            .journals
            .iter()
            .filter(|j| j.is_relative() && found_at.ends_with(j))
            .find_map(|j| found_at.ancestors().nth(j.components().count()))
            .map(Path::to_path_buf)
        else {
            return;
        };
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for (staged, dest) in &mut self.renames {
            fix(staged);
            fix(dest);
        }
        self.journals.iter_mut().for_each(fix);
    }

    /// Renames each staged file that still exists into place, making each rename durable; first
    /// [`check`](Journal::check)s that all of them can be.
    pub(super) fn apply(&self) -> io::Result<()> {
        self.check()?;
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
/// parsed (not written by nsl) is left alone; so is one that cannot be finished, unless `path` is
/// one of its outputs.
///
/// # Errors
/// The error of listing the directory (other than it not existing), naming it; or, when `path` is
/// an output of a commit that cannot be finished, an error naming the journal, the reason and how
/// to recover (the outputs of such a commit may be part old, part new).
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
    let target = anchored(path);
    let mut finished = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let Some(mut journal) = Journal::decode(&text) else { continue };
        let found_at = anchored(&entry.path());
        journal.anchor_relative(&found_at);
        match journal.apply().and_then(|()| journal.finish()) {
            Ok(()) => finished += 1,
            Err(e) if journal.writes(&target) => return Err(unfinishable(&found_at, &journal, &e)),
            // Not this reader's concern: the readers of its outputs report it.
            Err(_) => {}
        }
    }
    Ok(finished)
}

/// The error of a commit that cannot be finished, for a reader of one of its outputs.
fn unfinishable(journal_path: &Path, journal: &Journal, e: &io::Error) -> io::Error {
    let outputs: Vec<String> = journal.renames.iter().map(|(_, dest)| dest.display().to_string()).collect();
    io::Error::new(
        e.kind(),
        format!(
            "an interrupted nsl write of {} cannot be finished ({e}); these files may be part old, part new: \
             remove {} (and the hidden `.NAME.*.tmp` directories beside them) and write them again",
            outputs.join(", "),
            journal_path.display()
        ),
    )
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
    fn a_journal_records_absolute_paths_whatever_it_is_given() {
        // Relative to the test's working directory (the package root), without changing it.
        let dir = tempfile::tempdir_in(".").unwrap();
        let rel = Path::new(".").join(dir.path().file_name().unwrap());
        let journal = Journal::new(vec![(rel.join(".a.1.tmp").join("a"), rel.join("a"))], 3);
        let abs = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(journal.renames, [(abs.join(".a.1.tmp").join("a"), abs.join("a"))]);
        assert_eq!(journal.journals, [abs.join(".nsl-commit.0000000000000003.journal")]);
    }

    #[test]
    fn a_journal_of_relative_paths_written_by_an_older_nsl_is_anchored_where_it_was_found() {
        let mut journal = Journal {
            renames: vec![(PathBuf::from("sub/.a.1.tmp/a"), PathBuf::from("sub/a"))],
            journals: vec![PathBuf::from("sub/.nsl-commit.1.journal")],
        };
        journal.anchor_relative(Path::new("/work/d/sub/.nsl-commit.1.journal"));
        assert_eq!(journal.renames, [(PathBuf::from("/work/d/sub/.a.1.tmp/a"), PathBuf::from("/work/d/sub/a"))]);
        assert_eq!(journal.journals, [PathBuf::from("/work/d/sub/.nsl-commit.1.journal")]);
    }

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
