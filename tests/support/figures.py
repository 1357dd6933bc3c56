"""Figures that tests measure for docs/reliability.md, merged into
test-artifacts/reliability.json (one key per figure)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability.json"
_lock = threading.Lock()


def figure(key: str, value) -> None:
    with _lock:
        PATH.parent.mkdir(exist_ok=True)
        data = json.loads(PATH.read_text()) if PATH.exists() else {}
        data[key] = value
        PATH.write_text(json.dumps(data, indent=2, sort_keys=True))
