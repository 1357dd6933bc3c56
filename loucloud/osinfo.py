"""Which operating system an install ISO holds, from its volume id, matched against
libosinfo's database (Debian's osinfo-db package: the patterns virt-install and GNOME
Boxes use). Without the database, a few well-known volume ids still tell Windows."""
from __future__ import annotations

import functools
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

log = logging.getLogger(__name__)

OSINFO_DIRS = ("/usr/share/osinfo/os", "/usr/local/share/osinfo/os", "/etc/osinfo/os")
# Windows install media when the database is missing: CCSA, CCCOMA, CPBA, CENA, ...
WINDOWS_HINT = re.compile(r"^(J_)?(C[A-Z]{2,4}A_|CCSA|CPRA|GRMC|IR[1-9]_|WIN|SSS_X64)",
                          re.IGNORECASE)


@dataclass(frozen=True)
class OsGuess:
    name: str          # "Debian 12", "Microsoft Windows 10"
    os_type: str       # linux or windows (what LouCloud's VM needs: the clock)
    short_id: str = ""


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern
    guess: OsGuess
    weight: int


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[_Pattern, ...]:
    found: list[_Pattern] = []
    for root in OSINFO_DIRS:
        if not os.path.isdir(root):
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name.endswith(".xml"):
                    found.extend(_read(os.path.join(dirpath, name)))
    log.info("osinfo: %d install media patterns", len(found))
    return tuple(found)


def _read(path: str) -> list[_Pattern]:
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError):
        return []
    out = []
    for os_el in tree.getroot().iter("os"):
        family = (os_el.findtext("family") or "").lower()
        guess = OsGuess(os_el.findtext("name") or os_el.get("id", ""),
                        "windows" if family.startswith("win") else "linux",
                        os_el.findtext("short-id") or "")
        for vid in os_el.iterfind("media/iso/volume-id"):
            pattern = (vid.text or "").strip()
            if not pattern:
                continue
            try:
                out.append(_Pattern(re.compile(pattern, re.IGNORECASE), guess,
                                    len(pattern)))
            except re.error:
                continue
    return out


def guess_from_volume_id(volume_id: str) -> OsGuess | None:
    """The system an ISO with this volume id most likely installs (the most specific
    pattern that matches), or None."""
    volume_id = (volume_id or "").strip()
    if not volume_id:
        return None
    best = None
    for p in _patterns():
        if p.regex.search(volume_id) and (best is None or p.weight > best.weight):
            best = p
    if best:
        return best.guess
    if WINDOWS_HINT.match(volume_id):
        return OsGuess("Windows", "windows")
    return None


def guess_from_name(filename: str) -> OsGuess | None:
    """A weak guess from a file's name (for disk images, which carry no volume id)."""
    low = (filename or "").lower()
    if re.search(r"(^|[^a-z])win(dows)?([^a-z]|\d|$)", low):
        return OsGuess("Windows", "windows")
    return None
