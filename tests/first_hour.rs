//! Issue 25, "The first hour": what a new user coming from Keras, NSL or scikit-learn meets in the
//! first hour — runs that remember their columns, counts that add up, help that says what happens.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nsl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsl"))
}

fn run(args: &[&str]) -> Output {
    nsl().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "nsl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small iris-like CSV without an id column: features `a`, `b`, `c`, a weight `w` and a string
/// label `species`; the two species differ by the sign of `a` (with `b`, `c` noise).
fn species_csv(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let mut text = String::from("a,b,c,w,species\n");
    for i in 0..rows {
        let (sign, species) = if i % 2 == 0 { (1.0, "setosa") } else { (-1.0, "virginica") };
        let a = sign * (0.5 + (i % 7) as f64 / 10.0);
        let (b, c) = ((i % 5) as f64 / 10.0, (i % 3) as f64 / 10.0);
        text.push_str(&format!("{a},{b},{c},{},{species}\n", 1 + i % 2));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn model_json(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("model.json")).unwrap()).unwrap()
}

#[test]
fn a_run_remembers_its_columns_for_predict_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let train = species_csv(dir.path(), "train.csv", 60);
    let test = species_csv(dir.path(), "test.csv", 20);
    let r = dir.path().join("run");
    // No `id` column: ids are row numbers (no graph needs them), as for IDX input.
    ok(&["train", "--samples", s(&train), "--label-column", "species", "--model", "mlp:8", "--epochs", "30"]
        .iter()
        .copied()
        .chain(["--feature-columns", "a,b,c", "--learning-rate", "0.05", "--out", s(&r)])
        .collect::<Vec<_>>());
    let columns: serde_json::Value = serde_json::from_slice(&std::fs::read(r.join("columns.json")).unwrap()).unwrap();
    assert_eq!(columns["label"], "species");
    assert_eq!(columns["features"], serde_json::json!(["a", "b", "c"]));
    // The issue's sequence: predict and evaluate without repeating a column flag.
    let predictions = ok(&["predict", "--run", s(&r), "--samples", s(&test)]);
    let lines: Vec<&str> = predictions.lines().collect();
    assert_eq!(lines.len(), 21, "{predictions}");
    assert!(lines[1].starts_with("0,setosa,") && lines[2].starts_with("1,virginica,"), "{predictions}");
    let result: serde_json::Value =
        serde_json::from_str(&ok(&["evaluate", "--run", s(&r), "--samples", s(&test), "--json"])).unwrap();
    assert_eq!(result["samples"], 20);
    assert!(result["accuracy"].as_f64().unwrap() > 0.9, "{result}");
    // A flag overrides the recorded columns: two features where the model expects three.
    let out = run(&["evaluate", "--run", s(&r), "--samples", s(&test), "--feature-columns", "a,b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 features"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_weight_column_is_never_a_feature() {
    let dir = tempfile::tempdir().unwrap();
    let train = species_csv(dir.path(), "train.csv", 40);
    let r = dir.path().join("run");
    // The issue's command: every numeric column is a feature but the weight column.
    let args = ["train", "--samples", s(&train), "--task", "binary", "--weight-column", "w"];
    let more = ["--class-weights", "balanced", "--label-column", "species", "--epochs", "2", "--out", s(&r)];
    ok(&[&args[..], &more[..]].concat());
    assert_eq!(model_json(&r)["item_shape"], serde_json::json!([3]));
    // predict reads the same three features (the weight column is recorded, not read).
    let predictions = ok(&["predict", "--run", s(&r), "--samples", s(&train)]);
    assert_eq!(predictions.lines().count(), 41);
}

#[test]
fn a_run_directory_of_an_older_nsl_without_columns_json_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,x,y,label\n");
    for i in 0..20 {
        text.push_str(&format!("s{i},{},{},{}\n", i % 2, (i % 3) as f32 / 3.0, i % 2));
    }
    let samples = dir.path().join("s.csv");
    std::fs::write(&samples, text).unwrap();
    let r = dir.path().join("run");
    ok(&["train", "--samples", s(&samples), "--epochs", "1", "--out", s(&r)]);
    std::fs::remove_file(r.join("columns.json")).unwrap();
    let predictions = ok(&["predict", "--run", s(&r), "--samples", s(&samples)]);
    assert!(predictions.lines().nth(1).unwrap().starts_with("s0,"), "{predictions}");
}

#[test]
fn training_onto_an_earlier_run_says_it_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let train = species_csv(dir.path(), "train.csv", 20);
    let r = dir.path().join("run");
    let args = ["train", "--samples", s(&train), "--label-column", "species", "--epochs", "1", "--out", s(&r)];
    let first = run(&args);
    assert!(!String::from_utf8_lossy(&first.stderr).contains("earlier run"));
    let second = run(&args);
    assert!(second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("--out {} holds an earlier run", r.display())), "{stderr}");
    let help = ok(&["train", "--help"]);
    assert!(help.contains("replaced when this one is saved"), "{help}");
}

#[test]
fn help_says_what_each_command_does_and_hides_the_worker() {
    let help = ok(&["--help"]);
    assert!(!help.contains("worker"), "{help}");
    assert!(help.contains("MLP, CNN or bag-of-words") && help.contains("regression"), "{help}");
    assert!(help.contains("predicted values (regression)"), "{help}");
    let predict = ok(&["predict", "--help"]);
    assert!(predict.contains("predictions never depend on it"), "{predict}");
    assert!(predict.contains("columns the run was trained on"), "{predict}");
    // The norms: stated in both help texts.
    let evaluate = ok(&["evaluate", "--help"]);
    assert!(evaluate.contains("Default L∞") && evaluate.contains("defaults to L2"), "{evaluate}");
    assert!(ok(&["train", "--help"]).contains("`nsl evaluate --norm` attacks in L∞ by default"));
    // The worker still runs (scripts/spark calls it).
    assert!(run(&["worker", "--help"]).status.success());
}

#[test]
fn evaluate_json_names_the_attack_norm() {
    let dir = tempfile::tempdir().unwrap();
    let train = species_csv(dir.path(), "train.csv", 20);
    let r = dir.path().join("run");
    ok(&["train", "--samples", s(&train), "--label-column", "species", "--epochs", "1", "--out", s(&r)]);
    let base = ["evaluate", "--run", s(&r), "--samples", s(&train), "--attack", "fgsm", "--epsilon", "0.1", "--json"];
    let json: serde_json::Value = serde_json::from_str(&ok(&base)).unwrap();
    assert_eq!(json["attack"]["norm"], "infinity", "{json}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[&base[..], &["--norm", "l2"][..]].concat())).unwrap();
    assert_eq!(json["attack"]["norm"], "l2", "{json}");
}

#[test]
fn progress_lines_appear_without_a_terminal_and_quiet_silences_them() {
    let dir = tempfile::tempdir().unwrap();
    let train = species_csv(dir.path(), "train.csv", 40);
    let r = dir.path().join("run");
    // Standard error is a pipe here, as in a notebook, a log file or CI.
    let args = ["train", "--samples", s(&train), "--label-column", "species", "--epochs", "2", "--out", s(&r)];
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().find(|l| l.starts_with("epoch 2/2 done: 100.0% of training")).unwrap_or_else(|| {
        panic!("no progress line: {stderr}");
    });
    assert!(last.contains("ETA") && last.contains(", loss ") && last.contains(", accuracy "), "{last}");
    let quiet = run(&[&["--quiet"][..], &args[..]].concat());
    assert!(quiet.status.success());
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("of training"), "{quiet:?}");

    // An attack's progress: fraction, ε and ETA.
    let attack = ["evaluate", "--run", s(&r), "--samples", s(&train), "--attack", "pgd", "--epsilon", "0.1,0.2"];
    let out = run(&[&attack[..], &["--pgd-steps", "2"][..]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pgd (ε 0.1,0.2): 100.0% (2/2)") && stderr.contains("ETA"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_the_last_epoch_at_once_and_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let train = species_csv(dir.path(), "train.csv", 40);
    let r = dir.path().join("run");
    // Many tiny epochs: within a second hundreds have ended, none saved yet (states are saved
    // every 30 s by the clock) — the interrupt saves the last one.
    let args = ["train", "--samples", s(&train), "--label-column", "species", "--epochs", "1000000", "--out", s(&r)];
    let child = nsl().args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn();
    let child = child.unwrap();
    let partial = dir.path().join("run.partial");
    let mut waited = 0;
    while !partial.join("command.json").is_file() && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!partial.join("state.safetensors").exists(), "a state was saved before the interrupt");
    // SAFETY: a plain kill(2) on the child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains(&format!("continue with `nsl train --resume {}`", r.display())), "{stderr}");
    assert!(partial.join("state.safetensors").is_file(), "{stderr}");
    let epoch: usize = stderr.split("; epoch ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!(epoch >= 1, "{stderr}");

    // `--resume` says where it continues; interrupted again, it saves again.
    let child = nsl().args(["train", "--resume", s(&r)]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let resumed = format!("epoch {epoch} of 1000000 was completed, continuing with epoch {}", epoch + 1);
    assert!(stderr.contains(&resumed), "{stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
}

fn cora(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora").join(rel).to_string_lossy().into_owned()
}

#[test]
fn counts_add_up_across_convert_build_graph_stats_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // convert --tokens: list lengths, not a fixed item shape (Cora: 1 to 30 words per paper).
    let words = ok(&["convert", "--content", &cora("cora.content.gz"), "--tokens", "--samples", &p("w.parquet")]);
    assert!(words.contains("`words`: token lists of 1–30 ids (vocabulary 1433)"), "{words}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "convert",
        "--content",
        &cora("cora.content.gz"),
        "--tokens",
        "--samples",
        &p("w2.parquet"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["token_groups"][0]["min_len"], 1);
    assert_eq!(json["token_groups"][0]["max_len"], 30);

    // graph export: edges as written (GraphML/JSON: each of Cora's 5,278 links once; CSV: 10,556).
    let args = ["convert", "--content", &cora("cora.content.gz"), "--cites", &cora("cora.cites.gz")];
    ok(&[&args[..], &["--samples", &p("cora.parquet"), "--graph", &p("g.parquet")]].concat());
    let export = |output: &str| {
        let out = run(&["graph", "export", &p("g.parquet"), "--output", &p(output)]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(export("g.graphml").contains("2708 nodes, 5278 undirected edges (each link once)"));
    assert!(export("g.csv").contains("10556 directed edges as csv"));
    assert!(std::fs::read_to_string(p("g.graphml")).unwrap().contains("edgedefault=\"undirected\""));

    // build-graph says which nodes its file holds; graph stats counts them as isolated samples.
    let embeddings = p("emb.parquet");
    ok(&["generate-embeddings", "--output", &embeddings, "--n", "200", "--dim", "8", "--seed", "3"]);
    let out = run(&["build-graph", "--input", &embeddings, "--output", &p("b.parquet"), "--threshold", "0.9"]);
    let built = String::from_utf8_lossy(&out.stdout);
    assert!(built.contains("graph over 200 samples") && built.contains("not in the file"), "{built}");
    // Its progress without a terminal: a plain line when the comparisons are done.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("comparing pairs: 100.0%") && stderr.contains("ETA"), "{stderr}");
}

#[test]
fn graph_export_infers_the_format_and_attaches_sample_columns() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let args = ["convert", "--content", &cora("cora.content.gz"), "--cites", &cora("cora.cites.gz")];
    ok(&[&args[..], &["--samples", &p("cora.parquet"), "--graph", &p("g.parquet")]].concat());
    let with_labels = ["--samples", &p("cora.parquet"), "--node-columns", "label"];
    ok(&[&["graph", "export", &p("g.parquet"), "--output", &p("g.json")][..], &with_labels[..]].concat());
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("g.json")).unwrap()).unwrap();
    assert_eq!(doc["edges"].as_array().unwrap().len(), 5278);
    assert!(doc["nodes"].as_array().unwrap().iter().all(|n| n["label"].as_str().is_some()), "a node without label");
    ok(&[&["graph", "export", &p("g.parquet"), "--output", &p("g.graphml")][..], &with_labels[..]].concat());
    let xml = std::fs::read_to_string(p("g.graphml")).unwrap();
    assert!(xml.contains(r#"<key id="n0" for="node" attr.name="label" attr.type="string"/>"#));
    assert_eq!(xml.matches(r#"<data key="n0">"#).count(), 2708);
    // An edge list holds no node attributes; an unknown extension needs --format.
    let out = run(&[&["graph", "export", &p("g.parquet"), "--output", &p("g.csv")][..], &with_labels[..]].concat());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no node attributes"), "{out:?}");
    let out = run(&["graph", "export", &p("g.parquet"), "--output", &p("g.xyz")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("or give --format"), "{out:?}");
}

#[test]
fn train_help_is_grouped_by_topic() {
    let help = ok(&["train", "--help"]);
    let headings: Vec<&str> = help.lines().filter(|l| l.ends_with(':') && !l.starts_with(' ')).collect();
    for heading in [
        "Inputs:",
        "Input columns:",
        "Task and weights:",
        "Model:",
        "Training:",
        "Graph regularization:",
        "Adversarial regularization:",
        "Output:",
    ] {
        assert!(headings.contains(&heading), "{heading} missing from {headings:?}");
    }
    // Each flag under its topic: --graph-reg with the graph, --adv-reg with the adversarial ones.
    let section = |name: &str| {
        let start = help.find(&format!("\n{name}:\n")).unwrap();
        let rest = &help[start + name.len() + 3..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    assert!(section("Graph regularization").contains("--graph-reg <KEY=VALUE,…>"));
    assert!(section("Adversarial regularization").contains("--record-adversarial"));
    assert!(section("Output").contains("--out <DIR>") && section("Output").contains("--resume"));
}

#[test]
fn evaluate_help_is_grouped_by_topic() {
    let help = ok(&["evaluate", "--help"]);
    let section = |name: &str| {
        let start = help.find(&format!("\n{name}:\n")).unwrap_or_else(|| panic!("{name} missing from {help}"));
        let rest = &help[start + name.len() + 3..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    assert!(section("Inputs").contains("--run <DIR>") && section("Inputs").contains("--samples <FILE>"));
    assert!(section("Attack").contains("--attack <ATTACK>") && section("Attack").contains("--epsilon"));
    assert!(!section("Attack").contains("--per-sample"));
    assert!(section("Output").contains("--per-sample <FILE>") && section("Output").contains("--json"));
}
