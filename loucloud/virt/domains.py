"""Domain verbs. Domains are found by UUID (LouCloud chooses it), never by name; only the
bulk state map is keyed by name, the one thing libvirt lists cheaply for stopped domains."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import libvirt

from . import xml
from .errors import DomainNotFound, InvalidState, NotSupported, VirtError, translate
from .xml import Nic

# libvirt's domain states, named as users read them.
STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "no state",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",  # waiting on a resource: still running
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}
RUNNING, PAUSED, SHUTOFF, CRASHED = "running", "paused", "shut off", "crashed"


@dataclass(frozen=True)
class DomainStatus:
    state: str
    cpu_time_ns: int | None = None
    memory_kib: int | None = None
    vnc_port: int | None = None
    vnc_listen: str | None = None
    mac: str | None = None
    network: str | None = None
    disk_path: str | None = None
    domain_type: str | None = None
    nics: tuple[Nic, ...] = ()
    cdroms: tuple[tuple[str, str], ...] = ()   # (target dev, file or "" when empty)
    has_agent_channel: bool = False
    has_serial: bool = False
    cpu_mode: str | None = None
    firmware: str = "bios"


def state_name(code: int) -> str:
    return STATES.get(code, "unknown")


def _lookup(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    try:
        return conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def define(conn: libvirt.virConnect, spec: xml.DomainSpec) -> None:
    """Define (or redefine) the domain described by ``spec``."""
    conn.defineXML(xml.build_domain(spec))


def states(conn: libvirt.virConnect) -> dict[str, str]:
    """The state of every domain on the host, by domain name (unique on a host).

    Three calls whose cost follows the number of *running* domains, not of all: the
    running ones with their state, the names of the defined ones that are not running
    (a list of strings, no per-domain objects: 8 ms for 4000 where asking every
    domain's state takes 50-60 ms), and the running ones again. Each later answer
    overrides an earlier one, so a domain that starts or stops between two calls is
    still found, in the state of the latest call that saw it."""
    def running() -> dict[str, str]:
        stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE,
                                       libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE)
        return {dom.name(): state_name(values.get("state.state", 0))
                for dom, values in stats}

    out = running()
    out.update(dict.fromkeys(conn.listDefinedDomains(), SHUTOFF))
    out.update(running())
    return out


def status(conn: libvirt.virConnect, uuid: str) -> DomainStatus:
    """State, CPU time, memory, VNC port and the NIC of one domain (three calls)."""
    dom = _lookup(conn, uuid)
    [(_dom, values)] = conn.domainListGetStats(
        [dom], libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL |
        libvirt.VIR_DOMAIN_STATS_BALLOON, 0)
    desc = xml.parse_domain(dom.XMLDesc(0))
    return DomainStatus(
        state=state_name(values.get("state.state", 0)),
        cpu_time_ns=values.get("cpu.time"),
        memory_kib=values.get("balloon.current"),
        vnc_port=desc.vnc_port,
        vnc_listen=desc.vnc_listen,
        mac=desc.macs[0] if desc.macs else None,
        network=desc.networks[0] if desc.networks else None,
        disk_path=desc.disk_paths[0] if desc.disk_paths else None,
        domain_type=desc.domain_type,
        nics=desc.nics,
        cdroms=tuple(sorted(desc.cdroms.items())),
        has_agent_channel=desc.has_agent_channel,
        has_serial=desc.has_serial,
        cpu_mode=desc.cpu_mode,
        firmware=desc.firmware,
    )


def _screen(dom: libvirt.virDomain, flags: int = 0) -> tuple[str, int, str]:
    """(address, port, domain XML) of a running domain's VNC server. Raises
    InvalidState when the domain is not running (no port) or has no screen."""
    if dom.state()[0] not in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED,
                              libvirt.VIR_DOMAIN_BLOCKED):
        raise InvalidState("The VM is not running.")
    text = dom.XMLDesc(flags)
    desc = xml.parse_domain(text)
    if desc.vnc_port is None or not desc.vnc_listen:
        raise InvalidState("The VM has no VNC screen.")
    return desc.vnc_listen, desc.vnc_port, text


def vnc_address(conn: libvirt.virConnect, uuid: str) -> tuple[str, int]:
    """Where the running domain's VNC server listens now. Raises InvalidState when the
    domain is not running (no port)."""
    address, port, _xml = _screen(_lookup(conn, uuid))
    return address, port


def open_screen(conn: libvirt.virConnect, uuid: str, password: str,
                valid_seconds: int) -> tuple[str, int, bool]:
    """Give the running domain's VNC server a new password, valid for ``valid_seconds``
    (the old one stops working), and say where it listens: (address, port, protected).
    ``protected`` is False only on libvirt's test driver, which has no VNC server and
    cannot set passwords; anywhere else a password that cannot be set raises."""
    dom = _lookup(conn, uuid)
    address, port, text = _screen(dom, libvirt.VIR_DOMAIN_XML_SECURE)
    valid_to = (datetime.now(timezone.utc) + timedelta(seconds=valid_seconds)) \
        .strftime("%Y-%m-%dT%H:%M:%S")
    try:
        dom.updateDeviceFlags(xml.screen_password(text, password, valid_to),
                              libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, NotSupported) and conn.getType().lower() == "test":
            return address, port, False
        raise err from None
    return address, port, True


# Which states each action fits (checked before acting, so a refusal says why).
ALLOWED = {
    "start": {SHUTOFF, CRASHED},
    "shutdown": {RUNNING},
    "poweroff": {RUNNING, PAUSED, "shutting down", CRASHED, "suspended"},
    "reboot": {RUNNING},
    "reset": {RUNNING},
    "pause": {RUNNING},
    "resume": {PAUSED},
    # Suspend to disk (libvirt's managed save): the memory to a file, the domain shut
    # off; its next start resumes from it (issue 14, virt/snapshots.py has the rest).
    "save": {RUNNING, PAUSED},
}
ACTIONS = tuple(ALLOWED)


def act(conn: libvirt.virConnect, uuid: str, verb: str) -> None:
    """Do one of ACTIONS to the domain. Raises InvalidState when it does not fit the
    domain's state (libvirt's own check), DomainNotFound when it is gone."""
    dom = _lookup(conn, uuid)
    current = state_name(dom.state()[0])
    if current not in ALLOWED[verb]:
        raise InvalidState(f"the VM is {current}")
    action = {
        "start": lambda: dom.create(),
        "shutdown": lambda: dom.shutdown(),
        "poweroff": lambda: dom.destroy(),
        "reboot": lambda: dom.reboot(0),
        "reset": lambda: dom.reset(0),
        "pause": lambda: dom.suspend(),
        "resume": lambda: dom.resume(),
        "save": lambda: dom.managedSave(0),
    }[verb]
    try:
        action()
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def change_media(conn: libvirt.virConnect, uuid: str, path: str | None) -> None:
    """Insert the ISO at ``path`` into the domain's install drive (None: eject). A
    running domain changes at once and keeps it; a stopped one at its next start."""
    dom = _lookup(conn, uuid)
    desc = xml.parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    dev, bus = next(((d, b) for d, b in (xml.install_drive("x86_64"),
                                          xml.install_drive("aarch64"))
                     if d in desc.cdroms), (None, None))
    if dev is None:
        raise NotSupported("the VM has no install CD-ROM drive (it was created before "
                           "LouCloud gave every VM one)")
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if dom.isActive():
        # FORCE opens a tray the guest locked (an installer or a mounted disc does) for
        # an eject and for an insert alike; without it QEMU only asks the guest.
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
    try:
        dom.updateDeviceFlags(xml.build_cdrom(path, dev, bus), flags)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def remove(conn: libvirt.virConnect, uuid: str) -> bool:
    """Stop the domain if it runs and undefine it, with its managed save image and
    snapshot metadata. Returns whether there was a domain to remove."""
    try:
        dom = _lookup(conn, uuid)
    except DomainNotFound:
        return False
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if not isinstance(err, InvalidState):  # it stopped by itself meanwhile
            raise err from None
    flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
             libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    # A UEFI domain's NVRAM file goes with it. Drivers without NVRAM (the test driver)
    # refuse the flag: then without it.
    try:
        dom.undefineFlags(flags | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        return True
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, DomainNotFound):
            return False
        text = str(err).lower()
        if not isinstance(err, (NotSupported, InvalidState)) and "nvram" not in text and \
                "unsupported flags" not in text:
            raise err from None
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, DomainNotFound):
            return False
        raise err from None
    return True


def set_user_password(conn: libvirt.virConnect, uuid: str, user: str, password: str) -> None:
    """Set the password of ``user`` inside the running guest, through the QEMU guest
    agent. Raises AgentUnavailable when no agent answers, InvalidState when the domain
    does not run."""
    dom = _lookup(conn, uuid)
    if not dom.isActive():
        raise InvalidState("the VM is not running")
    try:
        dom.setUserPassword(user, password, 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def agent_addresses(conn: libvirt.virConnect, uuid: str) -> dict[str, list[str]]:
    """The guest's own addresses by MAC, as its agent reports them (loopback left
    out). Raises AgentUnavailable."""
    dom = _lookup(conn, uuid)
    try:
        found = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    out: dict[str, list[str]] = {}
    for _name, iface in (found or {}).items():
        mac = (iface.get("hwaddr") or "").lower()
        if not mac or mac == "00:00:00:00:00:00":
            continue
        addrs = [a["addr"] for a in iface.get("addrs") or []
                 if a.get("addr") and not a["addr"].startswith(("127.", "::1", "fe80:"))]
        out.setdefault(mac, []).extend(addrs)
    return out


# MSRs a nested hypervisor may refuse a guest (QEMU then dies at start with "failed to
# set MSR 0x..."), and the CPU feature that asks for each.
_MSR_FEATURES = {"0x10a": "arch-capabilities"}


def refused_cpu_feature(err: VirtError) -> str | None:
    """The CPU feature to disable when a start failed because the host's KVM (itself
    a guest, typically) refused one of its MSRs; None when that is not why."""
    text = str(err).lower()
    for msr, feature in _MSR_FEATURES.items():
        if f"failed to set msr {msr}" in text:
            return feature
    return None


def kvm_unusable(err: VirtError) -> bool:
    """Whether a start failed because the host's KVM cannot be used (libvirt offered
    it, but /dev/kvm is missing, forbidden or broken): then TCG ('qemu') is the way."""
    text = str(err).lower()
    return "kvm" in text and any(s in text for s in (
        "could not access kvm", "failed to initialize kvm", "kvm is not available",
        "permission denied", "no such file or directory", "operation not permitted"))


def state_of(conn: libvirt.virConnect, uuid: str) -> str:
    """One domain's state, as users read it (one call)."""
    dom = _lookup(conn, uuid)
    try:
        return state_name(dom.state(0)[0])
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
