//! Helpers for the cross-binary tests in `tests/*.rs`.

use std::path::PathBuf;
use std::process::Command;

/// The path of a workspace binary, building it when this test run has not (`cargo test -p
/// earshot-tests` builds only this package; `cargo test --workspace` builds them all).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", name, "--bin", name])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p {name} failed");
    }
    path
}
