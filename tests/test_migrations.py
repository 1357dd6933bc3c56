"""The schema comes from the migrations, run as a newcomer runs them (manage.py db
upgrade), and it matches the models; every migration downgrades."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(instance: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, LOUCLOUD_INSTANCE=str(instance))
    full_env.pop("DATABASE_URL", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


def _tables(instance: Path) -> set[str]:
    with closing(sqlite3.connect(instance / "loucloud.sqlite")) as conn:
        return {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}


def test_upgrade_matches_models_and_downgrades(tmp_path):
    up = _manage(tmp_path, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    check = _manage(tmp_path, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert {"users", "hosts", "settings", "vms", "images", "templates"} <= _tables(tmp_path)
    down = _manage(tmp_path, "db", "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert _tables(tmp_path) <= {"alembic_version"}


def test_upgrade_and_downgrade_on_mariadb(mariadb, tmp_path):
    """Every migration applies on an empty MariaDB database, and goes back down."""
    env = {"DATABASE_URL": mariadb.create_database("migrations")}
    for args in (("db", "upgrade"), ("db", "check"), ("db", "downgrade", "base"),
                 ("db", "upgrade")):
        result = _manage(tmp_path, *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
