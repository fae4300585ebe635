//! The layering of docs/architecture.md holds in the code: a module uses only modules of lower
//! layers (issue 10: the `eval` ↔ `train` and `graph/export` ↔ `graph/parquet` cycles stay gone).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Module → layer, from the ```` ```layers ```` block of docs/architecture.md.
fn layers() -> HashMap<String, usize> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let block = doc.split("```layers\n").nth(1).expect("docs/architecture.md has a ```layers block");
    let block = block.split("```").next().unwrap();
    let mut out = HashMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (layer, modules) = line.split_once(':').expect("`N: module …` lines");
        let layer: usize = layer.trim().parse().unwrap();
        for m in modules.split_whitespace() {
            assert!(out.insert(m.to_string(), layer).is_none(), "{m} is listed twice");
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::X` modules a file names outside comments.
fn crate_uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for piece in line.split("crate::").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if matches!(top.as_str(), "cli" | "main" | "lib") {
            continue;
        }
        let Some(&own) = layers.get(&top) else {
            violations.push(format!("module `{top}` ({}) is not in docs/architecture.md's layers", rel.display()));
            continue;
        };
        for used in crate_uses(&std::fs::read_to_string(&file).unwrap()) {
            if used == top {
                continue;
            }
            match layers.get(&used) {
                Some(&layer) if layer < own => {}
                Some(&layer) => violations.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {layer}): only lower layers are allowed",
                    rel.display()
                )),
                None => violations.push(format!("{} uses crate::{used}, which is not in the layers", rel.display())),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// The checker itself sees a violation (so the test above can fail).
#[test]
fn an_upward_import_is_caught() {
    let uses = crate_uses("use crate::train::Trainer;\n// crate::report in a comment\nlet x = crate::eval::evaluate;");
    assert_eq!(uses, ["train", "eval"]);
    let layers = layers();
    assert!(layers["eval"] < layers["train"], "eval must sit below train");
}
