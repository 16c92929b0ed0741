//! The group configuration file (`earshot.toml`): who is in the group, which Spotify app each member
//! authorises, and the group's time zone.
//!
//! ```toml
//! name = "dds2024"                     # optional
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
            name: default_group_name(),
            time_zone: default_time_zone(),
            apps: Vec::new(),
            members: Vec::new(),
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
            if member.app.is_none() && self.apps.len() > 1 {
                return Err(format!(
                    "`members`: member `{}` must say which app it uses (`app = \"…\"`): the group has {} apps",
                    member.id,
                    self.apps.len()
                ));
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

    /// The app a member authorises: the named one, else the only one.
    pub fn app_of(&self, member: &MemberConfig) -> Option<&AppConfig> {
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
    fn bad_time_zone_is_an_error() {
        let err = parse("time_zone = \"America/Springfield\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("America/Springfield"), "{err}");
        assert!(err.contains("time_zone"), "{err}");
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
