//! The old-or-new rule under `SIGKILL` (issue 15): `nsl train`, `split` and `convert` are killed
//! at seeded random moments while they replace existing outputs, and every output set must then
//! hold either the complete old content or the complete new content — never a mix, never a
//! half-written file — and whatever was left behind must be hidden `.NAME.RANDOM.tmp` names that no
//! reader takes for output.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Kills per command.
const KILLS: usize = 12;

fn nsl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsl"))
}

fn run_ok(args: &[&str]) {
    run_ok_in(Path::new("."), args);
}

/// [`run_ok`] with `cwd` as the working directory (for relative paths, as a user types them).
fn run_ok_in(cwd: &Path, args: &[&str]) {
    let out = nsl().current_dir(cwd).args(args).output().unwrap();
    assert!(out.status.success(), "nsl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join(rel).to_string_lossy().into_owned()
}

/// Files by relative path, with their bytes.
type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// Every file under `dir` (recursively), by relative path, with its bytes.
fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for (rel, bytes) in snapshot(&path) {
                out.insert(Path::new(path.file_name().unwrap()).join(rel), bytes);
            }
        } else {
            out.insert(PathBuf::from(path.file_name().unwrap()), std::fs::read(&path).unwrap());
        }
    }
    out
}

/// The visible (not hidden) files of `dir`'s snapshot restricted to `names`.
fn pick(snap: &Snapshot, names: &[&str]) -> Snapshot {
    snap.iter().filter(|(k, _)| names.iter().any(|n| k.starts_with(n))).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Runs `args` (in `dir`, so relative paths are `dir`'s; the reader below runs in the package
/// directory, as a user's next command may run elsewhere) `KILLS` times, each time killed with SIGKILL after a seeded random delay in
/// `span/3..=span` (`span` a little longer than a whole run, so that some kills come late), with `outputs` (names in `dir`) holding `old` before each run; after each
/// kill the outputs must equal `old` or `new`. Returns how many kills hit each state.
fn kill_and_check(
    what: &str,
    seed: u64,
    dir: &Path,
    args: &[&str],
    outputs: &[&str],
    (old, new): (&Snapshot, &Snapshot),
    span: Duration,
) -> (usize, usize) {
    assert_ne!(old, new, "{what}: the old and new outputs must differ for the test to mean anything");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut saw_old, mut saw_new) = (0, 0);
    for kill in 0..KILLS {
        restore(dir, outputs, old);
        let micros = span.as_micros() as u64;
        let delay = Duration::from_micros(rng.random_range(micros / 3..=micros));
        let mut child = nsl()
            .current_dir(dir)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // What every reader of an output does first: finish a commit the kill interrupted.
        nsl::io::finish_pending_commits(&dir.join(outputs[0])).unwrap();
        let state = pick(&snapshot(dir), outputs);
        if &state == old {
            saw_old += 1;
        } else if &state == new {
            saw_new += 1;
        } else {
            panic!(
                "{what}: kill {kill} after {delay:?} left a mix: files {:?} (old {:?}, new {:?})",
                state.keys().collect::<Vec<_>>(),
                old.keys().collect::<Vec<_>>(),
                new.keys().collect::<Vec<_>>()
            );
        }
        // Anything else left behind is hidden and marked temporary.
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let ours = outputs.iter().any(|o| Path::new(o).starts_with(&name)) || name.starts_with("input");
            assert!(ours || (name.starts_with('.') && name.ends_with(".tmp")), "{what}: kill {kill} left {name}");
            if !ours {
                let path = dir.join(&name);
                if path.is_dir() {
                    std::fs::remove_dir_all(path).unwrap();
                } else {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
    }
    eprintln!("{what}: {saw_old} kills left the old outputs, {saw_new} the new ones");
    (saw_old, saw_new)
}

/// Puts `state` back as the outputs of `dir`.
fn restore(dir: &Path, outputs: &[&str], state: &Snapshot) {
    for name in outputs {
        let path = dir.join(name);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    for (rel, bytes) in state {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Runs `args` once to completion in `cwd` and measures it.
fn timed(cwd: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    run_ok_in(cwd, args);
    start.elapsed()
}

/// Cora's samples as a Parquet table, `input.parquet` in `dir`.
fn cora(dir: &Path) -> PathBuf {
    let input = dir.join("input.parquet");
    run_ok(&["convert", "--content", &data("cora/cora.content.gz"), "--samples", s(&input)]);
    input
}

#[test]
fn killed_train_leaves_the_old_run_or_the_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = cora(dir.path());
    let out = dir.path().join("run");
    let train = |seed: &str| -> Vec<String> {
        ["train", "--samples", s(&input), "--model", "mlp:8", "--epochs", "2", "--seed", seed, "--out", s(&out)]
            .map(String::from)
            .to_vec()
    };
    let old_args = train("1");
    let new_args = train("2");
    run_ok(&as_str(&old_args));
    let old = pick(&snapshot(dir.path()), &["run"]);
    let span = timed(Path::new("."), &as_str(&new_args));
    let new = pick(&snapshot(dir.path()), &["run"]);
    let file = |m: &Snapshot, name: &str| m.get(&Path::new("run").join(name)).cloned();
    assert_ne!(file(&old, "model.json"), file(&new, "model.json"), "the two runs' model.json must differ");
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (mut saw_old, mut saw_new) = (0, 0);
    for kill in 0..KILLS {
        restore(dir.path(), &["run"], &old);
        let micros = span.as_micros() as u64;
        let delay = Duration::from_micros(rng.random_range(micros / 3..=micros * 13 / 10));
        let mut child = nsl()
            .args(as_str(&new_args))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let state = pick(&snapshot(dir.path()), &["run"]);
        let files: Vec<_> = state.keys().cloned().collect();
        assert_eq!(files, old.keys().cloned().collect::<Vec<_>>(), "kill {kill} after {delay:?}: incomplete run");
        if file(&state, "model.json") == file(&old, "model.json") {
            // The old run: every file as it was (no new weights beside the old model.json).
            assert!(state == old, "kill {kill} after {delay:?}: new files beside the old model.json");
            saw_old += 1;
        } else {
            // The new run, whole (training is multi-threaded, so weights are compared to the old ones only).
            assert_eq!(
                file(&state, "model.json"),
                file(&new, "model.json"),
                "kill {kill}: a model.json of neither run"
            );
            assert_ne!(
                file(&state, "model.safetensors"),
                file(&old, "model.safetensors"),
                "kill {kill}: old weights, new model.json"
            );
            saw_new += 1;
        }
        // The run that is there loads.
        run_ok(&["evaluate", "--run", s(&out), "--samples", s(&input)]);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name != "run" && name != "input.parquet" {
                // `run.partial/`: what `nsl train --resume run` continues from (tests/resume.rs).
                let resumable = name == "run.partial";
                assert!(resumable || (name.starts_with(".run.") && name.ends_with(".tmp")), "kill {kill} left {name}");
                std::fs::remove_dir_all(dir.path().join(&name)).unwrap();
            }
        }
    }
    eprintln!("train: {saw_old} kills left the old run, {saw_new} the new one");
}

#[test]
fn killed_split_leaves_both_old_parts_or_both_new_parts() {
    let dir = tempfile::tempdir().unwrap();
    cora(dir.path());
    // Relative names (the journal of a kill between the two renames must still be finished by a
    // reader started elsewhere: issue 22).
    let args = |seed: &'static str| {
        ["split", "input.parquet", "--seed", seed, "--out-train", "train.parquet", "--out-test", "test.parquet"]
            .map(String::from)
            .to_vec()
    };
    run_ok_in(dir.path(), &as_str(&args("1")));
    let old = pick(&snapshot(dir.path()), &["train.parquet", "test.parquet"]);
    let span = timed(dir.path(), &as_str(&args("2")));
    let new = pick(&snapshot(dir.path()), &["train.parquet", "test.parquet"]);
    let a = args("2");
    kill_and_check(
        "split",
        22,
        dir.path(),
        &as_str(&a),
        &["train.parquet", "test.parquet"],
        (&old, &new),
        span * 13 / 10,
    );
}

#[test]
fn killed_convert_leaves_both_old_outputs_or_both_new_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, graph) = (dir.path().join("samples.parquet"), dir.path().join("graph.tsv"));
    let args = |skip: bool| {
        let mut args = vec![
            "convert".to_string(),
            "--content".into(),
            data("cora/cora.content.gz"),
            "--cites".into(),
            data("cora/cora.cites.gz"),
            "--samples".into(),
            s(&samples).into(),
            "--graph".into(),
            s(&graph).into(),
        ];
        if skip {
            args.push("--skip-unknown".into());
        }
        args
    };
    // The old outputs: a different (older) pair, written as a user would have.
    std::fs::write(&samples, b"old samples").unwrap();
    std::fs::write(&graph, b"old\tgraph\t1\n").unwrap();
    let old = pick(&snapshot(dir.path()), &["samples.parquet", "graph.tsv"]);
    let span = timed(Path::new("."), &as_str(&args(true)));
    let new = pick(&snapshot(dir.path()), &["samples.parquet", "graph.tsv"]);
    let a = args(true);
    kill_and_check(
        "convert",
        23,
        dir.path(),
        &as_str(&a),
        &["samples.parquet", "graph.tsv"],
        (&old, &new),
        span * 13 / 10,
    );
}
