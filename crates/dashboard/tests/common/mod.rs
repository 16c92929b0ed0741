//! The dashboard on the fixture group carried through the real pipeline: raw pages → json-converter →
//! data-upload → create-collections → gcs-export, then the `analytics` binary twice, as the DAG runs it
//! (the daily run of the whole history, and `--period 2024-10`), served on a free loopback port.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use dashboard::AppState;
use dashboard::auth::Auth;
use earshot_testkit::mongo::MongoServer;
use earshot_tests::{binary, exported_snapshot, fixture_group_config};

/// The daily run's snapshot (and run id).
pub const SNAPSHOT: &str = "20241111T090000Z";
/// The recapped period.
pub const PERIOD: &str = "2024-10";

/// A dashboard being served.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The database it reads.
    pub db: mongodb::Database,
    _dir: tempfile::TempDir,
}

fn analytics(root: &std::path::Path, db: &mongodb::Database, args: &[&str]) {
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    let out = Command::new(binary("analytics"))
        .args(args)
        .env("EARSHOT_STORAGE", root)
        .env("EARSHOT_GROUP_CONFIG", &config)
        .env("MONGODB_URI", MongoServer::shared().uri())
        .env("EARSHOT_DATABASE", db.name())
        .env("EARSHOT_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "analytics {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pipeline into a fresh database, then the dashboard on it (with a group password when given).
pub async fn serve(test: &str, password: Option<&str>) -> Served {
    let (db, dir, storage) = exported_snapshot(test, SNAPSHOT).await;
    analytics(
        dir.path(),
        &db,
        &["--snapshot", SNAPSHOT, "--run", SNAPSHOT],
    );
    analytics(
        dir.path(),
        &db,
        &["--snapshot", SNAPSHOT, "--period", PERIOD],
    );
    let auth = password.map(|p| {
        Auth::new(
            &dashboard::auth::hash_password(p).unwrap(),
            "the test hash",
            false,
        )
        .unwrap()
    });
    let state = AppState {
        stores: members::Stores {
            storage,
            db: db.clone(),
            group: fixture_group_config(),
        },
        auth,
        clock: Arc::new(data_fetcher::clock::SystemClock),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(dashboard::serve(listener, Arc::new(state)));
    Served {
        base: format!("http://{address}"),
        db,
        _dir: dir,
    }
}

/// An HTTP client that does not follow redirects (the tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The key of the fixtures' hostile track (`<script>alert(1)</script>`).
pub async fn hostile_track(db: &mongodb::Database) -> String {
    use mongodb::bson::{Document, doc};
    let track = db
        .collection::<Document>(earshot_core::mongo::TRACKS)
        .find_one(doc! {"track_name": "<script>alert(1)</script>"})
        .await
        .unwrap()
        .expect("the fixtures hold a track named <script>alert(1)</script>");
    track.get_str("_id").unwrap().to_string()
}
