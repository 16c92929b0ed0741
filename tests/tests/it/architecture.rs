//! The workspace's shape, read from `cargo metadata`: a shipped binary depends on libraries only, never
//! on another shipped binary, and never on the test kit. (What more than one binary needs lives in
//! earshot-core or in a library crate named by its role: earshot-state, earshot-upload,
//! earshot-collections.)

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// The test kit and the test-only crate ship nothing.
const NOT_SHIPPED: [&str; 2] = ["earshot-testkit", "earshot-tests"];

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn has_binary(package: &Value) -> bool {
    package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
}

#[test]
fn shipped_binaries_depend_on_libraries_only() {
    let metadata = metadata();
    let packages = metadata["packages"].as_array().unwrap();
    let binaries: BTreeSet<&str> = packages
        .iter()
        .filter(|p| has_binary(p))
        .map(|p| p["name"].as_str().unwrap())
        .filter(|name| !NOT_SHIPPED.contains(name))
        .collect();
    for expected in ["data-fetcher", "dashboard", "members", "analytics", "recap"] {
        assert!(binaries.contains(expected), "{expected} in {binaries:?}");
    }
    let mut leaning = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap();
        if !binaries.contains(name) {
            continue;
        }
        for dependency in package["dependencies"].as_array().unwrap() {
            // `kind` is null for `[dependencies]`, "dev" or "build" otherwise.
            let normal = dependency["kind"].is_null();
            let on = dependency["name"].as_str().unwrap();
            if normal && (binaries.contains(on) || NOT_SHIPPED.contains(&on)) {
                leaning.push(format!("{name} -> {on}"));
            }
        }
    }
    assert!(
        leaning.is_empty(),
        "shipped binaries depending on another binary or the test kit: {leaning:?}"
    );
}
