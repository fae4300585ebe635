//! Regression tests of issue 22 ("What a careful user still hits"), the outputs and flags: one test
//! per bullet, named after it, run through the `nsl` binary as a user would. The guarantees are in
//! `docs/reliability.md` ("Issue 22: outputs").

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{fails, fails_with, names, ok, s};

/// A directory with `samples.parquet` (12 labeled samples of 2 features, classes `x` and `y`) and
/// `graph.tsv` (a ring over them).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("samples.csv");
        let mut text = String::from("id,f1,f2,label\n");
        let mut graph = String::new();
        for i in 0..12 {
            text.push_str(&format!("s{i},{},{},{}\n", i % 3, i % 2, if i % 2 == 0 { "x" } else { "y" }));
            graph.push_str(&format!("s{i}\ts{}\t1\n", (i + 1) % 12));
        }
        std::fs::write(&csv, text).unwrap();
        std::fs::write(dir.path().join("graph.tsv"), graph).unwrap();
        ok(&["convert", "--csv", s(&csv), "--samples", s(&dir.path().join("samples.parquet"))]);
        std::fs::remove_file(&csv).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn samples(&self) -> PathBuf {
        self.path("samples.parquet")
    }

    fn graph(&self) -> PathBuf {
        self.path("graph.tsv")
    }

    /// The arguments of a small training run saved to `out`.
    fn train_args(&self, out: &Path, seed: &str) -> Vec<String> {
        ["train", "--samples", s(&self.samples()), "--model", "mlp:4", "--epochs", "1", "--seed", seed, "--out", s(out)]
            .map(String::from)
            .to_vec()
    }

    /// Trains a small run into `name` and returns its path.
    fn run(&self, name: &str, seed: &str) -> PathBuf {
        let out = self.path(name);
        let args = self.train_args(&out, seed);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        out
    }
}

/// Runs `nsl args` with standard output a pipe whose reader is gone: every write fails with `EPIPE`.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_nsl")).args(args).stdout(writer).output().unwrap()
}

// --- Crash: `nsl graph stats good.parquet | true` panicked (`failed printing to stdout: Broken pipe`, exit 101).

#[test]
fn crash_on_a_closed_pipe_every_command_exits_quietly_and_still_writes_its_outputs() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let (train, test) = (f.path("train.parquet"), f.path("test.parquet"));
    let commands: Vec<(Vec<String>, Vec<PathBuf>)> = vec![
        (
            vec!["graph".into(), "stats".into(), s(&f.graph()).into(), "--samples".into(), s(&f.samples()).into()],
            vec![],
        ),
        (
            ["split", s(&f.samples()), "--out-train", s(&train), "--out-test", s(&test)].map(String::from).to_vec(),
            vec![train.clone(), test.clone()],
        ),
        (
            ["convert", "--parquet", s(&f.samples()), "--samples", s(&f.path("copy.parquet"))]
                .map(String::from)
                .to_vec(),
            vec![f.path("copy.parquet")],
        ),
        (
            ["build-graph", "--input", s(&f.samples()), "--output", s(&f.path("built.tsv")), "--threshold", "0.5"]
                .map(String::from)
                .to_vec(),
            vec![f.path("built.tsv")],
        ),
        (["evaluate", "--run", s(&run), "--samples", s(&f.samples())].map(String::from).to_vec(), vec![]),
        (f.train_args(&f.path("run2"), "2"), vec![f.path("run2").join("model.safetensors")]),
    ];
    for (args, outputs) in commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "nsl {args:?} with a closed stdout: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "nsl {args:?}: {stderr}");
        for path in outputs {
            assert!(path.exists(), "nsl {args:?} with a closed stdout did not write {}", path.display());
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn crash_on_a_closed_pipe_but_a_full_disk_under_stdout_is_an_error() {
    let f = Fixture::new();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else { return eprintln!("skipped: no /dev/full") };
    let out = Command::new(env!("CARGO_BIN_EXE_nsl"))
        .args(["graph", "stats", s(&f.graph())])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing the report to standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// --- Outputs out of step: the commit journal recorded relative paths.

/// `strace`, if it can trace here (it needs ptrace).
fn strace() -> Option<()> {
    let status = Command::new("strace").args(["-qq", "-o", "/dev/null", "true"]).status().ok()?;
    status.success().then_some(())
}

/// The last rename system call of `nsl args` run in `cwd`: its name (`rename`, `renameat`,
/// `renameat2`) and how many calls of that name the run makes (strace counts each call separately).
fn last_rename(cwd: &Path, args: &[&str]) -> (String, usize) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("strace")
        .current_dir(cwd)
        .args(["-f", "-qq", "-e", "trace=rename,renameat,renameat2", "-o", s(log.path())])
        .arg(env!("CARGO_BIN_EXE_nsl"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "nsl {args:?} under strace: {status}");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let calls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|call| call.split('(').next())
        .filter(|name| name.starts_with("rename"))
        .collect();
    let last = calls.last().expect("the run renames something").to_string();
    let count = calls.iter().filter(|&&c| c == last).count();
    (last, count)
}

#[test]
fn commit_journals_with_relative_paths_a_reader_in_another_directory_completes_the_commit() {
    if strace().is_none() {
        return eprintln!("skipped: strace cannot trace here");
    }
    let f = Fixture::new();
    let work = f.path("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::copy(f.samples(), work.join("input.parquet")).unwrap();
    // Relative names, resolved in `work`: what a user types.
    let args = |seed: &'static str| {
        ["split", "input.parquet", "--seed", seed, "--out-train", "train.parquet", "--out-test", "test.parquet"]
    };
    // The renames of a run (counted on a run that is then undone), and the old and new outputs.
    let reference = f.path("reference");
    std::fs::create_dir(&reference).unwrap();
    std::fs::copy(f.samples(), reference.join("input.parquet")).unwrap();
    ok_in(&reference, &args("2"));
    let (last, when) = last_rename(&reference, &args("2"));
    let read = |dir: &Path| {
        (std::fs::read(dir.join("train.parquet")).unwrap(), std::fs::read(dir.join("test.parquet")).unwrap())
    };
    let new = read(&reference);
    ok_in(&work, &args("1"));
    let old = read(&work);
    assert!(old.0 != new.0 && old.1 != new.1);
    // Killed on the last rename: the journal is written and the train part renamed, not the test part.
    let killed = Command::new("strace")
        .current_dir(&work)
        .args(["-f", "-qq", "-o", "/dev/null", "-e", &format!("trace={last}"), "-e"])
        .arg(format!("inject={last}:signal=KILL:when={when}"))
        .arg(env!("CARGO_BIN_EXE_nsl"))
        .args(args("2"))
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "not killed: {}", String::from_utf8_lossy(&killed.stderr));
    assert!(read(&work).0 == new.0, "the kill came too early");
    assert!(read(&work).1 == old.1, "the kill came too late");
    // A reader started elsewhere, reading the test part by its absolute path.
    let elsewhere = tempfile::tempdir().unwrap();
    ok_in(elsewhere.path(), &["graph", "stats", s(&f.graph()), "--samples", s(&work.join("test.parquet"))]);
    assert!(read(&work) == new, "the reader did not complete the commit");
    assert_eq!(names(&work), ["input.parquet", "test.parquet", "train.parquet"], "journal or staging left behind");
}

fn ok_in(cwd: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_nsl")).current_dir(cwd).args(args).output().unwrap();
    assert!(out.status.success(), "nsl {args:?} in {}: {}", cwd.display(), String::from_utf8_lossy(&out.stderr));
}

// --- `nsl convert --parquet s.parquet --samples x.parquet/` left a journal that bricked the directory.

#[test]
fn trailing_slash_output_fails_before_any_work_and_leaves_nothing() {
    let f = Fixture::new();
    let before = names(f.dir.path());
    let err = fails(&["convert", "--parquet", s(&f.samples()), "--samples", &format!("{}/", s(&f.path("x.parquet")))]);
    assert!(err.contains("names a directory, not a file") && err.contains("trailing"), "{err}");
    assert_eq!(names(f.dir.path()), before, "left something behind");
    // Every other command in the directory still works.
    ok(&["graph", "stats", s(&f.graph()), "--samples", s(&f.samples())]);
    // Two outputs (samples and graph), one with a trailing slash: nothing either.
    let err = fails(&["build-graph", "--input", s(&f.samples()), "--output", &format!("{}/", s(&f.path("g.tsv")))]);
    assert!(err.contains("names a directory"), "{err}");
    assert_eq!(names(f.dir.path()), before);
}

fn hex(path: &Path) -> String {
    path.as_os_str().as_encoded_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn trailing_slash_journal_left_by_an_older_nsl_never_bricks_other_commands() {
    let f = Fixture::new();
    // What nsl before issue 22 left after `convert --samples x.parquet/` in this directory: a
    // journal of relative paths whose rename can never succeed, and its staging directory.
    let staging = f.path(".x.parquet.0123456789ab.tmp");
    std::fs::create_dir(&staging).unwrap();
    std::fs::copy(f.samples(), staging.join("x.parquet")).unwrap();
    let journal = f.path(".nsl-commit.00000000000000aa.journal");
    std::fs::write(
        &journal,
        format!(
            "nsl-commit 1\nrename {} {}\njournal {}\n",
            hex(Path::new(".x.parquet.0123456789ab.tmp/x.parquet")),
            hex(Path::new("x.parquet/")),
            hex(Path::new(".nsl-commit.00000000000000aa.journal"))
        ),
    )
    .unwrap();
    // Readers and writers of other files in the directory are not stopped by it.
    ok(&["graph", "stats", s(&f.graph()), "--samples", s(&f.samples())]);
    ok(&["convert", "--parquet", s(&f.samples()), "--samples", s(&f.path("y.parquet"))]);
    // A reader of its output is told what happened and what to do.
    let err = fails(&["graph", "stats", s(&f.graph()), "--samples", s(&f.path("x.parquet"))]);
    assert!(err.contains("cannot be finished") && err.contains(s(&journal)), "{err}");
}

#[test]
fn unfinishable_journal_changes_nothing_and_its_readers_are_told_which_journal() {
    let f = Fixture::new();
    // A commit of two files whose first destination has become a directory since.
    let (z, w) = (f.path("z.parquet"), f.path("w.parquet"));
    std::fs::copy(f.samples(), &w).unwrap();
    let old_w = std::fs::read(&w).unwrap();
    let mut text = String::from("nsl-commit 1\n");
    for (name, dest) in [("z.parquet", &z), ("w.parquet", &w)] {
        let staging = f.path(&format!(".{name}.0123456789ab.tmp"));
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join(name), b"new").unwrap();
        text.push_str(&format!("rename {} {}\n", hex(&staging.join(name)), hex(dest)));
    }
    std::fs::create_dir(&z).unwrap();
    let journal = f.path(".nsl-commit.00000000000000bb.journal");
    text.push_str(&format!("journal {}\n", hex(&journal)));
    std::fs::write(&journal, text).unwrap();
    ok(&["graph", "stats", s(&f.graph()), "--samples", s(&f.samples())]);
    assert!(journal.exists(), "the journal is kept for the readers of its outputs");
    let err = fails(&["graph", "stats", s(&f.graph()), "--samples", s(&w)]);
    assert!(err.contains("cannot be finished") && err.contains("is a directory") && err.contains(s(&journal)), "{err}");
    assert_eq!(std::fs::read(&w).unwrap(), old_w, "a rename was made before the check");
}

// --- `nsl train --out run` with `run/` not writable: new run in `run/`, old one in `.run.*.tmp/`.

/// `nsl args` as a process that file permissions apply to: as root, without the capabilities that
/// bypass them (`setpriv`); `None` when that is not possible here.
fn as_user(args: &[&str]) -> Option<Output> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set=-dac_override,-dac_read_search,-fowner", env!("CARGO_BIN_EXE_nsl")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_nsl"))
    };
    command.args(args).output().ok().filter(|o| !root || !String::from_utf8_lossy(&o.stderr).contains("setpriv"))
}

#[cfg(unix)]
#[test]
fn unwritable_run_directory_is_all_or_nothing_and_names_the_users_path() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let run = f.run("run", "1");
    let old = std::fs::read(run.join("model.safetensors")).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o555)).unwrap();
    let args = f.train_args(&run, "2");
    let Some(out) = as_user(&args.iter().map(String::as_str).collect::<Vec<_>>()) else {
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        return eprintln!("skipped: cannot drop the permission-bypassing capabilities");
    };
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("--out {}", run.display())) && stderr.contains("writable"), "{stderr}");
    assert!(!stderr.contains(".run."), "the message names a staging directory: {stderr}");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), old, "the old run was replaced");
    assert_eq!(names(f.dir.path()), ["graph.tsv", "run", "samples.parquet"], "something left behind");
}

// --- An output that names an input; `--output /dev/stdout`; a failed save leaves `run.partial/`.

#[test]
fn output_that_names_an_input_is_refused_before_any_work() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let samples = std::fs::read(f.samples()).unwrap();
    let graph = std::fs::read(f.graph()).unwrap();
    let err = fails_with(2, &["build-graph", "--input", s(&f.samples()), "--output", s(&f.samples())]);
    assert!(err.contains("--input and --output name the same file"), "{err}");
    // The same file under another name.
    let alias =
        format!("{}/../{}/samples.parquet", s(f.dir.path()), f.dir.path().file_name().unwrap().to_str().unwrap());
    fails_with(2, &["predict", "--run", s(&run), "--samples", s(&f.samples()), "--output", &alias]);
    let model = run.join("model.json");
    let err = fails_with(2, &["predict", "--run", s(&run), "--samples", s(&f.samples()), "--output", s(&model)]);
    assert!(err.contains("--run and --output"), "{err}");
    let err = fails_with(2, &["evaluate", "--run", s(&run), "--samples", s(&f.samples()), "--plot", s(&f.samples())]);
    assert!(err.contains("--samples and --plot name the same file"), "{err}");
    let err = fails_with(2, &["graph", "export", s(&f.graph()), "--format", "tsv", "--output", s(&f.graph())]);
    assert!(err.contains("the graph and --output name the same file"), "{err}");
    assert_eq!(std::fs::read(f.samples()).unwrap(), samples);
    assert_eq!(std::fs::read(f.graph()).unwrap(), graph);
    assert!(std::fs::read(&model).unwrap().starts_with(b"{"));
}

#[cfg(target_os = "linux")]
#[test]
fn output_dev_stdout_redirected_to_a_file_writes_the_file_through_the_descriptor() {
    let f = Fixture::new();
    let expected = f.path("expected.tsv");
    ok(&["graph", "export", s(&f.graph()), "--format", "tsv", "--output", s(&expected)]);
    // `/dev/stdout` itself is shared by every process on the machine: an nsl that replaced it (as
    // before issue 22) would break it for all. The test uses a link of the same kind in its own
    // directory (`stdout -> /proc/self/fd/1`) and `/dev/fd/1`, `/proc/self/fd/1`, whose
    // directories no file can be created in.
    let link = f.path("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let link_dir = f.path("fd");
    std::os::unix::fs::symlink("/proc/self/fd", &link_dir).unwrap();
    let export_to = |output: &str, stdout: std::fs::File| {
        let out = Command::new(env!("CARGO_BIN_EXE_nsl"))
            .args(["graph", "export", s(&f.graph()), "--format", "tsv", "--output", output])
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{output}: {}", String::from_utf8_lossy(&out.stderr));
    };
    for output in [s(&link), &format!("{}/1", s(&link_dir)), "/dev/fd/1", "/proc/self/fd/1"] {
        let target = f.path("redirected.tsv");
        export_to(output, std::fs::File::create(&target).unwrap());
        assert!(std::fs::read(&target).unwrap() == std::fs::read(&expected).unwrap(), "{output}: not written");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{output}: link replaced");
    }
    // Appending (`>>`) appends.
    let target = f.path("appended.tsv");
    std::fs::write(&target, "first line\n").unwrap();
    export_to(s(&link), std::fs::OpenOptions::new().append(true).open(&target).unwrap());
    let mut want = b"first line\n".to_vec();
    want.extend(std::fs::read(&expected).unwrap());
    assert!(std::fs::read(&target).unwrap() == want);
    // Samples (a set of outputs) too, and the report then goes to stderr, not into the file.
    let target = f.path("samples_copy.parquet");
    let out = Command::new(env!("CARGO_BIN_EXE_nsl"))
        .args(["convert", "--parquet", s(&f.samples()), "--samples", s(&link)])
        .stdout(std::fs::File::create(&target).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    ok(&["graph", "stats", s(&f.graph()), "--samples", s(&target)]);
}

#[test]
fn failed_save_keeps_the_trained_state_says_so_and_resume_saves_it() {
    if strace().is_none() {
        return eprintln!("skipped: strace cannot trace here");
    }
    let f = Fixture::new();
    let run = f.path("run");
    let args = f.train_args(&run, "1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The last rename of a run is the one that puts the run in place: make it fail. (The run
    // that counts the renames is removed first: the failing one must create the run anew.)
    let (name, when) = last_rename(f.dir.path(), &args);
    std::fs::remove_dir_all(&run).unwrap();
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", &format!("trace={name}"), "-e"])
        .arg(format!("inject={name}:error=EIO:when={when}"))
        .arg(env!("CARGO_BIN_EXE_nsl"))
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let partial = f.path("run.partial");
    assert!(
        stderr.contains("trained but not saved") && stderr.contains(&format!("--resume {}", run.display())),
        "{stderr}"
    );
    assert!(partial.join("state.safetensors").is_file(), "{stderr}");
    assert!(!run.exists());
    // `--resume` saves it (no epoch is trained again) and removes the state.
    ok(&["train", "--resume", s(&run)]);
    assert!(run.join("model.safetensors").is_file());
    assert!(!partial.exists());
    assert_eq!(names(f.dir.path()), ["graph.tsv", "run", "samples.parquet"]);
}

// --- Accepted silently.

#[test]
fn silent_accepts_threads_0_record_every_0_and_neighbors_0_are_refused() {
    let f = Fixture::new();
    let run = f.path("run");
    let mut args = f.train_args(&run, "1");
    args.extend(["--threads", "0"].map(String::from));
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("--threads 0"), "{err}");
    let mut args = f.train_args(&run, "1");
    args.extend(
        [
            "--adv-reg",
            "multiplier=0.2,step-size=0.05",
            "--record-adversarial",
            s(&f.path("adv.tsv")),
            "--record-every",
            "0",
        ]
        .map(String::from),
    );
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("--record-every 0"), "{err}");
    let mut args = f.train_args(&run, "1");
    args.extend(["--graph", s(&f.graph()), "--graph-reg", "multiplier=0.1,neighbors=0"].map(String::from));
    let err = fails_with(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("neighbors") && err.contains("at least 1"), "{err}");
    assert!(!run.exists());
}

#[test]
fn silent_accepts_a_nan_in_model_safetensors_is_refused_naming_the_tensor() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let weights = run.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&weights, bytes).unwrap();
    let err = fails(&["evaluate", "--run", s(&run), "--samples", s(&f.samples())]);
    assert!(err.contains("model.safetensors") && err.contains("tensor `") && err.contains("NaN"), "{err}");
    let err = fails(&["predict", "--run", s(&run), "--samples", s(&f.samples())]);
    assert!(err.contains("NaN"), "{err}");
}

#[test]
fn silent_accepts_demo_out_naming_a_file_says_it_is_not_a_directory() {
    let f = Fixture::new();
    let err = fails(&["demo", "--out", s(&f.samples())]);
    assert!(err.contains(&format!("--out {} exists and is not a directory", s(&f.samples()))), "{err}");
}

#[test]
fn closed_pipe_helper_really_closes() {
    // The pipe of `with_closed_stdout` fails every write: the test above means something.
    let (reader, mut writer) = std::io::pipe().unwrap();
    drop(reader);
    let err = std::io::Write::write_all(&mut writer, b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn silent_accepts_the_library_refuses_them_too() {
    use nsl::model::{build_model, ModelSpec};
    use nsl::regularize::{AdvRegConfig, GraphRegConfig};
    use nsl::train::{TrainConfig, Trainer};
    let n = 8;
    let features = ndarray::Array2::from_shape_fn((n, 2), |(i, j)| (i * 2 + j) as f32 / 16.0);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let data =
        nsl::data::Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![2], Some(labels), None)
            .unwrap();
    let spec: ModelSpec = "mlp:4".parse().unwrap();
    let (model, vars) = build_model(&spec, data.item_shape(), 2, 0, &candle_core::Device::Cpu).unwrap();
    let config = TrainConfig { epochs: 1, batch_size: 4, ..Default::default() };
    let adv = AdvRegConfig::default();
    let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_adversarial(&adv).record_adversarial(0);
    let err = trainer.fit(&data, None).unwrap_err().to_string();
    assert!(err.contains("record_adversarial"), "{err}");
    let err = TrainConfig { threads: Some(0), ..TrainConfig::default() }.validate().unwrap_err().to_string();
    assert!(err.contains("threads"), "{err}");
    let err = GraphRegConfig { neighbors: 0.into(), ..GraphRegConfig::default() }.validate().unwrap_err().to_string();
    assert!(err.contains("neighbors"), "{err}");
}
