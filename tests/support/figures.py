"""Figures that tests measure for docs/reliability.md, merged into
test-artifacts/reliability.json (one key per figure)."""
from __future__ import annotations

from tests.support.artifacts import ARTIFACTS, updating_json

PATH = ARTIFACTS / "reliability.json"


def figure(key: str, value) -> None:
    with updating_json(PATH) as data:
        data[key] = value
