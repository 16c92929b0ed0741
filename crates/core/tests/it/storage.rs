//! Storage round trips.
//!
//! - Local folder: every operation, always.
//! - GCS write and read (JSON API): against fake-gcs-server started on a free loopback port.
//! - GCS list, delete and exists (gRPC `StorageControl`, which no local emulator speaks): through the
//!   crate's own stub mechanism (`StorageControl::from_stub`), checking the requests our code sends and
//!   how it reads the answers, including paging and not-found.
//! - Everything against a real bucket only when `EARSHOT_TEST_GCS_BUCKET` is set (with Application
//!   Default Credentials): `live_gcs_round_trip`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use earshot_core::storage::{GcsOptions, Storage, StorageError};
use earshot_testkit::gcs_emulator::FakeGcs;
use futures::StreamExt;
use google_cloud_gax::error::rpc::{Code, Status};
use google_cloud_gax::options::RequestOptions;
use google_cloud_gax::response::Response;
use google_cloud_storage::client::StorageControl;
use google_cloud_storage::model::{
    DeleteObjectRequest, GetObjectRequest, ListObjectsRequest, ListObjectsResponse, Object,
};

async fn exercise_everything(storage: &Storage) {
    let key = "raw/recently_played/user=ana/20241103T093000.000Z.json";
    assert!(!storage.exists(key).await.unwrap());
    storage
        .write(key, Bytes::from_static(b"{\"items\":[]}"))
        .await
        .unwrap();
    assert!(storage.exists(key).await.unwrap());
    assert_eq!(
        storage.read_all(key).await.unwrap(),
        Bytes::from_static(b"{\"items\":[]}")
    );
    // Overwrite replaces whole.
    storage.write(key, Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(
        storage.read_all(key).await.unwrap(),
        Bytes::from_static(b"{}")
    );

    storage
        .write(
            "raw/top_tracks/user=ana/time_range=short_term/1.json",
            Bytes::from_static(b"1"),
        )
        .await
        .unwrap();
    storage
        .write(
            "converted/recently_played/user=ana/1.jsonl",
            Bytes::from_static(b"2"),
        )
        .await
        .unwrap();
    assert_eq!(
        storage.list("raw/").await.unwrap(),
        vec![
            key.to_string(),
            "raw/top_tracks/user=ana/time_range=short_term/1.json".to_string()
        ]
    );
    assert_eq!(
        storage.list("raw/recently").await.unwrap(),
        vec![key.to_string()]
    );
    assert_eq!(
        storage.list("exports/").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(storage.list("").await.unwrap().len(), 3);

    assert!(storage.delete(key).await.unwrap());
    assert!(
        !storage.delete(key).await.unwrap(),
        "deleting twice is not an error"
    );
    assert!(!storage.exists(key).await.unwrap());
    match storage.read_all(key).await {
        Err(StorageError::NotFound { location }) => assert!(location.ends_with(key), "{location}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn local_storage_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path().to_str().unwrap()).await.unwrap();
    exercise_everything(&storage).await;
}

#[tokio::test]
async fn local_writes_are_atomic_and_leave_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let big = Bytes::from(vec![b'x'; 3 * 1024 * 1024 + 17]);
    storage
        .write("exports/a/part-0.parquet", big.clone())
        .await
        .unwrap();
    // Streamed read in several chunks gives back every byte.
    let mut stream = storage.read("exports/a/part-0.parquet").await.unwrap();
    let (mut chunks, mut total) = (0, 0);
    while let Some(chunk) = stream.next().await {
        chunks += 1;
        total += chunk.unwrap().len();
    }
    assert_eq!(total, big.len());
    assert!(chunks > 1, "a 3 MiB object should stream in chunks");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("exports/a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["part-0.parquet"]);
    // A temp file left by a crashed writer is never listed.
    std::fs::write(
        dir.path().join("exports/a/.earshot-tmp-1-0-part-1.parquet"),
        b"half",
    )
    .unwrap();
    assert_eq!(
        storage.list("exports/").await.unwrap(),
        vec!["exports/a/part-0.parquet"]
    );
    // stage_local of local storage is the folder itself.
    let staged = storage.stage_local("exports/a/").await.unwrap();
    assert!(staged.path().join("part-0.parquet").is_file());
}

/// Deleting a folder's last object removes the folders it leaves empty (a member's `user=<id>/` must not
/// outlive their data), and stops at a folder that still holds something, and at the root.
#[tokio::test]
async fn local_delete_leaves_no_empty_folder_behind() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    for key in [
        "raw/a/user=x/2024/1.json",
        "raw/a/user=x/2024/2.json",
        "raw/a/user=y/1.json",
    ] {
        storage.write(key, Bytes::from_static(b"{}")).await.unwrap();
    }
    assert!(storage.delete("raw/a/user=x/2024/1.json").await.unwrap());
    assert!(
        dir.path().join("raw/a/user=x/2024").is_dir(),
        "still holds 2.json"
    );
    assert!(storage.delete("raw/a/user=x/2024/2.json").await.unwrap());
    assert!(
        !dir.path().join("raw/a/user=x").exists(),
        "user=x/ went with its last object"
    );
    assert!(dir.path().join("raw/a/user=y/1.json").is_file());
    assert!(storage.delete("raw/a/user=y/1.json").await.unwrap());
    assert!(!dir.path().join("raw").exists());
    assert!(dir.path().is_dir(), "the root stays");
    assert_eq!(storage.list("raw/").await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn temp_files_a_crash_left_are_removed_under_a_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    storage
        .write("converted/a/user=x/1.jsonl", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    for temp in [
        "converted/a/user=x/.earshot-tmp-1-0-2.jsonl",
        "converted/a/user=x/deep/.earshot-tmp-1-1-3.jsonl",
        "converted/a/user=y/.earshot-tmp-1-2-4.jsonl",
    ] {
        let path = dir.path().join(temp);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"partial").unwrap();
    }
    assert_eq!(
        storage
            .remove_temp_files("converted/a/user=x/")
            .await
            .unwrap(),
        2
    );
    assert!(
        !dir.path().join("converted/a/user=x/deep").exists(),
        "a folder left empty goes"
    );
    assert!(
        dir.path().join("converted/a/user=x/1.jsonl").is_file(),
        "objects stay"
    );
    assert!(
        dir.path()
            .join("converted/a/user=y/.earshot-tmp-1-2-4.jsonl")
            .is_file(),
        "another member's prefix is not touched"
    );
    assert_eq!(
        storage.list("converted/").await.unwrap(),
        ["converted/a/user=x/1.jsonl"],
        "listings never show temp files"
    );
}

#[tokio::test]
async fn bad_keys_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    for key in ["../escape.json", "/etc/passwd", "a//b", ""] {
        let err = storage
            .write(key, Bytes::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was written"
    );
}

#[tokio::test]
async fn gcs_write_and_read_against_fake_gcs_server() {
    let fake = FakeGcs::start().await.unwrap();
    fake.create_bucket("earshot-test").await.unwrap();
    let storage = Storage::gcs(
        "earshot-test",
        "group/a",
        GcsOptions::emulator(&fake.endpoint()),
    )
    .await
    .unwrap();
    let key = "raw/recently_played/user=ana/20241103T093000.000Z.json";
    let page =
        Bytes::from(serde_json::to_vec(&serde_json::json!({"items": [], "limit": 50})).unwrap());
    storage.write(key, page.clone()).await.unwrap();
    assert_eq!(storage.read_all(key).await.unwrap(), page);
    // The object sits under the prefix, as the emulator itself reports.
    assert_eq!(
        fake.object_names("earshot-test").await.unwrap(),
        vec![format!("group/a/{key}")]
    );
    // A larger object (below the 16 MiB resumable threshold) round-trips byte for byte.
    let big = Bytes::from(
        (0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    storage
        .write("exports/Tracks/snapshot=r1/part-0.parquet", big.clone())
        .await
        .unwrap();
    assert_eq!(
        storage
            .read_all("exports/Tracks/snapshot=r1/part-0.parquet")
            .await
            .unwrap(),
        big
    );
    // Overwrite replaces.
    storage.write(key, Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(
        storage.read_all(key).await.unwrap(),
        Bytes::from_static(b"{}")
    );
    match storage.read_all("raw/missing.json").await {
        Err(StorageError::NotFound { location }) => {
            assert_eq!(location, "gs://earshot-test/group/a/raw/missing.json");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// An in-memory bucket behind the gRPC control API, recording the requests it gets.
#[derive(Debug, Default)]
struct ControlStub {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    list_requests: Mutex<Vec<ListObjectsRequest>>,
}

const PAGE_SIZE: usize = 2;

fn not_found(what: &str) -> google_cloud_storage::Error {
    google_cloud_storage::Error::service(
        Status::default()
            .set_code(Code::NotFound)
            .set_message(format!("{what} not found")),
    )
}

impl google_cloud_storage::stub::StorageControl for ControlStub {
    async fn list_objects(
        &self,
        req: ListObjectsRequest,
        _options: RequestOptions,
    ) -> google_cloud_storage::Result<Response<ListObjectsResponse>> {
        assert_eq!(req.parent, "projects/_/buckets/stub-bucket");
        self.list_requests.lock().unwrap().push(req.clone());
        let objects = self.objects.lock().unwrap();
        let matching: Vec<&String> = objects
            .keys()
            .filter(|k| k.starts_with(&req.prefix))
            .collect();
        let start: usize = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse().unwrap()
        };
        let page: Vec<Object> = matching
            .iter()
            .skip(start)
            .take(PAGE_SIZE)
            .map(|name| {
                Object::new()
                    .set_name(name.as_str())
                    .set_bucket("projects/_/buckets/stub-bucket")
            })
            .collect();
        let next = if start + PAGE_SIZE < matching.len() {
            (start + PAGE_SIZE).to_string()
        } else {
            String::new()
        };
        Ok(Response::from(
            ListObjectsResponse::new()
                .set_objects(page)
                .set_next_page_token(next),
        ))
    }

    async fn delete_object(
        &self,
        req: DeleteObjectRequest,
        _options: RequestOptions,
    ) -> google_cloud_storage::Result<Response<()>> {
        match self.objects.lock().unwrap().remove(&req.object) {
            Some(_) => Ok(Response::from(())),
            None => Err(not_found(&req.object)),
        }
    }

    async fn get_object(
        &self,
        req: GetObjectRequest,
        _options: RequestOptions,
    ) -> google_cloud_storage::Result<Response<Object>> {
        match self.objects.lock().unwrap().get(&req.object) {
            Some(_) => Ok(Response::from(Object::new().set_name(req.object.as_str()))),
            None => Err(not_found(&req.object)),
        }
    }
}

#[tokio::test]
async fn gcs_list_delete_and_exists_through_the_control_stub() {
    let stub = Arc::new(ControlStub::default());
    for name in [
        "p/raw/a/1.json",
        "p/raw/a/2.json",
        "p/raw/b/3.json",
        "p/raw/b/4.json",
        "p/raw/c/5.json",
        "p/converted/x.jsonl",
        "other/raw/z.json",
    ] {
        stub.objects
            .lock()
            .unwrap()
            .insert(name.to_string(), Vec::new());
    }
    // The JSON-API client is never used by these operations; it points nowhere.
    let client = google_cloud_storage::client::Storage::builder()
        .with_endpoint("http://127.0.0.1:9")
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    let control = StorageControl::from_stub::<ControlStub>(Arc::clone(&stub));
    let storage = Storage::gcs_with_clients("stub-bucket", "p", client, control).unwrap();

    // Paging: five objects in pages of two, keys relative to the prefix, other prefixes excluded.
    let keys = storage.list("raw/").await.unwrap();
    assert_eq!(
        keys,
        [
            "raw/a/1.json",
            "raw/a/2.json",
            "raw/b/3.json",
            "raw/b/4.json",
            "raw/c/5.json"
        ]
    );
    let requests = stub.list_requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        3,
        "five objects in pages of two take three requests"
    );
    assert!(requests.iter().all(|r| r.prefix == "p/raw/"));

    assert!(storage.exists("raw/b/3.json").await.unwrap());
    assert!(!storage.exists("raw/b/nope.json").await.unwrap());
    assert!(storage.delete("raw/b/3.json").await.unwrap());
    assert!(
        !storage.delete("raw/b/3.json").await.unwrap(),
        "a second delete finds nothing and is no error"
    );
    assert!(!storage.exists("raw/b/3.json").await.unwrap());
    assert_eq!(storage.list("raw/b/").await.unwrap(), ["raw/b/4.json"]);
    assert!(
        stub.objects
            .lock()
            .unwrap()
            .contains_key("other/raw/z.json"),
        "outside the prefix is untouched"
    );
}

/// Opt-in: the whole round trip on a real bucket (`EARSHOT_TEST_GCS_BUCKET`, with ADC).
#[tokio::test]
async fn live_gcs_round_trip() {
    let Ok(bucket) = std::env::var(earshot_core::env::EARSHOT_TEST_GCS_BUCKET) else {
        eprintln!(
            "live_gcs_round_trip: EARSHOT_TEST_GCS_BUCKET is not set; skipped (docs/reference.md lists it)"
        );
        return;
    };
    let prefix = format!("earshot-test/{}", std::process::id());
    let storage = Storage::gcs(&bucket, &prefix, GcsOptions::default())
        .await
        .unwrap();
    exercise_everything(&storage).await;
    for key in storage.list("").await.unwrap() {
        storage.delete(&key).await.unwrap();
    }
}
