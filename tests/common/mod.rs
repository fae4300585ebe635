//! Helpers shared by the integration tests: running the `nsl` binary, and data fixtures. Each test
//! file that says `mod common;` uses some of them.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output};

/// Runs the `nsl` binary that Cargo built for these tests.
pub fn nsl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsl")).args(args).output().expect("nsl runs")
}

/// Runs `nsl args`, which must succeed; returns its standard output.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    let out = nsl(args);
    assert!(out.status.success(), "nsl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `nsl args`, which must exit with status `code` (never a panic's 101); returns its standard
/// error.
#[track_caller]
pub fn fails_with(code: i32, args: &[&str]) -> String {
    let out = nsl(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "nsl {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "nsl {args:?} panicked: {stderr}");
    stderr
}

/// Runs `nsl args`, which must fail with status 1 (a runtime error); returns its standard error.
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    fails_with(1, args)
}

/// `bytes`, gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An IDX file: magic `00 00 type ndims`, big-endian sizes, then `data`.
pub fn idx_bytes(element: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, element, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The names of the entries of `dir`, sorted: what a command left behind.
pub fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A path as the `&str` the command line takes (the tests' temporary paths are UTF-8).
pub fn s(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
