//! The fixture group: a deterministic, seeded generator of a friend group's listening in Spotify's
//! exact response shapes, and the loader of the committed set under `fixtures/`.
//!
//! The committed set (`GeneratorConfig::fixture_group`) is 5 members over 3 weeks around the
//! 2024-11-03 fall-back, plus a weekend around the 2024-03-10 spring-forward. It has shared tracks and
//! artists, a heavy listener who plays more than 50 tracks inside one clock hour, names with
//! `(feat. …)`, `[Remastered 2011]`, `{Live}`, unicode and emoji, an HTML-hostile name, a local file,
//! null contexts, images with null sizes, multi-artist tracks, and tracks with and without the fields
//! Spotify removed in 2026. The same generator scales to synthetic sets for benchmarks.
//!
//! Shapes are built as `serde_json::Value`s, independently of `earshot-core`'s models, so that tests
//! of the models and the converter check them against data they did not produce.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use earshot_core::layout::{self, RawKind};
use earshot_core::spotify::TimeRange;
use serde_json::{Value, json};

use crate::rng::Rng;

/// The time ranges of /me/top/*.
pub const TIME_RANGES: [&str; 3] = ["short_term", "medium_term", "long_term"];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Seed of the PRNG: same seed, same bytes.
    pub seed: u64,
    /// Number of members (the committed group has 5, one development-mode app's limit).
    pub members: usize,
    /// First local day of the main period, in the group's zone.
    pub start_day: NaiveDate,
    /// Length of the main period in days.
    pub days: u32,
    /// Mean plays per member per day.
    pub plays_per_day: u32,
    /// Also generate the weekend around the 2024-03-10 spring-forward, and the DST edge plays.
    pub dst_weekend: bool,
    /// Number of distinct artists in the catalog.
    pub artists: usize,
    /// Every track and album carries `available_markets` of every market (185 codes), as pages do for
    /// apps outside development mode; otherwise two in three carry eight, and the rest none.
    pub market_heavy: bool,
}

impl GeneratorConfig {
    /// The committed fixture group.
    pub fn fixture_group() -> GeneratorConfig {
        GeneratorConfig {
            seed: 20_241_103,
            members: 5,
            start_day: NaiveDate::from_ymd_opt(2024, 10, 21).expect("valid date"),
            days: 21,
            plays_per_day: 18,
            dst_weekend: true,
            artists: 24,
            market_heavy: false,
        }
    }

    /// A synthetic set for benchmarks: `members` × `days` at `plays_per_day`.
    pub fn synthetic(members: usize, days: u32, plays_per_day: u32) -> GeneratorConfig {
        GeneratorConfig {
            seed: 42,
            members,
            days,
            plays_per_day,
            dst_weekend: false,
            artists: 24 + members * 4,
            start_day: NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date"),
            market_heavy: false,
        }
    }
}

/// The group's zone (the fixture group lives in Los Angeles).
pub const FIXTURE_TIME_ZONE: Tz = chrono_tz::America::Los_Angeles;

/// A generated or loaded group's listening.
#[derive(Debug, Clone)]
pub struct Listening {
    /// IANA name of the group's time zone.
    pub time_zone: String,
    /// One entry per member, in group order.
    pub members: Vec<MemberListening>,
}

/// One member's listening.
#[derive(Debug, Clone)]
pub struct MemberListening {
    /// The /v1/me object (full, pre-2026 shape).
    pub user: Value,
    /// PlayHistory objects, oldest first (full, pre-2026 shape where the track had it).
    pub plays: Vec<Value>,
    /// Ranked top tracks per time range (full track objects), best first.
    pub top_tracks: BTreeMap<String, Vec<Value>>,
    /// Ranked top artists per time range (full artist objects), best first.
    pub top_artists: BTreeMap<String, Vec<Value>>,
}

impl MemberListening {
    /// The member's Spotify id.
    pub fn id(&self) -> &str {
        self.user["id"].as_str().unwrap_or_default()
    }

    /// The member's display name.
    pub fn display_name(&self) -> &str {
        self.user["display_name"].as_str().unwrap_or_default()
    }

    /// `played_at` of a play as a time.
    pub fn played_at(play: &Value) -> DateTime<Utc> {
        play["played_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }
}

const MEMBER_NAMES: [(&str, &str); 8] = [
    ("ana.mx", "Ana"),
    ("ben_k", "Ben"),
    ("chloe-r", "Chloé"),
    ("dev.p", "Dev"),
    ("emi", "Emi 🎧"),
    ("farah", "Farah"),
    ("gus", "Gus"),
    ("hana", "Hana"),
];

const ARTIST_NAMES: [&str; 24] = [
    "The Lumens",
    "Maya Rivers",
    "Sigur Rósa",
    "Kōji & The Waves",
    "Zoë Amaro",
    "DJ Nørd",
    "Los Ñandúes",
    "La Femme Étoile",
    "Paper Satellites",
    "Glass Harbor",
    "Velvet Static",
    "Old Pines",
    "Nova Bloom",
    "Ruby Tide",
    "Quiet Engines",
    "Saint Ember",
    "Hollow Coast",
    "Neon Orchard",
    "Ivory Drum",
    "Moss & Marrow",
    "Cobalt Parade",
    "The Late Trains",
    "Amber Field",
    "Polar Youth",
];

const WORDS_A: [&str; 16] = [
    "Golden", "Midnight", "Paper", "Electric", "Quiet", "Broken", "Silver", "Wild", "Neon",
    "Hollow", "Slow", "Crimson", "Summer", "Lonely", "Velvet", "Distant",
];
const WORDS_B: [&str; 16] = [
    "Hour", "Drive", "Hearts", "Rain", "Signals", "Tides", "Lights", "Avenue", "Echoes", "Garden",
    "Motion", "Skyline", "Letters", "Fever", "Season", "Horizon",
];
const GENRES: [&str; 8] = [
    "indie pop",
    "dream pop",
    "synthwave",
    "folk",
    "latin indie",
    "chanson",
    "electronica",
    "shoegaze",
];
const MARKETS: [&str; 8] = ["CA", "DE", "ES", "FR", "GB", "JP", "MX", "US"];
const PLAYLISTS: [&str; 3] = [
    "37i9dQZF1DXcBWIGoYBM5M",
    "37i9dQZF1DX0XUsuxWHRQd",
    "37i9dQZEVXcJZyENOWUFo7",
];

struct Catalog {
    artists: Vec<Value>,
    tracks: Vec<Value>,
    /// Main artist index of each track.
    track_artist: Vec<usize>,
    /// Every artist index of each track.
    track_artists: Vec<Vec<usize>>,
}

fn simple_artist(id: &str, name: &str) -> Value {
    json!({
        "external_urls": {"spotify": format!("https://open.spotify.com/artist/{id}")},
        "href": format!("https://api.spotify.com/v1/artists/{id}"),
        "id": id,
        "name": name,
        "type": "artist",
        "uri": format!("spotify:artist:{id}"),
    })
}

fn images(rng: &mut Rng, seed_id: &str) -> Value {
    if rng.below(7) == 0 {
        // Some images come with null sizes.
        return json!([{"height": null, "url": format!("https://i.scdn.co/image/ab67616d0000{seed_id}"), "width": null}]);
    }
    json!([640, 300, 64]
        .iter()
        .map(|size| json!({"height": size, "url": format!("https://i.scdn.co/image/{seed_id}{size}"), "width": size}))
        .collect::<Vec<_>>())
}

fn artist_name(i: usize) -> String {
    match ARTIST_NAMES.get(i) {
        Some(name) => (*name).to_string(),
        None => format!("Artist {i}"),
    }
}

/// The markets a full-shape track lists: the fixtures' eight, or 185 codes for market-heavy sets.
fn market_list(market_heavy: bool) -> Value {
    if market_heavy {
        let codes: Vec<String> = (0..185)
            .map(|i| {
                let letter = |n: usize| char::from(b'A' + u8::try_from(n).expect("below 26"));
                format!("{}{}", letter(i / 26), letter(i % 26))
            })
            .collect();
        json!(codes)
    } else {
        json!(MARKETS)
    }
}

fn build_catalog(rng: &mut Rng, n_artists: usize, market_heavy: bool) -> Catalog {
    let markets = market_list(market_heavy);
    let mut artists = Vec::new();
    let mut simple_artists = Vec::new();
    for i in 0..n_artists {
        let id = rng.spotify_id();
        let name = artist_name(i);
        let mut artist = simple_artist(&id, &name);
        artist["genres"] = json!([GENRES[i % GENRES.len()]]);
        artist["images"] = images(rng, &id[..8]);
        if i % 3 != 2 {
            // Fields removed for development-mode apps in 2026: present on older captures only.
            artist["popularity"] = json!(rng.between(5, 90));
            artist["followers"] = json!({"href": null, "total": rng.between(1_000, 5_000_000)});
        }
        simple_artists.push(simple_artist(&id, &name));
        artists.push(artist);
    }

    let mut tracks = Vec::new();
    let mut track_artist = Vec::new();
    let mut track_artists = Vec::new();
    let mut word = 0usize;
    for a in 0..n_artists {
        let albums = 1 + (a % 2);
        for b in 0..albums {
            let album_id = rng.spotify_id();
            let n_tracks = rng.between(3, 5) as usize;
            let album_type = if n_tracks == 3 && b == 1 {
                "single"
            } else {
                "album"
            };
            let release_year = 1995 + rng.below(29);
            let (release_date, precision) = if a % 5 == 4 {
                (format!("{release_year}"), "year")
            } else {
                (
                    format!(
                        "{release_year}-{:02}-{:02}",
                        rng.between(1, 12),
                        rng.between(1, 28)
                    ),
                    "day",
                )
            };
            let album_name = format!("{} {}", WORDS_A[(word + 3) % 16], WORDS_B[(word + 7) % 16]);
            let mut album = json!({
                "album_type": album_type,
                "artists": [simple_artists[a].clone()],
                "external_urls": {"spotify": format!("https://open.spotify.com/album/{album_id}")},
                "href": format!("https://api.spotify.com/v1/albums/{album_id}"),
                "id": album_id,
                "images": images(rng, &album_id[..8]),
                "name": album_name,
                "release_date": release_date,
                "release_date_precision": precision,
                "total_tracks": n_tracks,
                "type": "album",
                "uri": format!("spotify:album:{album_id}"),
            });
            let full_shape = market_heavy || a % 3 != 2;
            if full_shape {
                album["available_markets"] = markets.clone();
            }
            for t in 0..n_tracks {
                word += 1;
                let id = rng.spotify_id();
                let mut names = vec![a];
                let mut name = format!("{} {}", WORDS_A[word % 16], WORDS_B[(word * 7 + a) % 16]);
                match word % 11 {
                    0 => {
                        let guest = (a + 1 + rng.below(n_artists as u64 - 1) as usize) % n_artists;
                        names.push(guest);
                        name = format!("{name} (feat. {})", artist_name(guest));
                    }
                    3 => name = format!("{name} [Remastered 2011]"),
                    5 => name = format!("{name} {{Live}}"),
                    7 => {
                        let second = (a + 5) % n_artists;
                        names.push(second);
                    }
                    9 => name = format!("{name} - Radio Edit"),
                    _ => {}
                }
                let duration_ms = rng.between(95_000, 330_000);
                let mut track = json!({
                    "album": album.clone(),
                    "artists": names.iter().map(|&i| simple_artists[i].clone()).collect::<Vec<_>>(),
                    "disc_number": 1,
                    "duration_ms": duration_ms,
                    "explicit": rng.chance(0.15),
                    "external_ids": {"isrc": format!("US{}{:07}", &id[..3].to_uppercase(), rng.below(10_000_000))},
                    "external_urls": {"spotify": format!("https://open.spotify.com/track/{id}")},
                    "href": format!("https://api.spotify.com/v1/tracks/{id}"),
                    "id": id,
                    "is_local": false,
                    "name": name,
                    "track_number": t + 1,
                    "type": "track",
                    "uri": format!("spotify:track:{id}"),
                });
                if full_shape {
                    track["popularity"] = json!(rng.between(3, 95));
                    track["available_markets"] = markets.clone();
                    track["preview_url"] =
                        json!(format!("https://p.scdn.co/mp3-preview/{}", &id[..12]));
                } else {
                    track["preview_url"] = Value::Null;
                }
                tracks.push(track);
                track_artist.push(a);
                track_artists.push(names);
            }
        }
    }
    // Names a converter must keep verbatim.
    let specials = [
        (1, "Café del Mar ☕ (Acoustic)"),
        (2, "Dancing 💃 Queen [Live at Wembley]"),
        (4, "<script>alert(1)</script>"),
        (6, "Niño del Sol {Demo}"),
        (8, "日本の夜 (Night in Tokyo)"),
        (10, "\"Quotes\" & 'Apostrophes' \\ Backslash"),
    ];
    for (i, name) in specials {
        let index = (i * 5) % tracks.len();
        tracks[index]["name"] = json!(name);
    }

    // A local file: null ids and URLs, `spotify:local:` URI, empty album images.
    let local_artist = json!({"external_urls": {}, "href": null, "id": null, "name": "Home Recordings", "type": "artist", "uri": "spotify:local:Home+Recordings"});
    let local = json!({
        "album": {"album_type": null, "artists": [], "available_markets": [], "external_urls": {}, "href": null,
                  "id": null, "images": [], "name": "Voice Memos", "release_date": null,
                  "release_date_precision": null, "type": "album", "uri": null},
        "artists": [local_artist],
        "available_markets": [],
        "disc_number": 0,
        "duration_ms": 184_000,
        "explicit": false,
        "external_ids": {},
        "external_urls": {},
        "href": null,
        "id": null,
        "is_local": true,
        "name": "Demo Take 3 (Bedroom)",
        "popularity": 0,
        "preview_url": null,
        "track_number": 0,
        "type": "track",
        "uri": "spotify:local:Home+Recordings:Voice+Memos:Demo+Take+3+%28Bedroom%29:184",
    });
    tracks.push(local);
    track_artist.push(usize::MAX);
    track_artists.push(Vec::new());
    Catalog {
        artists,
        tracks,
        track_artist,
        track_artists,
    }
}

/// A member's habits.
struct Taste {
    /// Weight of each artist.
    artist_weights: Vec<u64>,
    /// Preferred local hours to start a session.
    hours: Vec<u32>,
}

fn taste(rng: &mut Rng, member: usize, n_artists: usize) -> Taste {
    let mut artist_weights = vec![1u64; n_artists];
    // Everyone likes the first two artists; neighbours share favourites, so pairs overlap unevenly.
    artist_weights[0] += 6;
    artist_weights[1] += 4;
    for k in 0..4 {
        let favourite = (2 + member * 3 + k) % n_artists;
        artist_weights[favourite] += 12 - 2 * k as u64;
    }
    artist_weights[(2 + (member + 1) * 3) % n_artists] += 3;
    for w in artist_weights.iter_mut() {
        *w += rng.below(2);
    }
    let hours = match member % 5 {
        0 => vec![0, 1, 2, 22, 23, 21],
        1 => vec![7, 8, 12, 18],
        2 => vec![9, 13, 16, 20],
        3 => vec![10, 14, 15, 19, 21],
        _ => vec![6, 11, 17, 22],
    };
    Taste {
        artist_weights,
        hours,
    }
}

fn local_to_utc(zone: Tz, day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let naive = day.and_hms_opt(hour, minute, 0).expect("valid time");
    // In the spring-forward gap, take the instant an hour later; in the fall-back overlap, the first.
    zone.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .expect("a local time exists within an hour")
        .with_timezone(&Utc)
}

fn pick_track(rng: &mut Rng, catalog: &Catalog, taste: &Taste, by_artist: &[Vec<usize>]) -> usize {
    let artist = rng.weighted(&taste.artist_weights);
    let tracks = &by_artist[artist];
    // Favour each artist's first tracks: a "hit" per artist that many members share.
    let weights: Vec<u64> = (0..tracks.len())
        .map(|i| if i == 0 { 6 } else { 2 })
        .collect();
    let _ = catalog;
    tracks[rng.weighted(&weights)]
}

fn context(rng: &mut Rng, track: &Value) -> Value {
    match rng.below(8) {
        0 | 1 => Value::Null,
        2..=4 => {
            let id = PLAYLISTS[rng.below(PLAYLISTS.len() as u64) as usize];
            json!({"external_urls": {"spotify": format!("https://open.spotify.com/playlist/{id}")},
                   "href": format!("https://api.spotify.com/v1/playlists/{id}"), "type": "playlist",
                   "uri": format!("spotify:playlist:{id}")})
        }
        5 | 6 => {
            let album = &track["album"];
            json!({"external_urls": album["external_urls"].clone(), "href": album["href"].clone(),
                   "type": "album", "uri": album["uri"].clone()})
        }
        _ => {
            let artist = &track["artists"][0];
            json!({"external_urls": artist["external_urls"].clone(), "href": artist["href"].clone(),
                   "type": "artist", "uri": artist["uri"].clone()})
        }
    }
}

fn play(played_at: DateTime<Utc>, track: &Value, context: Value) -> Value {
    json!({"context": context, "played_at": played_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), "track": track})
}

/// Generate a group's listening.
pub fn generate(config: &GeneratorConfig) -> Listening {
    Listening {
        time_zone: FIXTURE_TIME_ZONE.name().to_string(),
        members: MemberGenerator::new(config).collect(),
    }
}

/// The members of a generated group one at a time, in group order: what [`generate`] collects, for
/// sets too large to hold at once (a benchmark set of 10M plays is about 25 GB of JSON).
pub struct MemberGenerator {
    config: GeneratorConfig,
    rng: Rng,
    catalog: Catalog,
    by_artist: Vec<Vec<usize>>,
    next: usize,
}

impl MemberGenerator {
    /// Start generating `config`'s group.
    pub fn new(config: &GeneratorConfig) -> MemberGenerator {
        let mut rng = Rng::new(config.seed);
        let catalog = build_catalog(&mut rng, config.artists.max(4), config.market_heavy);
        let mut by_artist: Vec<Vec<usize>> = vec![Vec::new(); catalog.artists.len()];
        for (t, &a) in catalog.track_artist.iter().enumerate() {
            if a != usize::MAX {
                by_artist[a].push(t);
            }
        }
        MemberGenerator {
            config: config.clone(),
            rng,
            catalog,
            by_artist,
            next: 0,
        }
    }
}

impl Iterator for MemberGenerator {
    type Item = MemberListening;

    fn next(&mut self) -> Option<MemberListening> {
        if self.next >= self.config.members {
            return None;
        }
        let m = self.next;
        self.next += 1;
        Some(generate_member(
            &self.config,
            &mut self.rng,
            &self.catalog,
            &self.by_artist,
            m,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.config.members - self.next;
        (left, Some(left))
    }
}

/// Member `m` of the group, drawing from the group's PRNG (members are generated in order).
fn generate_member(
    config: &GeneratorConfig,
    rng: &mut Rng,
    catalog: &Catalog,
    by_artist: &[Vec<usize>],
    m: usize,
) -> MemberListening {
    let zone = FIXTURE_TIME_ZONE;
    let n_artists = catalog.artists.len();
    let local_track = catalog.tracks.len() - 1;
    let (id, name) = match MEMBER_NAMES.get(m) {
        Some(&(id, name)) => (id.to_string(), name.to_string()),
        None => (format!("member{m:05}"), format!("Member {m}")),
    };
    let taste = taste(rng, m, n_artists);
    // (played_at, track index)
    let mut plays: Vec<(DateTime<Utc>, usize)> = Vec::new();
    let mut days: Vec<NaiveDate> = (0..config.days)
        .map(|d| config.start_day + Duration::days(i64::from(d)))
        .collect();
    if config.dst_weekend {
        days.extend((9..=11).map(|d| NaiveDate::from_ymd_opt(2024, 3, d).expect("valid date")));
    }
    for (d, day) in days.iter().enumerate() {
        let target = config.plays_per_day as u64;
        let today = rng.between(target / 2, target + target / 2);
        let mut left = today;
        while left > 0 {
            let session = rng.between(3, 12).min(left);
            left -= session;
            let hour = taste.hours[rng.below(taste.hours.len() as u64) as usize];
            let mut at = local_to_utc(zone, *day, hour, rng.below(60) as u32)
                + Duration::milliseconds(rng.below(60_000) as i64);
            for _ in 0..session {
                let track = pick_track(rng, catalog, &taste, by_artist);
                plays.push((at, track));
                let listened = if rng.chance(0.2) {
                    rng.between(30_000, 90_000) as i64 // skipped after 30 s or more: still a play
                } else {
                    catalog.tracks[track]["duration_ms"]
                        .as_i64()
                        .unwrap_or(200_000)
                };
                at += Duration::milliseconds(listened + rng.below(4_000) as i64);
            }
        }
        // The local file, now and then.
        if m == 2 && d % 4 == 1 {
            plays.push((local_to_utc(zone, *day, 19, 5), local_track));
        }
        // The heavy listener: more than 50 plays inside one clock hour (skipping through a playlist).
        if m == 3 && (d == 9 || d == 16) {
            let start = local_to_utc(zone, *day, 14, 0) + Duration::seconds(20);
            for k in 0..58i64 {
                let track = pick_track(rng, catalog, &taste, by_artist);
                plays.push((
                    start + Duration::milliseconds(k * 61_000 + rng.below(500) as i64),
                    track,
                ));
            }
        }
    }
    if config.dst_weekend && m == 0 {
        // Plays on both sides of both 2024 DST changes in America/Los_Angeles.
        let edges = [
            "2024-03-10T09:50:00.250Z", // 01:50 PST, just before spring-forward
            "2024-03-10T10:10:00.750Z", // 03:10 PDT, just after
            "2024-11-03T08:30:00.000Z", // 01:30 PDT, first pass
            "2024-11-03T09:30:00.000Z", // 01:30 PST, second pass
        ];
        for (k, edge) in edges.iter().enumerate() {
            let at = DateTime::parse_from_rfc3339(edge)
                .expect("valid time")
                .with_timezone(&Utc);
            plays.push((at, by_artist[0][k % by_artist[0].len()]));
        }
    }
    plays.sort_by_key(|&(at, track)| (at, track));
    // One member cannot play two tracks at the same instant: keep played_at strictly increasing.
    for i in 1..plays.len() {
        if plays[i].0 <= plays[i - 1].0 {
            plays[i].0 = plays[i - 1].0 + Duration::seconds(31);
        }
    }
    let play_values: Vec<Value> = plays
        .iter()
        .map(|&(at, t)| play(at, &catalog.tracks[t], context(rng, &catalog.tracks[t])))
        .collect();

    let (top_tracks, top_artists) = top_lists(catalog, &taste, &plays, local_track);
    let user = json!({
        "country": "US",
        "display_name": name,
        "email": format!("{id}@example.com"),
        "external_urls": {"spotify": format!("https://open.spotify.com/user/{id}")},
        "href": format!("https://api.spotify.com/v1/users/{id}"),
        "id": id,
        "images": [],
        "product": "premium",
        "type": "user",
        "uri": format!("spotify:user:{id}"),
    });
    MemberListening {
        user,
        plays: play_values,
        top_tracks,
        top_artists,
    }
}

type TopLists = (BTreeMap<String, Vec<Value>>, BTreeMap<String, Vec<Value>>);

/// Top tracks and artists: short term from recent plays, long term mostly from taste.
fn top_lists(
    catalog: &Catalog,
    taste: &Taste,
    plays: &[(DateTime<Utc>, usize)],
    local_track: usize,
) -> TopLists {
    let last = plays.last().map(|p| p.0).unwrap_or_default();
    let mut tracks = BTreeMap::new();
    let mut artists = BTreeMap::new();
    for (r, range) in TIME_RANGES.iter().enumerate() {
        let window = [Duration::days(28), Duration::days(183), Duration::days(365)][r];
        let taste_factor = [0u64, 2, 6][r];
        let mut track_score: HashMap<usize, u64> = HashMap::new();
        let mut artist_score: HashMap<usize, u64> = HashMap::new();
        for &(at, t) in plays {
            if t == local_track || last - at > window {
                continue;
            }
            *track_score.entry(t).or_default() += 10;
            for &a in &catalog.track_artists[t] {
                *artist_score.entry(a).or_default() += 10;
            }
        }
        for (t, &a) in catalog.track_artist.iter().enumerate() {
            if a != usize::MAX && taste_factor > 0 {
                *track_score.entry(t).or_default() += taste.artist_weights[a] * taste_factor;
            }
        }
        for (a, w) in taste.artist_weights.iter().enumerate() {
            *artist_score.entry(a).or_default() += w * taste_factor;
        }
        let mut ranked: Vec<(usize, u64)> = track_score.into_iter().collect();
        ranked.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        tracks.insert(
            range.to_string(),
            ranked
                .iter()
                .take(50)
                .map(|&(t, _)| catalog.tracks[t].clone())
                .collect(),
        );
        let mut ranked: Vec<(usize, u64)> =
            artist_score.into_iter().filter(|&(_, s)| s > 0).collect();
        ranked.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        artists.insert(
            range.to_string(),
            ranked
                .iter()
                .take(50)
                .map(|&(a, _)| catalog.artists[a].clone())
                .collect(),
        );
    }
    (tracks, artists)
}

impl Listening {
    /// The member with this Spotify id.
    pub fn member(&self, id: &str) -> Option<&MemberListening> {
        self.members.iter().find(|m| m.id() == id)
    }

    /// The group config TOML for these members (no apps: the client id comes from the environment).
    pub fn group_toml(&self) -> String {
        group_toml(
            &self.time_zone,
            self.members
                .iter()
                .map(|m| (m.id().to_string(), m.display_name().to_string())),
        )
    }

    /// [`Listening::group_toml`] with the sixth friend, who is not on Spotify (the committed
    /// `group.toml`).
    pub fn group_toml_with_scrobbler(&self) -> String {
        format!(
            "{}\n[[members]]\nid = {}\ndisplay_name = {}\n# Not on Spotify: scrobbles to the listen API (fixtures/listens/).\nspotify = false\n",
            self.group_toml(),
            Value::from(crate::scrobbler::SCROBBLER_ID),
            Value::from(crate::scrobbler::SCROBBLER_NAME)
        )
    }

    /// Write the set in the committed layout:
    ///
    /// ```text
    /// group.toml
    /// spotify/users.json                       /v1/me of each member
    /// spotify/recently_played/<id>.jsonl       PlayHistory objects, oldest first
    /// spotify/top_tracks/<id>.json             {"short_term": [track…], "medium_term": …, "long_term": …}
    /// spotify/top_artists/<id>.json            the same for artists
    /// spotify/streaming_history/<id>/Streaming_History_Audio_<years>_<n>.json
    ///                                          the member's Extended Streaming History export
    /// ```
    /// Keys are written sorted, whatever `serde_json` features other crates switch on
    /// (`preserve_order` changes map order), so the output is byte-identical everywhere.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        let spotify = dir.join("spotify");
        for sub in ["recently_played", "top_tracks", "top_artists"] {
            std::fs::create_dir_all(spotify.join(sub))
                .with_context(|| format!("creating {}", spotify.display()))?;
        }
        std::fs::write(dir.join("group.toml"), self.group_toml())?;
        let users = Value::Array(self.members.iter().map(|m| m.user.clone()).collect());
        std::fs::write(
            spotify.join("users.json"),
            serde_json::to_string_pretty(&sorted_keys(&users))? + "\n",
        )?;
        for member in &self.members {
            let mut lines = String::new();
            for play in &member.plays {
                lines.push_str(&serde_json::to_string(&sorted_keys(play))?);
                lines.push('\n');
            }
            std::fs::write(
                spotify
                    .join("recently_played")
                    .join(format!("{}.jsonl", member.id())),
                lines,
            )?;
            std::fs::write(
                spotify
                    .join("top_tracks")
                    .join(format!("{}.json", member.id())),
                serde_json::to_string(&sorted_keys(&serde_json::to_value(&member.top_tracks)?))?
                    + "\n",
            )?;
            std::fs::write(
                spotify
                    .join("top_artists")
                    .join(format!("{}.json", member.id())),
                serde_json::to_string(&sorted_keys(&serde_json::to_value(&member.top_artists)?))?
                    + "\n",
            )?;
        }
        for (index, member) in self.members.iter().enumerate() {
            let folder = history_dir(dir, member.id());
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            for (name, entries) in streaming_history(member, index, &HistoryShape::fixture(index)) {
                std::fs::write(
                    folder.join(name),
                    serde_json::to_string_pretty(&sorted_keys(&entries))? + "\n",
                )?;
            }
        }
        Ok(())
    }

    /// [`Listening::write_to`], then the sixth friend, who is not on Spotify: her listens as
    /// ListenBrainz exports them (`listens/fern.jsonl`), and her entry in `group.toml` (the committed
    /// set).
    pub fn write_fixture_to(&self, dir: &Path) -> Result<()> {
        self.write_to(dir)?;
        std::fs::write(dir.join("group.toml"), self.group_toml_with_scrobbler())?;
        let listens = dir.join("listens");
        std::fs::create_dir_all(&listens)
            .with_context(|| format!("creating {}", listens.display()))?;
        let mut lines = String::new();
        for listen in crate::scrobbler::scrobbler_listens(self) {
            lines.push_str(&serde_json::to_string(&sorted_keys(&listen))?);
            lines.push('\n');
        }
        std::fs::write(
            listens.join(format!("{}.jsonl", crate::scrobbler::SCROBBLER_ID)),
            lines,
        )?;
        Ok(())
    }

    /// Load a set written by [`Listening::write_to`] (the committed one: [`fixtures_dir`]).
    pub fn load(dir: &Path) -> Result<Listening> {
        let spotify = dir.join("spotify");
        let users_path = spotify.join("users.json");
        let users: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(&users_path)
                .with_context(|| format!("reading {}", users_path.display()))?,
        )
        .with_context(|| format!("parsing {}", users_path.display()))?;
        let group =
            std::fs::read_to_string(dir.join("group.toml")).context("reading group.toml")?;
        let time_zone = group
            .lines()
            .find_map(|l| l.strip_prefix("time_zone = "))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| FIXTURE_TIME_ZONE.name().to_string());
        let mut members = Vec::new();
        for user in users {
            let id = user["id"]
                .as_str()
                .context("a user in users.json has no id")?
                .to_string();
            let path = spotify.join("recently_played").join(format!("{id}.jsonl"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut plays = Vec::new();
            for (n, line) in text.lines().enumerate() {
                plays.push(
                    serde_json::from_str(line)
                        .with_context(|| format!("{}: line {}", path.display(), n + 1))?,
                );
            }
            let read_map = |kind: &str| -> Result<BTreeMap<String, Vec<Value>>> {
                let path = spotify.join(kind).join(format!("{id}.json"));
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            };
            let top_tracks = read_map("top_tracks")?;
            let top_artists = read_map("top_artists")?;
            if plays
                .windows(2)
                .any(|w| MemberListening::played_at(&w[0]) >= MemberListening::played_at(&w[1]))
            {
                bail!("{}: plays are not strictly in time order", path.display());
            }
            members.push(MemberListening {
                user,
                plays,
                top_tracks,
                top_artists,
            });
        }
        Ok(Listening { time_zone, members })
    }

    /// The committed fixture group.
    pub fn fixture_group() -> Result<Listening> {
        Listening::load(&fixtures_dir())
    }
}

/// A group config TOML for `members` as (id, display name), in `time_zone`, without apps.
fn group_toml(time_zone: &str, members: impl Iterator<Item = (String, String)>) -> String {
    let mut out =
        String::from("# The fixture group (made by `earshot-fixtures`; see fixtures/README.md).\n");
    let _ = writeln!(out, "name = \"fixture-group\"\ntime_zone = \"{time_zone}\"");
    for (id, name) in members {
        let _ = writeln!(
            out,
            "\n[[members]]\nid = {}\ndisplay_name = {}",
            Value::from(id),
            Value::from(name)
        );
    }
    out
}

/// A copy of `value` whose objects list their keys in sorted order.
fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit is two levels deep")
        .to_path_buf()
}

/// The committed fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures")
}

/// `../shared/spotify` beside the project, when this checkout has it (contract tests use it).
pub fn shared_spotify_dir() -> Option<PathBuf> {
    let dir = workspace_root().parent()?.join("shared").join("spotify");
    dir.is_dir().then_some(dir)
}

/// One fact from the table in fixtures/README.md (the facts are written there once, computed
/// independently by fixtures/facts.py). Panics when the README has no such fact.
pub fn fact(key: &str) -> String {
    let readme =
        std::fs::read_to_string(fixtures_dir().join("README.md")).expect("fixtures/README.md");
    let wanted = format!("`{key}`");
    readme
        .lines()
        .find_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells.get(1) == Some(&wanted.as_str()))
                .then(|| {
                    cells
                        .get(2)
                        .map(|v| v.trim_matches('`').replace("&#124;", "|"))
                })
                .flatten()
        })
        .unwrap_or_else(|| panic!("fixtures/README.md has no fact `{key}`"))
}

/// A fact that is a number.
pub fn fact_count(key: &str) -> usize {
    fact(key)
        .parse()
        .unwrap_or_else(|_| panic!("fact `{key}` is not a number"))
}

/// A fact naming a track and a count, `name [id] (count)` (e.g. `top_track.group`): the id and the count.
pub fn fact_track(key: &str) -> (String, usize) {
    let value = fact(key);
    let parsed = (|| {
        let id = value.get(value.rfind('[')? + 1..value.rfind(']')?)?;
        let count = value.get(value.rfind('(')? + 1..value.rfind(')')?)?;
        Some((id.to_string(), count.parse().ok()?))
    })();
    parsed.unwrap_or_else(|| panic!("fact `{key}` is not `name [id] (count)`: {value}"))
}

/// The fixture group's members on Spotify, as fixtures/group.toml lists them (the sixth friend, who
/// scrobbles instead, is [`crate::scrobbler::SCROBBLER_ID`]).
pub fn fixture_member_ids() -> Vec<String> {
    earshot_core::GroupConfig::load(&fixtures_dir().join("group.toml"))
        .expect("fixtures/group.toml")
        .members
        .into_iter()
        .filter(|m| m.spotify)
        .map(|m| m.id)
        .collect()
}

/// The sixth friend's listens as ListenBrainz exports them (`fixtures/listens/fern.jsonl`).
pub fn scrobbler_listens_file() -> PathBuf {
    fixtures_dir()
        .join("listens")
        .join(format!("{}.jsonl", crate::scrobbler::SCROBBLER_ID))
}

/// Write [`raw_pages`] of the committed fixture group into `storage`: the raw tree the converter,
/// loader and collection tests start from.
pub async fn write_raw_pages(storage: &earshot_core::Storage) -> Result<()> {
    for (key, page) in raw_pages(&Listening::fixture_group()?) {
        storage
            .write(&key, serde_json::to_vec(&page)?.into())
            .await?;
    }
    Ok(())
}

/// The raw pages a fetcher that never missed a play would have stored for `listening`, as
/// `(storage key, page JSON)`: each member's plays in pages of at most 50, newest first within a page
/// (as Spotify serves them), and one top-tracks and one top-artists page per time range, fetched a
/// minute after the member's last play.
pub fn raw_pages(listening: &Listening) -> Vec<(String, Value)> {
    listening
        .members
        .iter()
        .flat_map(member_raw_pages)
        .collect()
}

/// [`raw_pages`] of one member.
pub fn member_raw_pages(member: &MemberListening) -> Vec<(String, Value)> {
    let base = "https://api.spotify.com/v1/me";
    let mut pages = Vec::new();
    let id = member.id();
    for chunk in member.plays.chunks(50) {
        let newest = MemberListening::played_at(chunk.last().expect("chunks are not empty"));
        let oldest = MemberListening::played_at(&chunk[0]);
        let items: Vec<Value> = chunk.iter().rev().cloned().collect();
        let page = json!({
            "items": items,
            "next": format!("{base}/player/recently-played?before={}&limit=50", oldest.timestamp_millis()),
            "cursors": {"after": newest.timestamp_millis().to_string(), "before": oldest.timestamp_millis().to_string()},
            "limit": 50,
            "href": format!("{base}/player/recently-played?limit=50"),
        });
        let fetched = newest + Duration::minutes(1);
        pages.push((
            layout::raw_key(RawKind::RecentlyPlayed, id, None, fetched),
            page,
        ));
    }
    let fetched = member
        .plays
        .last()
        .map(MemberListening::played_at)
        .unwrap_or_default()
        + Duration::minutes(1);
    for (kind, name, lists) in [
        (RawKind::TopTracks, "tracks", &member.top_tracks),
        (RawKind::TopArtists, "artists", &member.top_artists),
    ] {
        for (range, items) in lists {
            let page = json!({
                "items": items, "total": items.len(), "limit": 50, "offset": 0, "previous": null, "next": null,
                "href": format!("{base}/top/{name}?time_range={range}&limit=50&offset=0"),
            });
            let range: TimeRange = range.parse().expect("the generator names real time ranges");
            pages.push((layout::raw_key(kind, id, Some(range), fetched), page));
        }
    }
    pages
}

/// What [`write_raw_set`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawSetSummary {
    /// Members in the group config.
    pub members: usize,
    /// Plays in the recently-played pages.
    pub plays: usize,
    /// Raw page files.
    pub pages: usize,
    /// Bytes of raw pages.
    pub bytes: u64,
}

/// Write `config`'s group as a fetcher would have left it, one member at a time (memory stays at one
/// member's plays, whatever the size): `dir/group.toml` and the [`raw_pages`] under `dir/storage/`.
pub fn write_raw_set(config: &GeneratorConfig, dir: &Path) -> Result<RawSetSummary> {
    let storage = dir.join("storage");
    let mut summary = RawSetSummary::default();
    let mut names = Vec::with_capacity(config.members);
    for member in MemberGenerator::new(config) {
        for (key, page) in member_raw_pages(&member) {
            let path = storage.join(&key);
            let parent = path.parent().expect("raw keys have folders");
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
            let bytes = serde_json::to_vec(&page)?;
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            summary.pages += 1;
            summary.bytes += bytes.len() as u64;
        }
        summary.plays += member.plays.len();
        names.push((member.id().to_string(), member.display_name().to_string()));
    }
    summary.members = names.len();
    let path = dir.join("group.toml");
    std::fs::write(
        &path,
        group_toml(FIXTURE_TIME_ZONE.name(), names.into_iter()),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(summary)
}

/// How a member's generated Extended Streaming History export is shaped.
#[derive(Debug, Clone)]
pub struct HistoryShape {
    /// Seed of its own PRNG (the API plays are not disturbed).
    pub seed: u64,
    /// Days of history before the first API play.
    pub days_before: u32,
    /// Mean plays per day before the API period.
    pub plays_per_day: u32,
    /// Plays per export file (a new file also starts at every new year).
    pub per_file: usize,
    /// API plays of the first days also in the export (the overlap), in days from the first API play.
    pub overlap_days: i64,
    /// Add the quirks of real exports (episodes, skips, incognito, offline, null URIs, repeats).
    pub quirks: bool,
}

impl HistoryShape {
    /// The committed fixture group's exports: a few months before the API period, across a new year,
    /// overlapping its first four days, with every quirk.
    pub fn fixture(member_index: usize) -> HistoryShape {
        HistoryShape {
            seed: 0x5EED_0000 + member_index as u64,
            days_before: 330,
            plays_per_day: 1,
            per_file: 120,
            overlap_days: 4,
            quirks: true,
        }
    }
}

/// Fields of the real export that Earshot must never store (the import drops them).
pub const HISTORY_DEVICE_FIELDS: [&str; 5] = [
    "ip_addr",
    "conn_country",
    "platform",
    "user_agent_decrypted",
    "username",
];

/// The IP address the generated exports give every entry of member `m` (TEST-NET-1, RFC 5737).
pub fn history_ip_addr(member_index: usize) -> String {
    format!("192.0.2.{}", 10 + member_index)
}

/// The platform string the generated exports give every entry.
pub const HISTORY_PLATFORM: &str = "Android OS 14 API 34 (Google, Pixel 8)";

/// A generated Extended Streaming History export of `member` (the member at `member_index` of the
/// group): `(file name, JSON array of entries)`, in file order, in the real export's shape with its
/// device fields. Music plays before the API period use tracks the member played through the API;
/// the first `overlap_days` of API plays appear again, stamped the way the history stamps them (`ts`
/// is the stream's end; half the API plays are taken to be stamped at their start). With `quirks`:
/// entries under 30 s, podcast episodes, an audiobook chapter, incognito and offline plays, null
/// track URIs, a track Spotify no longer has, entries repeated across files, and a new year across
/// files.
pub fn streaming_history(
    member: &MemberListening,
    member_index: usize,
    shape: &HistoryShape,
) -> Vec<(String, Value)> {
    let mut rng = Rng::new(shape.seed);
    let id = member.id().to_string();
    let Some(first_api) = member.plays.first().map(MemberListening::played_at) else {
        return Vec::new();
    };
    let tracks: Vec<&Value> = member
        .plays
        .iter()
        .map(|p| &p["track"])
        .filter(|t| t["id"].is_string())
        .collect();
    let entry = |ts: DateTime<Utc>, ms_played: u64, track: Option<&Value>| -> Value {
        json!({
            "ts": ts.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "username": id,
            "platform": HISTORY_PLATFORM,
            "ms_played": ms_played,
            "conn_country": "US",
            "ip_addr": history_ip_addr(member_index),
            "user_agent_decrypted": "unknown",
            "master_metadata_track_name": track.map(|t| t["name"].clone()),
            "master_metadata_album_artist_name": track.map(|t| t["album"]["artists"][0]["name"].clone()
                .as_str().map(Value::from).unwrap_or_else(|| t["artists"][0]["name"].clone())),
            "master_metadata_album_album_name": track.map(|t| t["album"]["name"].clone()),
            "spotify_track_uri": track.map(|t| t["uri"].clone()),
            "episode_name": null,
            "episode_show_name": null,
            "spotify_episode_uri": null,
            "audiobook_title": null,
            "audiobook_uri": null,
            "audiobook_chapter_uri": null,
            "audiobook_chapter_title": null,
            "reason_start": "trackdone",
            "reason_end": "trackdone",
            "shuffle": false,
            "skipped": false,
            "offline": false,
            "offline_timestamp": null,
            "incognito_mode": false,
        })
    };
    let mut entries: Vec<Value> = Vec::new();
    // Before the API period: whole streams of the member's tracks, in the evening.
    for day in (1..=i64::from(shape.days_before)).rev() {
        let mut at = first_api - Duration::days(day) - Duration::hours(6);
        for _ in 0..rng.between(0, u64::from(shape.plays_per_day) * 2) {
            let track = tracks[rng.below(tracks.len() as u64) as usize];
            let length = track["duration_ms"].as_u64().unwrap_or(200_000);
            let ms = if rng.chance(0.8) {
                length
            } else {
                rng.between(30_000, length)
            };
            at += Duration::milliseconds(ms as i64) + Duration::seconds(rng.between(1, 30) as i64);
            entries.push(entry(at, ms, Some(track)));
        }
    }
    // The overlap: the first days of API plays, as the history has them.
    let overlap_end = first_api + Duration::days(shape.overlap_days);
    for play in member
        .plays
        .iter()
        .take_while(|p| MemberListening::played_at(p) < overlap_end)
    {
        let track = &play["track"];
        if !track["id"].is_string() {
            continue;
        }
        let length = track["duration_ms"].as_u64().unwrap_or(200_000);
        let at = MemberListening::played_at(play);
        let jitter = Duration::seconds(rng.between(0, 40) as i64 - 20);
        // Half of the API's times taken as the start of the stream, half as its end.
        let ts = if rng.chance(0.5) {
            at + Duration::milliseconds(length as i64) + jitter
        } else {
            at + jitter
        };
        entries.push(entry(ts, length, Some(track)));
    }
    if shape.quirks && !tracks.is_empty() {
        let mut quirk_at = first_api - Duration::days(40) + Duration::hours(3);
        let mut next = |rng: &mut Rng| {
            quirk_at += Duration::minutes(rng.between(5, 50) as i64);
            quirk_at
        };
        for _ in 0..8 {
            // Skipped after a few seconds.
            let track = tracks[rng.below(tracks.len() as u64) as usize];
            let mut e = entry(next(&mut rng), rng.between(1_000, 29_999), Some(track));
            e["skipped"] = json!(true);
            e["reason_end"] = json!("fwdbtn");
            entries.push(e);
        }
        for n in 0..4 {
            let mut e = entry(next(&mut rng), rng.between(300_000, 2_400_000), None);
            e["episode_name"] = json!(format!("Episode {} of The Long Listen", 40 + n));
            e["episode_show_name"] = json!("The Long Listen");
            e["spotify_episode_uri"] = json!(format!("spotify:episode:{}", rng.spotify_id()));
            entries.push(e);
        }
        let mut e = entry(next(&mut rng), 1_200_000, None);
        e["audiobook_title"] = json!("A Book of Days");
        e["audiobook_uri"] = json!(format!("spotify:audiobook:{}", rng.spotify_id()));
        e["audiobook_chapter_uri"] = json!(format!("spotify:chapter:{}", rng.spotify_id()));
        e["audiobook_chapter_title"] = json!("Chapter 3");
        entries.push(e);
        for _ in 0..3 {
            let track = tracks[rng.below(tracks.len() as u64) as usize];
            let mut e = entry(next(&mut rng), 180_000, Some(track));
            e["incognito_mode"] = json!(true);
            entries.push(e);
        }
        for _ in 0..4 {
            // Played offline: `offline_timestamp` is when (Unix seconds), `ts` when it was reported.
            let track = tracks[rng.below(tracks.len() as u64) as usize];
            let ts = next(&mut rng);
            let length = track["duration_ms"].as_u64().unwrap_or(200_000);
            let mut e = entry(ts, length, Some(track));
            e["offline"] = json!(true);
            e["offline_timestamp"] =
                json!((ts - Duration::milliseconds(length as i64)).timestamp());
            entries.push(e);
        }
        for _ in 0..3 {
            // A local file or a vanished track: a name, no URI.
            let mut e = entry(next(&mut rng), 200_000, None);
            e["master_metadata_track_name"] = json!("voice memo 12");
            entries.push(e);
        }
        // A track Spotify no longer has: its URI stays, `GET /v1/tracks/{id}` answers 404.
        let mut e = entry(next(&mut rng), 210_000, Some(tracks[0]));
        e["spotify_track_uri"] = json!(format!("spotify:track:{}", removed_track_id(member_index)));
        e["master_metadata_track_name"] = json!("Gone Tomorrow");
        entries.push(e);
        spoken_quirks(&mut entries, &entry, member, member_index, &mut rng);
    }
    entries.sort_by(|a, b| {
        a["ts"]
            .as_str()
            .cmp(&b["ts"].as_str())
            .then_with(|| a.to_string().cmp(&b.to_string()))
    });
    // Files of `per_file` entries, a new one at each new year, named as Spotify names them.
    let mut files: Vec<Vec<Value>> = Vec::new();
    let mut year = String::new();
    for e in entries {
        let this_year = e["ts"].as_str().unwrap_or_default()[..4].to_string();
        if files.last().is_none_or(|f| f.len() >= shape.per_file) || this_year != year {
            files.push(Vec::new());
        }
        year = this_year;
        files.last_mut().expect("a file").push(e);
    }
    if shape.quirks {
        // The export repeats records across files: the last entries of a file open the next one.
        for i in 1..files.len() {
            let tail: Vec<Value> = files[i - 1].iter().rev().take(3).rev().cloned().collect();
            files[i].splice(0..0, tail);
        }
    }
    let n = files.len();
    files
        .into_iter()
        .enumerate()
        .map(|(i, entries)| {
            let years = |e: Option<&Value>| {
                e.and_then(|e| e["ts"].as_str())
                    .map_or("0000", |t| &t[..4])
                    .to_string()
            };
            let (from, to) = (years(entries.first()), years(entries.last()));
            let span = if from == to {
                from
            } else {
                format!("{from}-{to}")
            };
            let _ = n;
            (
                format!("Streaming_History_Audio_{span}_{i}.json"),
                Value::Array(entries),
            )
        })
        .collect()
}

/// Each member's own podcast (two members share each but one), in the last weeks of the API
/// period, so that the recaps of October 2024 and of week 44 show them.
const MEMBER_SHOWS: [&str; 5] = [
    "Night Shift Radio",
    "Deep Cuts Weekly",
    "Night Shift Radio",
    "<i>Loud</i> & \"Clear\"",
    "Deep Cuts Weekly",
];

/// An export entry of a stream that ended at `ts`, `ms_played` long, of a track (none: not music).
type EntryOf<'e> = dyn Fn(DateTime<Utc>, u64, Option<&Value>) -> Value + 'e;

/// Spoken entries besides the Long Listen's: episodes of the member's own show, an audiobook
/// chapter for every other member, and entries that are no plays (under 30 s, incognito). Drawn
/// after every other entry, so that adding them moved nothing else.
fn spoken_quirks(
    entries: &mut Vec<Value>,
    entry: &EntryOf<'_>,
    member: &MemberListening,
    member_index: usize,
    rng: &mut Rng,
) {
    let Some(last) = member.plays.last().map(MemberListening::played_at) else {
        return;
    };
    let mut at = last - Duration::days(14) + Duration::minutes(37 * member_index as i64);
    let mut next = || {
        at += Duration::hours(7);
        at
    };
    let show = MEMBER_SHOWS[member_index % MEMBER_SHOWS.len()];
    let episode = |e: &mut Value, rng: &mut Rng, show: &str, n: usize| {
        e["episode_name"] = json!(format!("{show}: episode {}", 100 + n));
        e["episode_show_name"] = json!(show);
        e["spotify_episode_uri"] = json!(format!("spotify:episode:{}", rng.spotify_id()));
    };
    for n in 0..1 + member_index % 3 {
        let mut e = entry(next(), 600_000 + 300_000 * n as u64, None);
        episode(&mut e, rng, show, n);
        entries.push(e);
    }
    // Not plays: skipped after 12 s, and one heard in a private session.
    let mut e = entry(next(), 12_000, None);
    episode(&mut e, rng, "The Long Listen", 7);
    entries.push(e);
    let mut e = entry(next(), 900_000, None);
    episode(&mut e, rng, show, 9);
    e["incognito_mode"] = json!(true);
    entries.push(e);
    let chapter = |e: &mut Value, rng: &mut Rng, n: usize| {
        e["audiobook_title"] = json!("A Book of Days");
        e["audiobook_uri"] = json!(format!("spotify:audiobook:{}", rng.spotify_id()));
        e["audiobook_chapter_uri"] = json!(format!("spotify:chapter:{}", rng.spotify_id()));
        e["audiobook_chapter_title"] = json!(format!("Chapter {n}"));
    };
    if member_index.is_multiple_of(2) {
        let mut e = entry(next(), 1_500_000, None);
        chapter(&mut e, rng, 4);
        entries.push(e);
    }
    let mut e = entry(next(), 5_000, None);
    chapter(&mut e, rng, 5);
    entries.push(e);
}

/// The folder of a member's generated export in a set written by [`Listening::write_to`].
pub fn history_dir(set: &Path, member: &str) -> PathBuf {
    set.join("spotify").join("streaming_history").join(member)
}

/// The id of the track in member `m`'s export that Spotify no longer has.
pub fn removed_track_id(member_index: usize) -> String {
    format!("0RemovedTrack{member_index:09}")
}
