//! `dashboard`: the group's answers as web pages.
//!
//! Reads the newest analytics run (or the run of a named period) and the derived collections from
//! MongoDB, read-only, and serves server-rendered HTML (minijinja templates, Jinja2's syntax) that works
//! with JavaScript off: there is no script at all, and the Content-Security-Policy allows none. Charts are
//! inline SVG ([`charts`]). By default it listens on 127.0.0.1 only; another address needs a group
//! password ([`auth`]). What it answers and whom it believes is [`exposure`]; how long it waits and how
//! many connections it holds is [`server`]; the login form's limits are [`throttle`].

pub mod auth;
pub mod charts;
pub mod data;
pub mod exposure;
pub mod login;
pub mod pages;
pub mod server;
pub mod throttle;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use clap::{Parser, Subcommand};
use earshot_core::cli::{EXIT_CODES_HELP, Outcome};
use earshot_core::{GroupConfig, Storage, env};

use crate::auth::Auth;
use crate::exposure::{Admission, Exposure, Network};
use crate::server::ServerLimits;
use crate::throttle::LoginLimits;

/// The Content-Security-Policy of every response: no script of any kind, styles and images from the
/// dashboard itself, forms posting only to it, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Serve the group's answers as web pages.
///
/// Reads MongoDB (the newest analytics run, the derived collections) and the storage (fetch state,
/// reports), never writes. Listens on 127.0.0.1:8080 by default; any other address needs a group password
/// (`EARSHOT_DASHBOARD_PASSWORD_HASH`, made by `dashboard hash-password`).
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
    /// A reverse proxy (address or network, e.g. `127.0.0.1`, `10.0.0.0/8`) whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client. From anyone else they are ignored.
    #[arg(long = "trusted-proxy", env = env::EARSHOT_DASHBOARD_TRUSTED_PROXIES, value_delimiter = ',')]
    pub trusted_proxies: Vec<Network>,
    /// Seconds a client gets to send a request's head before the connection is closed.
    #[arg(long, env = env::EARSHOT_DASHBOARD_HEADER_TIMEOUT, default_value_t = server::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a request may take in all before it gets `408`.
    #[arg(long, env = env::EARSHOT_DASHBOARD_REQUEST_TIMEOUT, default_value_t = server::DEFAULT_REQUEST_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, env = env::EARSHOT_DASHBOARD_MAX_CONNECTIONS, default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Wrong passwords allowed an hour across every client; when spent, nobody can sign in until it
    /// refills (friends signed in stay signed in).
    #[arg(long, env = env::EARSHOT_DASHBOARD_LOGIN_BUDGET, default_value_t = throttle::DEFAULT_WRONG_PER_HOUR as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_budget: u64,
    /// Storage URL (fetch state and reports): a local folder or `gs://bucket/prefix`.
    #[arg(long, env = env::EARSHOT_STORAGE, default_value = env::DEFAULT_STORAGE)]
    pub storage: String,
    /// Group config file (display names, time zone). Default: `earshot.toml` if present.
    #[arg(long, env = env::EARSHOT_GROUP_CONFIG)]
    pub group_config: Option<PathBuf>,
    /// MongoDB connection string.
    #[arg(long, env = env::MONGODB_URI, default_value = env::DEFAULT_MONGODB_URI, hide_env_values = true)]
    pub mongodb_uri: String,
    /// MongoDB database.
    #[arg(long, env = env::EARSHOT_DATABASE, default_value = env::DEFAULT_DATABASE)]
    pub database: String,
}

/// What every request reads.
pub struct AppState {
    /// MongoDB and the storage, read-only.
    pub stores: earshot_state::Stores,
    /// The group password, when one is set.
    pub auth: Option<Auth>,
    /// The Host names answered and the proxies believed.
    pub exposure: Exposure,
    /// The clock (the fetcher's: `EARSHOT_NOW` in the demo and tests).
    pub clock: Arc<dyn earshot_state::clock::Clock>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// The password hash from the environment or the file named, if any.
fn password_hash(args: &ServeArgs) -> Result<Option<(String, String)>> {
    if let Ok(hash) = std::env::var(env::EARSHOT_DASHBOARD_PASSWORD_HASH)
        && !hash.trim().is_empty()
    {
        return Ok(Some((
            hash,
            env::EARSHOT_DASHBOARD_PASSWORD_HASH.to_string(),
        )));
    }
    match &args.password_hash_file {
        Some(path) => {
            let hash = std::fs::read_to_string(path)
                .with_context(|| format!("reading the password hash file `{}`", path.display()))?;
            Ok(Some((
                hash,
                format!("the password hash file `{}`", path.display()),
            )))
        }
        None => Ok(None),
    }
}

/// Refuse an address other than loopback without a password.
pub fn check_bind(bind: SocketAddr, has_password: bool) -> Result<()> {
    if !bind.ip().is_loopback() && !has_password {
        bail!(
            "refusing to listen on {bind} without a group password: anyone who can reach it would see \
             the group's listening. Set {} (make one with `dashboard hash-password`), or keep the default \
             {}",
            env::EARSHOT_DASHBOARD_PASSWORD_HASH,
            env::DEFAULT_DASHBOARD_BIND
        );
    }
    Ok(())
}

/// The app: every page, behind the security headers, the Host check, the request timeout and, with a
/// password, the sign-in gate.
pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/", get(pages::group))
        .route("/member/{id}", get(pages::member))
        .route("/pair/{a}/{b}", get(pages::pair))
        .route("/track/{key}", get(pages::track))
        .route("/artist/{id}", get(pages::artist))
        .route("/recap", get(pages::recap))
        .route("/status", get(pages::status))
        .route("/login", get(login::login_form).post(login::login))
        .route("/logout", post(login::logout))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/favicon.ico", get(pages::favicon))
        .route("/favicon.svg", get(pages::favicon))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .layer(DefaultBodyLimit::max(server::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(middleware::from_fn_with_state(request_timeout, timeout))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// Refuse a foreign Host (DNS rebinding) and, without a password, a proxied request.
async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match state.exposure.admit(&request) {
        Admission::Admit => next.run(request).await,
        Admission::ForeignHost => {
            tracing::debug!(host = ?request.headers().get(header::HOST), "Refused a foreign Host.");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "This dashboard does not answer for that host name.\n",
            )
                .into_response()
        }
        Admission::ProxiedWithoutPassword => (
            StatusCode::FORBIDDEN,
            "This dashboard has no group password, so it answers only direct requests from this \
             machine, never through a proxy.\n",
        )
            .into_response(),
    }
}

/// `408` for a request not answered in time.
async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "The request took too long.\n").into_response(),
    }
}

/// With a group password, every page but the login form and the static files needs a valid session.
async fn gate(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(auth) = &state.auth else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let open = matches!(
        path,
        "/login" | "/static/style.css" | "/favicon.ico" | "/favicon.svg"
    );
    let now = state.clock.now().timestamp();
    let signed_in = auth::cookie_value(request.headers(), auth::SESSION_COOKIE)
        .is_some_and(|v| auth.session_valid(&v, now));
    if open || signed_in {
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let next_param: String = url::form_urlencoded::byte_serialize(wanted.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next_param}")).into_response()
}

/// The headers every response carries (and HSTS when cookies are `Secure`).
async fn security_headers(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if state.auth.as_ref().is_some_and(|a| a.secure_cookie) {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serve on a listener with the default limits until ctrl-c.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> Result<()> {
    serve_with(listener, state, ServerLimits::default()).await
}

/// Serve on a listener within `limits` until ctrl-c.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    limits: ServerLimits,
) -> Result<()> {
    let app = router(state, limits.request_timeout);
    server::serve(listener, app, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving the dashboard")
}

impl ServeArgs {
    /// The server's limits.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(self.header_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            max_connections: self.max_connections,
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

/// The state for these options: MongoDB, the storage, the group config, the password.
pub async fn state(args: &ServeArgs) -> Result<AppState> {
    let secure = args.secure_cookies();
    let auth = match password_hash(args)? {
        Some((hash, source)) => Some(Auth::new(&hash, &source, secure)?.with_login_limits(
            LoginLimits {
                wrong_per_hour: usize::try_from(args.login_budget).unwrap_or(usize::MAX),
                ..LoginLimits::default()
            },
        )),
        None => None,
    };
    check_bind(args.bind, auth.is_some())?;
    let exposure = Exposure::new(
        args.bind,
        &args.public_hosts,
        &args.trusted_proxies,
        auth.is_some(),
    )?;
    if args.insecure_cookie && !args.bind.ip().is_loopback() {
        tracing::warn!(
            bind = %args.bind,
            "Cookies are not `Secure` (--insecure-cookie): the password and sessions cross the network \
             in clear. Use this on a trusted LAN only."
        );
    }
    let group = GroupConfig::resolve(args.group_config.as_deref())?;
    group.zone().map_err(anyhow::Error::msg)?;
    Ok(AppState {
        stores: earshot_state::Stores {
            storage: Storage::open(&args.storage).await?,
            db: earshot_core::mongo::connect(&args.mongodb_uri, &args.database).await?,
            group,
        },
        auth,
        exposure,
        clock: earshot_state::clock::from_env()?,
    })
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Some(Command::HashPassword) => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                bail!("no password on standard input (type it, or pipe it in)");
            }
            writeln!(std::io::stdout(), "{}", auth::hash_password(password)?)?;
            Ok(Outcome::Success)
        }
        Some(Command::Serve(args)) => serve_args(args).await,
        None => serve_args(cli.serve).await,
    }
}

async fn serve_args(args: ServeArgs) -> Result<Outcome> {
    let state = Arc::new(state(&args).await?);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, password = state.auth.is_some(), hosts = ?state.exposure.hosts(), "Dashboard listening.");
    writeln!(std::io::stdout(), "Dashboard: http://{address}/")?;
    serve_with(listener, state, args.limits()).await?;
    Ok(Outcome::Success)
}
