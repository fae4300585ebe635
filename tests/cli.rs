//! The `nsl` binary end to end: the issue's acceptance commands, exit codes, and error messages.

use std::path::{Path, PathBuf};

mod common;
use common::{fails, nsl, ok};

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join(rel).to_string_lossy().into_owned()
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn cora_convert_stats_export() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, graph) = (p(dir.path(), "cora.parquet"), p(dir.path(), "cora_graph.parquet"));
    ok(&[
        "convert",
        "--content",
        &data("cora/cora.content.gz"),
        "--cites",
        &data("cora/cora.cites.gz"),
        "--samples",
        &samples,
        "--graph",
        &graph,
    ]);
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["graph", "stats", &graph, "--samples", &samples, "--json"])).unwrap();
    assert_eq!(stats["nodes"], 2708);
    assert_eq!(stats["links"], 5278);
    let text = ok(&["graph", "stats", &graph, "--samples", &samples]);
    assert!(text.contains("homophily"), "{text}");
    let graphml = p(dir.path(), "cora.graphml");
    ok(&["graph", "export", &graph, "--format", "graphml", "--output", &graphml]);
    let xml = std::fs::read_to_string(&graphml).unwrap();
    assert_eq!(xml.matches("<edge ").count(), 5278);
    // TSV round trip through the CLI keeps the graph.
    let tsv = p(dir.path(), "cora.tsv");
    ok(&["graph", "export", &graph, "--format", "tsv", "--output", &tsv]);
    let again: serde_json::Value = serde_json::from_str(&ok(&["graph", "stats", &tsv, "--json"])).unwrap();
    assert_eq!(again["edges"], stats["edges"]);
}

#[test]
fn split_nsl_reproduces_python() {
    let dir = tempfile::tempdir().unwrap();
    let samples = p(dir.path(), "cora.parquet");
    ok(&["convert", "--content", &data("cora/cora.content.gz"), "--samples", &samples]);
    let (tr, te) = (p(dir.path(), "tr.parquet"), p(dir.path(), "te.parquet"));
    let out =
        ok(&["split", &samples, "--method", "nsl", "--seed", "1", "--out-train", &tr, "--out-test", &te, "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    // python3: random.seed(1); sum(random.uniform(0, 1) <= 0.8 for _ in range(2708)) == 2155
    assert_eq!(summary["train"], 2155);
    assert_eq!(summary["test"], 553);
}

/// A small labeled CSV: two classes separable on the first feature.
fn toy_csv(dir: &Path) -> PathBuf {
    let mut csv = String::from("id,a,b,c,label\n");
    for i in 0..40 {
        let label = i % 2;
        csv.push_str(&format!(
            "n{i},{},{},{},{label}\n",
            label as f32 * 2.0 - 1.0 + (i as f32 * 0.37).sin() * 0.3,
            (i as f32).cos(),
            0.5
        ));
    }
    let path = dir.join("toy.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn train_then_evaluate_reproduces_the_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let csv = toy_csv(dir.path());
    let csv = csv.to_str().unwrap();
    let mut tsv = String::new();
    for i in 0..40 {
        tsv.push_str(&format!("n{i}\tn{}\n", (i + 2) % 40));
    }
    let graph = p(dir.path(), "g.tsv");
    std::fs::write(&graph, tsv).unwrap();
    let run = p(dir.path(), "run");
    let out = ok(&[
        "train",
        "--samples",
        csv,
        "--graph",
        &graph,
        "--graph-reg",
        "multiplier=0.2,neighbors=1",
        "--model",
        "mlp:8",
        "--epochs",
        "20",
        "--batch-size",
        "8",
        "--test",
        csv,
        "--out",
        &run,
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let trained = summary["test_accuracy"].as_f64().unwrap();
    let evaluated: serde_json::Value =
        serde_json::from_str(&ok(&["evaluate", "--run", &run, "--samples", csv, "--json"])).unwrap();
    assert_eq!(evaluated["accuracy"].as_f64().unwrap(), trained);
    for file in ["model.safetensors", "model.json", "history.csv", "curves.svg", "summary.json"] {
        assert!(dir.path().join("run").join(file).is_file(), "{file} missing");
    }
    let predictions = ok(&["predict", "--run", &run, "--samples", csv]);
    assert_eq!(predictions.lines().count(), 41);
}

#[test]
fn bad_input_fails_with_the_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "a\tb\t1.0\nb\tc\theavy\n").unwrap();
    let err = fails(&["graph", "stats", bad.to_str().unwrap()]);
    assert!(err.contains("bad.tsv") && err.contains("line 2"), "{err}");

    let out = p(dir.path(), "out.parquet");
    let err = fails(&["convert", "--idx-images", bad.to_str().unwrap(), "--samples", &out]);
    assert!(err.contains("bad.tsv"), "{err}");
    assert!(!Path::new(&out).exists(), "a failed convert left an output file");

    // Unknown cites paper: an error by default, skipped and counted with --skip-unknown.
    let content = dir.path().join("tiny.content");
    std::fs::write(&content, "p1\t1\t0\tA\np2\t0\t1\tB\n").unwrap();
    let cites = dir.path().join("tiny.cites");
    std::fs::write(&cites, "p1\tp2\np1\tp9\n").unwrap();
    let (s, g) = (p(dir.path(), "s.parquet"), p(dir.path(), "g.parquet"));
    let args = [
        "convert",
        "--content",
        content.to_str().unwrap(),
        "--cites",
        cites.to_str().unwrap(),
        "--samples",
        &s,
        "--graph",
        &g,
    ];
    let err = fails(&args);
    assert!(err.contains("tiny.cites") && err.contains("line 2") && err.contains("p9"), "{err}");
    let mut skip = args.to_vec();
    skip.push("--skip-unknown");
    let out = nsl(&skip);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1"));

    // Training: unknown config key, negative multiplier, a run with another model.
    let csv = toy_csv(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "samples = 'x.csv'\nepochz = 3\n").unwrap();
    let err = fails(&["train", "--config", config.to_str().unwrap()]);
    assert!(err.contains("run.toml") && err.contains("epochz"), "{err}");
    std::fs::write(&config, "graph_reg = 'multiplier=-1'\n").unwrap();
    let err = fails(&["train", "--config", config.to_str().unwrap()]);
    assert!(err.contains("run.toml") && err.contains("graph-reg multiplier"), "{err}");
    let err = fails(&["evaluate", "--run", &p(dir.path(), "no-such-run"), "--samples", csv.to_str().unwrap()]);
    assert!(err.contains("model.json"), "{err}");
}

/// Runs `nsl`, expects a usage error (status 2), and returns standard error.
fn usage_error(args: &[&str]) -> String {
    let out = nsl(args);
    assert_eq!(out.status.code(), Some(2), "nsl {args:?} should be a usage error");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(nsl(&["graph", "export", "x", "--format", "pdf", "--output", "y"]).status.code(), Some(2));
    assert_eq!(nsl(&["no-such-command"]).status.code(), Some(2));
    // Bad values of the flags with a fixed set of choices, or a small language, are caught by the
    // parser, and the message lists what is allowed.
    let eval = ["evaluate", "--run", "r", "--samples", "s.csv"];
    let err = usage_error(&[&eval[..], &["--attack", "cw"]].concat());
    assert!(err.contains("fgsm") && err.contains("pgd"), "{err}");
    let err = usage_error(&[&eval[..], &["--attack", "fgsm", "--norm", "l3"]].concat());
    assert!(err.contains("inf") && err.contains("l2") && err.contains("l1"), "{err}");
    let err = usage_error(&[&eval[..], &["--clip", "1:0"]].concat());
    assert!(err.contains("MIN:MAX"), "{err}");
    let err = usage_error(&["train", "--samples", "s.csv", "--optimizer", "rmsprop"]);
    assert!(err.contains("adam") && err.contains("sgd"), "{err}");
    let err = usage_error(&["train", "--samples", "s.csv", "--model", "rnn"]);
    assert!(err.contains("mlp[:UNITS,…], cnn[:FILTERS,…] or bow[:EMBED,UNITS,…]"), "{err}");
    let err = usage_error(&["train", "--samples", "s.csv", "--graph-reg", "multiplier=-1"]);
    assert!(err.contains("graph-reg multiplier") && err.contains("≥ 0"), "{err}");
    let err = usage_error(&["train", "--samples", "s.csv", "--adv-reg", "norm=l3"]);
    assert!(err.contains("`norm` in --adv-reg") && err.contains("l1, l2 or inf"), "{err}");
    // The library's aliases are accepted: this fails later, on the missing run.
    let err = fails(&[&eval[..], &["--attack", "fgsm", "--norm", "linf"]].concat());
    assert!(err.contains("model.json"), "{err}");
}

/// The run's `model.json`.
fn model_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).unwrap()).unwrap()
}

#[test]
fn config_file_settings_under_flags_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let csv = toy_csv(dir.path());
    let run = dir.path().join("run");
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "samples = {:?}\nout = {:?}\nepochs = 3\nseed = 5\noptimizer = 'sgd'\nmodel = 'mlp:4'\n\
             adv_reg = 'multiplier=0.3,step-size=0.05'\nstrict = true\n",
            csv.to_str().unwrap(),
            run.to_str().unwrap()
        ),
    )
    .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&ok(&["train", "--config", config.to_str().unwrap(), "--epochs", "2", "--json"])).unwrap();
    // The flag beats the file.
    assert_eq!(summary["epochs"], 2);
    // The file beats the defaults (seed 0, adam, mlp:50,50) ...
    let meta = model_json(&run);
    assert_eq!(meta["seed"], 5);
    assert_eq!(summary["model"], "mlp:4");
    let training = &meta["training"];
    assert_eq!(training["config"]["optimizer"], serde_json::json!({ "type": "sgd", "learning_rate": 0.01 }));
    assert_eq!(training["adv_reg"]["multiplier"], 0.3);
    // ... and what neither sets comes from the library's defaults.
    assert_eq!(training["config"]["batch_size"], 32);
    assert_eq!(training["adv_reg"]["neighbor"]["pgd_iterations"], 1);
    // A flag also beats the file for the settings parsed from text.
    ok(&["train", "--config", config.to_str().unwrap(), "--adv-reg", "multiplier=0.1", "--optimizer", "adam"]);
    let training = &model_json(&run)["training"];
    assert_eq!(training["adv_reg"]["multiplier"], 0.1);
    assert_eq!(training["adv_reg"]["neighbor"]["step_size"], 0.001);
    assert_eq!(training["config"]["optimizer"], serde_json::json!({ "type": "adam", "learning_rate": 0.001 }));
}

#[test]
fn model_json_records_the_adversarial_regularization() {
    let dir = tempfile::tempdir().unwrap();
    let csv = toy_csv(dir.path());
    let csv = csv.to_str().unwrap();
    let (plain, adv) = (dir.path().join("plain"), dir.path().join("adv"));
    let train = ["train", "--samples", csv, "--model", "mlp:4", "--epochs", "1"];
    ok(&[&train[..], &["--out", plain.to_str().unwrap()]].concat());
    ok(&[&train[..], &["--out", adv.to_str().unwrap(), "--adv-reg", "step-size=0.2,norm=inf,loss=kl"]].concat());
    assert_eq!(model_json(&plain)["training"]["adv_reg"], serde_json::Value::Null);
    let record = &model_json(&adv)["training"]["adv_reg"];
    assert_eq!(record["multiplier"], 0.2);
    assert_eq!(record["neighbor"]["step_size"], 0.2);
    assert_eq!(record["neighbor"]["grad_norm"], "infinity");
    assert_eq!(record["loss"]["distance"]["distance"], "kl_divergence");
}

#[test]
fn predict_quotes_ids_and_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,a,b,label\n");
    for i in 0..20 {
        let (x, label) = if i % 2 == 0 { (1.0, "\"cat, big\"") } else { (-1.0, "dog") };
        text.push_str(&format!("\"n,{i}\",{x},{},{label}\n", (i as f32).cos()));
    }
    let csv = dir.path().join("pets.csv");
    std::fs::write(&csv, text).unwrap();
    let run = p(dir.path(), "run");
    ok(&["train", "--samples", csv.to_str().unwrap(), "--model", "mlp:4", "--epochs", "2", "--out", &run]);
    let output = p(dir.path(), "predictions.csv");
    ok(&["predict", "--run", &run, "--samples", csv.to_str().unwrap(), "--output", &output]);
    let mut reader = csv::Reader::from_path(&output).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut classes = vec!["p_cat, big".to_string(), "p_dog".to_string()];
    classes.sort();
    let mut found = header[2..].to_vec();
    found.sort();
    assert_eq!((&header[..2], found), (&["id".to_string(), "prediction".to_string()][..], classes));
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(&rows[0][0], "n,0");
    for row in &rows {
        assert_eq!(row.len(), 4, "{row:?}");
        assert!(["cat, big", "dog"].contains(&&row[1]), "{row:?}");
    }
    // Standard output gets the same table.
    assert_eq!(
        ok(&["predict", "--run", &run, "--samples", csv.to_str().unwrap()]),
        std::fs::read_to_string(&output).unwrap()
    );
}

#[test]
fn build_graph_from_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("emb.csv");
    // a/b point the same way (cosine 1), c is orthogonal to both, d is the negative of a.
    std::fs::write(&csv, "id,x,y\na,1,0\nb,2,0\nc,0,1\nd,-1,0\n").unwrap();
    let graph = p(dir.path(), "g.parquet");
    let out =
        ok(&["build-graph", "--input", csv.to_str().unwrap(), "--output", &graph, "--threshold", "0.9", "--json"]);
    assert!(out.contains("edges"), "{out}");
    let stats: serde_json::Value = serde_json::from_str(&ok(&["graph", "stats", &graph, "--json"])).unwrap();
    assert_eq!(stats["edges"], 2, "only a↔b: {stats}");
    let err = fails(&["build-graph", "--input", csv.to_str().unwrap(), "--output", &graph, "--threshold", "1.5"]);
    assert!(err.contains("threshold"), "{err}");
}

#[test]
fn init_seed_changes_only_the_starting_weights() {
    let dir = tempfile::tempdir().unwrap();
    let csv = toy_csv(dir.path());
    let csv = csv.to_str().unwrap();
    let train = |name: &str, extra: &[&str]| {
        let run = p(dir.path(), name);
        let mut args =
            vec!["train", "--samples", csv, "--model", "mlp:8", "--epochs", "2", "--seed", "3", "--out", &run];
        args.extend_from_slice(extra);
        ok(&args);
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(name).join("model.json")).unwrap()).unwrap();
        (std::fs::read(dir.path().join(name).join("model.safetensors")).unwrap(), meta["seed"].clone())
    };
    let (plain, plain_seed) = train("plain", &[]);
    let (same, _) = train("same", &["--init-seed", "3"]);
    let (other, other_seed) = train("other", &["--init-seed", "4"]);
    assert_eq!(plain, same, "--init-seed equal to --seed must change nothing");
    assert_ne!(plain, other);
    // The run records the seed its weights came from, so that it can be rebuilt.
    assert_eq!((plain_seed, other_seed), (serde_json::json!(3), serde_json::json!(4)));
}

#[test]
fn train_help_explains_every_key_of_the_key_value_flags() {
    use nsl::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
    let help = ok(&["train", "--help"]);
    for (flag, keys) in
        [("--graph-reg", GraphRegConfig::KEYS), ("--adv-reg", AdvRegConfig::KEYS), ("--vat", VatConfig::KEYS)]
    {
        let text = help.split(&format!("{flag} <")).nth(1).unwrap_or_else(|| panic!("{flag} is not in the help"));
        let text = text.split("\n  --").next().unwrap_or(text).split("\n      --").next().unwrap_or(text);
        for key in keys {
            assert!(text.contains(&format!("`{key}`")), "the help of {flag} does not explain `{key}`: {text}");
        }
    }
}
