//! The practical ceiling for json-converter: parse every raw recently-played page into a
//! `serde_json::Value` and write it back out, nothing else: the same bytes in, no conversion.
//!
//! ```text
//! cargo bench -p json-converter --bench serde_ceiling -- STORAGE_DIR OUT_DIR
//! ```
//!
//! Reads `STORAGE_DIR/raw/recently_played/**.json`, writes each page to the same relative path under
//! OUT_DIR, one file after another (as json-converter does), and prints `{"files":…,"bytes":…}`.
//! `scripts/bench.py` runs it beside json-converter and the Python converter.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench` to every bench target; the paths are the other arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [storage, out] = args.as_slice() else {
        eprintln!("usage: serde_ceiling STORAGE_DIR OUT_DIR");
        std::process::exit(2);
    };
    let raw = Path::new(storage).join("raw").join("recently_played");
    let mut inputs = Vec::new();
    files(&raw, &mut inputs).unwrap_or_else(|e| panic!("listing {}: {e}", raw.display()));
    let mut bytes = 0u64;
    for input in &inputs {
        let text = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let page: serde_json::Value =
            serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let target = Path::new(out).join(input.strip_prefix(&raw).expect("under raw"));
        std::fs::create_dir_all(target.parent().expect("a file has a folder"))
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        let written = serde_json::to_vec(&page).expect("a Value serializes");
        std::fs::write(&target, &written).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        bytes += text.len() as u64;
    }
    println!("{{\"files\":{},\"bytes\":{bytes}}}", inputs.len());
}
