//! `nsl graph grand` (issue 26): a GRAND teacher on a tiny graph writes `nsl predict`'s CSV, which
//! `nsl train --distill` accepts; the same seed writes the same bytes; bad inputs are refused with
//! the flag named. (DropNode, the views' propagation and the consistency loss: `grand::views` unit
//! tests.)

use std::path::{Path, PathBuf};

mod common;
use common::{fails, ok, s, write};

/// Two linked clusters of four papers (classes `ai` and `db`): every node with its features, one
/// labeled paper per class, two validation and two test papers, the unlabeled rest, and the graph.
struct Files {
    all: PathBuf,
    train: PathBuf,
    validation: PathBuf,
    test: PathBuf,
    unlabeled: PathBuf,
    graph: PathBuf,
}

fn files(dir: &Path) -> Files {
    let rows = [
        ("a0", "1,0,1,0", "ai"),
        ("a1", "1,1,0,0", "ai"),
        ("a2", "0,1,1,0", "ai"),
        ("a3", "1,0,0,0", "ai"),
        ("d0", "0,0,1,1", "db"),
        ("d1", "0,1,0,1", "db"),
        ("d2", "0,0,0,1", "db"),
        ("d3", "1,0,0,1", "db"),
    ];
    let table = |name: &str, ids: &[&str], labels: bool| {
        let header = if labels { "id,f0,f1,f2,f3,label\n" } else { "id,f0,f1,f2,f3\n" };
        let body: String = rows
            .iter()
            .filter(|r| ids.contains(&r.0))
            .map(|(id, x, y)| if labels { format!("{id},{x},{y}\n") } else { format!("{id},{x}\n") })
            .collect();
        write(dir, name, &format!("{header}{body}"))
    };
    let every: Vec<&str> = rows.iter().map(|r| r.0).collect();
    Files {
        all: table("all.csv", &every, true),
        train: table("tr.csv", &["a0", "d0"], true),
        validation: table("va.csv", &["a1", "d1"], true),
        test: table("te.csv", &["a2", "d2"], true),
        unlabeled: table("un.csv", &["a1", "a2", "a3", "d1", "d2", "d3"], false),
        graph: write(dir, "g.tsv", "a0\ta1\na1\ta2\na2\ta3\na3\ta0\nd0\td1\nd1\td2\nd2\td3\nd3\td0\na3\td3\n"),
    }
}

/// `nsl graph grand` on the tiny files with a few epochs, plus `extra` flags.
fn grand_args<'a>(f: &'a Files, output: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "graph",
        "grand",
        s(&f.graph),
        "--samples",
        s(&f.all),
        "--train",
        s(&f.train),
        "--validation",
        s(&f.validation),
        "--test",
        s(&f.test),
        "--order",
        "2",
        "--views",
        "2",
        "--max-epochs",
        "30",
        "--threads",
        "1",
        "--output",
        s(output),
        "-q",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn grand_writes_a_teacher_that_distillation_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    let out = dir.path().join("grand.csv");
    let summary: serde_json::Value =
        serde_json::from_str(&ok(&grand_args(&f, &out, &["--ensemble", "2", "--seed", "3", "--json"]))).unwrap();
    let seeds = summary["seeds"].as_array().unwrap();
    assert_eq!(seeds.iter().map(|r| r["seed"].as_u64().unwrap()).collect::<Vec<_>>(), [3, 4]);
    assert!(seeds.iter().all(|r| r["epochs"].as_u64().unwrap() <= 30 && r["kept_epoch"].as_u64().unwrap() >= 1));
    assert!(summary["ensemble"]["test_accuracy"].as_f64().is_some(), "{summary}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,prediction,p_ai,p_db"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        let p: Vec<f64> = row[2..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row:?}");
        assert_eq!(row[1], if p[0] >= p[1] { "ai" } else { "db" }, "{row:?}");
    }

    // The same seed writes the same bytes.
    let again = dir.path().join("again.csv");
    ok(&grand_args(&f, &again, &["--ensemble", "2", "--seed", "3"]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());

    // `--ensemble 2 --seed 3` is the mean of the runs of seeds 3 and 4 (to the CSV's 6 decimals).
    let single = |seed: &str| -> Vec<Vec<f64>> {
        let path = dir.path().join(format!("seed{seed}.csv"));
        ok(&grand_args(&f, &path, &["--seed", seed]));
        let csv = std::fs::read_to_string(&path).unwrap();
        csv.lines().skip(1).map(|l| l.split(',').skip(2).map(|v| v.parse().unwrap()).collect()).collect()
    };
    let (three, four) = (single("3"), single("4"));
    for ((row, a), b) in rows.iter().zip(&three).zip(&four) {
        for (k, v) in row[2..].iter().enumerate() {
            let v: f64 = v.parse().unwrap();
            assert!((v - (a[k] + b[k]) / 2.0).abs() < 2e-6, "{row:?} vs {a:?} and {b:?}");
        }
    }

    // The teacher distills.
    let teacher = format!("teacher={}", s(&out));
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--samples",
        s(&f.train),
        "--unlabeled",
        s(&f.unlabeled),
        "--model",
        "mlp:4",
        "--epochs",
        "2",
        "--distill",
        &teacher,
        "--out",
        s(&run),
        "-q",
    ]);
}

#[test]
fn grand_refuses_bad_inputs_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    let out = dir.path().join("grand.csv");
    let e = fails(&grand_args(&f, &out, &["--dropnode", "1"]));
    assert!(e.contains("--dropnode 1: expected a rate in [0, 1)"), "{e}");
    let e = fails(&grand_args(&f, &out, &["--temperature", "0"]));
    assert!(e.contains("--temperature 0: expected a number > 0"), "{e}");
    // A training paper that is not among the samples.
    let stranger = write(dir.path(), "stranger.csv", "id,f0,f1,f2,f3,label\nzz,1,0,0,0,ai\na0,1,0,1,0,ai\n");
    let mut args = grand_args(&f, &out, &[]);
    let at = args.iter().position(|a| *a == s(&f.train)).unwrap();
    args[at] = s(&stranger);
    let e = fails(&args);
    assert!(e.contains("--train") && e.contains("the train node `zz` is not among the samples"), "{e}");
    // Training nodes without labels.
    args[at] = s(&f.unlabeled);
    let e = fails(&args);
    assert!(e.contains("--train") && e.contains("have no labels"), "{e}");
    // An output in a directory that does not exist fails before training.
    let nowhere = dir.path().join("no/such/dir/grand.csv");
    let e = fails(&grand_args(&f, &nowhere, &[]));
    assert!(e.contains("--output"), "{e}");
    assert!(!out.exists());
}
