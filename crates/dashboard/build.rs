//! The templates folder as a table the template loader reads: every `templates/*.html`, compiled in,
//! so that adding a template is adding a file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when the script runs (not `env!`, fixed when it was compiled): a build script's binary is
    // reused across checkouts that share a target folder.
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&root).join("templates");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the templates folder")
        .map(|e| {
            e.expect("a templates entry")
                .file_name()
                .into_string()
                .expect("a UTF-8 name")
        })
        .filter(|name| name.ends_with(".html"))
        .collect();
    names.sort();
    let mut table = String::from("&[\n");
    for name in names {
        let path = dir.join(&name);
        writeln!(
            table,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    table.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(out, table).expect("writing templates.rs");
}
