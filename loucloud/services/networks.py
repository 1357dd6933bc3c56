"""Networks: every host's libvirt networks (listed, started, stopped, made), the fixed
addresses LouCloud gives its VMs on the NAT networks it made, and every VM's addresses
read in bulk (one leases call per network per host, never one call per VM)."""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l

from ..extensions import cache, db
from ..models import VM, Host
from ..virt import AlreadyExists, VirtError
from ..virt.driver import Lease, NetworkDesc, NetworkInfo, on_each
from . import Conflict, FieldError, ServiceError, Unavailable, transaction
from .hosts import all_hosts
from .hypervisors import hypervisor

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
BRIDGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # IFNAMSIZ
ACTIONS = ("start", "stop", "autostart", "no-autostart")


@dataclass
class HostNetworks:
    host: Host
    networks: list[NetworkInfo]
    in_use: dict[str, int]          # network -> addresses leased or reserved
    error: str | None = None


MODES = {"nat": "NAT", "bridge": "bridge", "route": "routed", "open": "open",
         "isolated": "isolated"}
MODE_LABELS = {"bridge": _l("bridge"), "routed": _l("routed"), "open": _l("open"),
               "isolated": _l("isolated")}


def mode_of(desc: NetworkDesc) -> str:
    """NAT, bridge, routed or isolated (the API's and the command line's word)."""
    return MODES.get(desc.mode, desc.mode)


def mode_label(desc: NetworkDesc) -> str:
    """The mode as a person reads it, in the reader's language (the Networks page)."""
    mode = mode_of(desc)
    return str(MODE_LABELS.get(mode, mode))


def list_host_networks() -> list[HostNetworks]:
    """Every host's networks with the number of addresses in use (leases and fixed
    addresses), hosts asked in parallel."""
    hosts = all_hosts()
    found = on_each([hypervisor(h) for h in hosts], lambda hv: _networks_and_use(hv))
    out = []
    for host in hosts:
        result = found[host.uri]
        if isinstance(result, VirtError):
            out.append(HostNetworks(host, [], {}, str(result)))
        else:
            out.append(HostNetworks(host, *result))
    return out


def _networks_and_use(hv) -> tuple[list[NetworkInfo], dict[str, int]]:
    nets = hv.networks()
    leases = hv.leases([n.name for n in nets if n.active])
    use = {}
    for net in nets:
        ips = {lease.ip for lease in leases.get(net.name, [])}
        for subnet in net.desc.subnets:
            ips.update(h.ip for h in subnet.hosts)
        use[net.name] = len(ips)
    return nets, use


@transaction
def create_network(name: str, subnet: str, hosts: list[Host]) -> list[tuple[Host, str | None]]:
    """Make a NAT network ``name`` on ``subnet`` (IPv4 CIDR) on each of ``hosts``,
    started and autostarted. Refused when the name is taken or the subnet overlaps one
    of a host's networks. Returns (host, None or why it failed) per host."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldError(_("Use 1 to 32 letters, digits, '_' or '-', starting with a letter "
                           "or digit."), "name")
    net = check_subnet(subnet)
    if not hosts:
        raise FieldError(_("Choose at least one host."), "hosts")
    existing = on_each([hypervisor(h) for h in hosts], lambda hv: hv.networks())
    for host in hosts:
        nets = existing[host.uri]
        if isinstance(nets, VirtError):
            raise Unavailable(_("%(host)s does not answer: %(error)s", host=host.name,
                                error=nets))
        for other in nets:
            if other.name == name:
                raise FieldError(_("%(host)s has a network named %(name)s already.",
                                   host=host.name, name=name), "name")
            for s in other.desc.subnets:
                if s.family == "ipv4" and s.network.overlaps(net):
                    raise FieldError(_("%(subnet)s overlaps %(other)s (%(its)s) on %(host)s.",
                                       subnet=net, other=other.name, its=s.network,
                                       host=host.name), "subnet")
    bridge = "lc" + hashlib.sha256(name.encode()).hexdigest()[:10]
    made = on_each([hypervisor(h) for h in hosts],
                   lambda hv: hv.create_nat_network(name, str(net), bridge))
    results = []
    for host in hosts:
        outcome = made[host.uri]
        results.append((host, str(outcome) if isinstance(outcome, VirtError) else None))
        if not isinstance(outcome, VirtError):
            log.info("network %s (%s) created on %s", name, net, host.name)
    return results


def check_subnet(subnet: str) -> ipaddress.IPv4Network:
    """A private IPv4 network from /16 to /29, written as its network address."""
    try:
        net = ipaddress.IPv4Network((subnet or "").strip(), strict=True)
    except ValueError as exc:
        raise FieldError(_("Enter an IPv4 network such as 10.20.0.0/24 (%(error)s).",
                           error=exc), "subnet") from None
    if not net.is_private or net.is_loopback or net.is_link_local:
        raise FieldError(_("Use a private network (10/8, 172.16/12, 192.168/16)."), "subnet")
    if not 16 <= net.prefixlen <= 29:
        raise FieldError(_("Use a prefix from /16 to /29."), "subnet")
    return net


@transaction
def network_action(host: Host, name: str, action: str) -> str:
    """Start, stop, or (un)set autostart of a network on a host. Returns the message."""
    if action not in ACTIONS:
        raise FieldError(_("Unknown action %(action)s.", action=repr(action)))
    # No libvirt name holds a control character (a NUL would not even reach libvirt)
    if not name or len(name) > 255 or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise FieldError(_("There is no network of this name."), "name")
    hv = hypervisor(host)
    try:
        if action in ("start", "stop"):
            hv.set_network_active(name, action == "start")
        else:
            hv.set_network_autostart(name, action == "autostart")
    except VirtError as exc:
        raise ServiceError(_("%(name)s on %(host)s: %(error)s", name=name, host=host.name,
                             error=exc)) from None
    said = {"start": _("%(name)s started on %(host)s."),
            "stop": _("%(name)s stopped on %(host)s; its VMs are cut off until it starts."),
            "autostart": _("%(name)s starts with %(host)s from now on."),
            "no-autostart": _("%(name)s no longer starts with %(host)s.")}[action]
    return said % {"name": name, "host": host.name}


# -- fixed addresses -----------------------------------------------------------------
def _free_addresses(desc: NetworkDesc, taken: set[str]) -> list[str]:
    subnet = desc.ipv4()
    if subnet is None or not subnet.dhcp_start or not subnet.dhcp_end:
        return []
    start = int(ipaddress.IPv4Address(subnet.dhcp_start))
    end = int(ipaddress.IPv4Address(subnet.dhcp_end))
    used = taken | {h.ip for h in subnet.hosts} | {subnet.address}
    return [str(ipaddress.IPv4Address(i)) for i in range(start, end + 1)
            if str(ipaddress.IPv4Address(i)) not in used]


def address_problem(desc: NetworkDesc, addr: ipaddress.IPv4Address,
                    held: set[str]) -> str | None:
    """Why ``addr`` cannot be a fixed address on the network (None: it can): outside
    its DHCP range, or ``held`` (by a fixed address or a lease)."""
    subnet = desc.ipv4()
    if subnet is None or not subnet.dhcp_start:
        return _("%(network)s hands out no addresses", network=desc.name)
    low, high = (ipaddress.IPv4Address(subnet.dhcp_start),
                 ipaddress.IPv4Address(subnet.dhcp_end))
    if not low <= addr <= high:
        return _("%(address)s is outside %(network)s's range %(low)s–%(high)s", address=addr,
                 network=desc.name, low=low, high=high)
    if str(addr) in held:
        return _("%(address)s is in use on %(network)s", address=addr, network=desc.name)
    return None


def check_chosen_address(desc: NetworkDesc, ip: str, leased: set[str]) -> str:
    """An address the administrator chose for a VM: in the network's DHCP range, not
    reserved and not leased. Raises FieldError (field "ip_address")."""
    try:
        addr = ipaddress.IPv4Address((ip or "").strip())
    except ValueError:
        raise FieldError(_("Enter an IPv4 address such as 10.20.0.50."),
                         "ip_address") from None
    subnet = desc.ipv4()
    reserved = {h.ip for h in subnet.hosts} if subnet else set()
    problem = address_problem(desc, addr, reserved | leased)
    if problem:
        raise FieldError(f"{problem}.", "ip_address")
    return str(addr)


def reserve_address(host: Host, desc: NetworkDesc, mac: str, chosen: str | None = None) -> str:
    """Give ``mac`` a fixed address on a network LouCloud made: ``chosen`` (checked)
    or the first free one of the range. libvirt refuses an address or MAC that has an
    entry already, which settles concurrent creates: the loser takes the next one.
    Raises FieldError (chosen address unusable), Conflict (range full)."""
    hv = hypervisor(host)
    leased = {lease.ip for lease in hv.leases([desc.name]).get(desc.name, [])}
    if chosen:
        candidates = [check_chosen_address(desc, chosen, leased)]
    else:
        candidates = _free_addresses(desc, leased)
    for ip in candidates[:64]:
        try:
            hv.reserve_address(desc.name, mac, ip)
            return ip
        except AlreadyExists:
            if chosen:
                raise FieldError(_("%(address)s was taken meanwhile on %(network)s.",
                                   address=ip, network=desc.name), "ip_address") from None
            continue
    raise Conflict(_("%(network)s on %(host)s has no free address left.", network=desc.name,
                     host=host.name))


def release_address(host: Host, vm: VM) -> None:
    """Give the VM's fixed address back (at delete). Raises VirtError."""
    if vm.ip_address and vm.network and vm.mac:
        hypervisor(host).release_address(vm.network, vm.mac, vm.ip_address)


# -- every VM's addresses, in bulk -----------------------------------------------------
def _leases_key(uri: str) -> str:
    return f"loucloud:leases:{uri}"


def leases_by_mac(vms: list[VM]) -> dict[str, list[str]]:
    """The DHCP leases of the networks these VMs are on, by MAC: one leases call per
    network per host (hosts in parallel), shared for LIVE_STATE_CACHE_SECONDS."""
    ttl = current_app.config["LIVE_STATE_CACHE_SECONDS"]
    wanted: dict[str, tuple[Host, set[str]]] = {}
    for vm in vms:
        if vm.nic_kind == "network" and vm.network and vm.mac:
            wanted.setdefault(vm.host.uri, (vm.host, set()))[1].add(vm.network)
    out: dict[str, list[str]] = {}
    missing = {}
    for uri, (host, names) in wanted.items():
        cached = cache.get(_leases_key(uri)) if ttl else None
        if cached is not None and names <= set(cached):
            _merge(out, cached, names)
        else:
            missing[uri] = (host, names)
    if missing:
        fresh = on_each([hypervisor(h) for h, _ in missing.values()],
                        lambda hv: hv.leases(sorted(missing[hv.uri][1])))
        for uri, leases in fresh.items():
            if isinstance(leases, VirtError):
                continue
            if ttl:
                cache.set(_leases_key(uri), leases, timeout=ttl)
            _merge(out, leases, missing[uri][1])
    return out


def _merge(out: dict[str, list[str]], leases: dict[str, list[Lease]], names: set[str]) -> None:
    for name in names:
        for lease in leases.get(name, []):
            out.setdefault(lease.mac, []).append(lease.ip)


def addresses(vm: VM, by_mac: dict[str, list[str]]) -> list[str]:
    """What is known of a VM's addresses: its fixed address, its leases and what its
    guest agent last said (IPv4 first), without repeats."""
    found = []
    if vm.ip_address:
        found.append(vm.ip_address)
    if vm.mac:
        found.extend(by_mac.get(vm.mac.lower(), []))
    if vm.guest_addresses:
        try:
            found.extend(json.loads(vm.guest_addresses))
        except ValueError:
            pass
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda a: (":" in a, unique.index(a)))


def forget_leases(host: Host) -> None:
    cache.delete(_leases_key(host.uri))


def store_guest_addresses(found: dict[int, list[str]], at) -> None:
    """What guest agents said of their addresses (the sampler asks), by VM id."""
    for vm_id, addrs in found.items():
        db.session.execute(db.update(VM).where(VM.id == vm_id).values(
            guest_addresses=json.dumps(addrs), guest_addresses_at=at))
    if found:
        db.session.commit()
