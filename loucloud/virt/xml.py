"""Small ElementTree builders and parsers for libvirt's XML. Never string formatting:
user text becomes element text or an attribute value through the library."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


def _text(el: ET.Element | None, default: str = "") -> str:
    return el.text.strip() if el is not None and el.text else default


def to_string(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


# -- capabilities -------------------------------------------------------------------
@dataclass(frozen=True)
class Guest:
    os_type: str
    arch: str
    domain_types: tuple[str, ...]


@dataclass(frozen=True)
class Capabilities:
    host_arch: str
    guests: tuple[Guest, ...] = field(default_factory=tuple)

    def domain_types(self, arch: str) -> tuple[str, ...]:
        """Domain types offered for full virtualisation ('hvm') on ``arch``."""
        for guest in self.guests:
            if guest.os_type == "hvm" and guest.arch == arch:
                return guest.domain_types
        return ()


def parse_capabilities(text: str) -> Capabilities:
    root = ET.fromstring(text)
    guests = []
    for guest in root.findall("guest"):
        arch = guest.find("arch")
        if arch is None:
            continue
        types = tuple(dict.fromkeys(d.get("type", "") for d in arch.findall("domain")))
        guests.append(Guest(_text(guest.find("os_type")), arch.get("name", ""), types))
    return Capabilities(_text(root.find("host/cpu/arch")), tuple(guests))
