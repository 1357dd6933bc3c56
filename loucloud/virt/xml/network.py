"""libvirt network XML: NAT networks LouCloud creates, and what any network says of
itself (mode, subnet, DHCP range, fixed addresses)."""
from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .common import _text, to_string

LOUCLOUD_NS = "https://loucloud.org/xmlns/network/1"
ET.register_namespace("loucloudnet", LOUCLOUD_NS)


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    name: str = ""


@dataclass(frozen=True)
class Subnet:
    """One <ip> of a network: its address, prefix and DHCP range."""
    address: str                    # the host's own address on it (the gateway)
    prefix: int
    family: str = "ipv4"
    dhcp_start: str | None = None
    dhcp_end: str | None = None
    hosts: tuple[DhcpHost, ...] = ()

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.address}/{self.prefix}", strict=False)


@dataclass(frozen=True)
class NetworkDesc:
    name: str
    uuid: str
    mode: str                       # nat, route, bridge, open, isolated...
    bridge: str
    subnets: tuple[Subnet, ...] = field(default_factory=tuple)
    managed: bool = False           # made by LouCloud (fixed addresses are its to give)

    def ipv4(self) -> Subnet | None:
        return next((s for s in self.subnets if s.family == "ipv4"), None)


def build_nat_network(name: str, subnet: str, bridge: str) -> str:
    """A NAT network on ``subnet`` (an IPv4 CIDR such as 10.20.0.0/24): the host takes
    the first address, DHCP hands out the second to the last but one."""
    net = ipaddress.IPv4Network(subnet)
    hosts = list(net.hosts())
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    meta = ET.SubElement(root, "metadata")
    ET.SubElement(meta, f"{{{LOUCLOUD_NS}}}managed")
    forward = ET.SubElement(root, "forward", mode="nat")
    nat = ET.SubElement(forward, "nat")
    ET.SubElement(nat, "port", start="1024", end="65535")
    ET.SubElement(root, "bridge", name=bridge, stp="on", delay="0")
    ip = ET.SubElement(root, "ip", address=str(hosts[0]), prefix=str(net.prefixlen))
    dhcp = ET.SubElement(ip, "dhcp")
    ET.SubElement(dhcp, "range", start=str(hosts[1]), end=str(hosts[-1]))
    return to_string(root)


def build_dhcp_host(mac: str, ip: str, name: str = "") -> str:
    """A DHCP host entry (a fixed address for one MAC), for virNetworkUpdate."""
    host = ET.Element("host", mac=mac, ip=ip)
    if name:
        host.set("name", name)
    return to_string(host)


def _prefix(ip: ET.Element) -> int:
    if ip.get("prefix"):
        return int(ip.get("prefix"))
    if ip.get("netmask"):
        return ipaddress.IPv4Network(f"0.0.0.0/{ip.get('netmask')}").prefixlen
    return 64 if ip.get("family") == "ipv6" else 24


def parse_network(text: str) -> NetworkDesc:
    root = ET.fromstring(text)
    forward = root.find("forward")
    mode = forward.get("mode", "nat") if forward is not None else "isolated"
    subnets = []
    for ip in root.findall("ip"):
        if not ip.get("address"):
            continue
        family = ip.get("family") or \
            ("ipv6" if ":" in ip.get("address", "") else "ipv4")
        rng = ip.find("dhcp/range")
        hosts = tuple(DhcpHost(h.get("mac", ""), h.get("ip", ""), h.get("name", ""))
                      for h in ip.findall("dhcp/host") if h.get("ip"))
        subnets.append(Subnet(ip.get("address"), _prefix(ip), family,
                              rng.get("start") if rng is not None else None,
                              rng.get("end") if rng is not None else None, hosts))
    bridge = root.find("bridge")
    return NetworkDesc(
        name=_text(root.find("name")), uuid=_text(root.find("uuid")), mode=mode,
        bridge=bridge.get("name", "") if bridge is not None else "",
        subnets=tuple(subnets),
        managed=root.find(f"metadata/{{{LOUCLOUD_NS}}}managed") is not None)
