"""The real DAGs, run by `airflow dags test` on SQLite metadata, over the fixture group: the mock
Spotify and the MongoDB-wire dev server on loopback, a local storage folder, the members connected
through the real sign-in path. Run twice: nothing is duplicated.

Needs the binaries (`EARSHOT_BIN_DIR`, set by scripts/test.sh after `cargo test` built them) and the
dev server (`EARSHOT_DEVDB_BIN`); skipped with a message when run outside scripts/test.sh.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("EARSHOT_BIN_DIR", "/nonexistent"))
DEVDB = os.environ.get("EARSHOT_DEVDB_BIN", "")
MEMBERS = ["ana.mx", "ben_k", "chloe-r", "dev.p", "emi"]

pytestmark = pytest.mark.skipif(
    not (BIN / "data-fetcher").is_file() or not Path(DEVDB).is_file(),
    reason="needs the built binaries and the dev server: run scripts/test.sh",
)


def start(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    """A loopback service that prints its address first and stops when its stdin closes."""
    process = subprocess.Popen(
        [*command, "--exit-on-stdin-close"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def approve(url: str, member: str) -> str:
    """Act as the member's browser on the mock's authorize page; return where it redirects."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    connection.request("GET", f"{parts.path}?{parts.query}&mock_user={member}")
    response = connection.getresponse()
    assert response.status == 302, response.read()
    return response.getheader("Location") or ""


def connect(member: str, env: dict[str, str]) -> None:
    auth = subprocess.Popen(
        [str(BIN / "data-fetcher"), "auth", "--no-listen"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert auth.stderr is not None and auth.stdin is not None
    url = ""
    while not url:
        line = auth.stderr.readline()
        assert line, "data-fetcher auth ended before printing the sign-in URL"
        if "/authorize?" in line:
            url = line.strip()
    auth.stdin.write(approve(url, member) + "\n")
    auth.stdin.close()
    assert auth.wait(timeout=30) == 0, auth.stderr.read()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    devdb, mongodb_uri = start([DEVDB])
    mock, spotify = start([str(BIN / "earshot-mock-spotify")])
    storage = tmp_path_factory.mktemp("storage")
    key = subprocess.run(
        [str(BIN / "data-fetcher"), "keygen"], capture_output=True, text=True, check=True
    ).stdout.strip()
    environment = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "airflow" / "dags"),
        "EARSHOT_BIN_DIR": str(BIN),
        "EARSHOT_STORAGE": str(storage),
        "EARSHOT_GROUP_CONFIG": str(ROOT / "fixtures" / "group.toml"),
        "EARSHOT_DATABASE": "earshot_airflow_e2e",
        "MONGODB_URI": mongodb_uri,
        "SPOTIFY_API_BASE": spotify,
        "SPOTIFY_ACCOUNTS_BASE": spotify,
        "SPOTIFY_CLIENT_ID": "earshot0test0client0id0000000000",
        "EARSHOT_TOKEN_KEY": key,
    }
    for member in MEMBERS:
        connect(member, environment)
    yield environment
    for process in (mock, devdb):
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def dags_test(dag_id: str, date: str, env: dict[str, str]) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow), "dags", "test", dag_id, date], check=False, capture_output=True, text=True, env=env, timeout=600
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "state=failed" not in log and "upstream_failed" not in log, log[-4000:]
    assert "Running command" in log, f"{dag_id}: no task ran (a logical date before the DAG's start_date?)"


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
        assert plays == dict.fromkeys(MEMBERS, 50), plays
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
    assert [m["id"] for m in json.loads(report)["members"]] == [m for m in MEMBERS if m != "emi"]
    assert '"emi"' not in report and "Emi" not in report
    listed = subprocess.run(
        [str(BIN / "members"), "list", "--json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert [json.loads(line)["member"] for line in listed.splitlines()] == [m for m in MEMBERS if m != "emi"]
    assert not list(storage.rglob("*user=emi*")), "no storage object of hers came back"
    erase()  # a second erase finds nothing and succeeds


GROUPS = {"north": ["ana.mx", "ben_k", "chloe-r"], "south": ["chloe-r", "dev.p", "emi"]}


def test_two_groups_dags_run_each_in_its_own_stores(env: dict[str, str], tmp_path: Path) -> None:
    """A groups folder: the DAG factory's DAGs of both groups run, Chloé (in both, one Spotify account
    and one app) connected once per group, the fetches queued in the shared Spotify pool."""
    storage = tmp_path / "storage"
    env = {
        **env,
        "EARSHOT_GROUPS_DIR": str(ROOT / "fixtures" / "groups"),
        "EARSHOT_STORAGE": str(storage),
        "EARSHOT_DATABASE": "earshot_airflow_groups",
    }
    airflow = Path(sys.executable).parent / "airflow"
    pools = subprocess.run(
        [str(airflow), "pools", "set", "earshot_spotify", "1", "Spotify quota"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert pools.returncode == 0, pools.stderr[-2000:]
    for group, members in GROUPS.items():
        config = str(ROOT / "fixtures" / "groups" / f"{group}.toml")
        for member in members:
            connect(member, {**env, "EARSHOT_GROUP_CONFIG": config})
    for group in GROUPS:
        dags_test(f"earshot_{group}_recently_played", "2026-01-02T09:00:00+00:00", env)
        dags_test(f"earshot_{group}_daily", "2026-01-02T00:00:00+00:00", env)
        dags_test(f"earshot_{group}_weekly", "2026-01-05T12:00:00+00:00", env)
    assert sorted(p.name for p in storage.iterdir()) == ["groups"], "nothing outside the groups' prefixes"
    for group, members in GROUPS.items():
        report = json.loads((storage / "groups" / group / "reports" / "20260102T000000Z" / "report.json").read_text())
        plays = {m["id"]: m["plays"] for m in report["members"]}
        assert plays == dict.fromkeys(members, 50), (group, plays)
        others = {m for ms in GROUPS.values() for m in ms} - set(members)
        text = json.dumps(report)
        assert not any(f'"{other}"' in text for other in others), f"{group}'s report names another group's member"
        weekly = storage / "groups" / group / "exports" / "Tracks" / "snapshot=20260105T120000Z" / "_SUCCESS"
        assert weekly.is_file(), f"{group}'s weekly DAG exported its own snapshot"
