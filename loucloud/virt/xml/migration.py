"""A domain's XML for another host (migration): the same devices (the guest's ABI does
not change), with the host-side details of the target: where the VNC server listens and
where files are (its disks: disks.parse_disks)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from . import domain  # noqa: F401 (registers the loucloud metadata namespace prefix)
from .common import to_string


def retarget(domain_xml: str, *, vnc_listen: str | None = None,
             paths: dict[str, str] | None = None) -> str:
    """``domain_xml`` for the target host: its VNC server on ``vnc_listen`` and each
    file of ``paths`` (old path -> new path) replaced. Everything else is kept."""
    root = ET.fromstring(domain_xml)
    if vnc_listen:
        for graphics in root.findall("devices/graphics[@type='vnc']"):
            if graphics.get("listen") is not None:
                graphics.set("listen", vnc_listen)
            listens = graphics.findall("listen[@type='address']")
            for listen in listens:
                listen.set("address", vnc_listen)
            if not listens:
                ET.SubElement(graphics, "listen", type="address", address=vnc_listen)
    for old, new in (paths or {}).items():
        for source in root.findall("devices/disk/source"):
            if source.get("file") == old:
                source.set("file", new)
    return to_string(root)
