"""What every XML module shares: reading element text and sizes, writing a tree."""
from __future__ import annotations

import xml.etree.ElementTree as ET


def _text(el: ET.Element | None, default: str = "") -> str:
    return el.text.strip() if el is not None and el.text else default


def to_string(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def _bytes(el: ET.Element | None) -> int:
    if el is None or not el.text:
        return 0
    factors = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024 ** 2,
               "mib": 1024 ** 2, "mb": 1000 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3,
               "gb": 1000 ** 3, "t": 1024 ** 4, "tib": 1024 ** 4, "tb": 1000 ** 4,
               "p": 1024 ** 5, "pib": 1024 ** 5, "pb": 1000 ** 5, "e": 1024 ** 6,
               "eib": 1024 ** 6, "eb": 1000 ** 6}
    return int(el.text.strip()) * factors.get(el.get("unit", "bytes").lower(), 1)
