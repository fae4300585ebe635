//! Outputs that commit together: [`OutputSet`] (several files) and [`StagedDir`] (a directory),
//! and [`check_paths`], which refuses two outputs naming the same file or an output naming an input.

use super::atomic::{check_names_file, parent_dir, sync_dir, writable_dir};
use super::journal::Journal;
use super::live::{commit_all, LiveTemp};
use std::io;
use std::path::{Path, PathBuf};

/// Several output files that become visible together: each is written to a staging directory
/// next to its destination (`.<name>.<random>.tmp/<name>`), and [`commit`](OutputSet::commit)
/// renames them into place only once every one of them has been written. A failure before the
/// commit (a full disk on the second file, an error, a panic, `SIGINT`) leaves every destination
/// as it was and removes the staging directories.
///
/// # Guarantees
/// The renames are one after the other, so the set writes a commit journal first (see
/// [`finish_pending_commits`](super::finish_pending_commits)): a `SIGKILL` or a power cut between
/// two renames leaves the journal, and the next reader of any destination (or the next output set
/// there) finishes the renames before reading. `SIGINT`/`SIGTERM` wait for the renames to end.
/// A kill before the journal leaves the old files and hidden `.<name>.<random>.tmp/` staging
/// directories, which no reader takes for output.
///
/// A destination that exists and is not a regular file (`/dev/null`, a FIFO) is written in place
/// (see [`super::AtomicFile`]): [`add`](OutputSet::add) returns the destination itself.
///
/// # Examples
/// ```
/// use nsl::io::OutputSet;
/// # let dir = tempfile::tempdir()?;
/// let (a, b) = (dir.path().join("train.txt"), dir.path().join("test.txt"));
/// let mut outputs = OutputSet::new();
/// let staged_a = outputs.add(&a)?;
/// let staged_b = outputs.add(&b)?;
/// std::fs::write(&staged_a, "train")?;
/// std::fs::write(&staged_b, "test")?;
/// assert!(!a.exists() && !b.exists(), "nothing is visible before the commit");
/// outputs.commit()?;
/// assert_eq!(std::fs::read_to_string(&b)?, "test");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct OutputSet {
    outputs: Vec<Staged>,
}

#[derive(Debug)]
struct Staged {
    /// The destination.
    dest: PathBuf,
    /// Where the writer writes: `dir/<name>`, or `dest` itself when it is written in place.
    staged: PathBuf,
    /// The staging directory (removed when dropped) and its registration; `None` in place.
    dir: Option<(HiddenDir, LiveTemp)>,
}

impl OutputSet {
    /// An empty set.
    pub fn new() -> OutputSet {
        OutputSet::default()
    }

    /// Adds the destination `dest` and returns the path to write its content to (write it
    /// completely there, atomically or not, before [`commit`](OutputSet::commit)).
    ///
    /// # Errors
    /// `InvalidInput` when `dest` was already added (compared after resolving symlinks and `..`;
    /// a device or FIFO may be added twice),
    /// `IsADirectory` when it is a directory, or the error of creating the staging directory
    /// (e.g. `NotFound` when the destination's directory does not exist). Each names `dest`.
    pub fn add(&mut self, dest: impl AsRef<Path>) -> io::Result<PathBuf> {
        let dest = dest.as_ref();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", dest.display()));
        check_names_file(dest)?;
        // A set that a killed process decided to commit here completes before a new one starts.
        super::finish_pending_commits(dest)?;
        let key = canonical(dest);
        // A device, a FIFO or an open descriptor (`/dev/stdout`) is written in place.
        let special = std::fs::metadata(dest).is_ok_and(|m| !m.is_file() && !m.is_dir())
            || super::atomic::names_descriptor(dest).is_some();
        if !special && self.outputs.iter().any(|o| canonical(&o.dest) == key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is named as two outputs", dest.display()),
            ));
        }
        match std::fs::metadata(dest) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("cannot write {}: it is a directory", dest.display()),
                ));
            }
            _ if special => {
                self.outputs.push(Staged { dest: dest.to_path_buf(), staged: dest.to_path_buf(), dir: None });
                return Ok(dest.to_path_buf());
            }
            _ => {}
        }
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{} does not name a file", dest.display()))
        })?;
        let (dir, live) = staging_dir(dest).map_err(named)?;
        let staged = dir.path.join(name);
        self.outputs.push(Staged { dest: dest.to_path_buf(), staged: staged.clone(), dir: Some((dir, live)) });
        Ok(staged)
    }

    /// Makes every output visible: checks that each staged file was written, writes the set's
    /// commit journal (see [`finish_pending_commits`](super::finish_pending_commits)), renames the
    /// files into place in the order they were added, then removes the journal and the staging
    /// directories.
    ///
    /// # Errors
    /// `NotFound` naming the output that was never written, or the error of writing the journal
    /// (then no destination changes); the error of a rename naming its destination (then the
    /// journal and the remaining staged files are kept, and the next reader of any of the
    /// destinations completes the commit).
    pub fn commit(self) -> io::Result<()> {
        for output in &self.outputs {
            if output.dir.is_some() && !output.staged.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: the output was not written", output.dest.display()),
                ));
            }
        }
        let (mut renames, mut dirs, mut temps) = (Vec::new(), Vec::new(), Vec::new());
        for output in self.outputs {
            if let Some((dir, live)) = output.dir {
                renames.push((output.staged, output.dest));
                dirs.push(dir);
                temps.push(live);
            }
        }
        if renames.is_empty() {
            return Ok(());
        }
        let journal = Journal::new(renames, rand::random());
        // Every rename is checked before the journal decides the commit: a commit that cannot
        // complete must leave nothing (no journal that every later reader would trip on).
        if let Err(e) = journal.check().and_then(|()| journal.write()) {
            let _ = journal.finish();
            return Err(e);
        }
        // Decided: from here on a kill is rolled forward by the next reader, so the staged files
        // stay until they are renamed.
        for dir in &mut dirs {
            dir.keep = true;
        }
        commit_all(temps, || journal.apply()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e} (the commit is recorded: the next nsl command that reads these outputs completes it)"),
            )
        })?;
        journal.finish()
    }
}

/// A directory written as a whole: the content goes to a staging sibling
/// (`.<name>.<random>.tmp/`), and [`commit`](StagedDir::commit) swaps it with the destination in
/// one atomic step (Linux `renameat2(RENAME_EXCHANGE)`), then removes the old content. Until then
/// an existing destination is untouched; a `StagedDir` dropped without `commit` (an error, a panic,
/// `SIGINT`) removes the staging directory.
///
/// On file systems without `RENAME_EXCHANGE` (and off Linux), the old directory is first renamed
/// aside (`.<name>.<random>.old`) and the new one renamed into place: a `SIGKILL` between these
/// two renames leaves no directory at the destination, the old one under the `.old` name and the
/// new one under the `.tmp` name (both hidden, both complete).
///
/// An existing destination is replaced only if this process can remove it whole: every directory
/// in it writable and searchable (checked by [`create`](StagedDir::create) and again before the
/// swap). A destination that cannot be removed (a read-only `run/`) is an error naming it, and
/// nothing changes — instead of the new content in place and the old one left under a hidden name.
///
/// The staging directory is created with mode `0o777` narrowed by the umask, like `mkdir`.
#[derive(Debug)]
pub struct StagedDir {
    dest: PathBuf,
    dir: HiddenDir,
    live: LiveTemp,
}

impl StagedDir {
    /// Creates the staging directory next to `dest`.
    ///
    /// # Errors
    /// `NotADirectory` naming `dest` when it exists and is not a directory, `PermissionDenied`
    /// when it cannot be replaced (see [`check_replaceable`]), or the error of creating the staging
    /// directory (e.g. `NotFound` when `dest`'s parent does not exist).
    pub fn create(dest: impl AsRef<Path>) -> io::Result<StagedDir> {
        let dest = dest.as_ref();
        check_replaceable(dest)?;
        let (dir, live) = staging_dir(dest)
            .map_err(|e| io::Error::new(e.kind(), format!("creating a directory next to {}: {e}", dest.display())))?;
        Ok(StagedDir { dest: dest.to_path_buf(), dir, live })
    }

    /// The staging directory: write the content here.
    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// Replaces the destination with the staging directory (see the type's docs).
    ///
    /// # Errors
    /// The error of a rename or of removing the old content, naming the path; the destination
    /// holds the old or the new directory then.
    pub fn commit(self) -> io::Result<()> {
        let StagedDir { dest, mut dir, live } = self;
        dir.keep = true;
        let staged = dir.path.clone();
        let named = |path: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        // Checked again: the old directory must go whole once the new one is in place.
        if let Err(e) = check_replaceable(&dest) {
            drop(live);
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e);
        }
        let swapped = live.commit_with(|| -> io::Result<bool> {
            if !dest.exists() {
                std::fs::rename(&staged, &dest).map_err(|e| named(&dest, e))?;
                return Ok(false);
            }
            match exchange(&staged, &dest) {
                Ok(()) => Ok(true),
                Err(_) => {
                    let aside = sibling(&dest, "old");
                    std::fs::rename(&dest, &aside).map_err(|e| named(&dest, e))?;
                    std::fs::rename(&staged, &dest).map_err(|e| named(&dest, e))?;
                    std::fs::rename(&aside, &staged).map_err(|e| named(&aside, e))?;
                    Ok(true)
                }
            }
        });
        let swapped = match swapped {
            Ok(swapped) => swapped,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(e);
            }
        };
        sync_dir(&parent_dir(&dest)).map_err(|e| named(&dest, e))?;
        if swapped {
            // The staging name now holds the old directory.
            std::fs::remove_dir_all(&staged).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} is written, but its old content could not be removed from {}: {e}",
                        dest.display(),
                        staged.display()
                    ),
                )
            })?;
        }
        Ok(())
    }
}

/// Checks that the directory `dest` can be replaced as a whole by a [`StagedDir`]: it does not
/// exist, or it is a directory (a symlink counts as a file: the link itself is replaced) whose
/// every directory, `dest` included, this process may write and search (`faccessat(W_OK | X_OK,
/// AT_EACCESS)`), so that its old content can be removed once the new content is in place.
///
/// # Errors
/// `NotADirectory` when `dest` exists and is not a directory, `PermissionDenied` naming `dest`
/// and the directory that is not writable, or the error of listing one.
pub fn check_replaceable(dest: &Path) -> io::Result<()> {
    match std::fs::metadata(dest) {
        Err(_) => return Ok(()),
        Ok(meta) if !meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} exists and is not a directory", dest.display()),
            ));
        }
        Ok(_) => {}
    }
    if std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) {
        return Ok(());
    }
    let mut pending = vec![dest.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listed = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot replace {}: {}: {e}", dest.display(), dir.display()))
        };
        if !writable_dir(&dir) {
            let which = if dir == dest { String::new() } else { format!(" ({} in it is not)", dir.display()) };
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "cannot replace {}: it must be writable to be replaced as a whole{which}; nothing was changed",
                    dest.display()
                ),
            ));
        }
        for entry in std::fs::read_dir(&dir).map_err(listed)? {
            let entry = entry.map_err(listed)?;
            if entry.file_type().map_err(listed)?.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}

/// A hidden staging directory, removed (with its content) when dropped unless `keep`.
#[derive(Debug)]
struct HiddenDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for HiddenDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Creates and registers `.<name>.<random>.tmp/` next to `dest`, mode 0o777 narrowed by the umask
/// (as `mkdir`), with a random name that is retried on a clash.
fn staging_dir(dest: &Path) -> io::Result<(HiddenDir, LiveTemp)> {
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{} does not name a file", dest.display()))
    })?;
    let parent = parent_dir(dest);
    let mut last = None;
    for _ in 0..64 {
        let path = parent.join(format!(".{}.{:012x}.tmp", name.to_string_lossy(), rand::random::<u64>() >> 16));
        let created = LiveTemp::create(&path, || {
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o777);
            builder.create(&path)
        });
        match created {
            Ok(((), live)) => return Ok((HiddenDir { path, keep: false }, live)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// An unused name `.<name>.<random>.<suffix>` next to `dest`.
fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    parent_dir(dest).join(format!(".{name}.{:08x}{:08x}.{suffix}", std::process::id(), nanos))
}

/// Swaps `a` and `b` atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let b = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths; renameat2 reads them and touches no memory of ours.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// `path` with symlinks and `..` resolved; for a path that does not exist yet, its parent's
/// canonical form joined with its name (and `path` itself if even the parent cannot be resolved).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    match (std::fs::canonicalize(parent_dir(path)), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Two files of one command that must not be the same, named by their flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{first} and {second} name the same file {}", path.display())]
pub struct PathConflict {
    /// The first flag (or description), e.g. `--out-train`.
    pub first: String,
    /// The second flag, e.g. `--out-test` or the input `--samples`.
    pub second: String,
    /// The path both name.
    pub path: PathBuf,
}

/// Checks that no two `outputs` name the same file and that no output names one of `inputs`
/// (after resolving symlinks and `..`; hard links are compared by inode). Each entry is a flag name
/// and its path. Outputs that exist and are not regular files (`/dev/null`) may repeat.
///
/// # Errors
/// The first [`PathConflict`] found.
pub fn check_paths(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> Result<(), PathConflict> {
    let special = |p: &Path| std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir());
    let same = |a: &Path, b: &Path| canonical(a) == canonical(b) || same_inode(a, b);
    for (i, &(flag, out)) in outputs.iter().enumerate() {
        if special(out) {
            continue;
        }
        for &(other, path) in outputs[..i].iter().chain(inputs) {
            if same(out, path) {
                return Err(PathConflict {
                    first: other.to_string(),
                    second: flag.to_string(),
                    path: out.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_a: &Path, _b: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::io::test_names as names;

    #[test]
    fn an_output_set_that_is_not_committed_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "old a").unwrap();
        let mut set = OutputSet::new();
        std::fs::write(set.add(&a).unwrap(), "new a").unwrap();
        let _b = set.add(&b).unwrap();
        let err = set.commit().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(names(dir.path()), ["a"]);
    }

    #[test]
    fn a_kill_between_two_renames_is_rolled_forward_by_the_next_reader() {
        // The state a SIGKILL leaves after the journal and the first of two renames, in two directories.
        let dir = tempfile::tempdir().unwrap();
        let (da, db) = (dir.path().join("da"), dir.path().join("db"));
        std::fs::create_dir_all(&da).unwrap();
        std::fs::create_dir_all(&db).unwrap();
        let (a, b) = (da.join("a"), db.join("b"));
        std::fs::write(&a, "old a").unwrap();
        std::fs::write(&b, "old b").unwrap();
        let mut set = OutputSet::new();
        let (sa, sb) = (set.add(&a).unwrap(), set.add(&b).unwrap());
        std::fs::write(&sa, "new a").unwrap();
        std::fs::write(&sb, "new b").unwrap();
        let journal = Journal::new(vec![(sa.clone(), a.clone()), (sb.clone(), b.clone())], 1);
        journal.write().unwrap();
        std::fs::rename(&sa, &a).unwrap();
        std::mem::forget(set); // killed: nothing is cleaned up
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old b", "the mix a kill leaves on disk");
        // A reader of `b` (the directory without the renamed file) completes the set.
        let read = crate::io::finish_pending_commits(&b).unwrap();
        assert_eq!(read, 1);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!(names(&da), ["a"], "journal and staging directory removed");
        assert_eq!(names(&db), ["b"]);
        assert_eq!(crate::io::finish_pending_commits(&a).unwrap(), 0, "nothing left to finish");
    }

    #[test]
    fn a_kill_before_the_journal_leaves_the_old_set() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "old a").unwrap();
        let mut set = OutputSet::new();
        std::fs::write(set.add(&a).unwrap(), "new a").unwrap();
        std::fs::write(set.add(&b).unwrap(), "new b").unwrap();
        std::mem::forget(set);
        assert_eq!(crate::io::finish_pending_commits(&a).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert!(!b.exists());
    }

    #[test]
    fn a_committed_set_leaves_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let (a, b) = (dir.path().join("a"), sub.join("b"));
        let mut set = OutputSet::new();
        std::fs::write(set.add(&a).unwrap(), "a").unwrap();
        std::fs::write(set.add(&b).unwrap(), "b").unwrap();
        set.commit().unwrap();
        assert_eq!(names(dir.path()), ["a", "sub"]);
        assert_eq!(names(&sub), ["b"]);
    }

    #[test]
    fn an_output_set_refuses_the_same_destination_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = OutputSet::new();
        set.add(dir.path().join("a")).unwrap();
        let err = set.add(dir.path().join(".").join("a")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_staged_dir_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("old.txt"), "old").unwrap();
        let staged = StagedDir::create(&run).unwrap();
        std::fs::write(staged.path().join("new.txt"), "new").unwrap();
        assert_eq!(names(&run), ["old.txt"]);
        staged.commit().unwrap();
        assert_eq!(names(&run), ["new.txt"]);
        assert_eq!(names(dir.path()), ["run"]);
        // A new destination, and a dropped stage.
        let fresh = dir.path().join("fresh");
        StagedDir::create(&fresh).unwrap().commit().unwrap();
        assert!(fresh.is_dir());
        drop(StagedDir::create(dir.path().join("never")).unwrap());
        assert_eq!(names(dir.path()), ["fresh", "run"]);
    }

    #[test]
    fn trailing_slash_destinations_are_refused_before_anything_is_staged() {
        let dir = tempfile::tempdir().unwrap();
        let slashed = PathBuf::from(format!("{}/", dir.path().join("x.parquet").display()));
        let err = OutputSet::new().add(&slashed).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("names a directory"), "{err}");
        assert_eq!(crate::io::AtomicFile::create(&slashed).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_set_whose_rename_cannot_succeed_leaves_no_journal_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "old a").unwrap();
        let mut set = OutputSet::new();
        std::fs::write(set.add(&a).unwrap(), "new a").unwrap();
        std::fs::write(set.add(&b).unwrap(), "new b").unwrap();
        std::fs::create_dir(&b).unwrap(); // `b` became a directory meanwhile
        let err = set.commit().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory, "{err}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(names(dir.path()), ["a", "b"], "journal or staging left behind");
    }

    #[test]
    fn check_replaceable_accepts_new_and_writable_directories_and_refuses_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_replaceable(&dir.path().join("new")).is_ok());
        std::fs::create_dir_all(dir.path().join("run/sub")).unwrap();
        assert!(check_replaceable(&dir.path().join("run")).is_ok());
        std::fs::write(dir.path().join("f"), "x").unwrap();
        assert_eq!(check_replaceable(&dir.path().join("f")).unwrap_err().kind(), io::ErrorKind::NotADirectory);
    }

    #[test]
    fn a_staged_dir_over_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(StagedDir::create(&file).unwrap_err().kind(), io::ErrorKind::NotADirectory);
    }

    #[test]
    fn check_paths_finds_outputs_that_name_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.parquet");
        std::fs::write(&input, "x").unwrap();
        let alias = dir.path().join("sub").join("..").join("in.parquet");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = check_paths(&[("--out", &alias)], &[("--samples", &input)]).unwrap_err();
        assert_eq!((err.first.as_str(), err.second.as_str()), ("--samples", "--out"));
        let other = dir.path().join("out.parquet");
        assert!(check_paths(&[("--a", &other), ("--b", &input)], &[]).is_ok());
        assert!(check_paths(&[("--a", &other), ("--b", &other)], &[]).is_err());
        let null = Path::new("/dev/null");
        assert!(check_paths(&[("--a", null), ("--b", null)], &[]).is_ok());
    }
}
