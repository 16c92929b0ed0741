//! Reading an export: a zip (its index read once), a folder (symlinks refused) or single files, each
//! file capped, the whole capped.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use earshot_core::history::{VIDEO_FILE_PREFIX, is_history_file};

/// The largest export file read, uncompressed (Spotify's are 10–15 MB; a file larger than this, as
/// declared by the zip or as actually read, is refused).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The most an import reads in all, uncompressed (a decade of heavy listening is about 400 MB).
pub const MAX_TOTAL_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// The most entries a zip may list (Spotify's holds a few dozen files).
pub const MAX_ZIP_ENTRIES: usize = 100_000;

/// One export file to import: its name in the export and where it is.
pub(crate) struct Source {
    /// Where it was read from (the zip and the entry, or the path), for messages.
    pub(crate) origin: String,
    /// The file's name (`Streaming_History_Audio_2023-2024_3.json`).
    pub(crate) name: String,
    /// How to read it.
    pub(crate) from: From,
}

pub(crate) enum From {
    File(PathBuf),
    /// The zip's position in [`Export::zips`] and the entry's index in it.
    Zip(usize, usize),
}

impl Source {
    pub(crate) fn is_video(&self) -> bool {
        self.name.starts_with(VIDEO_FILE_PREFIX)
    }
}

/// Too big: an error naming the file, the cap and how to proceed.
pub(crate) fn too_big(origin: &str, what: &str, size: u64, cap: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "`{origin}`: {what} {size} bytes, over the import's cap of {cap} bytes per file. Spotify's \
         export files are 10–15 MB: this is not one of them, or it is damaged. Nothing was stored."
    )
}

/// The files of an export: each zip's index is read once and kept open.
pub(crate) struct Export {
    pub(crate) sources: Vec<Source>,
    pub(crate) zips: Vec<zip::ZipArchive<std::fs::File>>,
    /// Bytes read so far (checked against [`MAX_TOTAL_BYTES`]).
    pub(crate) read: u64,
}

impl Export {
    /// The export files under `paths`: a zip (its `Streaming_History_*` entries), a folder (searched
    /// below), or single JSON files; sorted by name, so a run always goes in the same order.
    pub(crate) fn open(paths: &[PathBuf]) -> Result<Export> {
        let mut export = Export {
            sources: Vec::new(),
            zips: Vec::new(),
            read: 0,
        };
        for path in paths {
            let meta =
                std::fs::metadata(path).with_context(|| format!("reading `{}`", path.display()))?;
            if meta.is_dir() {
                let root = path
                    .canonicalize()
                    .with_context(|| format!("reading `{}`", path.display()))?;
                walk(&root, path, &mut export.sources)?;
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
            {
                export.add_zip(path)?;
            } else {
                let name = file_name(path);
                if !name.ends_with(".json") {
                    bail!(
                        "`{}` is neither a zip, a folder, nor a `Streaming_History_Audio_*.json` file",
                        path.display()
                    );
                }
                export.sources.push(Source {
                    origin: path.display().to_string(),
                    name,
                    from: From::File(path.clone()),
                });
            }
        }
        if export.sources.is_empty() {
            bail!(
                "no `Streaming_History_Audio_*.json` file in {}: give the zip Spotify sent \
                 (`my_spotify_data.zip`), the folder inside it, or its files",
                paths
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        export
            .sources
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.origin.cmp(&b.origin)));
        Ok(export)
    }

    pub(crate) fn add_zip(&mut self, path: &Path) -> Result<()> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .with_context(|| format!("`{}` is not a readable zip", path.display()))?;
        if archive.len() > MAX_ZIP_ENTRIES {
            bail!(
                "`{}` lists {} entries, over the import's cap of {MAX_ZIP_ENTRIES} (Spotify's export \
                 holds a few dozen files). Nothing was stored.",
                path.display(),
                archive.len()
            );
        }
        let zip = self.zips.len();
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .with_context(|| format!("reading the index of `{}`", path.display()))?;
            let inner = entry
                .enclosed_name()
                .map(|p| p.to_string_lossy().into_owned())
                .with_context(|| {
                    format!(
                        "`{}`: entry {index} has an unsafe name (`{}`)",
                        path.display(),
                        String::from_utf8_lossy(entry.name_raw())
                    )
                })?;
            let name = inner.rsplit('/').next().unwrap_or(&inner).to_string();
            if entry.is_file() && is_history_file(&name) {
                let origin = format!("{}:{inner}", path.display());
                if entry.size() > MAX_FILE_BYTES {
                    return Err(too_big(&origin, "declares", entry.size(), MAX_FILE_BYTES));
                }
                self.sources.push(Source {
                    origin,
                    name,
                    from: From::Zip(zip, index),
                });
            }
        }
        self.zips.push(archive);
        Ok(())
    }

    /// The bytes of source `i`, read through a limit: never more than [`MAX_FILE_BYTES`] + 1 are
    /// held, and the whole import stays under [`MAX_TOTAL_BYTES`].
    pub(crate) fn read(&mut self, i: usize) -> Result<Vec<u8>> {
        let source = &self.sources[i];
        let mut bytes = Vec::new();
        let limit = MAX_FILE_BYTES + 1;
        match &source.from {
            From::File(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("reading `{}`", source.origin))?;
                file.take(limit)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading `{}`", source.origin))?;
            }
            From::Zip(zip, index) => {
                self.zips[*zip]
                    .by_index(*index)
                    .with_context(|| format!("reading `{}`", source.origin))?
                    .take(limit)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading `{}`", source.origin))?;
            }
        }
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_big(
                &source.origin,
                "expands past",
                MAX_FILE_BYTES,
                MAX_FILE_BYTES,
            ));
        }
        self.read += bytes.len() as u64;
        if self.read > MAX_TOTAL_BYTES {
            bail!(
                "`{}`: the export holds more than {MAX_TOTAL_BYTES} bytes of history files, over the \
                 import's cap. Import it in parts (its files one by one, or a folder at a time). \
                 Nothing was stored.",
                source.origin
            );
        }
        Ok(bytes)
    }
}

/// The history files below `dir`, refusing any symlink (a file or a folder) and anything whose real
/// path leaves `root` (the folder named on the command line).
pub(crate) fn walk(root: &Path, dir: &Path, found: &mut Vec<Source>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading `{}`", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            bail!(
                "`{}` is a symbolic link: an import reads only the export's own files, never what a \
                 link points at. Replace the link with the file it stands for, or import the zip as \
                 Spotify sent it. Nothing was stored.",
                path.display()
            );
        }
        let real = path
            .canonicalize()
            .with_context(|| format!("reading `{}`", path.display()))?;
        if !real.starts_with(root) {
            bail!(
                "`{}` resolves to `{}`, outside the folder `{}`. Nothing was stored.",
                path.display(),
                real.display(),
                root.display()
            );
        }
        if kind.is_dir() {
            walk(root, &path, found)?;
        } else if is_history_file(&file_name(&path)) {
            found.push(Source {
                origin: path.display().to_string(),
                name: file_name(&path),
                from: From::File(path),
            });
        }
    }
    Ok(())
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
