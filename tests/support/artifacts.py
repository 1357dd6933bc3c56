"""JSON files in test-artifacts/ that several test processes update (two runs of the
suite in one checkout, say): read, changed and written under an exclusive lock, and
replaced atomically, so no run reads a half-written file or loses another's keys."""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _render(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


@contextmanager
def updating_json(path: Path, render: Callable[[dict], str] = _render) -> Iterator[dict]:
    """The file's object (empty if it is missing or unreadable) to change in place;
    written back when the block ends without an exception."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        yield data
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(render(data))
        tmp.replace(path)
