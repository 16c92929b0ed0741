//! The group configuration file (`earshot.toml`): who is in the group, which Spotify app each member
//! authorises, and the group's time zone.
//!
//! ```toml
//! id = "dds2024"                       # optional: one group of several in a deployment (see `scope`)
//! name = "DDS 2024"                    # optional
//! time_zone = "America/Los_Angeles"    # optional, the default
//!
//! [[apps]]                             # optional; a development-mode app serves at most 5 members
//! name = "main"
//! client_id = "0123456789abcdef"       # public: PKCE sign-in needs no client secret
//!
//! [[members]]
//! id = "ana.spotify"                   # Spotify user id
//! display_name = "Ana"
//! app = "main"                         # optional when there is one app or none
//!
//! [[members]]
//! id = "dana"                          # a friend not on Spotify: scrobbles to the listen API
//! display_name = "Dana"
//! spotify = false                      # not fetched, not counted against an app's 5 members
//!
//! dashboard_url = "https://earshot.example.org"   # optional: links in the posted weekly recap
//! # The dashboard password's Argon2 hash (`dashboard hash-password`), for a dashboard serving
//! # several groups, each with its own; optional: an env variable or a file holding it.
//! dashboard_password_hash_env = "EARSHOT_DASHBOARD_PASSWORD_HASH_DDS"
//! # dashboard_password_hash_file = "/secrets/dds.hash"
//!
//! [[destinations]]                     # optional: where `recap` posts the weekly recap
//! name = "friends"                     # the ledger's name for it (letters, digits, `-`, `_`, `.`)
//! kind = "discord"                     # discord | slack | ntfy | webhook
//! url_env = "EARSHOT_RECAP_DISCORD_URL"   # the URL is a secret: an env variable…
//! # url_file = "/secrets/discord-url"     # …or a file holding it, never the URL itself
//! ```
//!
//! Unknown keys, duplicate members and unknown time zones are errors that name the file and the key.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::env::DEFAULT_TIME_ZONE;

/// The config file binaries read when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "earshot.toml";

/// Most members one development-mode Spotify app may serve (since 2026-02-11).
pub const MAX_MEMBERS_PER_DEV_APP: usize = 5;

/// Longest group id (`id`): short enough that `<database>_<id>` stays within MongoDB's 63-byte
/// database names with any sensible base name (see [`crate::scope`]).
pub const MAX_GROUP_ID_LEN: usize = 32;
/// Whether `id` can name a group: 1-32 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
/// It becomes a database name's suffix, a storage prefix, a URL segment and an Airflow DAG id's part.
pub fn check_group_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_GROUP_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`id`: `{id}` is not a group id: use 1-{MAX_GROUP_ID_LEN} characters of a-z, 0-9, `-`, `_`, \
             starting with a letter or digit"
        ))
    }
}

/// Why a group configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read group config `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a wrong type.
    #[error("invalid group config `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, which names the line and key.
        message: String,
    },
    /// The file parsed but says something impossible.
    #[error("invalid group config `{path}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// The group: members, apps, time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The group's id when the deployment holds several groups: its data then lives in its own
    /// database and storage prefix ([`crate::scope`]). `None` for a deployment's single group.
    #[serde(default)]
    pub id: Option<String>,
    /// A name for the group, used in reports.
    #[serde(default = "default_group_name")]
    pub name: String,
    /// IANA time zone for local times, listening clocks and "this week".
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Spotify apps the members authorise (client ids only: PKCE sign-in needs no client secret).
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// The friends in the group.
    #[serde(default)]
    pub members: Vec<MemberConfig>,
    /// The dashboard's public address (`https://…`), for links in the posted weekly recap.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// Where the weekly recap is posted (`recap`).
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// When the stall alarm (`recap --alarms`) posts to the destinations.
    #[serde(default)]
    pub alarms: AlarmsConfig,
    /// The environment variable holding the group's dashboard password hash.
    #[serde(default)]
    pub dashboard_password_hash_env: Option<String>,
    /// The file holding the group's dashboard password hash, as an alternative to
    /// `dashboard_password_hash_env`.
    #[serde(default)]
    pub dashboard_password_hash_file: Option<PathBuf>,
}

/// When the stall alarm (`recap --alarms`, run daily) tells the group something has stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// A connected member with no new play for this many hours is stalled (1 to
    /// [`MAX_STALLED_AFTER_HOURS`]).
    #[serde(default = "default_stalled_after_hours")]
    pub stalled_after_hours: u32,
    /// A scheduled step whose runs failed this many times in a row is failing (1 to
    /// [`crate::step_runs::KEPT_RUNS`]).
    #[serde(default = "default_failed_runs")]
    pub failed_runs: u32,
}

/// The longest stall threshold: a year.
pub const MAX_STALLED_AFTER_HOURS: u32 = 24 * 366;

fn default_stalled_after_hours() -> u32 {
    48
}

fn default_failed_runs() -> u32 {
    3
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            stalled_after_hours: default_stalled_after_hours(),
            failed_runs: default_failed_runs(),
        }
    }
}

/// One place the weekly recap is posted to. Its URL is a secret (a webhook URL is its own
/// credential), so the config names where to read it, never the URL itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// The destination's name: the posts ledger records each week's post under it.
    pub name: String,
    /// What the URL is.
    pub kind: DestinationKind,
    /// The environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The file holding the URL (its first line), as an alternative to `url_env`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

/// What a destination's URL is, and so which message shape it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// A Discord webhook (`https://discord.com/api/webhooks/…`): an embed.
    Discord,
    /// A Slack incoming webhook (`https://hooks.slack.com/services/…`): blocks.
    Slack,
    /// An ntfy topic (`https://ntfy.sh/<topic>`): title, markdown body, tags.
    Ntfy,
    /// Any URL that takes the recap's own JSON by POST.
    Webhook,
}

impl DestinationKind {
    /// The name the config uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Discord => "discord",
            DestinationKind::Slack => "slack",
            DestinationKind::Ntfy => "ntfy",
            DestinationKind::Webhook => "webhook",
        }
    }
}

/// A Spotify app registered in the developer dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Name members refer to with `app = "…"`.
    pub name: String,
    /// The app's client id (public).
    pub client_id: String,
    /// Whether Spotify granted the app extended quota (then the 5-member limit does not apply).
    #[serde(default)]
    pub extended_quota: bool,
}

/// One friend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Spotify user id.
    pub id: String,
    /// Name shown in reports.
    pub display_name: String,
    /// Which app of `apps` the member authorises; may be omitted when there is at most one app.
    #[serde(default)]
    pub app: Option<String>,
    /// Whether the member connects a Spotify account (the default). `spotify = false`: a friend who
    /// listens elsewhere and scrobbles to the listen API or imports a history; the fetcher skips them,
    /// no app counts them among its 5 development-mode users, and they cannot connect Spotify.
    #[serde(default = "yes")]
    pub spotify: bool,
}

fn yes() -> bool {
    true
}

fn default_group_name() -> String {
    "earshot".to_string()
}

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_string()
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            id: None,
            name: default_group_name(),
            time_zone: default_time_zone(),
            apps: Vec::new(),
            members: Vec::new(),
            dashboard_url: None,
            destinations: Vec::new(),
            alarms: AlarmsConfig::default(),
            dashboard_password_hash_env: None,
            dashboard_password_hash_file: None,
        }
    }
}

impl GroupConfig {
    /// Read and validate a group config file.
    pub fn load(path: &Path) -> Result<GroupConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        GroupConfig::parse(&text, path)
    }

    /// The group config a binary runs with: the file at `path` when given (missing is an error), else
    /// `earshot.toml` in the working folder when it exists, else defaults (time zone
    /// America/Los_Angeles; members then show under their Spotify ids).
    pub fn resolve(path: Option<&Path>) -> Result<GroupConfig, ConfigError> {
        match path {
            Some(path) => GroupConfig::load(path),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                GroupConfig::load(Path::new(DEFAULT_CONFIG_FILE))
            }
            None => {
                tracing::info!(
                    file = DEFAULT_CONFIG_FILE,
                    "No group config found; using defaults."
                );
                Ok(GroupConfig::default())
            }
        }
    }

    /// The display name of a member, or the id itself for someone the config does not list.
    pub fn display_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.member(id).map_or(id, |m| m.display_name.as_str())
    }

    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<GroupConfig, ConfigError> {
        let config: GroupConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(id) = &self.id {
            check_group_id(id)?;
        }
        if self.dashboard_password_hash_env.is_some() && self.dashboard_password_hash_file.is_some()
        {
            return Err(
                "`dashboard_password_hash_env` and `dashboard_password_hash_file`: give one, not both"
                    .to_string(),
            );
        }
        self.zone()?;
        let mut app_names = HashSet::new();
        for app in &self.apps {
            if !app_names.insert(app.name.as_str()) {
                return Err(format!("`apps`: the app name `{}` appears twice", app.name));
            }
        }
        let mut ids = HashSet::new();
        for member in &self.members {
            if member.id.trim().is_empty() {
                return Err("`members`: a member has an empty `id`".to_string());
            }
            if !ids.insert(member.id.as_str()) {
                return Err(format!(
                    "`members`: the member id `{}` appears twice",
                    member.id
                ));
            }
            if let Some(app) = &member.app
                && !app_names.contains(app.as_str())
            {
                return Err(format!(
                    "`members`: member `{}` names app `{app}`, which `apps` does not list",
                    member.id
                ));
            }
            if !member.spotify && member.app.is_some() {
                return Err(format!(
                    "`members`: member `{}` has `spotify = false` and names an app: a member without \
                     Spotify authorises none",
                    member.id
                ));
            }
            if member.spotify && member.app.is_none() && self.apps.len() > 1 {
                return Err(format!(
                    "`members`: member `{}` must say which app it uses (`app = \"…\"`): the group has {} apps",
                    member.id,
                    self.apps.len()
                ));
            }
        }
        if let Some(url) = &self.dashboard_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(format!(
                "`dashboard_url`: `{url}` is not an http(s) address"
            ));
        }
        if !(1..=MAX_STALLED_AFTER_HOURS).contains(&self.alarms.stalled_after_hours) {
            return Err(format!(
                "`alarms.stalled_after_hours`: {} is not 1 to {MAX_STALLED_AFTER_HOURS}",
                self.alarms.stalled_after_hours
            ));
        }
        let kept = crate::step_runs::KEPT_RUNS;
        if !(1..=kept).contains(&(self.alarms.failed_runs as usize)) {
            return Err(format!(
                "`alarms.failed_runs`: {} is not 1 to {kept} (the runs each step keeps)",
                self.alarms.failed_runs
            ));
        }
        let mut destinations = HashSet::new();
        for destination in &self.destinations {
            let name = &destination.name;
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "`destinations`: the name `{name}` must be 1 to 64 letters, digits, `-`, `_` or `.`"
                ));
            }
            if !destinations.insert(name.as_str()) {
                return Err(format!("`destinations`: the name `{name}` appears twice"));
            }
            match (&destination.url_env, &destination.url_file) {
                (Some(var), None) if !var.trim().is_empty() => {}
                (None, Some(file)) if !file.as_os_str().is_empty() => {}
                _ => {
                    return Err(format!(
                        "`destinations`: `{name}` needs exactly one of `url_env` (an environment variable) \
                         or `url_file` (a file) holding its URL, which is a secret and never written here"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The group's time zone.
    pub fn zone(&self) -> Result<Tz, String> {
        self.time_zone.parse::<Tz>().map_err(|_| {
            format!(
                "`time_zone`: `{}` is not an IANA time zone name (e.g. `America/Los_Angeles`)",
                self.time_zone
            )
        })
    }

    /// The member with this Spotify id.
    pub fn member(&self, id: &str) -> Option<&MemberConfig> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The app a member authorises: the named one, else the only one; none for a member without
    /// Spotify.
    pub fn app_of(&self, member: &MemberConfig) -> Option<&AppConfig> {
        if !member.spotify {
            return None;
        }
        match &member.app {
            Some(name) => self.apps.iter().find(|a| &a.name == name),
            None => self.apps.first(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GroupConfig, ConfigError> {
        GroupConfig::parse(text, Path::new("earshot.toml"))
    }

    #[test]
    fn defaults_to_los_angeles() {
        let config = parse("[[members]]\nid = \"ana\"\ndisplay_name = \"Ana\"\n").unwrap();
        assert_eq!(config.time_zone, "America/Los_Angeles");
        assert_eq!(config.zone().unwrap(), chrono_tz::America::Los_Angeles);
        assert_eq!(config.member("ana").unwrap().display_name, "Ana");
    }

    #[test]
    fn unknown_keys_are_errors_naming_file_and_key() {
        let err = parse("time_zone = \"UTC\"\ncolour = \"blue\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("earshot.toml"), "{err}");
        assert!(err.contains("colour"), "{err}");
        let err = parse("[[members]]\nid = \"a\"\ndisplay_name = \"A\"\nemail = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("email"), "{err}");
    }

    #[test]
    fn alarms_default_to_48_hours_and_3_failures_and_are_checked() {
        let config = parse("").unwrap();
        assert_eq!(config.alarms, AlarmsConfig::default());
        assert_eq!(
            (config.alarms.stalled_after_hours, config.alarms.failed_runs),
            (48, 3)
        );
        let config = parse("[alarms]\nstalled_after_hours = 12\n").unwrap();
        assert_eq!(
            (config.alarms.stalled_after_hours, config.alarms.failed_runs),
            (12, 3)
        );
        for (text, wanted) in [
            (
                "[alarms]\nstalled_after_hours = 0\n",
                "alarms.stalled_after_hours",
            ),
            (
                "[alarms]\nstalled_after_hours = 9000\n",
                "alarms.stalled_after_hours",
            ),
            ("[alarms]\nfailed_runs = 21\n", "alarms.failed_runs"),
            ("[alarms]\nfailed_runs = 0\n", "alarms.failed_runs"),
            ("[alarms]\nsilence = true\n", "silence"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains(wanted) && err.contains("earshot.toml"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn bad_time_zone_is_an_error() {
        let err = parse("time_zone = \"America/Springfield\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("America/Springfield"), "{err}");
        assert!(err.contains("time_zone"), "{err}");
    }

    #[test]
    fn destinations_name_where_their_secret_url_is_never_the_url() {
        let ok = "[[destinations]]\nname = \"chat\"\nkind = \"discord\"\nurl_env = \"CHAT_URL\"\n\
                  [[destinations]]\nname = \"phone\"\nkind = \"ntfy\"\nurl_file = \"/run/secrets/ntfy\"\n";
        let config = parse(ok).unwrap();
        assert_eq!(config.destinations.len(), 2);
        assert_eq!(config.destinations[0].kind, DestinationKind::Discord);
        assert_eq!(config.destinations[1].kind, DestinationKind::Ntfy);
        for (text, wanted) in [
            // The URL itself is not a key: it would sit in a committed file.
            (
                "name = \"a\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n",
                "url",
            ),
            ("name = \"a\"\nkind = \"slack\"\n", "exactly one of"),
            (
                "name = \"a\"\nkind = \"slack\"\nurl_env = \"A\"\nurl_file = \"f\"\n",
                "exactly one of",
            ),
            (
                "name = \"a b\"\nkind = \"slack\"\nurl_env = \"A\"\n",
                "`a b`",
            ),
            (
                "name = \"a\"\nkind = \"telegram\"\nurl_env = \"A\"\n",
                "telegram",
            ),
        ] {
            let err = parse(&format!("[[destinations]]\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(wanted), "{text}: {err}");
        }
        let twice = "[[destinations]]\nname = \"a\"\nkind = \"slack\"\nurl_env = \"A\"\n".repeat(2);
        assert!(
            parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("appears twice")
        );
        let err = parse("dashboard_url = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("dashboard_url"), "{err}");
    }

    #[test]
    fn duplicate_members_and_unknown_apps_are_errors() {
        let dup = "[[members]]\nid = \"a\"\ndisplay_name = \"A\"\n[[members]]\nid = \"a\"\ndisplay_name = \"B\"\n";
        assert!(
            parse(dup)
                .unwrap_err()
                .to_string()
                .contains("appears twice")
        );
        let unknown_app = "[[members]]\nid = \"a\"\ndisplay_name = \"A\"\napp = \"nope\"\n";
        assert!(
            parse(unknown_app)
                .unwrap_err()
                .to_string()
                .contains("`nope`")
        );
    }
}
