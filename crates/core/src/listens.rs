//! Listens as ListenBrainz clients submit them (`POST /1/submit-listens`): the submission's shape, its
//! limits and its validation, answered with ListenBrainz's own messages.
//!
//! Every limit is ListenBrainz's documented one (listenbrainz-server,
//! `listenbrainz/webserver/views/api_tools.py` and `listenbrainz/listenstore/__init__.py`, documented at
//! <https://listenbrainz.readthedocs.io/en/latest/users/api/core.html#constants>), so a client that
//! ListenBrainz accepts is accepted here and one it refuses is refused the same way:
//!
//! | limit | value | ListenBrainz's name |
//! |---|---:|---|
//! | one listen, as JSON | 10,240 bytes | `MAX_LISTEN_SIZE` |
//! | listens per request | 1,000 | `MAX_LISTENS_PER_REQUEST` |
//! | one request's body | 10,240,000 bytes | `MAX_LISTEN_PAYLOAD_SIZE` |
//! | tags per listen | 50 | `MAX_TAGS_PER_LISTEN` |
//! | one tag | 64 characters | `MAX_TAG_SIZE` |
//! | earliest `listened_at` | 1033430400 (2002-10-01) | `LISTEN_MINIMUM_TS` |
//! | latest `listened_at` | the server's time + 1 h | `API_LISTENED_AT_ALLOWED_SKEW` |
//!
//! A `single` or `playing_now` submission holds exactly one listen; `import` up to the limit. A listen
//! has `track_metadata.artist_name` and `track_name` (non-empty strings); `single` and `import` listens
//! have an integer `listened_at` and no other top-level key; a `playing_now` listen has no
//! `listened_at`. MusicBrainz ids in `additional_info` must be UUIDs.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::recording;

/// Most bytes one listen may take, as JSON.
pub const MAX_LISTEN_SIZE: usize = 10_240;
/// Most listens one request may carry.
pub const MAX_LISTENS_PER_REQUEST: usize = 1_000;
/// Most bytes one request's body may take.
pub const MAX_LISTEN_PAYLOAD_SIZE: usize = MAX_LISTEN_SIZE * MAX_LISTENS_PER_REQUEST;
/// Most tags one listen may carry.
pub const MAX_TAGS_PER_LISTEN: usize = 50;
/// Most characters one tag may have.
pub const MAX_TAG_SIZE: usize = 64;
/// The earliest `listened_at` accepted (2002-10-01T00:00:00Z).
pub const LISTEN_MINIMUM_TS: i64 = 1_033_430_400;
/// How far ahead of the server's clock a `listened_at` may be (a device's clock running fast).
pub const LISTENED_AT_ALLOWED_SKEW_S: i64 = 60 * 60;

/// `additional_info` keys holding one MusicBrainz id.
const SINGLE_MBID_KEYS: [&str; 4] = [
    "release_mbid",
    "recording_mbid",
    "release_group_mbid",
    "track_mbid",
];
/// `additional_info` keys holding a list of MusicBrainz ids.
const MULTIPLE_MBID_KEYS: [&str; 2] = ["artist_mbids", "work_mbids"];

/// What a submission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenType {
    /// One listen, just finished.
    Single,
    /// Listens played earlier (a client catching up, an importer).
    Import,
    /// What is playing now: not a play.
    PlayingNow,
}

impl ListenType {
    /// ListenBrainz's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenType::Single => "single",
            ListenType::Import => "import",
            ListenType::PlayingNow => "playing_now",
        }
    }
}

/// One listen of a submission, with what Earshot reads of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listen {
    /// When it started (Unix seconds); `None` for `playing_now`.
    pub listened_at: Option<i64>,
    /// The credited artist, as sent.
    pub artist_name: String,
    /// The title, as sent.
    pub track_name: String,
    /// The release it was played from, when sent.
    pub release_name: Option<String>,
    /// The track's length (`duration_ms`, or `duration` in seconds), when sent.
    pub duration_ms: Option<u64>,
    /// The ISRC, when sent and valid ([`recording::valid_isrc`]).
    pub isrc: Option<String>,
    /// The MusicBrainz recording id, when sent.
    pub recording_mbid: Option<String>,
    /// The Spotify track id, when `spotify_id` or `origin_url` names one.
    pub spotify_track_id: Option<String>,
}

impl Listen {
    /// Its recording key ([`recording::recording_key`]).
    pub fn recording_key(&self) -> Option<String> {
        recording::recording_key(
            self.isrc.as_deref(),
            self.recording_mbid.as_deref(),
            &self.artist_name,
            &self.track_name,
        )
    }
}

/// A validated submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submission {
    /// What it is.
    pub listen_type: ListenType,
    /// Its listens, in the order sent.
    pub listens: Vec<Listen>,
}

/// Why a submission is refused: ListenBrainz's message (answered as `400` with
/// `{"code": 400, "error": message}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ListenError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, ListenError> {
    Err(ListenError(message.into()))
}

/// Read and check a `submit-listens` body received at `now` (Unix seconds).
pub fn parse_submission(body: &[u8], now: i64) -> Result<Submission, ListenError> {
    if body.len() > MAX_LISTEN_PAYLOAD_SIZE {
        return refuse(format!(
            "Payload too large. Payload cannot exceed {MAX_LISTEN_PAYLOAD_SIZE} bytes"
        ));
    }
    let data: Value = match serde_json::from_slice(body) {
        Ok(data) => data,
        Err(err) => return refuse(format!("Cannot parse JSON document: {err}")),
    };
    let Value::Object(data) = data else {
        return refuse(
            "Invalid JSON document submitted. Top level of JSON document should be a json object.",
        );
    };
    let Some(payload) = data.get("payload") else {
        return refuse("Invalid JSON document submitted.");
    };
    let Value::Array(payload) = payload else {
        return refuse("The payload in the JSON document should be a list of listens.");
    };
    if payload.is_empty() {
        return refuse("JSON document does not contain any listens");
    }
    if payload.len() > MAX_LISTENS_PER_REQUEST {
        return refuse(format!(
            "Too many listens. You may not submit more than {MAX_LISTENS_PER_REQUEST} listens at once."
        ));
    }
    if body.len() > payload.len() * MAX_LISTEN_SIZE {
        return refuse(format!(
            "JSON document is too large. Each listens may not be larger than {MAX_LISTEN_SIZE} bytes."
        ));
    }
    let listen_type = match data.get("listen_type").and_then(Value::as_str) {
        Some("single") => ListenType::Single,
        Some("import") => ListenType::Import,
        Some("playing_now") => ListenType::PlayingNow,
        _ => return refuse("JSON document requires a valid listen_type key."),
    };
    if listen_type != ListenType::Import && payload.len() > 1 {
        return refuse(
            "JSON document contains more than listen for a single/playing_now. It should contain only one.",
        );
    }
    let listens = payload
        .iter()
        .map(|listen| validate_listen(listen, listen_type, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Submission {
        listen_type,
        listens,
    })
}

/// Check one listen as ListenBrainz does, and read what Earshot uses of it.
pub fn validate_listen(
    listen: &Value,
    listen_type: ListenType,
    now: i64,
) -> Result<Listen, ListenError> {
    let Value::Object(listen) = listen else {
        return refuse(
            "JSON document does not contain a valid metadata.track_name and/or track_metadata.artist_name.",
        );
    };
    if serde_json::to_vec(listen).map_or(usize::MAX, |bytes| bytes.len()) > MAX_LISTEN_SIZE {
        return refuse(format!(
            "JSON document is too large. Each listens may not be larger than {MAX_LISTEN_SIZE} bytes."
        ));
    }
    let listened_at = match listen_type {
        ListenType::Single | ListenType::Import => {
            let Some(at) = listen.get("listened_at") else {
                return refuse("JSON document must contain the key listened_at at the top level.");
            };
            let Some(at) = integer(at) else {
                return refuse("JSON document must contain an int value for listened_at.");
            };
            if listen.len() > 2 && listen.contains_key("track_metadata") {
                return refuse(
                    "JSON document may only contain listened_at and track_metadata top level keys",
                );
            }
            if at < LISTEN_MINIMUM_TS {
                return refuse(format!(
                    "Value for key listened_at is too low. listened_at timestamp should be greater than {LISTEN_MINIMUM_TS}."
                ));
            }
            if at > now + LISTENED_AT_ALLOWED_SKEW_S {
                return refuse("Value for key listened_at is too high.");
            }
            Some(at)
        }
        ListenType::PlayingNow => {
            if listen.contains_key("listened_at") {
                return refuse(
                    "JSON document must not contain listened_at while submitting playing_now.",
                );
            }
            if listen.len() > 1 {
                return refuse(
                    "JSON document may only contain track_metadata as top level key when submitting playing_now.",
                );
            }
            None
        }
    };
    let Some(Value::Object(metadata)) = listen.get("track_metadata") else {
        return refuse(
            "JSON document does not contain a valid metadata.track_name and/or track_metadata.artist_name.",
        );
    };
    let track_name = match metadata.get("track_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        _ => return refuse("JSON document does not contain required track_metadata.track_name."),
    };
    let artist_name = match metadata.get("artist_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return refuse("JSON document does not contain required track_metadata.artist_name.");
        }
        Some(_) => return refuse("artist_name must be a single string."),
    };
    let release_name = metadata
        .get("release_name")
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .map(str::to_string);
    let empty = Map::new();
    let info = match metadata.get("additional_info") {
        Some(Value::Object(info)) => info,
        None | Some(Value::Null) => &empty,
        Some(_) => return refuse("additional_info must be a JSON object."),
    };
    check_tags(info)?;
    check_mbids(info)?;
    let duration_ms = match (
        info.get("duration_ms").and_then(integer),
        info.get("duration").and_then(integer),
    ) {
        (Some(ms), _) if ms > 0 => Some(ms as u64),
        (_, Some(s)) if s > 0 => Some(s as u64 * 1000),
        _ => None,
    };
    Ok(Listen {
        listened_at,
        artist_name,
        track_name,
        release_name,
        duration_ms,
        isrc: info
            .get("isrc")
            .and_then(Value::as_str)
            .and_then(recording::valid_isrc),
        recording_mbid: info
            .get("recording_mbid")
            .and_then(Value::as_str)
            .and_then(recording::valid_mbid),
        spotify_track_id: ["spotify_id", "origin_url"]
            .iter()
            .filter_map(|key| info.get(*key).and_then(Value::as_str))
            .find_map(spotify_track_id),
    })
}

/// An integer, or a string of one (ListenBrainz casts `listened_at` with `int()`).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn check_tags(info: &Map<String, Value>) -> Result<(), ListenError> {
    let Some(tags) = info.get("tags") else {
        return Ok(());
    };
    let Value::Array(tags) = tags else {
        return refuse("track_metadata.additional_info.tags must be a list of strings.");
    };
    if tags.len() > MAX_TAGS_PER_LISTEN {
        return refuse(format!(
            "JSON document may not contain more than {MAX_TAGS_PER_LISTEN} items in track_metadata.additional_info.tags."
        ));
    }
    for tag in tags {
        let too_long = tag
            .as_str()
            .is_none_or(|tag| tag.chars().count() > MAX_TAG_SIZE);
        if too_long {
            return refuse(format!(
                "JSON document may not contain track_metadata.additional_info.tags longer than {MAX_TAG_SIZE} characters."
            ));
        }
    }
    Ok(())
}

fn check_mbids(info: &Map<String, Value>) -> Result<(), ListenError> {
    let invalid = |key: &str| refuse(format!("{key} MBID format invalid."));
    for key in SINGLE_MBID_KEYS {
        match info.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) if id.is_empty() || recording::valid_mbid(id).is_some() => {}
            Some(_) => return invalid(key),
        }
    }
    for key in MULTIPLE_MBID_KEYS {
        match info.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(ids)) => {
                let all_valid = ids
                    .iter()
                    .all(|id| id.as_str().and_then(recording::valid_mbid).is_some());
                if !all_valid {
                    return invalid(key);
                }
            }
            Some(_) => return invalid(key),
        }
    }
    Ok(())
}

/// The Spotify track id in a `spotify_id` or `origin_url` (`https://open.spotify.com/track/<id>`,
/// `spotify:track:<id>`), when it is a valid one.
fn spotify_track_id(text: &str) -> Option<String> {
    let id = text.strip_prefix("spotify:track:").or_else(|| {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))?;
        let path = rest.strip_prefix("open.spotify.com/")?;
        path.strip_prefix("track/")
    })?;
    let id = id.split(['?', '#', '/']).next()?;
    crate::spotify::SpotifyId::parse(id).map(|id| id.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_733_000_000;

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    fn single(listen: Value) -> Vec<u8> {
        body(json!({"listen_type": "single", "payload": [listen]}))
    }

    fn listen(at: i64) -> Value {
        json!({"listened_at": at, "track_metadata": {"artist_name": "Röyksopp", "track_name": "Some Resolve"}})
    }

    fn refused(body: &[u8]) -> String {
        parse_submission(body, NOW).expect_err("refused").0
    }

    #[test]
    fn a_single_listen_reads_with_its_ids() {
        let sent = json!({
            "listened_at": NOW - 60,
            "track_metadata": {
                "artist_name": "Röyksopp",
                "track_name": "Some Resolve",
                "release_name": "Profound Mysteries II",
                "additional_info": {
                    "duration_ms": 402390,
                    "recording_mbid": "30D08F4C-D825-4AE1-B79C-44242CDDD7C0",
                    "artist_mbids": ["1c70a3fc-fa3c-4be1-8b55-c3192db8a884"],
                    "isrc": "NO-RKS-22-00010",
                    "origin_url": "https://open.spotify.com/track/7H7RaiZoTNPwjNLygV4fXQ?si=x",
                    "submission_client": "navidrome",
                }
            }
        });
        let submission = parse_submission(&single(sent), NOW).unwrap();
        assert_eq!(submission.listen_type, ListenType::Single);
        let listen = &submission.listens[0];
        assert_eq!(listen.listened_at, Some(NOW - 60));
        assert_eq!(
            listen.release_name.as_deref(),
            Some("Profound Mysteries II")
        );
        assert_eq!(listen.duration_ms, Some(402_390));
        assert_eq!(listen.isrc.as_deref(), Some("NORKS2200010"));
        assert_eq!(
            listen.recording_mbid.as_deref(),
            Some("30d08f4c-d825-4ae1-b79c-44242cddd7c0")
        );
        assert_eq!(
            listen.spotify_track_id.as_deref(),
            Some("7H7RaiZoTNPwjNLygV4fXQ")
        );
        assert_eq!(listen.recording_key().as_deref(), Some("isrc:NORKS2200010"));
    }

    #[test]
    fn an_import_takes_up_to_the_limit_and_playing_now_has_no_time() {
        let many: Vec<Value> = (0..MAX_LISTENS_PER_REQUEST as i64)
            .map(|i| listen(NOW - 1000 - i))
            .collect();
        let submission = parse_submission(
            &body(json!({"listen_type": "import", "payload": many})),
            NOW,
        )
        .unwrap();
        assert_eq!(submission.listens.len(), MAX_LISTENS_PER_REQUEST);
        let now_playing = body(json!({"listen_type": "playing_now", "payload": [
            {"track_metadata": {"artist_name": "A", "track_name": "T", "additional_info": {"duration": 200}}}
        ]}));
        let submission = parse_submission(&now_playing, NOW).unwrap();
        assert_eq!(submission.listen_type, ListenType::PlayingNow);
        assert_eq!(submission.listens[0].listened_at, None);
        assert_eq!(submission.listens[0].duration_ms, Some(200_000));
    }

    #[test]
    fn each_limit_and_rule_refuses_with_listenbrainz_s_message() {
        let too_many: Vec<Value> = (0..=MAX_LISTENS_PER_REQUEST as i64)
            .map(|i| listen(NOW - i))
            .collect();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "Cannot parse JSON document"),
            (
                body(json!([1])),
                "Top level of JSON document should be a json object",
            ),
            (
                body(json!({"listen_type": "single"})),
                "Invalid JSON document submitted.",
            ),
            (
                body(json!({"listen_type": "single", "payload": {}})),
                "should be a list of listens",
            ),
            (
                body(json!({"listen_type": "single", "payload": []})),
                "does not contain any listens",
            ),
            (
                body(json!({"listen_type": "import", "payload": too_many})),
                "Too many listens",
            ),
            (
                body(json!({"listen_type": "loved", "payload": [listen(NOW)]})),
                "requires a valid listen_type",
            ),
            (
                body(json!({"listen_type": "single", "payload": [listen(NOW), listen(NOW - 1)]})),
                "should contain only one",
            ),
            (
                single(json!({"track_metadata": {"artist_name": "A", "track_name": "T"}})),
                "must contain the key listened_at",
            ),
            (
                single(
                    json!({"listened_at": "soon", "track_metadata": {"artist_name": "A", "track_name": "T"}}),
                ),
                "int value for listened_at",
            ),
            (
                single(
                    json!({"listened_at": NOW, "extra": 1, "track_metadata": {"artist_name": "A", "track_name": "T"}}),
                ),
                "may only contain listened_at and track_metadata",
            ),
            (single(listen(LISTEN_MINIMUM_TS - 1)), "too low"),
            (
                single(listen(NOW + LISTENED_AT_ALLOWED_SKEW_S + 1)),
                "too high",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": "A", "track_name": ""}}),
                ),
                "track_metadata.track_name",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": ["A", "B"], "track_name": "T"}}),
                ),
                "artist_name must be a single string",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": "A", "track_name": "T", "additional_info": {"recording_mbid": "not-a-uuid"}}}),
                ),
                "recording_mbid MBID format invalid",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": "A", "track_name": "T", "additional_info": {"artist_mbids": ["x"]}}}),
                ),
                "artist_mbids MBID format invalid",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": "A", "track_name": "T", "additional_info": {"tags": vec!["t"; MAX_TAGS_PER_LISTEN + 1]}}}),
                ),
                "more than 50 items",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": "A", "track_name": "T", "additional_info": {"tags": ["x".repeat(MAX_TAG_SIZE + 1)]}}}),
                ),
                "longer than 64 characters",
            ),
            (
                single(
                    json!({"listened_at": NOW, "track_metadata": {"artist_name": "A", "track_name": "x".repeat(MAX_LISTEN_SIZE)}}),
                ),
                "Each listens may not be larger than 10240 bytes",
            ),
            (
                body(json!({"listen_type": "playing_now", "payload": [listen(NOW)]})),
                "must not contain listened_at while submitting playing_now",
            ),
        ];
        for (sent, message) in cases {
            let error = refused(&sent);
            assert!(error.contains(message), "{message:?} not in {error:?}");
        }
        let huge = vec![b' '; MAX_LISTEN_PAYLOAD_SIZE + 1];
        assert!(refused(&huge).starts_with("Payload too large"));
    }

    #[test]
    fn a_listen_without_ids_meets_a_spotify_play_by_its_names() {
        let sent = single(json!({"listened_at": NOW, "track_metadata": {
            "artist_name": "The Beatles feat. Billy Preston", "track_name": "Let It Be - Remastered 2009"
        }}));
        let listen = &parse_submission(&sent, NOW).unwrap().listens[0];
        assert_eq!(
            listen.recording_key(),
            recording::name_key("The Beatles", "Let It Be")
        );
    }
}
