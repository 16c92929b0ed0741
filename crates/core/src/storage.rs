//! One storage type for the whole pipeline, addressed by a URL: a local folder (the default `./data`)
//! or `gs://bucket/prefix` on Google Cloud Storage.
//!
//! Keys are relative, `/`-separated paths such as `raw/recently_played/user=ana/20240301T181500.000Z.json`.
//! Writes are atomic: a temp file renamed into place locally, one buffered upload on GCS, so a reader
//! never sees half an object. Nothing else in the project talks to GCS; readers that need local files
//! (polars reading Parquet) call [`Storage::stage_local`].

mod gcs;
mod local;

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

pub use gcs::GcsOptions;

/// A stream of an object's bytes, in chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// Why a storage operation failed. Every variant names the URL or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage URL is not a path or `gs://bucket[/prefix]`.
    #[error("invalid storage URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key is empty, absolute, or has an empty, `.` or `..` segment.
    #[error("invalid storage key `{key}`: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The object does not exist.
    #[error("`{location}` does not exist")]
    NotFound {
        /// Full location (path or gs:// URL).
        location: String,
    },
    /// A local file operation failed.
    #[error("{operation} `{location}` failed: {source}")]
    Io {
        /// What was being done (`write`, `read`, …).
        operation: &'static str,
        /// Full local path.
        location: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A GCS request failed (after the client's bounded retries).
    #[error("{operation} `{location}` failed: {source}")]
    Gcs {
        /// What was being done (`write`, `read`, `list`, …).
        operation: &'static str,
        /// Full gs:// URL.
        location: String,
        /// The client's error.
        source: Box<google_cloud_storage::Error>,
    },
    /// Creating the GCS clients failed (credentials, endpoint).
    #[error("cannot connect to GCS for `{url}`: {message}")]
    GcsSetup {
        /// The storage URL.
        url: String,
        /// The client builder's message.
        message: String,
    },
}

/// Where a [`Storage`] points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local folder.
    Local(PathBuf),
    /// A GCS bucket and an object-name prefix (empty, or ending in `/`).
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Object-name prefix under which all keys live.
        prefix: String,
    },
}

impl StorageUrl {
    /// Parse `gs://bucket[/prefix]` or a local path (`file://` accepted too).
    pub fn parse(url: &str) -> Result<StorageUrl, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("gs://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=222).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !bucket_ok {
                return Err(invalid(
                    "the bucket name must be 3-222 characters of a-z, 0-9, `-`, `_`, `.`",
                ));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
                return Err(invalid(
                    "the prefix may not contain `.`, `..` or empty segments",
                ));
            }
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(StorageUrl::Gcs {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if let Some((scheme, _)) = url.split_once("://")
            && scheme != "file"
        {
            return Err(invalid(
                "only local paths, `file://` and `gs://bucket/prefix` are supported",
            ));
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() {
            return Err(invalid("the path is empty"));
        }
        Ok(StorageUrl::Local(PathBuf::from(path)))
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Local(path) => write!(f, "{}", path.display()),
            StorageUrl::Gcs { bucket, prefix } => write!(f, "gs://{bucket}/{prefix}"),
        }
    }
}

/// Storage addressed by a URL. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    url: StorageUrl,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local(local::LocalStore),
    Gcs(gcs::GcsStore),
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Storage({})", self.url)
    }
}

/// A local copy of a prefix: the folder itself for local storage, a temp folder for GCS (removed on drop).
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Staged {
    /// The local folder holding the prefix's objects, keyed as in storage below the prefix.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage {
    /// Open the storage a URL names. `gs://` URLs use Application Default Credentials, or anonymous
    /// credentials against the emulator named by `STORAGE_EMULATOR_HOST`.
    pub async fn open(url: &str) -> Result<Storage, StorageError> {
        match StorageUrl::parse(url)? {
            StorageUrl::Local(path) => Ok(Storage::local(path)),
            StorageUrl::Gcs { bucket, prefix } => {
                Storage::gcs(&bucket, &prefix, GcsOptions::from_env()).await
            }
        }
    }

    /// Storage in a local folder (created on first write).
    pub fn local(root: impl Into<PathBuf>) -> Storage {
        let root = root.into();
        Storage {
            url: StorageUrl::Local(root.clone()),
            backend: Backend::Local(local::LocalStore::new(root)),
        }
    }

    /// Storage in a GCS bucket under `prefix`.
    pub async fn gcs(
        bucket: &str,
        prefix: &str,
        options: GcsOptions,
    ) -> Result<Storage, StorageError> {
        let url = StorageUrl::parse(&format!("gs://{bucket}/{prefix}"))?;
        let StorageUrl::Gcs { bucket, prefix } = url.clone() else {
            unreachable!("parsed a gs:// URL")
        };
        let store = gcs::GcsStore::connect(bucket, prefix, options)
            .await
            .map_err(|message| StorageError::GcsSetup {
                url: url.to_string(),
                message,
            })?;
        Ok(Storage {
            url,
            backend: Backend::Gcs(store),
        })
    }

    /// GCS storage over given clients (tests pass a `StorageControl` built from a stub).
    pub fn gcs_with_clients(
        bucket: &str,
        prefix: &str,
        client: google_cloud_storage::client::Storage,
        control: google_cloud_storage::client::StorageControl,
    ) -> Result<Storage, StorageError> {
        let url = StorageUrl::parse(&format!("gs://{bucket}/{prefix}"))?;
        let StorageUrl::Gcs { bucket, prefix } = url.clone() else {
            unreachable!("parsed a gs:// URL")
        };
        Ok(Storage {
            url,
            backend: Backend::Gcs(gcs::GcsStore::with_clients(bucket, prefix, client, control)),
        })
    }

    /// Where this storage points.
    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// The full location of a key, for messages: a local path or a gs:// URL.
    pub fn location(&self, key: &str) -> String {
        match &self.url {
            StorageUrl::Local(root) => root.join(key).display().to_string(),
            StorageUrl::Gcs { bucket, prefix } => format!("gs://{bucket}/{prefix}{key}"),
        }
    }

    /// Every key that starts with `prefix` (a plain string prefix, as on GCS), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        check_prefix(prefix)?;
        let mut keys = match &self.backend {
            Backend::Local(store) => store.list(prefix).await?,
            Backend::Gcs(store) => store.list(prefix).await?,
        };
        keys.sort();
        Ok(keys)
    }

    /// Stream an object's bytes.
    pub async fn read(&self, key: &str) -> Result<ByteStream, StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(store) => store.read(key).await,
            Backend::Gcs(store) => store.read(key).await,
        }
    }

    /// Read a whole object into memory (for small objects: state files, single pages).
    pub async fn read_all(&self, key: &str) -> Result<Bytes, StorageError> {
        check_key(key)?;
        if let Backend::Local(store) = &self.backend {
            return store.read_all(key).await;
        }
        let mut stream = self.read(key).await?;
        let mut buffer = Vec::new();
        while let Some(chunk) = stream.next().await {
            buffer.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(buffer))
    }

    /// Write an object atomically, replacing any previous version.
    pub async fn write(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(store) => store.write(key, data).await,
            Backend::Gcs(store) => store.write(key, data).await,
        }
    }

    /// Write several objects, each atomically (complete or absent). On a local disk the batch shares one
    /// durability barrier instead of two fsyncs an object; on GCS every object is one upload, several
    /// at once.
    pub async fn write_batch(&self, files: Vec<(String, Bytes)>) -> Result<(), StorageError> {
        for (key, _) in &files {
            check_key(key)?;
        }
        match &self.backend {
            Backend::Local(store) => store.write_batch(files).await,
            Backend::Gcs(store) => {
                futures::stream::iter(files)
                    .map(|(key, data)| async move { store.write(&key, data).await })
                    .buffer_unordered(8)
                    .try_collect::<Vec<()>>()
                    .await?;
                Ok(())
            }
        }
    }

    /// Write an object only its owner may read: mode 0600 on a local disk (set before the data goes in);
    /// on GCS, access is the bucket's IAM. For secrets at rest (encrypted token records).
    pub async fn write_private(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(store) => store.write_with_mode(key, data, Some(0o600)).await,
            Backend::Gcs(store) => store.write(key, data).await,
        }
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(store) => store.exists(key).await,
            Backend::Gcs(store) => store.exists(key).await,
        }
    }

    /// Delete an object. Returns whether it existed; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(store) => store.delete(key).await,
            Backend::Gcs(store) => store.delete(key).await,
        }
    }

    /// Delete every object under `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let keys = self.list(prefix).await?;
        for key in &keys {
            self.delete(key).await?;
        }
        Ok(keys.len() as u64)
    }

    /// Delete the temp files (`.earshot-tmp-*`) a crashed local write left under `prefix`; returns how
    /// many. [`Storage::list`] never shows them; GCS has none (each object is one upload).
    pub async fn remove_temp_files(&self, prefix: &str) -> Result<u64, StorageError> {
        check_prefix(prefix)?;
        match &self.backend {
            Backend::Local(store) => store.remove_temp_files(prefix).await,
            Backend::Gcs(_) => Ok(0),
        }
    }

    /// A local folder holding every object under `prefix` (which should end in `/`). Local storage
    /// returns its own folder; GCS downloads the objects into a temp folder kept alive by [`Staged`].
    pub async fn stage_local(&self, prefix: &str) -> Result<Staged, StorageError> {
        check_prefix(prefix)?;
        match &self.backend {
            Backend::Local(store) => Ok(Staged {
                path: store.path_of(prefix),
                _temp: None,
            }),
            Backend::Gcs(_) => {
                let temp = tempfile::Builder::new()
                    .prefix("earshot-stage-")
                    .tempdir()
                    .map_err(|source| StorageError::Io {
                        operation: "create temp folder for",
                        location: self.location(prefix),
                        source,
                    })?;
                let staged = local::LocalStore::new(temp.path().to_path_buf());
                for key in self.list(prefix).await? {
                    let data = self.read_all(&key).await?;
                    staged
                        .write(key.strip_prefix(prefix).unwrap_or(&key), data)
                        .await?;
                }
                Ok(Staged {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }
}

/// A key must be a relative path of non-empty segments, none of them `.` or `..`.
fn check_key(key: &str) -> Result<(), StorageError> {
    let invalid = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.starts_with('/') {
        return invalid("it must be relative (no leading `/`)");
    }
    if key.contains('\\') || key.contains('\0') {
        return invalid("it may not contain `\\` or NUL");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return invalid("it may not have empty, `.` or `..` segments");
    }
    Ok(())
}

/// A prefix is empty or a key, optionally ending in `/`.
fn check_prefix(prefix: &str) -> Result<(), StorageError> {
    match prefix.strip_suffix('/').unwrap_or(prefix) {
        "" => Ok(()),
        trimmed => check_key(trimmed).map_err(|_| StorageError::InvalidKey {
            key: prefix.to_string(),
            reason: "a prefix may not be absolute or have `.`/`..` or empty segments",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            StorageUrl::parse("./data").unwrap(),
            StorageUrl::Local(PathBuf::from("./data"))
        );
        assert_eq!(
            StorageUrl::parse("file:///tmp/x").unwrap(),
            StorageUrl::Local(PathBuf::from("/tmp/x"))
        );
        assert_eq!(
            StorageUrl::parse("gs://my-bucket/earshot/prod/").unwrap(),
            StorageUrl::Gcs {
                bucket: "my-bucket".into(),
                prefix: "earshot/prod/".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("gs://my-bucket").unwrap(),
            StorageUrl::Gcs {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        for bad in [
            "gs://",
            "gs://UPPER",
            "s3://bucket/x",
            "gs://bucket/../x",
            "",
        ] {
            let err = StorageUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn keys_are_checked() {
        for good in ["a", "raw/x/user=a/1.json"] {
            check_key(good).unwrap();
        }
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/"] {
            let err = check_key(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        check_prefix("").unwrap();
        check_prefix("raw/").unwrap();
        assert!(check_prefix("../").is_err());
    }
}
