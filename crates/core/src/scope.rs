//! Several groups in one deployment: where each group's data lives.
//!
//! A group config with an `id` ([`GroupConfig::id`]) is one group of a deployment that holds several.
//! Its data lives apart from every other group's: its own MongoDB database
//! (`<database>_<id>`, [`group_database`]) and its own storage prefix (`<storage>/groups/<id>/`,
//! [`group_storage`]). A config without an `id` is the single group of a deployment, and its data lives
//! where it always did: the database and the storage as given. Every binary resolves its
//! [`GroupScope`] from the config it is given, and reads and writes nothing outside it.

use crate::config::{GroupConfig, MAX_MEMBERS_PER_DEV_APP};
use crate::storage::{StorageError, StorageUrl};

/// The folder under the storage root that holds one subfolder (prefix) per group.
pub const GROUPS_PREFIX: &str = "groups";
/// The Airflow pool every group's Spotify calls (fetches, enrichment) share when a deployment holds
/// several groups (`airflow pools set earshot_spotify 1 …`): the groups' apps share one quota, so their
/// calls queue one at a time instead of one group's backlog starving another's fetch.
pub const SPOTIFY_POOL: &str = "earshot_spotify";
/// Longest MongoDB database name (MongoDB refuses 64 bytes or more).
pub const MAX_DATABASE_NAME_LEN: usize = 63;
/// What separates the deployment's database name from the group id.
pub const DATABASE_SEPARATOR: char = '_';

/// The MongoDB database of group `id` in a deployment whose database is `database`.
pub fn group_database(database: &str, id: &str) -> String {
    format!("{database}{DATABASE_SEPARATOR}{id}")
}

/// The storage URL of group `id` in a deployment whose storage is `storage`.
pub fn group_storage(storage: &str, id: &str) -> Result<String, StorageError> {
    Ok(match StorageUrl::parse(storage)? {
        StorageUrl::Local(root) => root
            .join(GROUPS_PREFIX)
            .join(id)
            .to_string_lossy()
            .into_owned(),
        StorageUrl::Gcs { bucket, prefix } => format!("gs://{bucket}/{prefix}{GROUPS_PREFIX}/{id}"),
    })
}

/// Where one group's data lives: the database and storage a binary opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupScope {
    /// The group's id, or `None` for a deployment's single group.
    pub group: Option<String>,
    /// The storage URL to open.
    pub storage: String,
    /// The MongoDB database to use.
    pub database: String,
}

impl GroupScope {
    /// The scope of `config` in a deployment whose storage and database are the ones given (flags or
    /// environment). Logs the group, so that every task's log names it.
    pub fn of(config: &GroupConfig, storage: &str, database: &str) -> anyhow::Result<GroupScope> {
        let scope = GroupScope {
            group: config.id.clone(),
            storage: storage_of(config, storage)?,
            database: database_of(config, database)?,
        };
        log_group(config, Some(&scope.database), Some(&scope.storage));
        Ok(scope)
    }
}

/// Log the group a binary acts for, with the database and storage it opens (those it does), so
/// that every task's log names its group. Nothing for a deployment's single group.
pub fn log_group(config: &GroupConfig, database: Option<&str>, storage: Option<&str>) {
    if let Some(group) = &config.id {
        tracing::info!(
            group = %group,
            database = database.unwrap_or("-"),
            storage = storage.unwrap_or("-"),
            "Acting for group {group}."
        );
    }
}

/// The database of `config` (for a binary that opens no storage): [`group_database`] for a group
/// with an id, else `database` itself.
pub fn database_of(config: &GroupConfig, database: &str) -> anyhow::Result<String> {
    let name = match &config.id {
        None => return Ok(database.to_string()),
        Some(id) => group_database(database, id),
    };
    if name.len() > MAX_DATABASE_NAME_LEN {
        anyhow::bail!(
            "the database name `{name}` is longer than MongoDB's {MAX_DATABASE_NAME_LEN} bytes: shorten \
             `--database` ({}) or the group's `id`",
            crate::env::EARSHOT_DATABASE
        );
    }
    Ok(name)
}

/// The storage of `config` (for a binary that uses no database): [`group_storage`] for a group with
/// an id, else `storage` itself.
pub fn storage_of(config: &GroupConfig, storage: &str) -> Result<String, StorageError> {
    match &config.id {
        None => Ok(storage.to_string()),
        Some(id) => group_storage(storage, id),
    }
}

/// The groups of a deployment's groups folder: each `*.toml` in it, in name order, loaded and
/// checked. Every one needs an `id`, and no two the same.
pub fn load_groups(
    dir: &std::path::Path,
) -> anyhow::Result<Vec<(std::path::PathBuf, GroupConfig)>> {
    use anyhow::Context as _;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the groups folder `{}`", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml") && path.is_file())
        .collect();
    files.sort();
    let mut groups: Vec<(std::path::PathBuf, GroupConfig)> = Vec::new();
    for path in files {
        let config = GroupConfig::load(&path)?;
        let Some(id) = &config.id else {
            anyhow::bail!(
                "the group config `{}` has no `id`: every group of a groups folder needs one",
                path.display()
            );
        };
        if let Some((other, _)) = groups.iter().find(|(_, g)| g.id.as_ref() == Some(id)) {
            anyhow::bail!(
                "the group configs `{}` and `{}` have the same `id` `{id}`",
                other.display(),
                path.display()
            );
        }
        groups.push((path, config));
    }
    if groups.is_empty() {
        anyhow::bail!(
            "the groups folder `{}` holds no `*.toml` group config",
            dir.display()
        );
    }
    check_shared_apps(groups.iter().map(|(_, g)| g))
        .map_err(|message| anyhow::anyhow!("the groups folder `{}`: {message}", dir.display()))?;
    Ok(groups)
}

/// Whether the groups' apps stay within Spotify's limit: a development-mode app serves at most
/// [`MAX_MEMBERS_PER_DEV_APP`] users across every group that lists it (a Spotify account in two groups
/// is one user of the app), unless a group marks it `extended_quota`.
pub fn check_shared_apps<'a>(
    groups: impl IntoIterator<Item = &'a GroupConfig>,
) -> Result<(), String> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut extended: BTreeSet<&str> = BTreeSet::new();
    for group in groups {
        for app in &group.apps {
            if app.extended_quota {
                extended.insert(&app.client_id);
            }
        }
        for member in group.members.iter().filter(|m| m.spotify) {
            let app = match (&member.app, group.apps.as_slice()) {
                (Some(name), apps) => apps.iter().find(|a| &a.name == name),
                (None, [only]) => Some(only),
                (None, _) => None,
            };
            if let Some(app) = app {
                users.entry(&app.client_id).or_default().insert(&member.id);
            }
        }
    }
    for (client_id, members) in users {
        if members.len() > MAX_MEMBERS_PER_DEV_APP && !extended.contains(client_id) {
            return Err(format!(
                "the Spotify app `{client_id}` serves {} members across the groups ({}): a \
                 development-mode app allows at most {MAX_MEMBERS_PER_DEV_APP}. Give a group its own \
                 app, or mark the app `extended_quota = true` if Spotify granted it",
                members.len(),
                members.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MAX_GROUP_ID_LEN, check_group_id};

    fn config(id: Option<&str>) -> GroupConfig {
        GroupConfig {
            id: id.map(str::to_string),
            ..GroupConfig::default()
        }
    }

    #[test]
    fn a_config_without_id_keeps_the_deployment_s_names() {
        let scope = GroupScope::of(&config(None), "./data", "earshot").unwrap();
        assert_eq!(scope.storage, "./data");
        assert_eq!(scope.database, "earshot");
        assert_eq!(scope.group, None);
    }

    #[test]
    fn a_group_gets_its_own_database_and_prefix() {
        let scope = GroupScope::of(&config(Some("family")), "./data", "earshot").unwrap();
        assert_eq!(scope.database, "earshot_family");
        assert_eq!(scope.storage, "./data/groups/family");
        let scope = GroupScope::of(&config(Some("team-2")), "gs://bkt/earshot/", "e").unwrap();
        assert_eq!(scope.storage, "gs://bkt/earshot/groups/team-2");
        assert_eq!(scope.database, "e_team-2");
        let scope = GroupScope::of(&config(Some("a")), "gs://bkt", "e").unwrap();
        assert_eq!(scope.storage, "gs://bkt/groups/a");
        assert!(GroupScope::of(&config(Some("a")), "http://x", "e").is_err());
        let long = "d".repeat(MAX_DATABASE_NAME_LEN - 1);
        let error = GroupScope::of(&config(Some("a")), "./data", &long).unwrap_err();
        assert!(error.to_string().contains("EARSHOT_DATABASE"), "{error}");
    }

    #[test]
    fn a_groups_folder_loads_each_group_once() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("b.toml", "id = \"b\"\n");
        write("a.toml", "id = \"a\"\n");
        write("notes.txt", "not a group");
        let ids: Vec<_> = load_groups(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, g)| g.id.unwrap())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        write("c.toml", "id = \"a\"\n");
        let error = load_groups(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("a.toml") && error.contains("c.toml"),
            "{error}"
        );
        std::fs::remove_file(dir.path().join("c.toml")).unwrap();
        write("d.toml", "name = \"no id\"\n");
        let error = load_groups(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("d.toml") && error.contains("`id`"),
            "{error}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(load_groups(empty.path()).is_err());
    }

    #[test]
    fn an_app_shared_by_groups_serves_at_most_five_users_in_all() {
        let group = |id: &str, members: &[&str]| {
            let mut text =
                format!("id = \"{id}\"\n[[apps]]\nname = \"shared\"\nclient_id = \"c1\"\n");
            for m in members {
                text.push_str(&format!(
                    "[[members]]\nid = \"{m}\"\ndisplay_name = \"{m}\"\n"
                ));
            }
            GroupConfig::parse(&text, std::path::Path::new("g.toml")).unwrap()
        };
        // Five users in all: the shared member counts once.
        let (a, b) = (
            group("a", &["u1", "u2", "u3"]),
            group("b", &["u3", "u4", "u5"]),
        );
        assert!(check_shared_apps([&a, &b]).is_ok());
        let c = group("c", &["u6"]);
        let error = check_shared_apps([&a, &b, &c]).unwrap_err();
        assert!(
            error.contains("`c1` serves 6 members") && error.contains("u6"),
            "{error}"
        );
        let mut extended = c.clone();
        extended.apps[0].extended_quota = true;
        assert!(check_shared_apps([&a, &b, &extended]).is_ok());
    }

    #[test]
    fn group_ids_are_checked() {
        for good in ["family", "a", "team_2", "0x", &"a".repeat(MAX_GROUP_ID_LEN)] {
            assert!(check_group_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Family",
            "-a",
            "_a",
            "a/b",
            "a.b",
            "..",
            "a b",
            "é",
            &"a".repeat(MAX_GROUP_ID_LEN + 1),
        ] {
            let error = check_group_id(bad).unwrap_err();
            assert!(error.contains("`id`"), "{error}");
        }
    }
}
