"""libvirt's capabilities XML: what a host offers guests."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .common import _text


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




@dataclass(frozen=True)
class DomainCapabilities:
    firmwares: tuple[str, ...]          # "efi", "bios" where the host says
    host_model_cpu: str | None          # a <cpu> element, for a baseline across hosts


def parse_domain_capabilities(text: str) -> DomainCapabilities:
    root = ET.fromstring(text)
    firmwares = tuple(_text(v) for v in root.findall("os/enum[@name='firmware']/value"))
    mode = root.find("cpu/mode[@name='host-model']")
    cpu_xml = None
    if mode is not None and mode.get("supported") == "yes" and mode.find("model") is not None:
        cpu = ET.Element("cpu")
        for child in mode:
            cpu.append(child)
        cpu_xml = ET.tostring(cpu, encoding="unicode")
    return DomainCapabilities(firmwares, cpu_xml)
