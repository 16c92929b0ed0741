//! What every request reads ([`AppState`]), built from the serving options: MongoDB, the storage, the
//! group config, the password, the exposure, the clock.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use earshot_core::{GroupConfig, Storage, env};

use crate::auth::Auth;
use crate::cli::ServeArgs;
use crate::exposure::Exposure;
use crate::pages::connect::{SpotifySignIn, check_public_url};
use crate::throttle::LoginLimits;

/// What every request reads.
pub struct AppState {
    /// The path this group's pages are served under: empty for a one-group dashboard, `/g/<id>` for a
    /// group of several.
    pub base: String,
    /// MongoDB and the storage, read-only.
    pub stores: earshot_state::Stores,
    /// The group password, when one is set.
    pub auth: Option<Auth>,
    /// The Host names answered and the proxies believed.
    pub exposure: Exposure,
    /// The clock (the fetcher's: `EARSHOT_NOW` in the demo and tests).
    pub clock: Arc<dyn earshot_state::clock::Clock>,
    /// "Sign in with Spotify", when the token key is set.
    pub spotify: Option<Arc<SpotifySignIn>>,
    /// The listen API's rate limits ([`crate::pages::listen_api`]).
    pub listen_limiter: crate::pages::listen_api::ListenLimiter,
    /// Sign-in failures and refusals, for the metrics ([`crate::telemetry`]).
    pub sign_ins: crate::telemetry::SignInCounters,
}

impl AppState {
    /// The group's sessions (in its own database).
    pub fn sessions(&self) -> earshot_state::sessions::SessionStore {
        earshot_state::sessions::SessionStore::new(&self.stores.db, self.stores.group.id.as_deref())
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A group's password hash from its config's `dashboard_password_hash_env` or `…_file`, if any.
fn group_password_hash(group: &GroupConfig, config: &Path) -> Result<Option<(String, String)>> {
    if let Some(name) = &group.dashboard_password_hash_env {
        let hash = std::env::var(name).with_context(|| {
            format!(
                "the group config `{}` names `{name}` for the dashboard password hash, and it is not set",
                config.display()
            )
        })?;
        return Ok(Some((hash, name.clone())));
    }
    group
        .dashboard_password_hash_file
        .as_deref()
        .map(hash_file)
        .transpose()
}

/// A password hash file's text, and how to name it in messages.
fn hash_file(path: &Path) -> Result<(String, String)> {
    let hash = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password hash file `{}`", path.display()))?;
    Ok((hash, format!("the password hash file `{}`", path.display())))
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
    args.password_hash_file
        .as_deref()
        .map(hash_file)
        .transpose()
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

/// Refuse to serve without a password unless `--no-password` says so, and `--no-password` anywhere but
/// on a loopback bind: a dashboard without a password is for this machine only, and a proxy in front
/// of it (nginx's plain `proxy_pass http://127.0.0.1:8080;` sends no header that gives it away) would
/// serve its pages to anyone.
pub fn check_no_password(bind: SocketAddr, has_password: bool, no_password: bool) -> Result<()> {
    if no_password && !bind.ip().is_loopback() {
        bail!(
            "`--no-password` is accepted only on a loopback bind (127.0.0.1, ::1), not on {bind}: set \
             a group password ({}, made by `dashboard hash-password`)",
            env::EARSHOT_DASHBOARD_PASSWORD_HASH
        );
    }
    if no_password && has_password {
        bail!("`--no-password` and a group password were both given: drop one of them");
    }
    if !has_password && !no_password {
        bail!(
            "no group password: set {} (make one with `dashboard hash-password`), or pass \
             `--no-password` to serve this machine only (loopback bind; never behind a proxy, which \
             would make the pages public)",
            env::EARSHOT_DASHBOARD_PASSWORD_HASH
        );
    }
    Ok(())
}

/// The state of each group these options serve, with the path it is served under: one group at the
/// root, or with `--groups-dir` each group of the folder under `/g/<id>`, each with its own password.
pub async fn states(args: &ServeArgs) -> Result<Vec<Arc<AppState>>> {
    let Some(dir) = &args.groups_dir else {
        let group = args.store.group()?;
        let hash = password_hash(args)?;
        return Ok(vec![Arc::new(
            group_state(args, group, hash, String::new()).await?,
        )]);
    };
    let one_password = std::env::var(env::EARSHOT_DASHBOARD_PASSWORD_HASH)
        .is_ok_and(|hash| !hash.trim().is_empty());
    if args.store.files.group_config.is_some() || args.password_hash_file.is_some() || one_password
    {
        bail!(
            "`--groups-dir` serves each group of the folder with its own config and password: drop \
             `--group-config` and `--password-hash-file` (or {}, {} and {})",
            env::EARSHOT_GROUP_CONFIG,
            env::EARSHOT_DASHBOARD_PASSWORD_HASH_FILE,
            env::EARSHOT_DASHBOARD_PASSWORD_HASH
        );
    }
    let mut states = Vec::new();
    for (path, group) in earshot_core::scope::load_groups(dir)? {
        let hash = group_password_hash(&group, &path)?;
        let id = group.id.clone().expect("load_groups checks every id");
        let state = group_state(args, group, hash, crate::urls::group_base(&id))
            .await
            .with_context(|| format!("the group `{id}` (`{}`)", path.display()))?;
        states.push(Arc::new(state));
    }
    Ok(states)
}

/// "Sign in with Spotify" when the token key is set (`EARSHOT_TOKEN_KEY` or `…_FILE`): the same
/// token store `data-fetcher` uses, Spotify's endpoints (`SPOTIFY_API_BASE`, `SPOTIFY_ACCOUNTS_BASE`),
/// and the public URL (`--public-url`, by default a loopback bind's own).
async fn spotify_sign_in(
    args: &ServeArgs,
    storage: &Storage,
    database: &str,
    clock: Arc<dyn earshot_state::clock::Clock>,
) -> Result<Option<Arc<SpotifySignIn>>> {
    let key_set = [env::EARSHOT_TOKEN_KEY, env::EARSHOT_TOKEN_KEY_FILE]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    if !key_set {
        return Ok(None);
    }
    let public_url = match &args.public_url {
        Some(url) => check_public_url(url)?,
        None if args.bind.ip().is_loopback() => check_public_url(&format!("http://{}", args.bind))?,
        None => bail!(
            "\"Sign in with Spotify\" needs the address friends reach the dashboard at: give \
             `--public-url https://<name>` (or {})",
            env::EARSHOT_DASHBOARD_PUBLIC_URL
        ),
    };
    let tokens = earshot_spotify::tokens::TokenStore::open(
        args.token_store,
        storage,
        &args.store.mongodb_uri,
        database,
    )
    .await?;
    let spotify = earshot_spotify::api::Spotify::new(
        earshot_spotify::api::Endpoints::from_env(),
        clock,
        earshot_spotify::api::Budget::new(std::time::Duration::from_secs(30)),
    )?;
    Ok(Some(Arc::new(SpotifySignIn {
        spotify,
        tokens,
        public_url,
    })))
}

/// The state of one group: MongoDB, the storage, the group config, the password.
async fn group_state(
    args: &ServeArgs,
    group: GroupConfig,
    hash: Option<(String, String)>,
    base: String,
) -> Result<AppState> {
    let secure = args.secure_cookies();
    let auth = match hash {
        Some((hash, source)) => Some(Auth::new(&hash, &source, secure)?.with_login_limits(
            LoginLimits::with_budget(usize::try_from(args.login_budget).unwrap_or(usize::MAX)),
        )),
        None => None,
    };
    if args.no_password {
        check_no_password(args.bind, auth.is_some(), true)?;
    }
    check_bind(args.bind, auth.is_some())?;
    check_no_password(args.bind, auth.is_some(), args.no_password)?;
    let exposure = Exposure::new(
        args.bind,
        &args.public_hosts,
        &args.trusted_proxies,
        auth.is_some(),
    )?
    .with_client_ip_header(args.client_ip_header);
    if args.insecure_cookie && !args.bind.ip().is_loopback() {
        tracing::warn!(
            bind = %args.bind,
            "Cookies are not `Secure` (--insecure-cookie): the password and sessions cross the network \
             in clear. Use this on a trusted LAN only."
        );
    }
    group.zone().map_err(anyhow::Error::msg)?;
    let scoped = args.store.scoped_for(group)?;
    let storage = scoped.storage().await?;
    let clock = earshot_state::clock::from_env()?;
    let spotify = spotify_sign_in(args, &storage, &scoped.scope.database, clock.clone()).await?;
    let state = AppState {
        base,
        stores: earshot_state::Stores {
            storage,
            db: scoped.database().await?,
            group: scoped.group,
        },
        auth,
        exposure,
        clock,
        spotify,
        listen_limiter: Default::default(),
        sign_ins: Default::default(),
    };
    if let Some(auth) = &state.auth {
        // A new password ends every session the old one opened.
        state.sessions().prepare(Some(auth.fingerprint())).await?;
    }
    Ok(state)
}
