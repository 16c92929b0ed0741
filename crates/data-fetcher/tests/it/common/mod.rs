//! A harness for data-fetcher tests: the mock Spotify (real HTTP), a storage folder, an encrypted
//! token store, and a test clock that follows the mock's clock and records every wait instead of
//! sleeping (so a week of hourly runs takes seconds, and waits can be asserted).

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use data_fetcher::fetch::{Fetcher, RunReport, What};
use data_fetcher::terminal_connect::{self, Redirect};
use earshot_core::{GroupConfig, Storage};
use earshot_spotify::api::{App, Budget, Endpoints, Spotify};
use earshot_spotify::tokens::{TokenKey, TokenStore};
use earshot_state::clock::Clock;
use earshot_state::fetch_state::MemberState;
use earshot_testkit::fixtures::{Listening, fixtures_dir};
use earshot_testkit::spotify::{DEFAULT_CLIENT_ID, MockOptions, MockSpotify};

/// Now = the mock's clock; a wait moves the mock's clock and is recorded.
pub struct TestClock {
    pub mock: Arc<MockSpotify>,
    pub waits: Mutex<Vec<Duration>>,
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        self.mock.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.waits.lock().unwrap().push(duration);
        self.mock
            .advance(chrono::Duration::from_std(duration).unwrap());
        Box::pin(async {})
    }
}

pub struct Harness {
    pub mock: Arc<MockSpotify>,
    pub clock: Arc<TestClock>,
    pub dir: tempfile::TempDir,
    pub storage: Storage,
    pub store: TokenStore,
    pub key: TokenKey,
    pub group: GroupConfig,
    pub listening: Listening,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(Listening::fixture_group().unwrap(), MockOptions::default()).await
    }

    pub async fn with(listening: Listening, options: MockOptions) -> Harness {
        let mock = Arc::new(MockSpotify::start(&listening, options).await.unwrap());
        let clock = Arc::new(TestClock {
            mock: Arc::clone(&mock),
            waits: Mutex::new(Vec::new()),
        });
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let key = TokenKey::from_base64(&TokenKey::generate_base64().unwrap()).unwrap();
        let store = TokenStore::Storage(storage.clone(), key.clone());
        let mut group = GroupConfig::load(&fixtures_dir().join("group.toml")).unwrap();
        // A synthetic listening's members are the group's too (`auth` connects listed members only).
        for member in &listening.members {
            if group.member(member.id()).is_none() {
                group.members.push(earshot_core::config::MemberConfig {
                    id: member.id().to_string(),
                    display_name: member.id().to_string(),
                    app: None,
                    spotify: true,
                });
            }
        }
        Harness {
            mock,
            clock,
            dir,
            storage,
            store,
            key,
            group,
            listening,
        }
    }

    pub fn spotify(&self, max_wait: Duration) -> Spotify {
        let endpoints = Endpoints {
            api: self.mock.base_url(),
            accounts: self.mock.base_url(),
        };
        Spotify::new(endpoints, self.clock.clone(), Budget::new(max_wait)).unwrap()
    }

    pub fn fetcher(&self, max_wait: Duration, concurrency: usize) -> Fetcher {
        Fetcher {
            spotify: self.spotify(max_wait),
            storage: self.storage.clone(),
            tokens: self.store.clone(),
            group: self.group.clone(),
            concurrency,
        }
    }

    pub async fn fetch(&self, what: What) -> RunReport {
        self.fetcher(Duration::from_secs(300), 2)
            .run(what, &[])
            .await
            .unwrap()
    }

    /// Connect a member through the real flow: the loopback listener, the mock's authorize page acting
    /// as the member's browser, and `tamper` applied to the redirect before it reaches the listener.
    pub async fn connect_with(
        &self,
        member: &str,
        client_id: &str,
        tamper: impl FnOnce(url::Url) -> url::Url,
    ) -> anyhow::Result<MemberState> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let redirect = Redirect::Listen(listener, format!("http://127.0.0.1:{port}/callback"));
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let spotify = self.spotify(Duration::from_secs(60));
        let app = App::new(client_id);
        let connect = terminal_connect::connect_member(
            &spotify,
            &app,
            &self.group,
            &self.storage,
            &self.store,
            redirect,
            Duration::from_secs(20),
            |url| tx.send(url.to_string()).unwrap(),
            || unreachable!("the listener gets the callback"),
        );
        let browser = async {
            let url = rx.await.unwrap();
            let back = self.mock.browser_authorize(&url, member).await.unwrap();
            let back = tamper(back);
            reqwest::get(back.as_str()).await.unwrap().status().as_u16()
        };
        let (connected, callback_status) = tokio::join!(connect, browser);
        if connected.is_ok() {
            assert_eq!(callback_status, 200, "the listener thanks the browser");
        } else if callback_status != 200 {
            assert_eq!(callback_status, 400, "the listener refuses a bad callback");
        }
        connected
    }

    pub async fn connect(&self, member: &str) -> MemberState {
        self.connect_with(member, DEFAULT_CLIENT_ID, |u| u)
            .await
            .unwrap()
    }

    /// Every play stored in raw pages for a member: `played_at` in ms, with repeats.
    pub async fn stored_plays(&self, member: &str) -> Vec<i64> {
        let mut out = Vec::new();
        for key in self
            .storage
            .list(&format!("raw/recently_played/user={member}/"))
            .await
            .unwrap()
        {
            let page: serde_json::Value =
                serde_json::from_slice(&self.storage.read_all(&key).await.unwrap()).unwrap();
            for item in page["items"].as_array().unwrap() {
                let at = DateTime::parse_from_rfc3339(item["played_at"].as_str().unwrap()).unwrap();
                out.push(at.timestamp_millis());
            }
        }
        out
    }
}
