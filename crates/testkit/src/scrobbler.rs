//! The fixture group's sixth friend, Fern, who is not on Spotify: she listens in Navidrome and on her
//! phone, both scrobbling to Earshot's listen API, over the same three weeks as the others.
//!
//! Her listens are written as ListenBrainz exports them (`fixtures/listens/fern.jsonl`: one listen a
//! line, with the export's own fields beside the ones Earshot reads), from a seeded generator over the
//! five friends' plays, so that they meet the Spotify plays in each of the ways the recording key
//! allows:
//! - **by ISRC**: a song a friend plays on Spotify, sent with its ISRC and a release's variant of the
//!   title (`- Remastered 2011`), as a tagged library sends it;
//! - **by names**: a song a friend plays, sent with names only, its artist's case changed and a
//!   featuring credit added, as a phone scrobbler sends it;
//! - **her own**: songs nobody else plays, some with a MusicBrainz recording id.

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use crate::fixtures::{FIXTURE_TIME_ZONE, Listening};
use crate::rng::Rng;

/// Fern's member id.
pub const SCROBBLER_ID: &str = "fern";
/// Fern's display name.
pub const SCROBBLER_NAME: &str = "Fern";

/// Her own songs: (artist, title, album, MusicBrainz recording id or none).
const OWN_SONGS: [(&str, &str, &str, Option<&str>); 6] = [
    (
        "Nadia Reyes",
        "Quiet Harbour",
        "Tidewater",
        Some("6a3d0f6e-1c4b-4f3e-9a51-0b9c7d2e8f11"),
    ),
    (
        "Nadia Reyes",
        "Lantern Street",
        "Tidewater",
        Some("0f2b7c9e-5d6a-4b8c-8e1f-3a4b5c6d7e80"),
    ),
    ("Les Oiseaux Bleus", "Été indien", "Saisons", None),
    ("Les Oiseaux Bleus", "Minuit à Lyon", "Saisons", None),
    ("Kōji Arata", "Paper Moon Radio", "Signals", None),
    ("Kōji Arata", "Glass Rain", "Signals", None),
];

/// A title the names rule keeps as it is: words and spaces only (no brackets, dashes or credits).
fn plain(title: &str) -> bool {
    title.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
}

/// Fern's listens, oldest first, as ListenBrainz's export writes them.
pub fn scrobbler_listens(listening: &Listening) -> Vec<Value> {
    let mut rng = Rng::new(39);
    // The friends' tracks, in id order: each once, with its first artist and ISRC.
    let mut tracks: std::collections::BTreeMap<String, &Value> = std::collections::BTreeMap::new();
    for member in &listening.members {
        for play in &member.plays {
            let track = &play["track"];
            if let (Some(id), Some(_)) =
                (track["id"].as_str(), track["external_ids"]["isrc"].as_str())
            {
                tracks.entry(id.to_string()).or_insert(track);
            }
        }
    }
    let all: Vec<&Value> = tracks.values().copied().collect();
    let first_artist = |t: &Value| {
        t["artists"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let title = |t: &Value| t["name"].as_str().unwrap_or_default().to_string();
    // Songs known by their names only: plain titles whose (artist, title) no other track shares.
    let by_names: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|t| plain(&title(t)))
        .filter(|t| {
            all.iter()
                .filter(|o| {
                    first_artist(o).to_lowercase() == first_artist(t).to_lowercase()
                        && title(o).to_lowercase() == title(t).to_lowercase()
                })
                .count()
                == 1
        })
        .collect();
    let pick = |rng: &mut Rng, from: &[&'_ Value], n: usize| -> Vec<Value> {
        let mut chosen: Vec<Value> = Vec::new();
        while chosen.len() < n.min(from.len()) {
            let t = from[rng.below(from.len() as u64) as usize];
            if !chosen.iter().any(|c| c["id"] == t["id"]) {
                chosen.push(t.clone());
            }
        }
        chosen
    };
    let isrc_songs = pick(&mut rng, &all, 10);
    let name_songs: Vec<Value> = pick(&mut rng, &by_names, 8)
        .into_iter()
        .filter(|t| !isrc_songs.iter().any(|s| s["id"] == t["id"]))
        .collect();
    let start = NaiveDate::from_ymd_opt(2024, 10, 21).expect("valid date");
    let mut listens = Vec::new();
    for day in 0..21 {
        let date = start + Duration::days(day);
        let mut minutes: Vec<u32> = (0..6)
            .map(|_| rng.between(8 * 60, 23 * 60) as u32)
            .collect();
        minutes.sort_unstable();
        minutes.dedup();
        for minute in minutes {
            let local = date
                .and_hms_opt(minute / 60, minute % 60, rng.below(60) as u32)
                .expect("a valid time");
            let Some(at) = local.and_local_timezone(FIXTURE_TIME_ZONE).earliest() else {
                continue;
            };
            let listened_at = at.timestamp();
            let kind = rng.below(10);
            let (artist, track, release, info) = if kind < 4 {
                let t = &isrc_songs[rng.below(isrc_songs.len() as u64) as usize];
                let variant = if rng.chance(0.5) {
                    format!("{} - Remastered 2011", title(t))
                } else {
                    title(t)
                };
                (
                    first_artist(t),
                    variant,
                    t["album"]["name"].as_str().map(str::to_string),
                    json!({
                        "isrc": t["external_ids"]["isrc"],
                        "duration_ms": t["duration_ms"],
                        "media_player": "Navidrome",
                        "submission_client": "Navidrome",
                        "submission_client_version": "0.53.3",
                    }),
                )
            } else if kind < 7 && !name_songs.is_empty() {
                let t = &name_songs[rng.below(name_songs.len() as u64) as usize];
                let artist = if rng.chance(0.5) {
                    first_artist(t).to_uppercase()
                } else {
                    first_artist(t).to_lowercase()
                };
                let track = if rng.chance(0.5) {
                    format!("{} (feat. Mira Sol)", title(t))
                } else {
                    title(t).to_lowercase()
                };
                (
                    artist,
                    track,
                    None,
                    json!({
                        "submission_client": "Pano Scrobbler",
                        "submission_client_version": "3.9.4",
                    }),
                )
            } else {
                let (artist, song, album, mbid) =
                    OWN_SONGS[rng.below(OWN_SONGS.len() as u64) as usize];
                let mut info = json!({
                    "duration_ms": 180_000 + rng.below(90) * 1000,
                    "submission_client": "Navidrome",
                });
                if let Some(mbid) = mbid {
                    info["recording_mbid"] = json!(mbid);
                }
                (
                    artist.to_string(),
                    song.to_string(),
                    Some(album.to_string()),
                    info,
                )
            };
            let mut metadata =
                json!({"artist_name": artist, "track_name": track, "additional_info": info});
            if let Some(release) = release {
                metadata["release_name"] = json!(release);
            }
            listens.push(json!({
                "inserted_at": listened_at + 2,
                "listened_at": listened_at,
                "recording_msid": format!(
                    "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    rng.below(1 << 32), rng.below(1 << 16), rng.below(1 << 12), rng.below(1 << 12), rng.below(1 << 48)
                ),
                "track_metadata": metadata,
                "user_name": SCROBBLER_ID,
            }));
        }
    }
    listens
}

/// The raw listens files a listen API that received Fern's listens as her scrobblers sent them would
/// have stored: one `import` submission a day (as a scrobbler's offline cache sends them), at the day's
/// end, under `raw/listens/user=fern/`.
pub fn scrobbler_raw_files(listens: &[Value]) -> Vec<(String, Value)> {
    let mut by_day: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for listen in listens {
        let at = chrono::DateTime::from_timestamp(listen["listened_at"].as_i64().unwrap_or(0), 0)
            .unwrap_or_default();
        let day = at
            .with_timezone(&FIXTURE_TIME_ZONE)
            .date_naive()
            .to_string();
        by_day.entry(day).or_default().push(json!({
            "listened_at": listen["listened_at"],
            "track_metadata": listen["track_metadata"],
        }));
    }
    by_day
        .into_iter()
        .map(|(_, payload)| {
            let last = payload
                .last()
                .and_then(|l| l["listened_at"].as_i64())
                .unwrap_or(0);
            let received = chrono::DateTime::from_timestamp(last + 600, 0).unwrap_or_default();
            let body = json!({"listen_type": "import", "payload": payload});
            let digest = format!(
                "{:016x}",
                fnv(&serde_json::to_vec(&body).unwrap_or_default())
            );
            (
                earshot_core::layout::listen_submission_key(SCROBBLER_ID, received, &digest),
                body,
            )
        })
        .collect()
}

/// Write [`scrobbler_raw_files`] of the committed listens (`fixtures/listens/fern.jsonl`) into `storage`:
/// Fern's listens as the listen API stores what her scrobblers send.
pub async fn write_scrobbler_raw_files(storage: &earshot_core::Storage) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(crate::fixtures::scrobbler_listens_file())?;
    let listens: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    for (key, body) in scrobbler_raw_files(&listens) {
        storage
            .write(&key, serde_json::to_vec(&body)?.into())
            .await?;
    }
    Ok(())
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
