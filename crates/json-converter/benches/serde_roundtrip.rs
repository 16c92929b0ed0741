//! A reference point for json-converter: parse every raw recently-played page into a
//! `serde_json::Value` and write it back out, nothing else (the same bytes in, no conversion, no
//! fsync), on `--threads N` threads (default 1), each taking every Nth file.
//!
//! ```text
//! cargo bench -p json-converter --bench serde_roundtrip -- STORAGE_DIR OUT_DIR [--threads N]
//! ```
//!
//! Reads `STORAGE_DIR/raw/recently_played/**.json`, writes each page to the same relative path under
//! OUT_DIR, and prints `{"files":…,"bytes":…,"threads":…}`. `scripts/bench/run.py` runs it on one
//! thread and on every core beside json-converter and the Python converter.

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

/// Parse and write back every `threads`-th file from `first`; returns the bytes read.
fn round_trip(inputs: &[PathBuf], raw: &Path, out: &Path, first: usize, threads: usize) -> u64 {
    let mut bytes = 0u64;
    for input in inputs.iter().skip(first).step_by(threads) {
        let text = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let page: serde_json::Value =
            serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let target = out.join(input.strip_prefix(raw).expect("under raw"));
        std::fs::create_dir_all(target.parent().expect("a file has a folder"))
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        let written = serde_json::to_vec(&page).expect("a Value serializes");
        std::fs::write(&target, &written).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        bytes += text.len() as u64;
    }
    bytes
}

fn main() {
    // `cargo bench` passes `--bench` to every bench target; skip it.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut paths = Vec::new();
    let mut threads = 1usize;
    while let Some(arg) = args.next() {
        if arg == "--threads" {
            threads = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| panic!("`--threads` needs a positive number"));
        } else {
            paths.push(arg);
        }
    }
    let [storage, out] = paths.as_slice() else {
        eprintln!("usage: serde_roundtrip STORAGE_DIR OUT_DIR [--threads N]");
        std::process::exit(2);
    };
    let raw = Path::new(storage).join("raw").join("recently_played");
    let out = Path::new(out);
    let mut inputs = Vec::new();
    files(&raw, &mut inputs).unwrap_or_else(|e| panic!("listing {}: {e}", raw.display()));
    let bytes: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|first| {
                let (inputs, raw) = (&inputs, &raw);
                scope.spawn(move || round_trip(inputs, raw, out, first, threads))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .sum()
    });
    println!(
        "{{\"files\":{},\"bytes\":{bytes},\"threads\":{threads}}}",
        inputs.len()
    );
}
