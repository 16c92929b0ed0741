"""The real DAGs, run by `airflow dags test` on SQLite metadata, over the fixture group (conftest.py
starts what they need). Run twice: nothing is duplicated. After an erase, the member stays gone.

Needs the binaries (`EARSHOT_BIN_DIR`, set by scripts/test.sh after `cargo test` built them) and the
dev server (`EARSHOT_DEVDB_BIN`); skipped with a message when run outside scripts/test.sh.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import BIN, MEMBERS, NEEDS_BINARIES, ROOT, SCROBBLER, dags_test

pytestmark = NEEDS_BINARIES


# Logical dates after the DAGs' start_date (2026-01-01); the mock Spotify serves the fixture group's
# 2024 listening whatever the date.
def test_the_dags_run_the_pipeline_and_a_second_run_duplicates_nothing(env: dict[str, str]) -> None:
    storage = Path(env["EARSHOT_STORAGE"])
    reports = []
    for _ in range(2):
        dags_test("earshot_recently_played", "2026-01-02T09:00:00+00:00", env)
        dags_test("earshot_daily", "2026-01-02T00:00:00+00:00", env)
        report = json.loads((storage / "reports" / "20260102T000000Z" / "report.json").read_text())
        reports.append(report)
    # The newest 50 plays of each member (all Spotify lets one fetch reach), loaded once.
    for report in reports:
        plays = {m["id"]: m["plays"] for m in report["members"]}
        # The sixth friend scrobbles instead: listed, with nothing fetched.
        assert plays == {**dict.fromkeys(MEMBERS, 50), SCROBBLER: 0}, plays
        assert report["meta"]["engine"] == "polars"

    # The counts are what a duplicate would change (float sums may differ in their last bits between
    # runs, as parallel aggregation orders them differently).
    def counts(report: dict) -> list[tuple]:
        return [
            (
                m["id"],
                m["plays"],
                m["unique_tracks"],
                m["unique_artists"],
                m["deep_cuts"]["count"],
                [(t["track_key"], t["plays"]) for t in m["top_tracks_by_plays"]],
            )
            for m in report["members"]
        ]

    assert counts(reports[0]) == counts(reports[1]), "the second run changed the answers"
    for chart in ("top_artists", "listening_clock", "taste_match", "plays_per_day"):
        assert (storage / "reports" / "20260102T000000Z" / f"{chart}.png").stat().st_size > 1000
    raw = list((storage / "raw" / "recently_played").rglob("*.json"))
    assert len(raw) == len(MEMBERS), "the second hourly run found nothing new and stored no page"
    assert (storage / "exports" / "Tracks" / "snapshot=20260102T000000Z" / "_SUCCESS").is_file()

    # Each task's binary recorded its two runs (EARSHOT_STEP, set by the DAG), the newest first: what
    # the operator's metrics read.
    steps = storage / "state" / "steps"
    tasks = ("fetch_recently_played", "convert_recently_played", "upload_recently_played", "export", "analytics")
    for task in (*tasks, "stall_alarm"):
        record = json.loads((steps / f"{task}.json").read_text())
        assert record["step"] == task
        assert [run["outcome"] for run in record["runs"]] == ["success", "success"], record
        assert record["runs"][0]["started_at"] > record["runs"][1]["started_at"], record
        assert all(1 << 20 < run["peak_memory_bytes"] < 1 << 30 for run in record["runs"]), record
    # The steps that batch state their batch settings beside their peak memory; the others state none.
    stated = {
        "convert_recently_played": {"bytes_per_batch": 16 << 20, "files_per_batch": 1024},
        "upload_recently_played": {"documents_per_round_trip": 1000},
        "collections_recently_played": {
            "rows_per_aggregation": 100_000,
            "keys_per_aggregation": 2_000,
            "partials_per_aggregation": 100_000,
            "days_per_aggregation": 366,
        },
        "export": {"rows_per_row_group": 50_000, "rows_per_file": 500_000, "documents_per_cursor_batch": 10_000},
        "fetch_recently_played": {},
    }
    for task, settings in stated.items():
        record = json.loads((steps / f"{task}.json").read_text())
        assert all(run.get("batch_settings", {}) == settings for run in record["runs"]), record

    # The stall alarm ran in the daily DAG (recorded above). The fixture's plays are from 2024, but each
    # friend connected minutes ago and a stall counts from the connection when it is newer: no incident.
    assert not list((storage / "state" / "alarms").rglob("*.json"))

    # The weekly DAG: its own snapshot, the analytics of the week before (2026-W01, 29 Dec to 4 Jan),
    # and the recap, which the fixture config posts nowhere.
    dags_test("earshot_weekly", "2026-01-05T12:00:00+00:00", env)
    assert (storage / "exports" / "Tracks" / "snapshot=20260105T120000Z" / "_SUCCESS").is_file()


def test_after_an_erase_the_dags_run_and_the_member_does_not_reappear(env: dict[str, str], tmp_path: Path) -> None:
    """Emi leaves: the config no longer lists her, `members erase` removes her everywhere, and the next
    scheduled runs (a later day) succeed without bringing any of her data back."""
    config = (ROOT / "fixtures" / "group.toml").read_text()
    start = config.index('id = "emi"')
    block_start = config.rindex("[[members]]", 0, start)
    end = config.find("[[members]]", start)
    without = config[:block_start] + (config[end:] if end != -1 else "")
    assert 'id = "emi"' not in without and 'id = "dev.p"' in without
    (tmp_path / "group.toml").write_text(without)
    env = {**env, "EARSHOT_GROUP_CONFIG": str(tmp_path / "group.toml")}
    if not (Path(env["EARSHOT_STORAGE"]) / "reports" / "20260102T000000Z").is_dir():
        dags_test("earshot_recently_played", "2026-01-02T09:00:00+00:00", env)
        dags_test("earshot_daily", "2026-01-02T00:00:00+00:00", env)

    def erase() -> None:
        result = subprocess.run(
            [str(BIN / "members"), "erase", "--member", "emi", "--yes"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    erase()
    dags_test("earshot_recently_played", "2026-01-03T09:00:00+00:00", env)
    dags_test("earshot_daily", "2026-01-03T00:00:00+00:00", env)
    storage = Path(env["EARSHOT_STORAGE"])
    report = (storage / "reports" / "20260103T000000Z" / "report.json").read_text()
    assert [m["id"] for m in json.loads(report)["members"]] == [m for m in MEMBERS if m != "emi"] + [SCROBBLER]
    assert '"emi"' not in report and "Emi" not in report
    listed = subprocess.run(
        [str(BIN / "members"), "list", "--json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert [json.loads(line)["member"] for line in listed.splitlines()] == [m for m in MEMBERS if m != "emi"] + [
        SCROBBLER
    ]
    assert not list(storage.rglob("*user=emi*")), "no storage object of hers came back"
    erase()  # a second erase finds nothing and succeeds
