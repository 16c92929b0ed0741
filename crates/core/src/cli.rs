//! What every Earshot binary does the same way around its work: the flags that say where a group's
//! data lives ([`StorageArgs`], [`StoreArgs`]), exit codes and logging.
//!
//! Exit codes (documented in each binary's `--help`): 0 success, 1 failure, 2 usage (clap), 3 partial
//! success (some members or files failed, the rest is done). Never 99: Airflow's BashOperator reads 99
//! as "skipped". Logs go to stderr through tracing, human-readable on a terminal and JSON otherwise
//! (Airflow task logs, Cloud Logging); stdout is reserved for data.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::config::GroupConfig;
use crate::scope::{self, GroupScope};
use crate::storage::Storage;
use crate::{env, mongo};

/// Where a group's files live: the storage and the group config. Every binary flattens it (through
/// [`StoreArgs`] when it also opens MongoDB); none declares these flags itself.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Storage URL (raw pages, converted files, state, snapshots, reports): a local folder or
    /// `gs://bucket/prefix`. A group config with an `id` uses its own prefix under it.
    #[arg(long, global = true, env = env::EARSHOT_STORAGE, default_value = env::DEFAULT_STORAGE)]
    pub storage: String,
    /// Group config file (members, apps, time zone, destinations). Default: `earshot.toml` if
    /// present.
    #[arg(long, global = true, env = env::EARSHOT_GROUP_CONFIG)]
    pub group_config: Option<PathBuf>,
}

impl StorageArgs {
    /// The group config the flags name ([`GroupConfig::resolve`]).
    pub fn group(&self) -> anyhow::Result<GroupConfig> {
        Ok(GroupConfig::resolve(self.group_config.as_deref())?)
    }

    /// The group config and its storage URL (the group's own prefix for a config with an `id`), for
    /// a binary that opens no database. Logs the group.
    pub fn scoped(&self) -> anyhow::Result<(GroupConfig, String)> {
        let group = self.group()?;
        let url = scope::storage_of(&group, &self.storage)?;
        scope::log_group(&group, None, Some(&url));
        Ok((group, url))
    }
}

/// Where a group's data lives: [`StorageArgs`] and MongoDB. Every binary that opens MongoDB
/// flattens it.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub files: StorageArgs,
    /// MongoDB connection string.
    #[arg(long, global = true, env = env::MONGODB_URI, default_value = env::DEFAULT_MONGODB_URI, hide_env_values = true)]
    pub mongodb_uri: String,
    /// MongoDB database. A group config with an `id` uses its own database (`<database>_<id>`).
    #[arg(long, global = true, env = env::EARSHOT_DATABASE, default_value = env::DEFAULT_DATABASE)]
    pub database: String,
}

impl StoreArgs {
    /// The group config the flags name ([`GroupConfig::resolve`]).
    pub fn group(&self) -> anyhow::Result<GroupConfig> {
        self.files.group()
    }

    /// The group config and where its data lives: from here on the storage and database are the
    /// group's own (the ones given, for a deployment's single group). Logs the group.
    pub fn scoped(&self) -> anyhow::Result<Scoped> {
        self.scoped_for(self.group()?)
    }

    /// [`StoreArgs::scoped`] for a group config already read.
    pub fn scoped_for(&self, group: GroupConfig) -> anyhow::Result<Scoped> {
        let scope = GroupScope::of(&group, &self.files.storage, &self.database)?;
        Ok(Scoped {
            group,
            scope,
            mongodb_uri: self.mongodb_uri.clone(),
        })
    }
}

/// A group's config and the storage and database that hold its data ([`StoreArgs::scoped`]).
#[derive(Debug, Clone)]
pub struct Scoped {
    /// The group config.
    pub group: GroupConfig,
    /// The group's storage URL and database.
    pub scope: GroupScope,
    mongodb_uri: String,
}

impl Scoped {
    /// Open the group's storage.
    pub async fn storage(&self) -> anyhow::Result<Storage> {
        Ok(Storage::open(&self.scope.storage).await?)
    }

    /// Connect to the group's database ([`mongo::connect`]).
    pub async fn database(&self) -> anyhow::Result<mongodb::Database> {
        mongo::connect(&self.mongodb_uri, &self.scope.database).await
    }

    /// Connect to the group's database, waiting at most `wait` for a server
    /// ([`mongo::connect_within`]).
    pub async fn database_within(&self, wait: Duration) -> anyhow::Result<mongodb::Database> {
        mongo::connect_within(&self.mongodb_uri, &self.scope.database, wait).await
    }

    /// The MongoDB connection string (for the token store's MongoDB backend). Never log it.
    pub fn mongodb_uri(&self) -> &str {
        &self.mongodb_uri
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done (exit 0).
    Success,
    /// Some members or files failed; the rest is done and a re-run finishes the job (exit 3).
    Partial,
    /// Nothing useful was done (exit 1).
    Failure,
}

impl Outcome {
    /// The outcome of a run that did `ok` items and failed `failed`.
    pub fn from_counts(ok: usize, failed: usize) -> Outcome {
        match (ok, failed) {
            (_, 0) => Outcome::Success,
            (0, _) => Outcome::Failure,
            _ => Outcome::Partial,
        }
    }

    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failure => ExitCode::from(1),
            Outcome::Partial => ExitCode::from(3),
        }
    }
}

/// The `--help` paragraph on exit codes, shared by every binary.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 failure; 2 usage error; \
3 partial success (some files or members failed, the rest is done: re-run to finish).";

/// Send tracing to stderr: human-readable on a terminal, JSON lines otherwise. `EARSHOT_LOG` filters
/// (default `info`).
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_env(env::EARSHOT_LOG).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        let _ = builder.with_target(false).try_init();
    } else {
        let _ = builder.json().with_current_span(false).try_init();
    }
}

/// Print an error with its whole cause chain to stderr and return exit code 1.
pub fn report_error(program: &str, error: &anyhow::Error) -> ExitCode {
    eprintln!("{program}: error: {error:#}");
    ExitCode::from(1)
}
