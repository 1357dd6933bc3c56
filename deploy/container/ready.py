"""Wait until LouCloud's database answers; with --schema, until it also holds the newest
schema (the web container runs `manage.py db upgrade`; the other containers start their
process only after it). Used by deploy/container/entrypoint.

    python deploy/container/ready.py [--schema] [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", action="store_true")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text

    from loucloud import create_app

    app = create_app()
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_pre_ping=True)
    heads = set(ScriptDirectory(str(ROOT / "migrations")).get_heads())
    deadline = time.monotonic() + args.timeout
    said = 0.0
    while True:
        why = None
        try:
            with engine.connect() as conn:
                if args.schema:
                    try:
                        rows = conn.execute(text("SELECT version_num FROM alembic_version"))
                        current = {row[0] for row in rows}
                    except Exception:  # noqa: BLE001  (no table yet)
                        current = set()
                    if current != heads:
                        why = f"the schema is at {sorted(current) or 'nothing'}, not {sorted(heads)}"
        except Exception as exc:  # noqa: BLE001  (the server is not up yet)
            why = f"the database does not answer ({str(exc).splitlines()[0][:160]})"
        if why is None:
            engine.dispose()
            return 0
        now = time.monotonic()
        if now > deadline:
            print(f"ready: gave up after {args.timeout:.0f} s: {why}", file=sys.stderr)
            return 1
        if now - said > 10:
            print(f"ready: waiting: {why}", file=sys.stderr, flush=True)
            said = now
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
