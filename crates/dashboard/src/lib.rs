//! `dashboard`: the group's answers as web pages.
//!
//! Reads the newest analytics run (or the run of a named period) and the derived collections from
//! MongoDB, read-only, and serves server-rendered HTML (minijinja templates, Jinja2's syntax) that works
//! with JavaScript off: there is no script at all, and the Content-Security-Policy allows none. Charts are
//! inline SVG ([`charts`]). By default it listens on 127.0.0.1 only; another address needs a group
//! password ([`auth`]). What it answers and whom it believes is [`exposure`]; how long it waits and how
//! many connections it holds is [`server`]; the login form's limits are [`throttle`]; the health
//! check and the operator's metrics are [`telemetry`].
//!
//! The flags are [`cli`], what every request reads [`app`], the routes and their middleware
//! [`routes`], every URL [`urls`]; each page is a module of [`pages`] with its typed context, reading
//! through [`data`] and rendering through [`render`].

pub mod app;
pub mod auth;
pub mod cli;
pub mod data;
pub mod exposure;
pub mod page;
pub mod pages;
pub mod render;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod throttle;
pub mod urls;

pub use app::{AppState, check_bind, check_no_password, states};
pub use cli::{Cli, Command, ServeArgs};
pub use pages::login;
pub use routes::{CONTENT_SECURITY_POLICY, app, router, serve, serve_with};

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use earshot_core::cli::Outcome;

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
    let states = states(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    let address = listener.local_addr()?;
    for state in &states {
        tracing::info!(
            %address,
            group = ?state.stores.group.id,
            password = state.auth.is_some(),
            hosts = ?state.exposure.hosts(),
            "Dashboard listening."
        );
        let page = if state.base.is_empty() {
            "/"
        } else {
            &state.base
        };
        writeln!(std::io::stdout(), "Dashboard: http://{address}{page}")?;
    }
    if let Some(bind) = args.metrics_bind.0 {
        let metrics = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("listening on {bind} for the metrics (--metrics-bind)"))?;
        let address = metrics.local_addr()?;
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "The metrics have no password: only the scraper should reach this address.");
        }
        tracing::info!(%address, member_ids = args.metrics_member_ids, "Metrics listening.");
        writeln!(
            std::io::stdout(),
            "Metrics: http://{address}{}",
            urls::METRICS
        )?;
        let served = telemetry::MetricsState {
            states: states.clone(),
            member_ids: args.metrics_member_ids,
        };
        let limits = args.limits();
        tokio::spawn(async move {
            if let Err(err) = telemetry::serve_metrics(metrics, served, limits).await {
                tracing::error!(error = %format!("{err:#}"), "The metrics server stopped.");
            }
        });
    }
    serve_with(listener, states, args.limits()).await?;
    Ok(Outcome::Success)
}
