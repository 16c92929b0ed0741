//! Every environment variable Earshot reads, in one place.
//!
//! Binaries let clap read these (`#[arg(long, env = env::MONGODB_URI)]`); secrets are read from the
//! environment only, never from flags, and clap is told `hide_env_values = true` for them.

/// Storage URL: a local folder (default `./data`) or `gs://bucket/prefix`.
pub const EARSHOT_STORAGE: &str = "EARSHOT_STORAGE";
/// Path of the group configuration TOML file (default `earshot.toml`).
pub const EARSHOT_GROUP_CONFIG: &str = "EARSHOT_GROUP_CONFIG";
/// MongoDB connection string (default `mongodb://127.0.0.1:27017`).
pub const MONGODB_URI: &str = "MONGODB_URI";
/// MongoDB database name (default `earshot`).
pub const EARSHOT_DATABASE: &str = "EARSHOT_DATABASE";
/// Seconds within which an imported streaming-history play and an API play are one play
/// (`data-upload --match-tolerance`; default [`crate::history::DEFAULT_MATCH_TOLERANCE_S`]).
pub const EARSHOT_MATCH_TOLERANCE: &str = "EARSHOT_MATCH_TOLERANCE";
/// Spotify app client id (public: Earshot is a PKCE client and needs no client secret).
pub const SPOTIFY_CLIENT_ID: &str = "SPOTIFY_CLIENT_ID";
/// Base URL of the Spotify Web API (default `https://api.spotify.com`); tests point it at the mock.
pub const SPOTIFY_API_BASE: &str = "SPOTIFY_API_BASE";
/// Base URL of the Spotify accounts service (default `https://accounts.spotify.com`).
pub const SPOTIFY_ACCOUNTS_BASE: &str = "SPOTIFY_ACCOUNTS_BASE";
/// Key that encrypts stored tokens (32 bytes, base64). A secret.
pub const EARSHOT_TOKEN_KEY: &str = "EARSHOT_TOKEN_KEY";
/// File holding the token key, as an alternative to [`EARSHOT_TOKEN_KEY`].
pub const EARSHOT_TOKEN_KEY_FILE: &str = "EARSHOT_TOKEN_KEY_FILE";
/// `host:port` (or URL) of a GCS emulator such as fake-gcs-server. When set, `gs://` storage talks to
/// it with anonymous credentials instead of Google Cloud. The name is the one Google's own client
/// libraries honour.
pub const STORAGE_EMULATOR_HOST: &str = "STORAGE_EMULATOR_HOST";
/// The command that submits the analytics Spark job (default `spark-submit --master local[2]`).
pub const EARSHOT_SPARK_SUBMIT: &str = "EARSHOT_SPARK_SUBMIT";
/// The Airflow DAG: `true` adds the daily Dataproc branch (a cluster made, `analytics --engine spark`
/// submitted to it, the cluster deleted), read when the DAG file is parsed.
pub const EARSHOT_SPARK_ON_DATAPROC: &str = "EARSHOT_SPARK_ON_DATAPROC";
/// The Airflow DAG: `true` adds a daily branch that runs `analytics --engine spark` on an existing
/// Spark cluster (standalone, YARN, Kubernetes), submitted with [`EARSHOT_SPARK_SUBMIT`] (the Variable
/// `earshot_spark_submit` wins), read when the DAG file is parsed.
pub const EARSHOT_SPARK_ON_CLUSTER: &str = "EARSHOT_SPARK_ON_CLUSTER";
/// A deployment's folder of group configs (`<name>.toml`, each with its `id`; see [`crate::scope`]).
/// The Airflow DAG file, when it is set as it is parsed, makes each group's own hourly, daily and
/// weekly DAGs (`earshot_<id>_…`) instead of the single group's; `dashboard --groups-dir` serves each
/// group under `/g/<id>/`.
pub const EARSHOT_GROUPS_DIR: &str = "EARSHOT_GROUPS_DIR";
/// The Airflow DAG: the folder holding the binaries on the workers (the Airflow Variable
/// `earshot_bin_dir` wins over it).
pub const EARSHOT_BIN_DIR: &str = "EARSHOT_BIN_DIR";
/// The Airflow DAG's Dataproc branch: the region (Variable `earshot_dataproc_region` wins).
pub const EARSHOT_DATAPROC_REGION: &str = "EARSHOT_DATAPROC_REGION";
/// The Airflow DAG's Dataproc branch: `gcloud dataproc clusters create` flags for the cluster's shape
/// (Variable `earshot_dataproc_shape` wins).
pub const EARSHOT_DATAPROC_SHAPE: &str = "EARSHOT_DATAPROC_SHAPE";
/// The Airflow DAG's Dataproc branch: the `gs://` path of `earshot_job.py` (Variable
/// `earshot_spark_job` wins).
pub const EARSHOT_SPARK_JOB: &str = "EARSHOT_SPARK_JOB";
/// The Airflow DAG's Dataproc branch: the `gs://` folder of the metric SQL (Variable
/// `earshot_spark_sql` wins).
pub const EARSHOT_SPARK_SQL: &str = "EARSHOT_SPARK_SQL";
/// Demo and tests only: the fetcher's clock reads this RFC 3339 time when it starts (and runs on from
/// there), so that a fetch against the mock Spotify is dated in the mock's time. Never set in production.
pub const EARSHOT_NOW: &str = "EARSHOT_NOW";
/// The address the dashboard listens on (default [`DEFAULT_DASHBOARD_BIND`]). An address other than a
/// loopback one needs a group password ([`EARSHOT_DASHBOARD_PASSWORD_HASH`]).
pub const EARSHOT_DASHBOARD_BIND: &str = "EARSHOT_DASHBOARD_BIND";
/// The dashboard's group password as an Argon2 hash (PHC string, from `dashboard hash-password`). Not
/// the password itself, but kept out of argv and logs all the same.
pub const EARSHOT_DASHBOARD_PASSWORD_HASH: &str = "EARSHOT_DASHBOARD_PASSWORD_HASH";
/// File holding the dashboard's password hash, as an alternative to [`EARSHOT_DASHBOARD_PASSWORD_HASH`].
pub const EARSHOT_DASHBOARD_PASSWORD_HASH_FILE: &str = "EARSHOT_DASHBOARD_PASSWORD_HASH_FILE";
/// Host names the dashboard answers besides those its bind address implies (comma-separated,
/// `name` or `name:port`): the public name a proxy serves it under.
pub const EARSHOT_DASHBOARD_PUBLIC_HOSTS: &str = "EARSHOT_DASHBOARD_PUBLIC_HOSTS";
/// Reverse proxies (addresses or networks, comma-separated) whose `Forwarded` / `X-Forwarded-For`
/// the dashboard believes.
pub const EARSHOT_DASHBOARD_TRUSTED_PROXIES: &str = "EARSHOT_DASHBOARD_TRUSTED_PROXIES";
/// Seconds a client gets to send a request's head (default 10).
pub const EARSHOT_DASHBOARD_HEADER_TIMEOUT: &str = "EARSHOT_DASHBOARD_HEADER_TIMEOUT";
/// Seconds a dashboard request may take in all (default 30).
pub const EARSHOT_DASHBOARD_REQUEST_TIMEOUT: &str = "EARSHOT_DASHBOARD_REQUEST_TIMEOUT";
/// Connections the dashboard serves at once (default 256).
pub const EARSHOT_DASHBOARD_MAX_CONNECTIONS: &str = "EARSHOT_DASHBOARD_MAX_CONNECTIONS";
/// Wrong dashboard passwords allowed an hour across every client (default 100).
pub const EARSHOT_DASHBOARD_LOGIN_BUDGET: &str = "EARSHOT_DASHBOARD_LOGIN_BUDGET";
/// The one header the trusted proxies set to name the client: `x-forwarded-for` (the default),
/// `x-real-ip` or `forwarded`. Only that header is read; the others are ignored.
pub const EARSHOT_DASHBOARD_CLIENT_IP_HEADER: &str = "EARSHOT_DASHBOARD_CLIENT_IP_HEADER";
/// Connections one client (an IPv4 address, an IPv6 /64) may hold open at once (default 16).
pub const EARSHOT_DASHBOARD_CONNECTIONS_PER_CLIENT: &str =
    "EARSHOT_DASHBOARD_CONNECTIONS_PER_CLIENT";
/// Seconds a kept-alive connection may sit idle between requests (default 5).
pub const EARSHOT_DASHBOARD_IDLE_TIMEOUT: &str = "EARSHOT_DASHBOARD_IDLE_TIMEOUT";
/// Seconds a response may wait on a client that does not read it (default 10).
pub const EARSHOT_DASHBOARD_WRITE_TIMEOUT: &str = "EARSHOT_DASHBOARD_WRITE_TIMEOUT";
/// The dashboard's public address as friends reach it (`https://music.example.org`): its "Sign in with
/// Spotify" redirect URI is this plus the group's path and `/connect/callback`. Spotify requires HTTPS
/// except for loopback IP literals; by default, a loopback bind's own `http://127.0.0.1:<port>`.
pub const EARSHOT_DASHBOARD_PUBLIC_URL: &str = "EARSHOT_DASHBOARD_PUBLIC_URL";
/// Where the dashboard serves its Prometheus metrics, apart from its pages (default
/// [`DEFAULT_METRICS_BIND`]; `off` serves none). They have no password: a loopback address, or one
/// only the scraper reaches.
pub const EARSHOT_METRICS_BIND: &str = "EARSHOT_METRICS_BIND";
/// `false`: the metrics name no member (each member's figures are folded per source). Default `true`.
pub const EARSHOT_METRICS_MEMBER_IDS: &str = "EARSHOT_METRICS_MEMBER_IDS";
/// The scheduled step a binary runs as (the DAG sets each task's id: `fetch_recently_played`, …):
/// set, the binary records its run in `state/steps/<step>.json` as it ends ([`crate::step_runs`]),
/// for the operator's metrics. Unset (a run by hand), nothing is recorded.
pub const EARSHOT_STEP: &str = "EARSHOT_STEP";
/// Log filter for tracing (`info` by default), e.g. `earshot=debug`.
pub const EARSHOT_LOG: &str = "EARSHOT_LOG";

/// Where the project's scripts cache what they build or install (the dev server, the venvs, Cargo's
/// target folder; default `~/.cache/earshot`). Tests read it to find the tools scripts/test.sh installed.
pub const EARSHOT_CACHE: &str = "EARSHOT_CACHE";

/// Test only: use this MongoDB server instead of starting the MongoDB-wire dev server.
pub const EARSHOT_TEST_MONGODB_URI: &str = "EARSHOT_TEST_MONGODB_URI";
/// Test only: a real GCS bucket for the live list/delete tests (with Application Default Credentials).
pub const EARSHOT_TEST_GCS_BUCKET: &str = "EARSHOT_TEST_GCS_BUCKET";
/// Test only: path of the `earshot-devdb` binary (scripts/devdb.sh builds it and sets this).
pub const EARSHOT_DEVDB_BIN: &str = "EARSHOT_DEVDB_BIN";
/// Test only: the ChromeDriver the browser tests start (default `/usr/bin/chromedriver`, which
/// scripts/test.sh installs from Debian's `chromium-driver`).
pub const EARSHOT_CHROMEDRIVER: &str = "EARSHOT_CHROMEDRIVER";
/// Test only: the Chromium the browser tests drive (default `/usr/bin/chromium`).
pub const EARSHOT_CHROMIUM: &str = "EARSHOT_CHROMIUM";
/// Test only: path of the fake-gcs-server binary (scripts/test.sh installs it and sets this).
pub const EARSHOT_FAKE_GCS_BIN: &str = "EARSHOT_FAKE_GCS_BIN";
/// Test only: set, `tests/tests/it/reference.rs` rewrites `docs/reference.md` from the code instead of
/// failing when it is stale.
pub const EARSHOT_UPDATE_REFERENCE: &str = "EARSHOT_UPDATE_REFERENCE";

/// Default storage URL when neither a flag nor [`EARSHOT_STORAGE`] names one.
pub const DEFAULT_STORAGE: &str = "./data";
/// Default MongoDB connection string: a local mongod (or the dev server on its default port).
pub const DEFAULT_MONGODB_URI: &str = "mongodb://127.0.0.1:27017";
/// Default MongoDB database.
pub const DEFAULT_DATABASE: &str = "earshot";
/// Default dashboard address: loopback only.
pub const DEFAULT_DASHBOARD_BIND: &str = "127.0.0.1:8080";
/// Default metrics address: loopback only, on the port OpenTelemetry's Prometheus exporter uses.
pub const DEFAULT_METRICS_BIND: &str = "127.0.0.1:9464";
/// Default group time zone.
pub const DEFAULT_TIME_ZONE: &str = "America/Los_Angeles";
/// Default Spotify Web API base URL.
pub const DEFAULT_SPOTIFY_API_BASE: &str = "https://api.spotify.com";
/// Default Spotify accounts service base URL.
pub const DEFAULT_SPOTIFY_ACCOUNTS_BASE: &str = "https://accounts.spotify.com";

/// The cache folder: [`EARSHOT_CACHE`], or `~/.cache/earshot` as scripts/lib.sh defaults it.
pub fn cache_dir() -> std::path::PathBuf {
    match std::env::var_os(EARSHOT_CACHE) {
        Some(dir) => dir.into(),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
            .join(".cache/earshot"),
    }
}
