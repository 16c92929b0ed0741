//! The MongoDB server tests talk to: `earshot-devdb` (secantus-mdb, a real MongoDB-wire server)
//! started as a child process on a free loopback port, or the server `EARSHOT_TEST_MONGODB_URI`
//! names (a real mongod or Atlas), so the suite also proves itself against MongoDB proper.
//!
//! One server per test process, shared; each test takes its own database ([`MongoServer::database_name`]).
//! The dev server runs with `--exit-on-stdin-close`: when the test process ends, so does the server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context as _, Result, bail};
use earshot_core::env;

/// A MongoDB server for tests.
#[derive(Debug)]
pub struct MongoServer {
    uri: String,
    /// The dev server we started, if any (kept alive for the process).
    _child: Option<Mutex<Child>>,
}

static SHARED: OnceLock<MongoServer> = OnceLock::new();

impl MongoServer {
    /// The process-wide test server, started on first use.
    pub fn shared() -> &'static MongoServer {
        SHARED.get_or_init(|| MongoServer::start().unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// Start a new dev server (or use `EARSHOT_TEST_MONGODB_URI`).
    pub fn start() -> Result<MongoServer> {
        if let Ok(uri) = std::env::var(env::EARSHOT_TEST_MONGODB_URI)
            && !uri.trim().is_empty()
        {
            return Ok(MongoServer { uri, _child: None });
        }
        let (child, uri) = spawn_devdb(None)?;
        Ok(MongoServer {
            uri,
            _child: Some(Mutex::new(child)),
        })
    }

    /// Connection string (never holds a password for the dev server).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether this is the MongoDB-wire dev server rather than a real mongod.
    pub fn is_devdb(&self) -> bool {
        self._child.is_some()
    }

    /// A database name unique to this test and process: `t_<name>_<pid>_<n>`, at most 63 bytes.
    pub fn database_name(&self, test: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let clean: String = test
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(36)
            .collect();
        format!(
            "t_{clean}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(child) = &self._child {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the `earshot-devdb` binary is: `EARSHOT_DEVDB_BIN`, else scripts/devdb.sh's default build path.
pub fn devdb_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var(env::EARSHOT_DEVDB_BIN) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "`{}` is set to `{}`, which is not a file",
            env::EARSHOT_DEVDB_BIN,
            path.display()
        );
    }
    let cache = earshot_core::env::cache_dir();
    let default = cache.join("devdb-target/release/earshot-devdb");
    if default.is_file() {
        return Ok(default);
    }
    bail!(
        "the MongoDB-wire dev server is not built: run `scripts/devdb.sh` (or set `{}` to a real mongod's URI)",
        env::EARSHOT_TEST_MONGODB_URI
    )
}

/// Start `earshot-devdb` on a free loopback port; returns the child and the URI it printed.
/// `dbpath`: a persistent store folder (the demo), or `None` for a temporary one.
pub fn spawn_devdb(dbpath: Option<&std::path::Path>) -> Result<(Child, String)> {
    let binary = devdb_binary()?;
    let mut command = Command::new(&binary);
    command
        .arg("--exit-on-stdin-close")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(dir) = dbpath {
        command.arg("--dbpath").arg(dir);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("devdb stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the devdb URI")?;
    let uri = line.trim().to_string();
    if !uri.starts_with("mongodb://") {
        let _ = child.kill();
        bail!(
            "{} did not print a MongoDB URI (got `{uri}`)",
            binary.display()
        );
    }
    Ok((child, uri))
}
