"""What the end-to-end DAG tests share (test_e2e.py, test_e2e_groups.py): the mock Spotify and the
MongoDB-wire dev server on loopback, a local storage folder, Airflow metadata of their own, the members
connected through the real sign-in path, and `airflow dags test`. Each test module gets its own (the
`env` fixture is per module), so that scripts/test.sh runs the modules side by side.
"""

from __future__ import annotations

import http.client
import os
import shutil
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
# The sixth friend, not on Spotify (`spotify = false`): listed in the group, never fetched.
SCROBBLER = "fern"

# The end-to-end modules skip themselves without them (`pytestmark = NEEDS_BINARIES`).
NEEDS_BINARIES = pytest.mark.skipif(
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
    # Airflow's metadata of its own (a copy of the migrated SQLite database scripts/test.sh made), so
    # that each test can run in its own process beside the others (scripts/parallel_tests.py).
    home = Path(os.environ.get("AIRFLOW_HOME", "/nonexistent"))
    if (home / "airflow.db").is_file():
        copy = tmp_path_factory.mktemp("airflow-home")
        shutil.copyfile(home / "airflow.db", copy / "airflow.db")
        home = copy
    key = subprocess.run(
        [str(BIN / "data-fetcher"), "keygen"], capture_output=True, text=True, check=True
    ).stdout.strip()
    environment = {
        **os.environ,
        **({"AIRFLOW_HOME": str(home)} if home.is_dir() else {}),
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
