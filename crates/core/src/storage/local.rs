//! Local-folder backend: atomic writes by temp file + fsync + rename.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream;
use tokio::io::AsyncReadExt;

use super::{ByteStream, StorageError};

/// Temp files start with this, so listings skip them and a crashed write leaves nothing a reader takes.
const TEMP_MARKER: &str = ".earshot-tmp-";
const READ_CHUNK: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub(super) struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub(super) fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    pub(super) fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn io<'a>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
        move |source| StorageError::Io {
            operation,
            location: path.display().to_string(),
            source,
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.walk(prefix, false).await
    }

    /// Every file key under `prefix`: the objects, or (`temps`) only the temp files crashed writes left.
    async fn walk(&self, prefix: &str, temps: bool) -> Result<Vec<String>, StorageError> {
        // Walk from the deepest folder the prefix names, then filter by the string prefix.
        let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = self.root.join(folder);
        let mut keys = Vec::new();
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Self::io("list", &dir)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(Self::io("list", &dir))? {
                let path = entry.path();
                let kind = entry.file_type().await.map_err(Self::io("list", &path))?;
                if kind.is_dir() {
                    pending.push(path);
                    continue;
                }
                let temp = entry.file_name().to_string_lossy().starts_with(TEMP_MARKER);
                if temp != temps {
                    continue;
                }
                if let Ok(relative) = path.strip_prefix(&self.root) {
                    let key = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) {
                        keys.push(key);
                    }
                }
            }
        }
        Ok(keys)
    }

    pub(super) async fn read(&self, key: &str) -> Result<ByteStream, StorageError> {
        let path = self.path_of(key);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound {
                    location: path.display().to_string(),
                });
            }
            Err(e) => return Err(Self::io("read", &path)(e)),
        };
        let location = path.display().to_string();
        let chunks = stream::try_unfold((file, location), |(mut file, location)| async move {
            let mut buffer = vec![0u8; READ_CHUNK];
            let n = file
                .read(&mut buffer)
                .await
                .map_err(|source| StorageError::Io {
                    operation: "read",
                    location: location.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            buffer.truncate(n);
            Ok(Some((Bytes::from(buffer), (file, location))))
        });
        Ok(Box::pin(chunks))
    }

    pub(super) async fn write(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.write_with_mode(key, data, None).await
    }

    /// Write atomically; `mode` (Unix permissions) is set on the temp file before any data is written.
    pub(super) async fn write_with_mode(
        &self,
        key: &str,
        data: Bytes,
        mode: Option<u32>,
    ) -> Result<(), StorageError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = self.path_of(key);
        let dir = path
            .parent()
            .expect("a checked key has a file name")
            .to_path_buf();
        let name = path
            .file_name()
            .expect("a checked key has a file name")
            .to_string_lossy();
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(
            "{TEMP_MARKER}{}-{unique}-{name}",
            std::process::id()
        ));
        // The whole write runs on one blocking thread: tokio's file API would hop to the blocking pool
        // for every chunk and every call.
        tokio::task::spawn_blocking(move || {
            let result = write_synced(&dir, &temp, &path, &data, mode);
            if result.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            result
        })
        .await
        .expect("a storage write does not panic")
    }

    /// Write several files, each complete or absent, with one durability barrier for them all instead
    /// of two fsyncs a file: every temp file is written, the filesystem is synced once, then each is
    /// renamed into place and each folder synced once. A crash before the renames leaves only temp
    /// files (listings skip them); after, each file is whole or absent.
    pub(super) async fn write_batch(
        &self,
        files: Vec<(String, Bytes)>,
    ) -> Result<(), StorageError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut placed: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(files.len());
            let result = (|| {
                let mut created: Option<PathBuf> = None;
                for (key, data) in &files {
                    let path = root.join(key);
                    let dir = path.parent().expect("a checked key has a file name");
                    if created.as_deref() != Some(dir) {
                        std::fs::create_dir_all(dir)
                            .map_err(LocalStore::io("create folder", dir))?;
                        created = Some(dir.to_path_buf());
                    }
                    let name = path.file_name().expect("a checked key has a file name");
                    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
                    let temp = dir.join(format!(
                        "{TEMP_MARKER}{}-{unique}-{}",
                        std::process::id(),
                        name.to_string_lossy()
                    ));
                    std::fs::write(&temp, data).map_err(LocalStore::io("write", &temp))?;
                    placed.push((temp, path));
                }
                sync_written(&root, &placed)?;
                let mut dirs = std::collections::BTreeSet::new();
                for (temp, path) in &placed {
                    std::fs::rename(temp, path).map_err(LocalStore::io("rename into", path))?;
                    dirs.insert(path.parent().expect("a file has a folder").to_path_buf());
                }
                // Make the renames durable: one sync per folder.
                for dir in dirs {
                    if let Ok(handle) = std::fs::File::open(&dir) {
                        let _ = handle.sync_all();
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                for (temp, _) in &placed {
                    let _ = std::fs::remove_file(temp);
                }
            }
            result
        })
        .await
        .expect("a storage write does not panic")
    }

    /// A whole file in one blocking read.
    pub(super) async fn read_all(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path_of(key);
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound {
                location: path.display().to_string(),
            }),
            Err(e) => Err(Self::io("read", &path)(e)),
        }
    }

    pub(super) async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Self::io("stat", &path)(e)),
        }
    }

    pub(super) async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                // Folders left empty go too (an object store has no folders: `user=<id>/` must not
                // outlive the member's last object). The first folder still holding anything stops it.
                let mut folder = path.parent();
                while let Some(dir) =
                    folder.filter(|d| d.starts_with(&self.root) && *d != self.root)
                {
                    if tokio::fs::remove_dir(dir).await.is_err() {
                        break;
                    }
                    folder = dir.parent();
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Self::io("delete", &path)(e)),
        }
    }
}

impl LocalStore {
    /// Delete the temp files a crashed write left under `prefix` (and the folders they leave empty);
    /// returns how many.
    pub(super) async fn remove_temp_files(&self, prefix: &str) -> Result<u64, StorageError> {
        let temps = self.walk(prefix, true).await?;
        for key in &temps {
            self.delete(key).await?;
        }
        Ok(temps.len() as u64)
    }
}

/// Make the temp files of a batch durable: one `syncfs` of the filesystem holding `root` on Linux, an
/// fsync of each file elsewhere.
fn sync_written(root: &Path, placed: &[(PathBuf, PathBuf)]) -> Result<(), StorageError> {
    #[cfg(target_os = "linux")]
    {
        let _ = placed;
        let handle = std::fs::File::open(root).map_err(LocalStore::io("sync", root))?;
        rustix::fs::syncfs(&handle)
            .map_err(|e| LocalStore::io("sync", root)(std::io::Error::from(e)))?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = root;
        for (temp, _) in placed {
            std::fs::File::open(temp)
                .and_then(|f| f.sync_all())
                .map_err(LocalStore::io("sync", temp))?;
        }
    }
    Ok(())
}

/// Create the folder `dir`, write `data` to the new file `temp` in it (with `mode`, before any data),
/// fsync it, rename it to `path` and fsync the folder, so the file appears whole or not at all, and
/// stays after a crash.
fn write_synced(
    dir: &Path,
    temp: &Path,
    path: &Path,
    data: &[u8],
    mode: Option<u32>,
) -> Result<(), StorageError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).map_err(LocalStore::io("create folder", dir))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let mut file = options.open(temp).map_err(LocalStore::io("write", temp))?;
    file.write_all(data)
        .map_err(LocalStore::io("write", temp))?;
    file.sync_all().map_err(LocalStore::io("sync", temp))?;
    drop(file);
    std::fs::rename(temp, path).map_err(LocalStore::io("rename into", path))?;
    // Make the rename itself durable.
    if let Ok(dir_handle) = std::fs::File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}
