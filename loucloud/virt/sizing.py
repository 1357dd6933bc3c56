"""A domain's vCPUs and memory (issue 14, resize). The persistent definition always
takes the new size; a running domain takes it at once where it can: vCPUs hot-plugged
up to the maximum it was started with (then brought online in the guest through its
agent), memory through the balloon up to its <memory>. Fewer vCPUs, or more than the
running maximum, wait for the next boot."""
from __future__ import annotations

import time
from dataclasses import dataclass

import libvirt

from . import xml
from .domains import _lookup
from .errors import HostUnavailable, translate

LIVE, CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG


@dataclass(frozen=True)
class Resized:
    """What a resize did: what waits for the next boot (with why), and for vCPUs added
    live whether the guest brought them online (None: not asked)."""
    deferred: tuple[tuple[str, str], ...] = ()    # (what, why)
    guest_online: bool | None = None
    running: bool = False                          # whether the domain runs


@dataclass(frozen=True)
class Sizes:
    """A domain's sizes: its definition's (what the next boot gets) and, running, its
    live ones (None when it does not run)."""
    vcpus: int
    max_vcpus: int
    memory_mib: int
    max_memory_mib: int
    live_vcpus: int | None = None
    live_max_vcpus: int | None = None
    live_memory_mib: int | None = None
    live_max_memory_mib: int | None = None


def sizes_of(dom: libvirt.virDomain) -> Sizes:
    config = xml.parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    if not dom.isActive():
        return Sizes(config.vcpus, config.max_vcpus, config.memory_mib, config.max_memory_mib)
    live = xml.parse_domain(dom.XMLDesc(0))
    return Sizes(config.vcpus, config.max_vcpus, config.memory_mib, config.max_memory_mib,
                 live.vcpus, live.max_vcpus, live.memory_mib, live.max_memory_mib)


def sizes(conn: libvirt.virConnect, uuid: str) -> Sizes:
    """The domain's sizes, defined and live (two calls)."""
    try:
        return sizes_of(_lookup(conn, uuid))
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def resize(conn: libvirt.virConnect, uuid: str, vcpus: int | None, memory_mib: int | None,
           vcpu_room: int, memory_room_mib: int, online_wait: float = 20.0) -> Resized:
    """Give the domain ``vcpus`` and ``memory_mib`` (None: leave it). The definition
    first (its maximum raised to ``vcpu_room`` / ``memory_room_mib`` when the new size
    passes it), then the running domain where it can take it; a running domain that
    cannot (past its running maximum, fewer vCPUs, the hypervisor refusing) keeps its
    size until its next boot, which the result says. Raises VirtError when the
    definition cannot be changed (then nothing changed)."""
    dom = _lookup(conn, uuid)
    try:
        before = sizes_of(dom)
        _configure(dom, before, vcpus, memory_mib, vcpu_room, memory_room_mib)
        if before.live_vcpus is None:
            return Resized()
        return _apply_live(dom, before, vcpus, memory_mib, online_wait)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def _configure(dom, before: Sizes, vcpus, memory_mib, vcpu_room, memory_room_mib) -> None:
    if vcpus is not None:
        if vcpus > before.max_vcpus:
            dom.setVcpusFlags(max(vcpus, vcpu_room), CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
        dom.setVcpusFlags(vcpus, CONFIG)
    if memory_mib is not None:
        if memory_mib > before.max_memory_mib:
            dom.setMemoryFlags(max(memory_mib, memory_room_mib) * 1024,
                               CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
        dom.setMemoryFlags(memory_mib * 1024, CONFIG)


def _apply_live(dom, before: Sizes, vcpus, memory_mib, online_wait: float) -> Resized:
    deferred: list[tuple[str, str]] = []
    online = None
    if vcpus is not None and vcpus != before.live_vcpus:
        if vcpus > before.live_max_vcpus:
            deferred.append(("vCPUs", f"it runs with room for {before.live_max_vcpus}"))
        elif vcpus < before.live_vcpus:
            deferred.append(("vCPUs", "vCPUs are removed only at a boot"))
        else:
            why = _live(lambda: dom.setVcpusFlags(vcpus, LIVE))
            if why:
                deferred.append(("vCPUs", why))
            else:
                online = _online_in_guest(dom, vcpus, online_wait)
    if memory_mib is not None and memory_mib != before.live_memory_mib:
        if memory_mib > before.live_max_memory_mib:
            deferred.append(("memory", f"it runs with room for "
                                       f"{before.live_max_memory_mib} MiB"))
        elif why := _live(lambda: dom.setMemoryFlags(memory_mib * 1024, LIVE)):
            deferred.append(("memory", why))
    return Resized(tuple(deferred), online, True)


def _live(change) -> str | None:
    """Run a live change; None when done, else why not (a host that stopped answering
    is no refusal of the guest's: that goes up)."""
    try:
        change()
        return None
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, HostUnavailable):
            raise err from None
        return f"the running VM refused: {err}"


def _online_in_guest(dom, vcpus: int, wait: float) -> bool | None:
    """Bring hot-plugged vCPUs online inside the guest through its agent (a Linux
    guest leaves a new CPU offline unless a udev rule onlines it). The guest needs a
    moment to see the new CPUs: asked again until it counts them, at most ``wait``
    seconds. False: not done (no agent answering); None: the host cannot ask."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_GUEST) >= vcpus:
                return True
            dom.setVcpusFlags(vcpus, libvirt.VIR_DOMAIN_VCPU_GUEST)
            return True
        except libvirt.libvirtError as exc:
            err = translate(exc)
            if isinstance(err, HostUnavailable):
                raise err from None
            if "unsupported flags" in str(err) or err.code == libvirt.VIR_ERR_NO_SUPPORT:
                return None
        if time.monotonic() >= deadline:
            return False
        time.sleep(1.0)

