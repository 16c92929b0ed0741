//! What every request reads ([`AppState`]), built from the serving options: MongoDB, the storage, the
//! group config, the password, the exposure, the clock.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use earshot_core::{GroupConfig, Storage, env};

use crate::auth::Auth;
use crate::cli::ServeArgs;
use crate::exposure::Exposure;
use crate::throttle::LoginLimits;

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
    let scope = earshot_core::GroupScope::of(&group, &args.storage, &args.database)?;
    Ok(AppState {
        stores: earshot_state::Stores {
            storage: Storage::open(&scope.storage).await?,
            db: earshot_core::mongo::connect(&args.mongodb_uri, &scope.database).await?,
            group,
        },
        auth,
        exposure,
        clock: earshot_state::clock::from_env()?,
    })
}
