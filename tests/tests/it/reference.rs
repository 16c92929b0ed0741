//! `docs/reference.md`, the flag and environment reference, is generated from the code: every shipped
//! binary's `--help` (and each subcommand's), and the documented constants of `earshot_core::env`. This
//! test renders it and fails when the committed file differs; `EARSHOT_UPDATE_REFERENCE=1` rewrites it:
//!
//! ```sh
//! EARSHOT_UPDATE_REFERENCE=1 cargo test -p earshot-tests --test it reference::
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::architecture::{metadata, shipped_binaries};

use earshot_core::env::EARSHOT_UPDATE_REFERENCE;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every variable `earshot_core::env` names, with its doc comment, in the file's order: the constants
/// whose value is their own name (the defaults beside them are not variables).
fn variables(env_rs: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    for line in env_rs.lines() {
        let line = line.trim();
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim());
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub const ") {
            if let Some((name, value)) = rest.split_once(": &str = ") {
                if value.trim_end_matches(';').trim_matches('"') == name {
                    let text = doc.join(" ").replace('|', "\\|");
                    // Intra-doc links read as plain code in Markdown.
                    let text = text
                        .replace("[`crate::", "`earshot_core::")
                        .replace("[`", "`")
                        .replace("`]", "`");
                    found.push((name.to_string(), text));
                }
            }
        }
        doc.clear();
    }
    found
}

/// A binary's `--help` (or a subcommand's), with no Earshot variable set, so that clap shows no value.
fn help(bin: &Path, args: &[&str], names: &[String]) -> String {
    let mut command = Command::new(bin);
    command.args(args).arg("--help");
    for name in names {
        command.env_remove(name);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} --help: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The subcommands a help text lists under `Commands:` (clap's own `help` left out).
fn subcommands(help: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut listing = false;
    for line in help.lines() {
        if line == "Commands:" {
            listing = true;
            continue;
        }
        if listing {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help"
                && !name.is_empty()
                && line.starts_with("  ")
                && !line.starts_with("   ")
            {
                found.push(name.to_string());
            }
        }
    }
    found
}

fn render() -> String {
    let root = workspace_root();
    let env_rs = std::fs::read_to_string(root.join("crates/core/src/env.rs")).unwrap();
    let variables = variables(&env_rs);
    let names: Vec<String> = variables.iter().map(|(n, _)| n.clone()).collect();
    let mut out = String::from(
        "# Flags and environment\n\n\
         Generated from the code: each shipped binary's `--help` (and each subcommand's), and the\n\
         documented variables of `crates/core/src/env.rs`. Do not edit by hand: a test\n\
         (`tests/tests/it/reference.rs`) fails when this file is stale, and rewrites it with\n\
         `EARSHOT_UPDATE_REFERENCE=1 cargo test -p earshot-tests --test it reference::`.\n\n\
         Secrets (the token key, passwords, webhook URLs) are read from the environment or a file,\n\
         never from a flag.\n\n",
    );
    out.push_str("## Environment variables\n\n| variable | what it is |\n|---|---|\n");
    for (name, doc) in &variables {
        out.push_str(&format!("| `{name}` | {doc} |\n"));
    }
    let mut binaries: Vec<(String, PathBuf, Vec<String>)> = shipped_binaries(&metadata());
    binaries.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, _, bins) in &binaries {
        for bin in bins {
            let path = earshot_tests::binary(bin);
            let top = help(&path, &[], &names);
            out.push_str(&format!("\n## {bin}\n\n```text\n{top}\n```\n"));
            for sub in subcommands(&top) {
                let text = help(&path, &[&sub], &names);
                out.push_str(&format!("\n### {bin} {sub}\n\n```text\n{text}\n```\n"));
            }
        }
    }
    out
}

#[test]
fn the_flag_and_environment_reference_is_current() {
    let rendered = render();
    // What it must hold, whatever the wording: every binary and every variable.
    for expected in [
        "## data-fetcher",
        "### data-fetcher fetch",
        "## dashboard",
        "`MONGODB_URI`",
        "`EARSHOT_TOKEN_KEY`",
    ] {
        assert!(
            rendered.contains(expected),
            "the reference lacks {expected}"
        );
    }
    let path = workspace_root().join("docs/reference.md");
    if std::env::var_os(EARSHOT_UPDATE_REFERENCE).is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != rendered {
        let first = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/reference.md is stale (first difference at line {}: committed {:?}, generated {:?}); \
             rewrite it with `{EARSHOT_UPDATE_REFERENCE}=1 cargo test -p earshot-tests --test it reference::`",
            first + 1,
            committed.lines().nth(first),
            rendered.lines().nth(first)
        );
    }
}
