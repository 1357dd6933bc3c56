"""Network verbs: a host's libvirt networks, the NAT networks LouCloud makes, DHCP
leases (one call per network) and fixed addresses (DHCP host entries)."""
from __future__ import annotations

from dataclasses import dataclass

import libvirt

from . import xml
from .errors import AlreadyExists, InvalidState, NetworkNotFound, NotSupported, translate
from .xml import NetworkDesc


@dataclass(frozen=True)
class NetworkInfo:
    desc: NetworkDesc
    active: bool
    autostart: bool

    @property
    def name(self) -> str:
        return self.desc.name


@dataclass(frozen=True)
class Lease:
    mac: str
    ip: str
    prefix: int
    hostname: str
    expires: int            # seconds since the epoch


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def _info(net: libvirt.virNetwork) -> NetworkInfo:
    try:
        autostart = bool(net.autostart())
    except libvirt.libvirtError as exc:
        if not isinstance(translate(exc), NotSupported):
            raise
        autostart = False
    return NetworkInfo(xml.parse_network(net.XMLDesc(0)), bool(net.isActive()), autostart)


def list_networks(conn: libvirt.virConnect) -> list[NetworkInfo]:
    """Every network the host defines, active or not, by name. A host without a
    network driver (a session daemon may have none) has none."""
    try:
        nets = conn.listAllNetworks(0)
    except libvirt.libvirtError as exc:
        if isinstance(translate(exc), NotSupported):
            return []
        raise
    return sorted((_info(n) for n in nets), key=lambda i: i.name)


def network(conn: libvirt.virConnect, name: str) -> NetworkInfo:
    """One network. Raises NetworkNotFound."""
    return _info(_lookup(conn, name))


def create_nat_network(conn: libvirt.virConnect, name: str, subnet: str,
                       bridge: str) -> NetworkInfo:
    """Define a NAT network on ``subnet``, start it and make it start with the host.
    A network defined here and failing to start is undefined again."""
    try:
        net = conn.networkDefineXML(xml.build_nat_network(name, subnet, bridge))
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    try:
        net.create()
        net.setAutostart(1)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        try:
            if net.isActive():
                net.destroy()
            net.undefine()
        except libvirt.libvirtError:
            pass
        raise err from None
    return _info(net)


def set_active(conn: libvirt.virConnect, name: str, active: bool) -> NetworkInfo:
    """Start or stop a network (stopping one cuts the VMs on it off the network)."""
    net = _lookup(conn, name)
    try:
        if active and not net.isActive():
            net.create()
        elif not active and net.isActive():
            net.destroy()
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return _info(net)


def set_autostart(conn: libvirt.virConnect, name: str, autostart: bool) -> NetworkInfo:
    net = _lookup(conn, name)
    try:
        net.setAutostart(1 if autostart else 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return _info(net)


def delete_network(conn: libvirt.virConnect, name: str) -> None:
    """Stop and undefine a network."""
    net = _lookup(conn, name)
    try:
        if net.isActive():
            net.destroy()
        net.undefine()
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def leases(conn: libvirt.virConnect, names: list[str]) -> dict[str, list[Lease]]:
    """The DHCP leases of these networks: one call per network. A network that is gone
    or inactive, or a driver without leases, gives none."""
    out: dict[str, list[Lease]] = {}
    for name in names:
        try:
            raw = conn.networkLookupByName(name).DHCPLeases(None, 0)
        except libvirt.libvirtError as exc:
            err = translate(exc)
            if isinstance(err, (NetworkNotFound, NotSupported, InvalidState)):
                out[name] = []
                continue
            raise err from None
        out[name] = [Lease(item.get("mac", "").lower(), item.get("ipaddr", ""),
                           int(item.get("prefix", 0) or 0), item.get("hostname") or "",
                           int(item.get("expirytime", 0) or 0)) for item in raw]
    return out


_UPDATE_FLAGS = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG


def _update(net: libvirt.virNetwork, command: int, host_xml: str) -> None:
    flags = _UPDATE_FLAGS | (libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE if net.isActive() else 0)
    net.update(command, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, host_xml, flags)


def reserve(conn: libvirt.virConnect, name: str, mac: str, ip: str, hostname: str = "") -> None:
    """Give ``mac`` the fixed address ``ip`` on the network (a DHCP host entry, live and
    in its definition). Raises AlreadyExists when the MAC or the address has one."""
    net = _lookup(conn, name)
    try:
        _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                xml.build_dhcp_host(mac, ip, hostname))
    except libvirt.libvirtError as exc:
        err = translate(exc)
        # libvirt says "there is an existing dhcp host entry ... that matches"
        if "already" in str(err).lower() or "exist" in str(err).lower():
            raise AlreadyExists(str(err), err.code) from None
        raise err from None


def release(conn: libvirt.virConnect, name: str, mac: str, ip: str) -> bool:
    """Remove the fixed address of ``mac``; whether there was one (a network that is
    gone has none)."""
    try:
        net = _lookup(conn, name)
    except NetworkNotFound:
        return False
    ipv4 = network(conn, name).desc.ipv4()
    if ipv4 is None or not any(h.mac.lower() == mac.lower() for h in ipv4.hosts):
        return False
    try:
        _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, xml.build_dhcp_host(mac, ip))
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return True
