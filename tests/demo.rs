//! `nsl demo` (MNIST): the three recipes side by side, and what AutoAttack says of them. A short run
//! (1 epoch, AutoAttack on 100 digits) checks the table's invariants, not its figures.

mod common;
use common::ok;

#[test]
fn demo_reports_fgsm_and_autoattack_for_three_recipes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let out_s = out.to_string_lossy().into_owned();
    let stdout = ok(&["demo", "--out", &out_s, "--epochs", "1", "--autoattack-samples", "100"]);
    assert!(stdout.contains("| model | clean | FGSM (white-box)"), "{stdout}");
    assert!(stdout.contains("AutoAttack: the first 100"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["autoattack_samples"], 100);
    let models = summary["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["base", "NSL's recipe", "robust recipe"]);
    for m in models {
        let aa = &m["autoattack"];
        let clean = aa["clean_accuracy"].as_f64().unwrap();
        let mut last = clean;
        // Cumulative: each attack can only lower the robust accuracy.
        for stage in aa["stages"].as_array().unwrap() {
            let r = stage["robust_accuracy"].as_f64().unwrap();
            assert!(r <= last + 1e-12, "{m}");
            last = r;
        }
        assert_eq!(aa["robust_accuracy"].as_f64().unwrap(), last);
        // AutoAttack's first attack is stronger than one FGSM step on the same digits.
        assert!(last <= aa["fgsm_accuracy"].as_f64().unwrap() + 1e-12, "{m}");
    }
    // The base model, trained without any attack, keeps almost nothing under AutoAttack.
    assert!(models[0]["autoattack"]["robust_accuracy"].as_f64().unwrap() < 0.1, "{summary}");
    for file in ["adversarial_digits.png", "base_curves.svg", "nsl_recipe_curves.svg", "robust_recipe_curves.svg"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
}
