//! Google Cloud Storage backend, through the google-cloud-storage crate: `Storage` (JSON API) for
//! write and read, `StorageControl` (gRPC) for list, delete and metadata.
//!
//! Credentials are Application Default Credentials (what Composer and Dataproc workers have), or
//! anonymous against an emulator. Retries are bounded: 5 attempts within 60 s, only for errors the
//! crate knows to be safe to retry.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use google_cloud_gax::paginator::Paginator;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_storage::client::{Storage as GcsClient, StorageControl};
use google_cloud_storage::retry_policy::RetryableErrors;

use super::{ByteStream, StorageError};
use crate::env;

const RETRY_ATTEMPTS: u32 = 5;
const RETRY_TIME_LIMIT: Duration = Duration::from_secs(60);

/// How to reach GCS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcsOptions {
    /// Endpoint of the JSON API, e.g. `http://127.0.0.1:4443` for fake-gcs-server; `None` for Google.
    pub endpoint: Option<String>,
    /// Use anonymous credentials (emulators) instead of Application Default Credentials.
    pub anonymous: bool,
}

impl GcsOptions {
    /// Google Cloud with ADC, unless `STORAGE_EMULATOR_HOST` names an emulator.
    pub fn from_env() -> GcsOptions {
        match std::env::var(env::STORAGE_EMULATOR_HOST) {
            Ok(host) if !host.trim().is_empty() => GcsOptions::emulator(&host),
            _ => GcsOptions::default(),
        }
    }

    /// An emulator at `host:port` or a full URL, with anonymous credentials.
    pub fn emulator(host: &str) -> GcsOptions {
        let endpoint = if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        };
        GcsOptions {
            endpoint: Some(endpoint.trim_end_matches('/').to_string()),
            anonymous: true,
        }
    }
}

#[derive(Clone)]
pub(super) struct GcsStore {
    bucket: String,
    prefix: String,
    client: GcsClient,
    control: StorageControl,
}

// Every operation returns a boxed future: the GCS client's async code (the client, its auth and HTTP
// stack) is then compiled once, here, instead of again in every binary that awaits it, which cost each
// release binary about 100 s of build time (BENCHMARKS.md, "A release build on 2 cores").
impl GcsStore {
    pub(super) fn connect(
        bucket: String,
        prefix: String,
        options: GcsOptions,
    ) -> BoxFuture<'static, Result<GcsStore, String>> {
        Box::pin(async move {
            let retry = || {
                RetryableErrors
                    .with_time_limit(RETRY_TIME_LIMIT)
                    .with_attempt_limit(RETRY_ATTEMPTS)
            };
            let mut client = GcsClient::builder().with_retry_policy(retry());
            let mut control = StorageControl::builder().with_retry_policy(retry());
            if let Some(endpoint) = &options.endpoint {
                client = client.with_endpoint(endpoint.clone());
                control = control.with_endpoint(endpoint.clone());
            }
            if options.anonymous {
                client = client.with_credentials(
                    google_cloud_auth::credentials::anonymous::Builder::new().build(),
                );
                control = control.with_credentials(
                    google_cloud_auth::credentials::anonymous::Builder::new().build(),
                );
            }
            let client = client.build().await.map_err(|e| e.to_string())?;
            let control = control.build().await.map_err(|e| e.to_string())?;
            Ok(GcsStore::with_clients(bucket, prefix, client, control))
        })
    }

    pub(super) fn with_clients(
        bucket: String,
        prefix: String,
        client: GcsClient,
        control: StorageControl,
    ) -> GcsStore {
        GcsStore {
            bucket,
            prefix,
            client,
            control,
        }
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn location(&self, key: &str) -> String {
        format!("gs://{}/{}{key}", self.bucket, self.prefix)
    }

    fn error(
        &self,
        operation: &'static str,
        key: &str,
        source: google_cloud_storage::Error,
    ) -> StorageError {
        if is_not_found(&source) {
            return StorageError::NotFound {
                location: self.location(key),
            };
        }
        StorageError::Gcs {
            operation,
            location: self.location(key),
            source: Box::new(source),
        }
    }

    pub(super) fn list<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        Box::pin(async move {
            let mut pages = self
                .control
                .list_objects()
                .set_parent(self.bucket_path())
                .set_prefix(self.object(prefix))
                .by_page();
            let mut keys = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.error("list", prefix, e))?;
                for object in page.objects {
                    if let Some(key) = object.name.strip_prefix(&self.prefix) {
                        keys.push(key.to_string());
                    }
                }
            }
            Ok(keys)
        })
    }

    pub(super) fn read<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<ByteStream, StorageError>> {
        Box::pin(async move {
            let response = self
                .client
                .read_object(self.bucket_path(), self.object(key))
                .send()
                .await
                .map_err(|e| self.error("read", key, e))?;
            let location = self.location(key);
            let chunks = futures::stream::unfold(response, |mut response| async move {
                response.next().await.map(|chunk| (chunk, response))
            })
            .map(move |chunk| {
                chunk.map_err(|source| StorageError::Gcs {
                    operation: "read",
                    location: location.clone(),
                    source: Box::new(source),
                })
            });
            let chunks: ByteStream = Box::pin(chunks);
            Ok(chunks)
        })
    }

    pub(super) fn write<'a>(
        &'a self,
        key: &'a str,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            // One buffered upload: the object appears whole or not at all.
            self.client
                .write_object(self.bucket_path(), self.object(key), data)
                .send_buffered()
                .await
                .map_err(|e| self.error("write", key, e))?;
            Ok(())
        })
    }

    /// Whether a request on one object found it: `false` when GCS answered "not found", any other
    /// error as [`StorageError`].
    fn found<T>(
        &self,
        operation: &'static str,
        key: &str,
        response: Result<T, google_cloud_storage::Error>,
    ) -> Result<bool, StorageError> {
        match response {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.error(operation, key, e)),
        }
    }

    pub(super) fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StorageError>> {
        Box::pin(async move {
            let response = self
                .control
                .get_object()
                .set_bucket(self.bucket_path())
                .set_object(self.object(key))
                .send()
                .await;
            self.found("stat", key, response)
        })
    }

    pub(super) fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StorageError>> {
        Box::pin(async move {
            let response = self
                .control
                .delete_object()
                .set_bucket(self.bucket_path())
                .set_object(self.object(key))
                .send()
                .await;
            self.found("delete", key, response)
        })
    }
}

fn is_not_found(error: &google_cloud_storage::Error) -> bool {
    error.http_status_code() == Some(404)
        || error
            .status()
            .is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::NotFound)
}
