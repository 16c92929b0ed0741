"""The benchmark baseline: a recently-played converter written the way the original Python was.

The original `recently_played_json_converter.py` (the 2024 script json-converter replaces) loaded
each raw page with `json.load`, walked the items in a Python loop, formatted times with `datetime`
and wrote the records with `json.dump`. This does the same, but writes the records json-converter
writes (same fields, same values: `m:ss` durations, local times from `zoneinfo` instead of the
original's shifted UTC), so the two are compared on the same input and the same output, and
`scripts/bench/run.py` checks that they agree.

    python original_converter.py STORAGE_DIR GROUP_TOML OUT_DIR

Reads STORAGE_DIR/raw/recently_played/user=<id>/*.json, writes OUT_DIR/user=<id>/<stamp>.jsonl.
"""

import json
import os
import sys
import tomllib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def clean_track_name(name):
    cut = len(name)
    for bracket in "([{":
        at = name.find(bracket)
        if at != -1:
            cut = min(cut, at)
    clean = name[:cut].strip()
    return clean if clean else name.strip()


def duration(ms):
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def utc_text(at):
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def convert_play(user_id, user_name, play, zone):
    played_at = datetime.fromisoformat(play["played_at"]).astimezone(UTC)
    track = play["track"]
    album = track["album"]
    artists = track["artists"]
    names = [a["name"] for a in artists]
    clean = clean_track_name(track["name"])
    context = play.get("context")
    local = played_at.astimezone(zone)
    return {
        "_id": user_id + "|" + utc_text(played_at),
        "user_id": user_id,
        "user_name": user_name,
        "played_at": utc_text(played_at),
        "played_at_local": local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "local_day": local.strftime("%Y-%m-%d"),
        "local_hour": local.hour,
        "local_weekday": local.isoweekday(),
        "local_day_number": local.date().toordinal() - date(1970, 1, 1).toordinal(),
        "track_id": track.get("id"),
        "track_name": track["name"],
        "clean_track_name": clean,
        "artist_song_name": ", ".join(names) + " - " + clean,
        "artist_ids": [a.get("id") for a in artists],
        "artist_names": names,
        "artist_urls": [a.get("external_urls", {}).get("spotify") for a in artists],
        "album_id": album.get("id"),
        "album_name": album["name"],
        "album_type": album["album_type"].lower() if album.get("album_type") else None,
        "release_date": album.get("release_date"),
        "total_tracks": album.get("total_tracks"),
        "duration_ms": track["duration_ms"],
        "duration": duration(track["duration_ms"]),
        "popularity": track.get("popularity"),
        "explicit": track.get("explicit", False),
        "is_local": track.get("is_local", False),
        "track_url": track.get("external_urls", {}).get("spotify"),
        "images": [
            {"url": i["url"], "height": i.get("height"), "width": i.get("width")} for i in album.get("images", [])
        ],
        "context_type": context["type"] if context else "none",
        "source": "api",
        "ms_played": None,
    }


def main():
    storage, group_toml, out = sys.argv[1:4]
    with open(group_toml, "rb") as f:
        group = tomllib.load(f)
    zone = ZoneInfo(group.get("time_zone", "America/Los_Angeles"))
    names = {m["id"]: m.get("display_name", m["id"]) for m in group.get("members", [])}
    raw = os.path.join(storage, "raw", "recently_played")
    records = 0
    for folder in sorted(os.listdir(raw)):
        user_id = folder.removeprefix("user=")
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(raw, folder))):
            with open(os.path.join(raw, folder, name), encoding="utf-8") as f:
                page = json.load(f)
            target = os.path.join(out, folder, name.removesuffix(".json") + ".jsonl")
            with open(target, "w", encoding="utf-8") as f:
                for play in page["items"]:
                    record = convert_play(user_id, names.get(user_id, user_id), play, zone)
                    f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                    records += 1
    print(json.dumps({"records": records}))


if __name__ == "__main__":
    main()
