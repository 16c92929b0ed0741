//! The core models against Spotify's own material: every captured response in
//! `../shared/spotify/samples/` parses, the models agree with the OpenAPI description
//! (`fixed-spotify-open-api.yml`: every field we write is a field it defines, and an object filled
//! from its schema parses), and the mock's development-mode and full shapes parse too.
//!
//! `../shared/` sits beside the clone on this project's machines; where it is absent these tests say
//! so and check only the project's own fixtures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use earshot_core::spotify::{
    ApiError, Artist, AuthError, Context, CursorPage, Followers, Image, Paging, PlayHistory,
    PrivateUser, RecentlyPlayedPage, SimplifiedAlbum, SimplifiedArtist, TokenResponse,
    TopArtistsPage, TopTracksPage, Track,
};
use earshot_testkit::fixtures::{Listening, shared_spotify_dir};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `../shared/spotify`, or `None` to skip on a developer's machine without it. CI lays shared/ beside
/// the clone: there (`CI=true`) its absence fails the test instead of passing it silently.
fn shared_or_skip(test: &str) -> Option<PathBuf> {
    let dir = shared_spotify_dir();
    if dir.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: ../shared/spotify is absent beside this clone, and CI=true: the Spotify contract \
             must be checked in CI"
        );
        eprintln!(
            "{test}: ../shared/spotify is absent beside this clone; the shared-material check is skipped"
        );
    }
    dir
}

/// Parse a sample file's text (the models borrow from it).
fn parse<'a, T: Deserialize<'a>>(text: &'a str, path: &Path) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Every sample file, by what it holds. A new file in the folder fails the test until it is mapped.
#[test]
fn every_shared_sample_parses() {
    let Some(dir) = shared_or_skip("every_shared_sample_parses") else {
        return;
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut pending = vec![dir.join("samples")];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the shared samples, found {files:?}"
    );
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        match name.as_str() {
            "GetCurrentUsersRecentlyPlayedTracksRequest.json" | "recently_played_empty.json" => {
                let page: RecentlyPlayedPage = parse(&text, path);
                assert_eq!(page.total, None, "{name}: recently played has no total");
                if page.items.is_empty() {
                    assert_eq!(page.cursors, None, "{name}: no items, null cursors");
                } else {
                    let cursors = page.cursors.as_ref().expect("cursors with items");
                    assert!(
                        cursors.after_ms().is_some() && cursors.before_ms().is_some(),
                        "{name}: unix-ms cursors"
                    );
                }
            }
            "GetUsersTopTracksRequest.json" => {
                let page: TopTracksPage = parse(&text, path);
                assert!(!page.items.is_empty());
            }
            "GetUsersTopArtistsRequest.json" => {
                let page: TopArtistsPage = parse(&text, path);
                assert!(!page.items.is_empty());
            }
            "regular_error.json" => {
                let error: ApiError = parse(&text, path);
                assert!(error.error.status >= 400);
            }
            "auth_error.json" | "auth-invalid-client.json" => {
                let error: AuthError = parse(&text, path);
                assert!(!error.error.is_empty());
            }
            "AuthorizationCode.json"
            | "AuthorizationCodePKCERefresh.json"
            | "AuthorizationCodeRefresh.json"
            | "ClientCredentials.json" => {
                let token: TokenResponse = parse(&text, path);
                assert!(!token.access_token.is_empty());
                assert!(
                    !format!("{token:?}").contains(&token.access_token),
                    "Debug must not print the token"
                );
            }
            other => panic!("unmapped shared sample `{other}`: add it to this test"),
        }
    }
}

#[test]
fn a_refresh_response_may_omit_the_refresh_token() {
    let Some(dir) = shared_or_skip("a_refresh_response_may_omit_the_refresh_token") else {
        return;
    };
    let sample = |name: &str| {
        let path = dir.join("samples/authorization").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        parse::<TokenResponse>(&text, &path)
    };
    assert_eq!(sample("AuthorizationCodeRefresh.json").refresh_token, None);
    assert!(sample("AuthorizationCode.json").refresh_token.is_some());
}

/// The OpenAPI description, with `$ref` and `allOf` resolved.
struct Spec {
    schemas: Value,
}

impl Spec {
    fn load(dir: &Path) -> Spec {
        let text = std::fs::read_to_string(dir.join("fixed-spotify-open-api.yml")).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap();
        Spec {
            schemas: doc["components"]["schemas"].clone(),
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => &self.schemas[reference.rsplit('/').next().unwrap()],
            None => schema,
        }
    }

    /// Properties of a schema, through `$ref` and `allOf`.
    fn properties(&self, schema: &Value) -> serde_json::Map<String, Value> {
        let schema = self.resolve(schema);
        let mut out = serde_json::Map::new();
        for part in ["allOf", "oneOf"] {
            for sub in schema
                .get(part)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(self.properties(sub));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            out.extend(props.clone());
        }
        out
    }

    /// An instance of the schema with every property filled with a value of its type.
    fn example(&self, schema: &Value, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if let Some(first) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 1)
            && schema.get("properties").is_none()
        {
            return self.example(&first[0], depth);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values[0].clone();
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => json!("2024-11-03T09:30:00.123Z"),
                _ => json!("1700000000000"),
            },
            Some("integer") => json!(7),
            Some("number") => json!(0.5),
            Some("boolean") => json!(true),
            Some("array") => {
                if depth > 6 {
                    json!([])
                } else {
                    json!([self.example(&schema["items"], depth + 1)])
                }
            }
            _ => {
                let mut object = serde_json::Map::new();
                if depth <= 6 {
                    for (name, prop) in self.properties(schema) {
                        object.insert(name, self.example(&prop, depth + 1));
                    }
                }
                Value::Object(object)
            }
        }
    }
}

/// Keys of a serialized model, which must all be properties the spec defines.
fn keys_of<T: Serialize>(model: &T) -> BTreeSet<String> {
    serde_json::to_value(model)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// An instance of `schema` filled from the spec parses as `$model`, and the model writes back only
/// fields the spec defines. (A macro: the models borrow from the instance.)
macro_rules! check {
    ($spec:expr, $model:ty, $schema:literal) => {{
        let spec: &Spec = $spec;
        let schema_value = json!({"$ref": format!("#/components/schemas/{}", $schema)});
        let example = spec.example(&schema_value, 0);
        let model = <$model>::deserialize(&example).unwrap_or_else(|e| {
            panic!("an instance of {} from the spec does not parse: {e}\n{example:#}", $schema)
        });
        let defined: BTreeSet<String> = spec.properties(&schema_value).keys().cloned().collect();
        let written = keys_of(&model);
        let unknown: Vec<&String> = written.difference(&defined).collect();
        assert!(
            unknown.is_empty(),
            "{}: the model writes fields the spec does not define: {unknown:?}",
            $schema
        );
    }};
}

#[test]
fn models_agree_with_the_openapi_description() {
    let Some(dir) = shared_or_skip("models_agree_with_the_openapi_description") else {
        return;
    };
    let spec = Spec::load(&dir);
    check!(&spec, Track, "TrackObject");
    check!(&spec, SimplifiedAlbum, "SimplifiedAlbumObject");
    check!(&spec, SimplifiedArtist, "SimplifiedArtistObject");
    check!(&spec, Artist, "ArtistObject");
    check!(&spec, Image, "ImageObject");
    check!(&spec, Context, "ContextObject");
    check!(&spec, Followers, "FollowersObject");
    check!(&spec, PlayHistory, "PlayHistoryObject");
    check!(
        &spec,
        CursorPage<PlayHistory>,
        "CursorPagingPlayHistoryObject"
    );
    check!(&spec, Paging<Track>, "PagingTrackObject");
    check!(&spec, Paging<Artist>, "PagingArtistObject");
    check!(&spec, PrivateUser, "PrivateUserObject");
    // The error object is nested under `error` in responses.
    let inner = spec.example(&json!({"$ref": "#/components/schemas/ErrorObject"}), 0);
    let error: ApiError = serde_json::from_value(json!({ "error": inner })).unwrap();
    assert_eq!(error.error.status, 7);
}

/// The models parse what the mock serves in both shapes, and the dev-mode shape really lacks the
/// removed fields (so nothing downstream can come to need them unnoticed).
#[test]
fn fixture_shapes_parse_in_both_modes() {
    let listening = Listening::fixture_group().unwrap();
    let mut without_popularity = 0;
    let mut local_files = 0;
    let mut null_contexts = 0;
    for member in &listening.members {
        for play in &member.plays {
            let parsed = PlayHistory::deserialize(play).unwrap();
            let mut dev = play.clone();
            for field in ["popularity", "available_markets", "linked_from"] {
                dev["track"].as_object_mut().unwrap().remove(field);
            }
            dev["track"]["album"]
                .as_object_mut()
                .unwrap()
                .remove("available_markets");
            let dev = PlayHistory::deserialize(&dev).unwrap();
            assert_eq!(dev.track.popularity, None);
            assert_eq!(dev.track.available_markets, None);
            assert_eq!(dev.played_at, parsed.played_at);
            without_popularity += usize::from(parsed.track.popularity.is_none());
            local_files += usize::from(parsed.track.is_local);
            null_contexts += usize::from(parsed.context.is_none());
            if parsed.track.is_local {
                assert_eq!(parsed.track.id, None, "local files have no id");
            }
        }
        for tracks in member.top_tracks.values() {
            for track in tracks {
                Track::deserialize(track).unwrap();
            }
        }
        for artists in member.top_artists.values() {
            for artist in artists {
                Artist::deserialize(artist).unwrap();
            }
        }
        PrivateUser::deserialize(&member.user).unwrap();
    }
    assert!(
        without_popularity > 0,
        "the fixtures must have tracks without popularity"
    );
    assert!(local_files > 0, "the fixtures must have a local file");
    assert!(null_contexts > 0, "the fixtures must have null contexts");
}
