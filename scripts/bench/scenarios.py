"""The MongoDB-side scenarios: an hour on top of a loaded group, an imported history, an erase."""

import datetime
import json
import shutil
import time
from pathlib import Path

from common import env, measure

# The per-day partials the collections that sum over plays are folded from: (collection, raw key field).
PARTIALS = {
    "Tracks_by_day": "track_id",
    "Albums_by_day": "album_id",
    "Artists_by_day": "artist_ids",
    "Images_by_day": "album_id",
    "members_by_day": "user_id",
}


# The sizes whose hourly scenario also measures late data: a history import into old days, then an erase.
LATE_DATA = {"1M"}


def build_reads(client, db, entry_ids):
    """What a build of the ledger entries `entry_ids` reads: the plays of the entities they name on the
    days they name (the partials rebuilt), and the partials of those entities (the fold). Counted by
    the harness after the run, not timed."""
    entries = list(client[db]["upload_ledger"].find({"_id": {"$in": list(entry_ids)}}))
    days = sorted({d for e in entries for d in e.get("keys", {}).get("day", [])})
    plays = partials = 0
    for name, key in PARTIALS.items():
        values = sorted({v for e in entries for v in e.get("keys", {}).get(key, [])})
        if not values or not days:
            continue
        for chunk in range(0, len(values), 5000):
            part = values[chunk : chunk + 5000]
            partials += client[db][name].count_documents({"e": {"$in": part}})
            for day_chunk in range(0, len(days), 31):
                ds = days[day_chunk : day_chunk + 31]
                plays += client[db]["rawdata_recentlyplayed"].count_documents(
                    {
                        "local_day": {"$gte": ds[0], "$lte": ds[-1]},
                        key: {"$in": part},
                    }
                )
    return {"days": len(days), "plays": plays, "partials": partials}


def hourly_scenario(run, storage, group, uri, db, repeats, label="hour", shift_days=800):
    """One more hour on top of the loaded and built history: five members, one new page each, through
    convert, upload and create-collections, as the hourly DAG runs them."""
    from pymongo import MongoClient

    client = MongoClient(uri)
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    raw = storage / "raw" / "recently_played"
    # The set gains these pages (and, at 1M, a history and loses a member): the next run generates it
    # afresh, so that its hours are new again.
    (storage.parent / "set.json").unlink(missing_ok=True)
    members = sorted(p for p in raw.iterdir() if p.is_dir())[:5]
    newest = {m: max(m.glob("*.json")) for m in members}
    for attempt in range(repeats):
        shift = datetime.timedelta(days=shift_days + attempt)
        for folder, page_path in newest.items():
            page = json.loads(page_path.read_text())
            for item in page["items"]:
                at = datetime.datetime.fromisoformat(item["played_at"]) + shift
                item["played_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
            stamp = datetime.datetime.strptime(page_path.stem, "%Y%m%dT%H%M%S.%fZ") + shift
            (folder / (stamp.strftime("%Y%m%dT%H%M%S.") + f"{stamp.microsecond // 1000:03d}Z.json")).write_text(
                json.dumps(page)
            )
        before = set(client[db]["upload_ledger"].distinct("_id"))
        started = time.perf_counter()
        run.timed(
            f"{label}: convert",
            [str(bins / "json-converter"), "recently-played", "--storage", str(storage), "--group-config", str(group)],
        )
        run.timed(
            f"{label}: upload",
            [
                str(bins / "data-upload"),
                "recently-played",
                "--storage",
                str(storage),
                "--mongodb-uri",
                uri,
                "--database",
                db,
            ],
        )
        run.timed(
            f"{label}: create-collections",
            [str(bins / "create-collections"), "recently-played", "--mongodb-uri", uri, "--database", db]
            + ["--group-config", str(group)],
        )
        run.record(f"{label}: convert + upload + build", time.perf_counter() - started, 0, 0)
        new = set(client[db]["upload_ledger"].distinct("_id")) - before
        reads = build_reads(client, db, new)
        run.results["checks"][f"{label}: days, plays and partials its build read"] = reads
    if label != "hour":
        return
    # Each step once more with nothing new (no new page, no new file, no new ledger entry): its fixed cost.
    for _ in range(repeats):
        for step, command in [
            ("convert", ["json-converter", "recently-played", "--storage", str(storage), "--group-config", str(group)]),
            (
                "upload",
                ["data-upload", "recently-played", "--storage", str(storage), "--mongodb-uri", uri, "--database", db],
            ),
            (
                "create-collections",
                ["create-collections", "recently-played", "--mongodb-uri", uri, "--database", db]
                + ["--group-config", str(group)],
            ),
        ]:
            run.timed(f"nothing new: {step}", [str(bins / command[0]), *command[1:]])


def import_scenario(run, work, storage, group, uri, db):
    """A member's ten-year streaming history (the history150k set) imported into the group, converted,
    uploaded and built: the build must read only the days the import touched."""
    from pymongo import MongoClient

    bins = Path(env("EARSHOT_RELEASE_BIN"))
    history = work / "history150k"
    summary_file = history / "set.json"
    if not summary_file.exists():
        shutil.rmtree(history, ignore_errors=True)
        history.mkdir(parents=True)
        seconds, _, _, out = measure([str(bins / "earshot-fixtures"), str(history), "--history-plays", "150000"])
        summary_file.write_text(json.dumps({"plays": 150000, "summary": json.loads(out), "seconds": seconds}))
    member = json.loads(summary_file.read_text())["summary"]["member"]
    client = MongoClient(uri)
    before = set(client[db]["upload_ledger"].distinct("_id"))
    run.timed(
        "import: data-fetcher import",
        [str(bins / "data-fetcher"), "import", "--member", member, str(history / "export"), "--storage", str(storage)]
        + ["--group-config", str(group)],
    )
    run.timed(
        "import: convert",
        [str(bins / "json-converter"), "streaming-history", "--storage", str(storage), "--group-config", str(group)],
    )
    run.timed(
        "import: upload",
        [str(bins / "data-upload"), "recently-played", "--storage", str(storage), "--mongodb-uri", uri]
        + ["--database", db],
    )
    run.timed(
        "import: create-collections",
        [str(bins / "create-collections"), "recently-played", "--mongodb-uri", uri, "--database", db]
        + ["--group-config", str(group)],
    )
    new = set(client[db]["upload_ledger"].distinct("_id")) - before
    reads = build_reads(client, db, new)
    all_days = len(client[db]["members_by_day"].distinct("d"))
    run.results["checks"]["import: days, plays and partials its build read"] = reads
    run.results["checks"]["import: days with plays in the group after it"] = all_days


def erase_scenario(run, storage, group, uri, db):
    """`members erase` of one member (the group's second) at this size."""
    text = group.read_text()
    blocks = text.split("[[members]]")
    member = blocks[2].split('id = "', 1)[1].split('"', 1)[0]
    without = group.with_name("group-without.toml")
    without.write_text("[[members]]".join(blocks[:2] + blocks[3:]))
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    run.timed(
        "erase one member",
        [str(bins / "members"), "erase", "--member", member, "--yes", "--storage", str(storage)]
        + ["--group-config", str(without), "--mongodb-uri", uri, "--database", db],
    )
    run.results["checks"]["erase: the member erased"] = member
    # The set lost a member and gained a history: the next run generates it afresh.
    (storage.parent / "set.json").unlink(missing_ok=True)


def convert_once(storage, group):
    """Convert every kind (not measured): what the scenarios after the converter start from."""
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    for kind in ["recently-played", "top-tracks", "top-artists"]:
        measure([str(bins / "json-converter"), kind, "--storage", str(storage), "--group-config", str(group)])
