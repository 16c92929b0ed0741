//! The workspace's shape, read from `cargo metadata`: a shipped binary depends on libraries only, never
//! on another shipped binary, and never on the test kit. (What more than one binary needs lives in
//! earshot-core or in a library crate named by its role: earshot-state, earshot-upload,
//! earshot-collections.)

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// The test kit and the test-only crate ship nothing.
const NOT_SHIPPED: [&str; 2] = ["earshot-testkit", "earshot-tests"];

pub(crate) fn metadata() -> Value {
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

/// The shipped binaries: (package, its manifest's folder, its binary targets).
pub(crate) fn shipped_binaries(metadata: &Value) -> Vec<(String, std::path::PathBuf, Vec<String>)> {
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| has_binary(p) && !NOT_SHIPPED.contains(&p["name"].as_str().unwrap()))
        .map(|p| {
            let manifest = std::path::PathBuf::from(p["manifest_path"].as_str().unwrap());
            let bins = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect();
            (
                p["name"].as_str().unwrap().to_string(),
                manifest.parent().unwrap().to_path_buf(),
                bins,
            )
        })
        .collect()
}

/// Where a group's data lives (`--storage`, `--group-config`, `--mongodb-uri`, `--database`) is
/// declared once, in `earshot_core::cli`: no shipped binary's source declares one of those flags, and
/// every binary's `--help` shows them with their environment variables.
#[test]
fn no_binary_declares_the_shared_flags() {
    use earshot_core::env;
    let shared = [
        env::EARSHOT_STORAGE,
        env::EARSHOT_GROUP_CONFIG,
        env::MONGODB_URI,
        env::EARSHOT_DATABASE,
    ];
    let binaries = shipped_binaries(&metadata());
    assert!(binaries.len() >= 9, "{binaries:?}");
    let mut declared = Vec::new();
    for (package, dir, bins) in &binaries {
        let sources = dir.join("src");
        for (file, bytes) in earshot_tests::files_under(&sources) {
            if !file.ends_with(".rs") {
                continue;
            }
            let text = String::from_utf8(bytes).unwrap();
            for (n, line) in text.lines().enumerate() {
                let declares = line.contains("#[arg(")
                    && shared
                        .iter()
                        .any(|name| line.contains(&format!("env::{name}")));
                if declares {
                    declared.push(format!(
                        "{}:{}: {}",
                        sources.join(&file).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
        for bin in bins {
            let out = Command::new(earshot_tests::binary(bin))
                .arg("--help")
                .env_remove(env::MONGODB_URI)
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{bin} --help: {help}");
            let mut flags = vec![
                ("--storage", env::EARSHOT_STORAGE),
                ("--group-config", env::EARSHOT_GROUP_CONFIG),
            ];
            // The converter reads and writes files only.
            if package != "json-converter" {
                flags.extend([
                    ("--mongodb-uri", env::MONGODB_URI),
                    ("--database", env::EARSHOT_DATABASE),
                ]);
            }
            for (flag, name) in flags {
                assert!(help.contains(flag), "{bin} --help lists no {flag}:\n{help}");
                assert!(
                    help.contains(&format!("[env: {name}")),
                    "{bin} --help names no {name}:\n{help}"
                );
            }
        }
    }
    assert!(
        declared.is_empty(),
        "binaries declaring the shared flags themselves:\n{}",
        declared.join("\n")
    );
}
