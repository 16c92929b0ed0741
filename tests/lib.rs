//! Helpers for the cross-binary tests in `tests/*.rs`, and for the crates whose tests need the fixture
//! group carried through the pipeline (gcs-export, analytics).

use std::path::{Path, PathBuf};
use std::process::Command;

use earshot_core::layout::RawKind;
use earshot_core::{GroupConfig, Storage, mongo};
use earshot_testkit::fixtures::{
    Listening, fixtures_dir, history_dir, member_raw_pages, write_raw_pages,
};
use earshot_testkit::mongo_server::MongoServer;

/// The path of a workspace binary, building it when this test run has not (`cargo test -p
/// earshot-tests` builds only this package; `cargo test --workspace` builds them all).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", name, "--bin", name])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p {name} failed");
    }
    path
}

/// Run a workspace binary on a test's stores, as the DAG's tasks do.
pub fn run_binary(
    program: &str,
    root: &std::path::Path,
    db: &mongodb::Database,
    config: &std::path::Path,
    args: &[&str],
) {
    let out = Command::new(binary(program))
        .args(args)
        .env("EARSHOT_STORAGE", root)
        .env("EARSHOT_GROUP_CONFIG", config)
        .env("MONGODB_URI", MongoServer::shared().uri())
        .env("EARSHOT_DATABASE", db.name())
        .env("EARSHOT_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixture group's config.
pub fn fixture_group_config() -> GroupConfig {
    GroupConfig::load(&fixtures_dir().join("group.toml")).expect("fixtures/group.toml")
}

/// A temp folder holding the fixture group's raw pages, every kind converted by json-converter.
pub async fn converted_storage() -> (tempfile::TempDir, Storage) {
    converted_storage_with(false).await
}

/// [`converted_storage`], with every member's Extended Streaming History imported first when
/// `history` (not enriched: its removed tracks and its artists without Spotify ids stay as the file
/// leaves them).
pub async fn converted_storage_with(history: bool) -> (tempfile::TempDir, Storage) {
    converted_storage_of(Fixture {
        history,
        listens: false,
    })
    .await
}

/// What the fixture pipeline carries besides the Spotify members' fetched pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fixture {
    /// Every Spotify member's Extended Streaming History imported (not enriched).
    pub history: bool,
    /// The sixth friend's listens (fixtures/listens/fern.jsonl, not on Spotify), stored as the listen API
    /// stores what her scrobblers submit (one `import` submission a day).
    pub listens: bool,
}

/// [`converted_storage`] carrying `fixture`.
pub async fn converted_storage_of(fixture: Fixture) -> (tempfile::TempDir, Storage) {
    let history = fixture.history;
    let dir = tempfile::tempdir().expect("a temp folder");
    let storage = Storage::local(dir.path());
    write_raw_pages(&storage)
        .await
        .expect("writing the raw pages");
    let group = fixture_group_config();
    if fixture.listens {
        earshot_testkit::scrobbler::write_scrobbler_raw_files(&storage)
            .await
            .expect("writing the sixth friend's listens as the listen API stores them");
    }
    if history {
        for member in group.members.iter().filter(|m| m.spotify) {
            let export = vec![history_dir(&fixtures_dir(), &member.id)];
            data_fetcher::import::import(&storage, &group, &member.id, &export, chrono::Utc::now())
                .await
                .expect("importing the history");
        }
    }
    for raw in RawKind::ALL {
        let converter =
            json_converter::Converter::new(raw, group.clone()).expect("the fixture zone");
        let prefix = earshot_core::layout::raw_prefix(raw);
        let converted =
            json_converter::convert_storage(&storage, &converter, &prefix, false, false)
                .await
                .expect("converting");
        assert!(converted.failed.is_empty(), "{:?}", converted.failed);
    }
    (dir, storage)
}

/// A fresh, empty database on the test server (the dev server, or `EARSHOT_TEST_MONGODB_URI`).
pub async fn fresh_database(test: &str) -> mongodb::Database {
    let server = MongoServer::shared();
    mongo::connect(server.uri(), &server.database_name(test))
        .await
        .expect("the test server")
}

/// The fixture group through the pipeline into a fresh database on the test server: raw pages →
/// json-converter → data-upload → create-collections. Returns the database and the storage (kept
/// alive by the temp folder).
pub async fn pipeline_database(test: &str) -> (mongodb::Database, tempfile::TempDir, Storage) {
    pipeline_database_with(test, false).await
}

/// [`pipeline_database`], with the members' streaming histories imported when `history`.
pub async fn pipeline_database_with(
    test: &str,
    history: bool,
) -> (mongodb::Database, tempfile::TempDir, Storage) {
    pipeline_database_of(
        test,
        Fixture {
            history,
            listens: false,
        },
    )
    .await
}

/// [`pipeline_database`] carrying `fixture`.
pub async fn pipeline_database_of(
    test: &str,
    fixture: Fixture,
) -> (mongodb::Database, tempfile::TempDir, Storage) {
    let (dir, storage) = converted_storage_of(fixture).await;
    let db = fresh_database(test).await;
    for raw in RawKind::ALL {
        earshot_upload::load_storage(
            &db,
            &storage,
            raw,
            &earshot_core::layout::converted_prefix(raw),
            earshot_upload::LoadOptions::default(),
        )
        .await
        .expect("uploading");
    }
    earshot_collections::build(
        &db,
        earshot_core::layout::Target::All,
        &fixture_group_config(),
    )
    .await
    .expect("building the collections");
    (db, dir, storage)
}

/// [`pipeline_database`], then every collection exported as snapshot `snapshot`.
pub async fn exported_snapshot(
    test: &str,
    snapshot: &str,
) -> (mongodb::Database, tempfile::TempDir, Storage) {
    exported_snapshot_with(test, snapshot, false).await
}

/// [`exported_snapshot`], with the members' streaming histories imported when `history`.
pub async fn exported_snapshot_with(
    test: &str,
    snapshot: &str,
    history: bool,
) -> (mongodb::Database, tempfile::TempDir, Storage) {
    exported_snapshot_of(
        test,
        snapshot,
        Fixture {
            history,
            listens: false,
        },
    )
    .await
}

/// [`exported_snapshot`] carrying `fixture`.
pub async fn exported_snapshot_of(
    test: &str,
    snapshot: &str,
    fixture: Fixture,
) -> (mongodb::Database, tempfile::TempDir, Storage) {
    let (db, dir, storage) = pipeline_database_of(test, fixture).await;
    let sizes = gcs_export::Sizes {
        batch_rows: 1000,
        part_rows: 100_000,
    };
    let members = gcs_export::members_with_rows(&db)
        .await
        .expect("reading the members");
    for collection in earshot_core::export::COLLECTIONS {
        gcs_export::export_collection(&db, &storage, collection, snapshot, sizes, &members)
            .await
            .expect("exporting");
    }
    (db, dir, storage)
}

/// Where a binary runs as one group's DAG task: the deployment's storage and database, and the
/// group's config (several groups' tests).
pub struct Place<'a> {
    /// The deployment's storage root.
    pub root: &'a Path,
    /// The deployment's database name.
    pub database: &'a str,
    /// The group's config.
    pub config: &'a Path,
}

impl Place<'_> {
    /// Run `program`, its logs as JSON lines at info.
    pub fn output(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(binary(program))
            .args(args)
            .env("EARSHOT_STORAGE", self.root)
            .env("EARSHOT_GROUP_CONFIG", self.config)
            .env("MONGODB_URI", MongoServer::shared().uri())
            .env("EARSHOT_DATABASE", self.database)
            .env("EARSHOT_LOG", "info")
            .output()
            .unwrap()
    }

    /// Run `program`, which must succeed; its log.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.output(program, args);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{program} {args:?}: {log}");
        log
    }

    /// The fetched pages of the config's members, where its fetcher stores them, then the hourly and
    /// daily DAGs' steps, the snapshot and analytics run named `run`. Returns each step's log.
    pub async fn pipeline(&self, run: &str) -> Vec<String> {
        let group = GroupConfig::load(self.config).unwrap();
        let storage = Storage::open(
            &earshot_core::scope::storage_of(&group, self.root.to_str().unwrap()).unwrap(),
        )
        .await
        .unwrap();
        let listening = Listening::fixture_group().unwrap();
        for member in &listening.members {
            if group.member(member.id()).is_some() {
                for (key, page) in member_raw_pages(member) {
                    storage
                        .write(&key, serde_json::to_vec(&page).unwrap().into())
                        .await
                        .unwrap();
                }
            }
        }
        let mut logs = Vec::new();
        for kind in ["recently-played", "top-tracks", "top-artists"] {
            logs.push(self.run("json-converter", &[kind]));
        }
        logs.push(self.run("data-upload", &["all"]));
        logs.push(self.run("create-collections", &["all"]));
        logs.push(self.run("gcs-export", &["--snapshot", run]));
        logs.push(self.run("analytics", &["--snapshot", run, "--run", run]));
        logs
    }
}

/// Every file under `dir`, by its path below it, with its bytes (nothing when `dir` is absent).
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let key = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Every document of every collection of `db`: `each(collection, document)`.
pub async fn each_document(
    db: &mongodb::Database,
    mut each: impl FnMut(&str, mongodb::bson::Document),
) {
    use mongodb::bson::{Document, doc};
    for name in db.list_collection_names().await.unwrap() {
        let mut cursor = db
            .collection::<Document>(&name)
            .find(doc! {})
            .await
            .unwrap();
        while cursor.advance().await.unwrap() {
            each(&name, cursor.deserialize_current().unwrap());
        }
    }
}

/// A fetcher's clock that follows the mock Spotify's: `now` is the mock's, and a wait moves the
/// mock's clock on instead of sleeping.
pub struct MockClock(pub std::sync::Arc<earshot_testkit::spotify::MockSpotify>);

impl earshot_state::clock::Clock for MockClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now()
    }

    fn sleep(
        &self,
        duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.0
            .advance(chrono::Duration::from_std(duration).expect("a wait in range"));
        Box::pin(async {})
    }
}
