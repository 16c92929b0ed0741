"""The DAG factory's DAGs of a groups folder, run by `airflow dags test` (conftest.py starts what they
need), each group in its own stores. A module of its own, so that scripts/test.sh runs it beside
test_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import NEEDS_BINARIES, ROOT, connect, dags_test

pytestmark = NEEDS_BINARIES


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
