//! The command line: serve (the default) or hash a password, and the serving options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use earshot_core::cli::{EXIT_CODES_HELP, StoreArgs};
use earshot_core::env;

use crate::exposure::{ClientIpHeader, Network};
use crate::server::{self, ServerLimits};
use crate::throttle;
use earshot_spotify::tokens::TokenStoreKind;

/// Serve the group's answers as web pages.
///
/// Reads MongoDB (the newest analytics run, the derived collections) and the storage (fetch state,
/// reports); writes only its sessions. Listens on 127.0.0.1:8080 by default. It needs a group password
/// (`EARSHOT_DASHBOARD_PASSWORD_HASH`, made by `dashboard hash-password`) unless `--no-password` is
/// given, which only a loopback bind accepts.
#[derive(Debug, Parser)]
#[command(name = "dashboard", version, after_help = EXIT_CODES_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Serving options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard (the default).
    Serve(ServeArgs),
    /// Read a password from standard input and print its Argon2 hash, for
    /// `EARSHOT_DASHBOARD_PASSWORD_HASH`.
    HashPassword,
}

/// How and what to serve.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address needs a group password.
    #[arg(long, env = env::EARSHOT_DASHBOARD_BIND, default_value = env::DEFAULT_DASHBOARD_BIND)]
    pub bind: SocketAddr,
    /// File holding the group password's Argon2 hash (or set `EARSHOT_DASHBOARD_PASSWORD_HASH`).
    #[arg(long, env = env::EARSHOT_DASHBOARD_PASSWORD_HASH_FILE)]
    pub password_hash_file: Option<PathBuf>,
    /// Serve without a group password: for this machine only, so only a loopback bind accepts it.
    /// Without a password and without this flag the dashboard refuses to start (a proxy in front of
    /// it, even nginx's plain `proxy_pass http://127.0.0.1:8080;`, would make the pages public).
    #[arg(long)]
    pub no_password: bool,
    /// Mark cookies `Secure` and send HSTS even on a loopback bind without `--public-host` (they are
    /// by default on any other bind, and whenever a public host is named).
    #[arg(long, conflicts_with = "insecure_cookie")]
    pub secure_cookie: bool,
    /// Leave cookies without `Secure` on a non-loopback bind: for a plain-HTTP LAN only (a password
    /// then crosses the network in clear; a warning is logged).
    #[arg(long)]
    pub insecure_cookie: bool,
    /// A host name (optionally `name:port`) the dashboard answers besides the ones its bind address
    /// implies, e.g. the public name a proxy serves it under. Repeat, or comma-separate in the variable.
    /// Requests for any other Host get `421`.
    #[arg(long = "public-host", env = env::EARSHOT_DASHBOARD_PUBLIC_HOSTS, value_delimiter = ',')]
    pub public_hosts: Vec<String>,
    /// A reverse proxy (address or network, e.g. `127.0.0.1`, `10.0.0.0/8`) whose client header
    /// (`--client-ip-header`) names the client. From anyone else it is ignored.
    #[arg(long = "trusted-proxy", env = env::EARSHOT_DASHBOARD_TRUSTED_PROXIES, value_delimiter = ',')]
    pub trusted_proxies: Vec<Network>,
    /// The one header the trusted proxies set to name the client: `x-forwarded-for`, `x-real-ip` or
    /// `forwarded`. Only that header is read (the rightmost address that is not a trusted proxy); the
    /// others are ignored.
    #[arg(long, env = env::EARSHOT_DASHBOARD_CLIENT_IP_HEADER, value_enum, ignore_case = true, default_value_t = ClientIpHeader::XForwardedFor)]
    pub client_ip_header: ClientIpHeader,
    /// Seconds a client gets to send a request's head before the connection is closed.
    #[arg(long, env = env::EARSHOT_DASHBOARD_HEADER_TIMEOUT, default_value_t = server::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a request may take in all before it gets `408`.
    #[arg(long, env = env::EARSHOT_DASHBOARD_REQUEST_TIMEOUT, default_value_t = server::DEFAULT_REQUEST_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, env = env::EARSHOT_DASHBOARD_MAX_CONNECTIONS, default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections one client (an IPv4 address, an IPv6 /64) may hold open at once; more are closed
    /// at once. A trusted proxy is not held to it (it carries every client).
    #[arg(long, env = env::EARSHOT_DASHBOARD_CONNECTIONS_PER_CLIENT, default_value_t = server::DEFAULT_CONNECTIONS_PER_CLIENT, value_parser = clap::value_parser!(u64).range(1..))]
    pub connections_per_client: u64,
    /// Seconds a kept-alive connection may sit idle between requests before it is closed.
    #[arg(long, env = env::EARSHOT_DASHBOARD_IDLE_TIMEOUT, default_value_t = server::DEFAULT_IDLE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Seconds a response may wait on a client that does not read it before the connection is
    /// closed.
    #[arg(long, env = env::EARSHOT_DASHBOARD_WRITE_TIMEOUT, default_value_t = server::DEFAULT_WRITE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout: u64,
    /// Wrong passwords allowed an hour across every client; when spent, nobody can sign in until it
    /// refills (friends signed in stay signed in).
    #[arg(long, env = env::EARSHOT_DASHBOARD_LOGIN_BUDGET, default_value_t = throttle::DEFAULT_WRONG_PER_HOUR as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_budget: u64,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Serve every group of this folder of group configs (`*.toml`, each with its `id`) from one
    /// process, each under `/g/<id>/` with the password its config names
    /// (`dashboard_password_hash_env` or `…_file`). Instead of `--group-config`.
    #[arg(long, env = env::EARSHOT_GROUPS_DIR)]
    pub groups_dir: Option<PathBuf>,
    /// The address friends reach the dashboard at (`https://music.example.org`), for "Sign in with
    /// Spotify": its redirect URI is this, the group's path and `/connect/callback`, registered with
    /// the Spotify app. HTTPS, or `http://` on a loopback IP literal. Default: a loopback bind's own
    /// `http://127.0.0.1:<port>`.
    #[arg(long, env = env::EARSHOT_DASHBOARD_PUBLIC_URL)]
    pub public_url: Option<String>,
    /// Where the encrypted token records live (as `data-fetcher --token-store`), for "Sign in with
    /// Spotify" (enabled when `EARSHOT_TOKEN_KEY` or `EARSHOT_TOKEN_KEY_FILE` is set).
    #[arg(long, value_enum, default_value_t = TokenStoreKind::Storage)]
    pub token_store: TokenStoreKind,
    /// Where the Prometheus metrics are served (`/metrics`), apart from the pages; `off` serves none.
    /// They have no password: keep it a loopback address, or one only the scraper reaches.
    #[arg(long, env = env::EARSHOT_METRICS_BIND, default_value = env::DEFAULT_METRICS_BIND)]
    pub metrics_bind: MetricsBind,
    /// Whether the metrics name members (by id, never by name); `false` folds each member's figures
    /// per source (the member furthest behind).
    #[arg(long, env = env::EARSHOT_METRICS_MEMBER_IDS, default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics_member_ids: bool,
}

/// `--metrics-bind`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsBind(pub Option<SocketAddr>);

impl std::str::FromStr for MetricsBind {
    type Err = String;

    fn from_str(text: &str) -> Result<MetricsBind, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(MetricsBind(None));
        }
        text.parse()
            .map(|address| MetricsBind(Some(address)))
            .map_err(|_| format!("`{text}` is not an address such as 127.0.0.1:9464 (or `off`)"))
    }
}

impl ServeArgs {
    /// The server's limits.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(self.header_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            max_connections: self.max_connections,
            connections_per_client: usize::try_from(self.connections_per_client)
                .unwrap_or(usize::MAX),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            write_timeout: Duration::from_secs(self.write_timeout),
        }
    }

    /// Whether cookies are `Secure`: by default on any bind but loopback and whenever a public name
    /// is given (a proxy serves it), unless `--insecure-cookie`.
    pub fn secure_cookies(&self) -> bool {
        if self.insecure_cookie {
            return false;
        }
        self.secure_cookie || !self.bind.ip().is_loopback() || !self.public_hosts.is_empty()
    }
}
