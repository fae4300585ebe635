//! [`AtomicFile`]: a file that replaces its destination only when it is complete.

use super::live::LiveTemp;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Buffer size of the writer: large enough that Parquet pages and CSV rows go out in few syscalls.
const BUFFER: usize = 1 << 16;

/// An output file written atomically: the content goes to a temporary sibling of the destination,
/// which [`commit`](AtomicFile::commit) renames over the destination once it is complete. Until
/// then an existing destination is untouched; an `AtomicFile` dropped without `commit` (an error
/// returned with `?`, a panic) removes its temporary file, so a failed write never leaves a
/// half-written or stray file behind.
///
/// # How
/// - The temporary file is `.<name>.<random>.tmp` in the destination's directory (so the rename
///   never crosses a file system), created with `O_CREAT | O_EXCL` under a name chosen at random
///   by [`tempfile`]: the name is unpredictable and an existing file or symlink there is never
///   opened or followed. It is listed in the registry of live temporary files while it exists, so
///   the `nsl` binary removes it on `SIGINT`/`SIGTERM` ([`super::remove_live_temp_files_and_exit`]).
/// - Its mode is `0o666` filtered by the process umask, applied by the kernel at creation
///   exactly as for [`File::create`] (so a model file is readable by others under the usual
///   umask `022`, not `0600`). No `umask()` call is made: it would change process-wide state that
///   other threads read when they create files. The mode of a destination that is replaced is
///   **not** kept: the new file always gets the umask mode, as if the destination were new.
/// - [`commit`](AtomicFile::commit) flushes the buffer, `fsync`s the file, renames it over the
///   destination and `fsync`s the directory, so after a crash the destination holds either the
///   old or the new content, never a mix or an empty file.
/// - A destination that is a symlink is replaced by the new file (the link is not followed),
///   except a name of one of the process's open descriptors: `/dev/stdout`, `/dev/stderr`,
///   `/dev/fd/N`, `/proc/self/fd/N` are written **through the descriptor** (a duplicate of it),
///   whatever it is open on — `nsl … --output /dev/stdout > out.txt` writes `out.txt` at the
///   descriptor's offset (and in append mode under `>>`), never replacing the `/dev/stdout` link.
/// - A destination that exists and is not a regular file — a character device such as
///   `/dev/null`, a FIFO — is written **in place** (opened for writing, not truncated, no
///   rename): replacing `/dev/null` with a regular file would be a disaster, and a FIFO's reader
///   waits on that very node. Such a write is not atomic. A destination that is a directory is an
///   error.
///
/// # Examples
/// ```
/// use nsl::io::AtomicFile;
/// use std::io::Write;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("out.txt");
/// let mut out = AtomicFile::create(&path)?;
/// writeln!(out, "hello")?;
/// assert!(!path.exists(), "nothing is visible before the commit");
/// out.commit()?;
/// assert_eq!(std::fs::read_to_string(&path)?, "hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    /// The destination.
    path: PathBuf,
    inner: Inner,
    /// The temporary file's entry in the registry of live temporary files (see
    /// [`super::remove_live_temp_files`]); dropped after `inner`, which removes the file.
    live: Option<LiveTemp>,
}

#[derive(Debug)]
enum Inner {
    /// A temporary sibling, renamed over the destination on commit and removed when dropped.
    Temp(BufWriter<tempfile::NamedTempFile>),
    /// A destination that is not a regular file, written in place.
    InPlace(BufWriter<File>),
}

impl AtomicFile {
    /// Starts writing `path`: creates the temporary file next to it (or opens a non-regular `path`
    /// in place; see the type's docs).
    ///
    /// # Errors
    /// The `io::Error` of creating the temporary file (e.g. `NotFound` when the directory does not
    /// exist) or of opening a non-regular destination; an error of kind `IsADirectory` naming
    /// `path` when it is a directory.
    pub fn create(path: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let path = path.as_ref();
        check_names_file(path)?;
        if let Some(file) = open_descriptor(path)? {
            return Ok(AtomicFile {
                path: path.to_path_buf(),
                inner: Inner::InPlace(BufWriter::with_capacity(BUFFER, file)),
                live: None,
            });
        }
        // `metadata` follows symlinks: a link to `/dev/null` is written in place, a link to a
        // regular file is replaced like a regular file.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("cannot write {}: it is a directory", path.display()),
                ));
            }
            Ok(meta) if !meta.is_file() => {
                let file = OpenOptions::new().write(true).open(path)?;
                return Ok(AtomicFile {
                    path: path.to_path_buf(),
                    inner: Inner::InPlace(BufWriter::with_capacity(BUFFER, file)),
                    live: None,
                });
            }
            _ => {}
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        let mut live = None;
        // tempfile picks the random name and retries on a clash; the file is created here, with
        // O_EXCL (`create_new`: an existing file or symlink is never opened) and mode 0o666
        // (tempfile's default is 0600), which the kernel narrows by the umask. It is registered for
        // the signal cleanup in the same step (see `super::live`).
        let temp = builder.make_in(parent_dir(path), |temp_path| {
            let (file, guard) = LiveTemp::create(temp_path, || {
                let mut options = OpenOptions::new();
                options.read(true).write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
                options.open(temp_path)
            })?;
            live = Some(guard);
            Ok(file)
        })?;
        Ok(AtomicFile { path: path.to_path_buf(), inner: Inner::Temp(BufWriter::with_capacity(BUFFER, temp)), live })
    }

    /// The destination given to [`create`](AtomicFile::create).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file the content goes to, for writers that insist on a path: the temporary file, or the
    /// destination itself when it is written in place. Write either through this path or through
    /// the `AtomicFile`, not both, and write *into* the file: a writer that replaces the path with
    /// a file of its own (as safetensors' `serialize_to_file` does) makes
    /// [`commit`](AtomicFile::commit) fail, since the `fsync` and the permissions would no longer
    /// apply to what is renamed.
    pub fn temp_path(&self) -> &Path {
        match &self.inner {
            Inner::Temp(w) => w.get_ref().path(),
            Inner::InPlace(_) => &self.path,
        }
    }

    /// The open file itself, for APIs that need a `File` (seeking, `set_len`); the buffered
    /// writer is flushed first so that both views agree.
    ///
    /// # Errors
    /// The `io::Error` of flushing the buffer.
    pub fn file(&mut self) -> io::Result<&mut File> {
        match &mut self.inner {
            Inner::Temp(w) => {
                w.flush()?;
                Ok(w.get_mut().as_file_mut())
            }
            Inner::InPlace(w) => {
                w.flush()?;
                Ok(w.get_mut())
            }
        }
    }

    /// Finishes the write: flushes the buffer, `fsync`s the file, renames it over the destination
    /// and `fsync`s the directory (for a non-regular destination: only flushes).
    ///
    /// # Errors
    /// The `io::Error` of any of these steps; the temporary file is removed and the destination
    /// left as it was (unless the error is the directory's `fsync`, after the rename).
    pub fn commit(self) -> io::Result<()> {
        match self.inner {
            Inner::InPlace(mut w) => w.flush(),
            Inner::Temp(w) => {
                // On error the `IntoInnerError` (and with it the temporary file) is dropped: removed.
                let temp = w.into_inner().map_err(io::IntoInnerError::into_error)?;
                check_same_file(&temp)?;
                temp.as_file().sync_all()?;
                match self.live {
                    // Under the registry's lock: a concurrent cleanup (SIGINT) removes the
                    // temporary file either before the rename or not at all.
                    Some(live) => live.commit_with(|| temp.persist(&self.path)).map_err(|e| e.error)?,
                    None => temp.persist(&self.path).map_err(|e| e.error)?,
                };
                sync_dir(&parent_dir(&self.path))
            }
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Temp(w) => w.write(buf),
            Inner::InPlace(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Temp(w) => w.write_all(buf),
            Inner::InPlace(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Temp(w) => w.flush(),
            Inner::InPlace(w) => w.flush(),
        }
    }
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
///
/// # Errors
/// The `io::Error` of creating, writing or committing the file; the caller names the path.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = AtomicFile::create(path)?;
    out.write_all(bytes)?;
    out.commit()
}

/// Fails when the temporary file's path no longer names the file this `AtomicFile` created (a
/// path-based writer replaced it).
#[cfg(unix)]
fn check_same_file(temp: &tempfile::NamedTempFile) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let ours = temp.as_file().metadata()?;
    let named = std::fs::symlink_metadata(temp.path())?;
    if (ours.dev(), ours.ino()) == (named.dev(), named.ino()) {
        Ok(())
    } else {
        Err(io::Error::other(format!("the temporary file {} was replaced while it was written", temp.path().display())))
    }
}

/// Without inode numbers the check is skipped.
#[cfg(not(unix))]
fn check_same_file(_temp: &tempfile::NamedTempFile) -> io::Result<()> {
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` made absolute without resolving its last component: its directory's canonical form
/// joined with its name (so that a symlink at `path` is still replaced, not followed), or
/// [`std::path::absolute`] when the directory cannot be resolved. Paths recorded for another
/// process (the commit journal) must not depend on the working directory.
pub(crate) fn anchored(path: &Path) -> PathBuf {
    match (std::fs::canonicalize(parent_dir(path)), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Fails with `InvalidInput` naming `path` when it cannot name a file to write: it ends in `/`
/// (`x.parquet/` names a directory: the final rename would fail with `ENOTDIR` after all the
/// work), or in `.`/`..`, or is empty.
pub(crate) fn check_names_file(path: &Path) -> io::Result<()> {
    let text = path.as_os_str().as_encoded_bytes();
    let ends_in_separator = text.last().is_some_and(|&b| b == b'/' || (cfg!(windows) && b == b'\\'));
    if ends_in_separator || path.file_name().is_none() {
        let hint = if ends_in_separator { " (drop the trailing `/`)" } else { "" };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names a directory, not a file{hint}", path.display()),
        ));
    }
    Ok(())
}

/// The process's own descriptor that `path` names (`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`,
/// through any chain of symlinks), duplicated; `None` for any other path.
///
/// # Errors
/// The error of duplicating the descriptor.
#[cfg(target_os = "linux")]
pub(crate) fn open_descriptor(path: &Path) -> io::Result<Option<File>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let Some(fd) = names_descriptor(path) else { return Ok(None) };
    // SAFETY: fcntl only reads the descriptor number; the new descriptor is owned by nothing else.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a descriptor just created for us and owned by nothing else.
    Ok(Some(File::from(unsafe { OwnedFd::from_raw_fd(dup) })))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn open_descriptor(_path: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

/// Checks that [`AtomicFile::create`] can write `path`, leaving nothing behind: it names a file,
/// is not a directory, and is a device, a FIFO or a descriptor (written in place) or lies in an
/// existing directory that this process may write (`faccessat(W_OK | X_OK, AT_EACCESS)`, which
/// also sees a read-only file system) and that takes a new file: an empty hidden temporary file is
/// created there and removed at once (a privileged process passes the access check everywhere,
/// yet `/proc` or a full quota refuses it). For commands that should fail before long work.
///
/// # Errors
/// `InvalidInput`, `IsADirectory`, `NotFound` or `PermissionDenied`, naming `path`, or the error
/// of the probe file, naming the directory.
pub fn check_writable(path: &Path) -> io::Result<()> {
    check_names_file(path)?;
    if names_descriptor(path).is_some() {
        return Ok(());
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("cannot write {}: it is a directory", path.display()),
            ))
        }
        Ok(meta) if !meta.is_file() => return Ok(()),
        _ => {}
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot write {}: directory {} does not exist", path.display(), dir.display()),
        ));
    }
    if !writable_dir(&dir) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("cannot write {}: directory {} is not writable", path.display(), dir.display()),
        ));
    }
    // The probe is removed when dropped; a failure to remove it is not the caller's concern.
    tempfile::Builder::new().prefix(".nsl-probe.").tempfile_in(&dir).map(drop).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {}: directory {} refuses a new file: {e}", path.display(), dir.display()),
        )
    })
}

/// Whether this process may create and remove entries in `dir`.
#[cfg(unix)]
pub(crate) fn writable_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: `c` is a valid NUL-terminated path; faccessat only reads it.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK | libc::X_OK, libc::AT_EACCESS) == 0 }
}

#[cfg(not(unix))]
pub(crate) fn writable_dir(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

/// Set once an output is written to standard output (`--output /dev/stdout`).
static STDOUT_IS_AN_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether an output of this process goes to standard output (`--output /dev/stdout`,
/// `/dev/fd/1`, `/proc/self/fd/1`): then a command's report must go elsewhere (the `nsl` binary
/// prints it on standard error), or it would be mixed into the output.
pub fn stdout_is_an_output() -> bool {
    STDOUT_IS_AN_OUTPUT.load(std::sync::atomic::Ordering::Relaxed)
}

/// The descriptor number when `path` resolves to `/proc/<this process>/fd/N` (`/dev/stdout` is a
/// symlink to `/proc/self/fd/1`, `/dev/fd` one to `/proc/self/fd`) and that descriptor is open.
#[cfg(target_os = "linux")]
pub(crate) fn names_descriptor(path: &Path) -> Option<i32> {
    let fd_dir = PathBuf::from(format!("/proc/{}/fd", std::process::id()));
    let mut path = path.to_path_buf();
    // Symlinks are followed one at a time: the last one (`/proc/self/fd/1` → `/tmp/out.txt`) must not be.
    for _ in 0..40 {
        if std::fs::canonicalize(parent_dir(&path)).is_ok_and(|dir| dir == fd_dir) {
            let fd = path.file_name()?.to_str()?.parse().ok()?;
            std::fs::symlink_metadata(&path).ok()?;
            // Only outputs are resolved here (AtomicFile, OutputSet).
            if fd == 1 {
                STDOUT_IS_AN_OUTPUT.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Some(fd);
        }
        let target = std::fs::read_link(&path).ok()?;
        path = parent_dir(&path).join(target);
    }
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn names_descriptor(_path: &Path) -> Option<i32> {
    None
}

/// Makes the rename durable: on POSIX a rename is recorded in the directory, which has its own
/// `fsync`. File systems that cannot `fsync` a directory (`EINVAL`) are accepted as they are.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported) => Ok(()),
        other => other,
    }
}

/// Directories cannot be opened as files here: the rename is as durable as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::io::test_names as names;

    #[test]
    fn commit_replaces_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let mut out = AtomicFile::create(&path).unwrap();
        out.write_all(b"new content").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old", "replaced before the commit");
        assert_eq!(names(dir.path()).len(), 2, "the temporary file sits next to the destination");
        out.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new content");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn drop_without_commit_keeps_the_old_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let failed: io::Result<()> = (|| {
            let mut out = AtomicFile::create(&path)?;
            out.write_all(&[b'x'; 3 * BUFFER])?;
            Err(io::Error::other("boom"))
        })();
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["out.txt"], "temporary file left behind");

        // A new destination that is never committed does not appear at all.
        let fresh = dir.path().join("fresh.txt");
        drop(AtomicFile::create(&fresh).unwrap());
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn panic_while_writing_leaves_the_old_file_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let caught = std::panic::catch_unwind(|| {
            let mut out = AtomicFile::create(&path).unwrap();
            out.write_all(b"partial").unwrap();
            out.flush().unwrap();
            panic!("writer failed");
        });
        assert!(caught.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["out.txt"], "temporary file left behind after a panic");
    }

    #[cfg(unix)]
    #[test]
    fn planted_symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim_dir = tempfile::tempdir().unwrap();
        let victim = victim_dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("out.txt");
        // The names the old writer used (`.NAME.PID.tmp`) and a few guesses at the new pattern.
        let planted = [
            format!(".out.txt.{}.tmp", std::process::id()),
            ".out.txt.tmp".to_owned(),
            ".out.txt.000000.tmp".to_owned(),
        ];
        for name in &planted {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_bytes(&path, b"output").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "a planted symlink was followed");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "output");
        for name in &planted {
            assert!(dir.path().join(name).symlink_metadata().unwrap().file_type().is_symlink());
        }
        // The random part really is random: two temporary files never share a name.
        let a = AtomicFile::create(&path).unwrap();
        let b = AtomicFile::create(&path).unwrap();
        assert_ne!(a.temp_path(), b.temp_path());
        assert!(a.temp_path().file_name().unwrap().to_string_lossy().starts_with(".out.txt."));
    }

    #[cfg(unix)]
    #[test]
    fn permissions_follow_the_umask_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // What the umask makes of a plain `File::create` (0o666 & !umask), read without `umask()`.
        let probe = dir.path().join("probe");
        File::create(&probe).unwrap();
        let expected = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
        let path = dir.path().join("out.bin");
        write_bytes(&path, b"1").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, expected);
        // An existing destination's own mode is not kept: the new file gets the umask mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_bytes(&path, b"2").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, expected);
        if expected & 0o044 != 0 {
            assert_ne!(expected, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_stays_a_character_device() {
        use std::os::unix::fs::FileTypeExt;
        let null = Path::new("/dev/null");
        if OpenOptions::new().write(true).open(null).is_err() {
            eprintln!("skipped: /dev/null is not writable here");
            return;
        }
        let mut out = AtomicFile::create(null).unwrap();
        assert_eq!(out.temp_path(), null);
        out.write_all(b"discarded").unwrap();
        out.commit().unwrap();
        write_bytes(null, b"discarded").unwrap();
        assert!(std::fs::metadata(null).unwrap().file_type().is_char_device());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_in_place() {
        use std::io::Read;
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        // The reader opens the FIFO too; each open blocks until the other side arrives.
        let reader_path = fifo.clone();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            File::open(reader_path).unwrap().read_to_string(&mut text).unwrap();
            text
        });
        write_bytes(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(names(dir.path()), ["pipe"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dev_stdout_names_descriptor_1_and_a_plain_path_none() {
        assert_eq!(names_descriptor(Path::new("/dev/stdout")), Some(1));
        assert_eq!(names_descriptor(Path::new("/dev/fd/2")), Some(2));
        assert_eq!(names_descriptor(Path::new("/proc/self/fd/0")), Some(0));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(names_descriptor(&dir.path().join("out.txt")), None);
        assert_eq!(names_descriptor(Path::new("/dev/null")), None);
    }

    #[test]
    fn check_writable_fails_early_without_writing_anything() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("new.tsv")).is_ok());
        let kind = |p: &Path| check_writable(p).unwrap_err().kind();
        assert_eq!(kind(&dir.path().join("no/such/out.tsv")), io::ErrorKind::NotFound);
        assert_eq!(kind(dir.path()), io::ErrorKind::IsADirectory);
        assert_eq!(kind(Path::new(&format!("{}/", dir.path().join("x").display()))), io::ErrorKind::InvalidInput);
        assert!(check_writable(Path::new("/dev/null")).is_ok());
        // /proc takes no new file, even from a process that passes every access check (root).
        #[cfg(target_os = "linux")]
        assert!(check_writable(Path::new("/proc/nsl-out.toml")).is_err());
        assert!(names(dir.path()).is_empty(), "a probe was left");
    }

    #[test]
    fn a_directory_destination_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        let err = write_bytes(&taken, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        assert!(err.to_string().contains(&taken.display().to_string()), "{err}");
        assert_eq!(names(dir.path()), ["taken"]);
        assert!(std::fs::read_dir(&taken).unwrap().next().is_none());
    }

    #[test]
    fn a_missing_directory_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_bytes(&dir.path().join("no/such/out.txt"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn writers_that_need_a_path_fill_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        let out = AtomicFile::create(&path).unwrap();
        assert_ne!(out.temp_path(), path);
        std::fs::write(out.temp_path(), b"by path").unwrap();
        assert!(!path.exists());
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"by path");
        assert_eq!(names(dir.path()), ["weights.bin"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_writer_that_replaces_the_temporary_file_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, "old").unwrap();
        let out = AtomicFile::create(&path).unwrap();
        let elsewhere = dir.path().join("other");
        std::fs::write(&elsewhere, "replacement").unwrap();
        std::fs::rename(&elsewhere, out.temp_path()).unwrap();
        let err = out.commit().unwrap_err();
        assert!(err.to_string().contains("was replaced"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    #[test]
    fn file_sees_what_was_written_through_the_buffer() {
        use std::io::{Read, Seek};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut out = AtomicFile::create(&path).unwrap();
        out.write_all(b"abc").unwrap();
        let file = out.file().unwrap();
        file.rewind().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "abc");
        out.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abc");
    }
}
