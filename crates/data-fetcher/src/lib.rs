//! `data-fetcher`: members connect their Spotify accounts securely (`auth`), the group's plays and top
//! items are fetched on a schedule (`fetch`), and `status` tells who must reconnect.
//!
//! Modules follow the flow: [`auth`] (PKCE sign-in) → [`tokens`] (encrypted at rest) → [`spotify`]
//! (HTTP with Spotify's rate-limit rules) → [`fetch`] (incremental, gaps recorded) → [`state`] (cursors,
//! gaps, authorisation dates) → [`status`].

pub mod enrich;
pub mod fetch;
pub mod import;
pub mod scrobbles;
pub mod terminal_connect;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, Scoped, StoreArgs};
use earshot_core::{GroupConfig, Storage, env};
use earshot_state::{clock, fetch_state, status};

use crate::fetch::{Fetcher, What};
use earshot_spotify::api::{App, Budget, Endpoints, Spotify};
use earshot_spotify::tokens::{TokenKey, TokenStore, TokenStoreKind};

/// Connect members' Spotify accounts and fetch their listening.
///
/// Earshot signs members in as a public client (Authorization Code with PKCE): no client secret is
/// needed. Secrets never go on the command line: the token key comes from `EARSHOT_TOKEN_KEY` (or
/// `EARSHOT_TOKEN_KEY_FILE`). `SPOTIFY_API_BASE` and `SPOTIFY_ACCOUNTS_BASE` point at another Spotify
/// (the mock, in tests).
#[derive(Debug, Parser)]
#[command(name = "data-fetcher", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where encrypted token records live.
    #[arg(long, global = true, value_enum, default_value_t = TokenStoreKind::Storage)]
    pub token_store: TokenStoreKind,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect a member: prints a Spotify sign-in URL; the member approves; tokens are stored encrypted.
    Auth {
        /// The app (from `[[apps]]` in the group config) to connect to. Default: `SPOTIFY_CLIENT_ID`, else the config's only app.
        #[arg(long)]
        app: Option<String>,
        /// Port of the loopback listener (`http://127.0.0.1:<port>/callback`, registered in the Spotify dashboard).
        #[arg(long, default_value_t = 8888)]
        port: u16,
        /// A different registered redirect URI (HTTPS for hosted set-ups); implies `--no-listen`.
        #[arg(long)]
        redirect_uri: Option<String>,
        /// Do not listen: paste the URL the browser ends on (for headless machines).
        #[arg(long)]
        no_listen: bool,
        /// Seconds to wait for the member.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Fetch new plays and top items of every connected member (or `--member`).
    Fetch {
        /// Only these members (repeatable).
        #[arg(long)]
        member: Vec<String>,
        /// What to fetch.
        #[arg(long, value_enum, default_value_t = What::All)]
        what: What,
        /// Seconds this run may spend waiting (Retry-After, backoff); a longer wait stops it cleanly.
        #[arg(long, default_value_t = 300)]
        max_wait: u64,
        /// Members fetched at once.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
        concurrency: u16,
    },
    /// Import a member's history once: Spotify's Extended Streaming History (the
    /// `my_spotify_data.zip` Spotify emails on request: music plays of 30 s or more, stripped of device
    /// fields), or with `--format` another service's (ListenBrainz, Maloja, a Last.fm CSV). Run it
    /// again after an interruption, or with a later export, and only what is new is added.
    Import {
        /// The member (as the group config lists them).
        #[arg(long)]
        member: String,
        /// What the files are: `spotify` (the default), `listenbrainz` (the export zip, JSON Lines or a
        /// JSON array of listens), `maloja` (its JSON export) or `csv` (scrobbles, as Last.fm exporters
        /// write them: see docs/import.md).
        #[arg(long, value_enum, default_value = "spotify")]
        format: scrobbles::Format,
        /// The zip, the folder inside it, or `Streaming_History_Audio_*.json` files; for the other
        /// formats, the export's files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Read and check every file (caps, JSON, fields) and say what would be imported; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import even when the export's `username` names another Spotify account than the member's
        /// (by default such an export is refused, naming whose it looks like).
        #[arg(long)]
        force: bool,
    },
    /// Give imported plays the ids, duration and images the export lacks: `GET /v1/tracks/{id}` one
    /// track at a time into the track catalogue (MongoDB, `--mongodb-uri`), within a request budget;
    /// a long Retry-After stops the run cleanly (exit 3) and the next run goes on.
    Enrich {
        /// Ask Spotify as this member (default: the first connected member of the group).
        #[arg(long)]
        member: Option<String>,
        /// Requests this run may make.
        #[arg(long, default_value_t = 500)]
        max_requests: usize,
        /// Seconds this run may spend waiting (Retry-After, backoff); a longer wait stops it cleanly.
        #[arg(long, default_value_t = 300)]
        max_wait: u64,
    },
    /// List members: ok, expiring in N days, needs re-auth, last play fetched, gaps, imports.
    Status {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a new random token key (set it as `EARSHOT_TOKEN_KEY`; keep it secret).
    Keygen,
}

async fn token_store(cli: &Cli, scoped: &Scoped, storage: &Storage) -> Result<TokenStore> {
    TokenStore::open(
        cli.token_store,
        storage,
        scoped.mongodb_uri(),
        &scoped.scope.database,
    )
    .await
}

/// The client id `auth` uses: the named app, else `SPOTIFY_CLIENT_ID`, else the config's only app.
fn client_id(group: &GroupConfig, app: Option<&str>) -> Result<String> {
    if let Some(name) = app {
        return group
            .apps
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.client_id.clone())
            .with_context(|| format!("`--app {name}`: the group config lists no such app"));
    }
    if let Ok(id) = std::env::var(env::SPOTIFY_CLIENT_ID) {
        return Ok(id);
    }
    match group.apps.as_slice() {
        [only] => Ok(only.client_id.clone()),
        [] => bail!(
            "no Spotify app: set `{}` or list the app under [[apps]] in the group config",
            env::SPOTIFY_CLIENT_ID
        ),
        _ => bail!("the group config lists several apps: choose one with `--app <name>`"),
    }
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    if let Command::Keygen = cli.command {
        // The key is this command's data: it goes to stdout, for `export EARSHOT_TOKEN_KEY="$(…)"`.
        writeln!(std::io::stdout(), "{}", TokenKey::generate_base64()?)?;
        return Ok(Outcome::Success);
    }
    // From here on the storage and database (tokens, catalogue) are the group's own (the same as
    // given for a deployment's single group).
    let scoped = cli.store.scoped()?;
    let group = scoped.group.clone();
    let storage = scoped.storage().await?;
    let clock = clock::from_env()?;
    match &cli.command {
        Command::Keygen => unreachable!("handled above"),
        Command::Import {
            member,
            format,
            paths,
            dry_run,
            ..
        } if *format != scrobbles::Format::Spotify => {
            let report = scrobbles::import(
                &storage,
                &group,
                member,
                *format,
                paths,
                clock.now(),
                *dry_run,
            )
            .await?;
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
            Ok(Outcome::Success)
        }
        Command::Import {
            member,
            paths,
            dry_run,
            force,
            ..
        } => {
            let options = import::ImportOptions {
                dry_run: *dry_run,
                force: *force,
            };
            let report =
                import::import_with_options(&storage, &group, member, paths, clock.now(), options)
                    .await?;
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
            Ok(Outcome::Success)
        }
        Command::Enrich { .. } => run_enrich(&cli, &scoped, storage, group, clock).await,
        Command::Status { json } => {
            print_status(&scoped, &storage, &group, clock.now(), *json).await?;
            Ok(Outcome::Success)
        }
        Command::Auth { .. } => run_auth(&cli, &scoped, &storage, &group, clock).await,
        Command::Fetch {
            member,
            what,
            max_wait,
            concurrency,
        } => {
            let fetcher = fetcher(
                &cli,
                &scoped,
                storage,
                group,
                clock,
                *max_wait,
                usize::from(*concurrency),
            )
            .await?;
            let report = fetcher.run(*what, member).await?;
            Ok(report.outcome())
        }
    }
}

/// `data-fetcher enrich`: the report as one JSON line; partial when a long `Retry-After` stopped it.
async fn run_enrich(
    cli: &Cli,
    scoped: &Scoped,
    storage: Storage,
    group: GroupConfig,
    clock: std::sync::Arc<dyn clock::Clock>,
) -> Result<Outcome> {
    let Command::Enrich {
        member,
        max_requests,
        max_wait,
    } = &cli.command
    else {
        unreachable!("called for enrich");
    };
    let db = scoped.database().await?;
    let now = clock.now();
    let fetcher = fetcher(
        cli,
        scoped,
        storage.clone(),
        group.clone(),
        clock,
        *max_wait,
        1,
    )
    .await?;
    let report = enrich::enrich(&fetcher, &db, member.as_deref(), *max_requests, now).await?;
    import::record_enrichment(&storage, &db, &group).await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report)?;
    writeln!(out)?;
    Ok(if report.stopped.is_some() {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

/// `data-fetcher auth`: connect one member through Spotify's consent page.
async fn run_auth(
    cli: &Cli,
    scoped: &Scoped,
    storage: &Storage,
    group: &GroupConfig,
    clock: std::sync::Arc<dyn clock::Clock>,
) -> Result<Outcome> {
    let Command::Auth {
        app,
        port,
        redirect_uri,
        no_listen,
        timeout,
    } = &cli.command
    else {
        unreachable!("called for auth");
    };
    let store = token_store(cli, scoped, storage).await?;
    let app = App::new(&client_id(group, app.as_deref())?);
    let spotify = Spotify::new(
        Endpoints::from_env(),
        clock,
        Budget::new(Duration::from_secs(60)),
    )?;
    let redirect = redirect(redirect_uri.as_deref(), *no_listen, *port).await?;
    let connected = terminal_connect::connect_member(
        &spotify,
        &app,
        group,
        storage,
        &store,
        redirect,
        Duration::from_secs(*timeout),
        |url| {
            eprintln!("Open this URL and approve Earshot (scopes: recently played, top items):\n\n  {url}\n");
            open_browser(url);
        },
        read_pasted_url,
    )
    .await?;
    eprintln!(
        "Connected {} ({}). Spotify ends this authorisation on {}.",
        connected.display_name,
        connected.member,
        connected.authorisation_ends().format("%Y-%m-%d")
    );
    Ok(Outcome::Success)
}

/// The fetcher `data-fetcher fetch` runs, from `cli` (a `fetch` command line) and under `clock`: for
/// a caller that runs many fetches in one process, as the demo's hourly replay
/// (`examples/hourly_replay.rs`) does. Each [`Fetcher::run`] is then exactly one `fetch`.
pub async fn fetcher_for(cli: &Cli, clock: std::sync::Arc<dyn clock::Clock>) -> Result<Fetcher> {
    let Command::Fetch {
        max_wait,
        concurrency,
        ..
    } = &cli.command
    else {
        bail!("a fetcher is built from a `fetch` command line");
    };
    let scoped = cli.store.scoped()?;
    let storage = scoped.storage().await?;
    let group = scoped.group.clone();
    fetcher(
        cli,
        &scoped,
        storage,
        group,
        clock,
        *max_wait,
        usize::from(*concurrency),
    )
    .await
}

/// A fetcher of the group's members, waiting at most `max_wait` seconds in all.
async fn fetcher(
    cli: &Cli,
    scoped: &Scoped,
    storage: Storage,
    group: GroupConfig,
    clock: std::sync::Arc<dyn clock::Clock>,
    max_wait: u64,
    concurrency: usize,
) -> Result<Fetcher> {
    Ok(Fetcher {
        spotify: Spotify::new(
            Endpoints::from_env(),
            clock,
            Budget::new(Duration::from_secs(max_wait)),
        )?,
        tokens: token_store(cli, scoped, &storage).await?,
        storage,
        group,
        concurrency,
    })
}

/// `status`: a table, or JSON lines.
async fn print_status(
    scoped: &Scoped,
    storage: &Storage,
    group: &GroupConfig,
    now: chrono::DateTime<chrono::Utc>,
    json: bool,
) -> Result<()> {
    let members = fetch_state::list(storage).await?;
    let left = earshot_core::erasure::departures(storage).await?;
    let mut rows = status::statuses(&members, group, &left, now);
    // Each member's sources, from MongoDB when it answers within a moment: the rest of the status is
    // the storage's alone and shows without it.
    let db = scoped
        .database_within(std::time::Duration::from_secs(2))
        .await;
    match &db {
        Ok(db) => {
            for row in &mut rows {
                row.sources = status::sources_of(db, &row.member).await?;
            }
        }
        Err(err) => tracing::warn!(
            error = %format!("{err:#}"),
            "MongoDB did not answer: the status shows no sources (where each member's plays came from)."
        ),
    }
    for row in &mut rows {
        row.import = earshot_state::import_progress::read_state(storage, &row.member)
            .await?
            .map(status::ImportStatus::from);
    }
    let mut out = std::io::stdout().lock();
    if json {
        for row in &rows {
            serde_json::to_writer(&mut out, row)?;
            writeln!(out)?;
        }
    } else {
        write!(out, "{}", status::table(&rows))?;
    }
    Ok(())
}

/// Where the sign-in's redirect arrives: a registered URI or the loopback URL pasted back, or the
/// loopback listener.
async fn redirect(
    redirect_uri: Option<&str>,
    no_listen: bool,
    port: u16,
) -> Result<terminal_connect::Redirect> {
    let loopback = format!("http://127.0.0.1:{port}/callback");
    Ok(match redirect_uri {
        Some(uri) => terminal_connect::Redirect::Paste(uri.to_string()),
        None if no_listen => terminal_connect::Redirect::Paste(loopback),
        None => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| {
                    format!("listening on 127.0.0.1:{port} (choose another with `--port`)")
                })?;
            terminal_connect::Redirect::Listen(listener, loopback)
        }
    })
}

/// Ask for the URL the browser ended on (headless sign-in).
fn read_pasted_url() -> Result<String> {
    eprint!("Paste the full URL your browser ended on: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if !std::io::stdin().is_terminal() {
        eprintln!();
    }
    Ok(line.trim().to_string())
}

/// Open the URL in a browser when this machine has one to show; otherwise the printed URL is enough.
fn open_browser(url: &str) {
    let has_display = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    if !has_display || !std::io::stderr().is_terminal() {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
