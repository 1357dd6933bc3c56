"""Migration verbs (issue 14): moving a domain to another host without shared storage.

Live: client-managed migration (``virDomainMigrate3`` with a connection to both hosts,
not peer-to-peer): LouCloud already holds a kept, bounded connection to every host, so
the hosts need no libvirt credentials for each other (peer-to-peer would need TLS or SSH
trust between every pair of libvirtds); only QEMU's migration and NBD streams go from
host to host, to the target's migration address. If the client goes away in the middle,
the migration is cancelled and the domain keeps running on the source.

Flags: LIVE | PERSIST_DEST | UNDEFINE_SOURCE | NON_SHARED_INC — the target gets the
overlay volumes created beforehand (the same names, on the base image it holds) and only
the overlays' data is copied (NBD), never the base image.

Offline: a volume streamed from the source's pool into the target's (libvirt's volume
download and upload streams), the domain defined there from its XML."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import libvirt

from . import xml
from .domains import _lookup, state_name
from .errors import (DomainNotFound, HostUnavailable, InvalidState, VirtError, reason,
                     translate)
from .storage import Volume, _lookup_pool
from .xml.disks import DiskDesc, parse_disks
from .xml.migration import retarget

log = logging.getLogger(__name__)

LIVE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
              | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_NON_SHARED_INC)
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class MigrationPlan:
    """What a migration needs to know of the domain on its source host."""
    state: str
    live_xml: str          # the running definition (secure, migratable); "" when off
    persistent_xml: str    # the persistent definition (secure, migratable)
    disks: tuple[DiskDesc, ...]


@dataclass(frozen=True)
class MigrationJob:
    """libvirt's job statistics of a migration under way, in bytes and seconds."""
    active: bool
    elapsed: float
    data_total: int
    data_processed: int
    data_remaining: int
    disk_total: int
    disk_processed: int
    memory_total: int
    memory_processed: int
    memory_remaining: int
    memory_bps: int
    disk_bps: int


def connection(conn: libvirt.virConnect) -> libvirt.virConnect:
    """The host's kept connection itself (handed to the other host's migration call)."""
    return conn


def plan(conn: libvirt.virConnect, uuid: str) -> MigrationPlan:
    dom = _lookup(conn, uuid)
    flags = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE
    state = state_name(dom.state()[0])
    live = dom.XMLDesc(flags) if dom.isActive() else ""
    persistent = dom.XMLDesc(flags | libvirt.VIR_DOMAIN_XML_INACTIVE)
    return MigrationPlan(state, live, persistent, parse_disks(live or persistent, cdroms=True))


def for_target(text: str, vnc_listen: str | None, paths: dict[str, str]) -> str:
    """The XML ``text`` with the target's VNC address and file paths."""
    return retarget(text, vnc_listen=vnc_listen, paths=paths)


def migrate_live(conn: libvirt.virConnect, dconn: libvirt.virConnect, uuid: str, uri: str,
                 listen: str, disks: list[str], dest_xml: str, persist_xml: str,
                 bandwidth_mib: int = 0) -> None:
    """Migrate the running domain to ``dconn``'s host; returns once it runs there (the
    source's copy is gone and undefined). QEMU on the target listens on ``listen`` for
    the migration stream and the NBD server; the source's QEMU connects to ``uri``
    (tcp://<address>). ``disks``: the target devices whose overlays are copied."""
    dom = _lookup(conn, uuid)
    params = {libvirt.VIR_MIGRATE_PARAM_URI: uri,
              libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: listen,
              libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
              libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml}
    if disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(disks)
    if bandwidth_mib:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(bandwidth_mib)
    try:
        dom.migrate3(dconn, params, LIVE_FLAGS)
    except libvirt.libvirtError as exc:
        lost = [side for side, c in (("source", conn), ("target", dconn)) if not _alive(c)]
        if lost:   # a libvirtd killed or cut off in the middle: say which
            raise HostUnavailable(f"the connection to the {' and the '.join(lost)} host's "
                                  f"libvirtd was lost during the migration ({reason(exc)})",
                                  exc.get_error_code()) from None
        raise translate(exc) from None


def job(conn: libvirt.virConnect, uuid: str) -> MigrationJob | None:
    """The domain's job statistics (None: no job under way)."""
    dom = _lookup(conn, uuid)
    try:
        stats = dom.jobStats(0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    g = stats.get
    return MigrationJob(
        active=True, elapsed=g("time_elapsed", 0) / 1000.0,
        data_total=g("data_total", 0), data_processed=g("data_processed", 0),
        data_remaining=g("data_remaining", 0), disk_total=g("disk_total", 0),
        disk_processed=g("disk_processed", 0), memory_total=g("memory_total", 0),
        memory_processed=g("memory_processed", 0),
        memory_remaining=g("memory_remaining", 0), memory_bps=g("memory_bps", 0),
        disk_bps=g("disk_bps", 0))


def abort(conn: libvirt.virConnect, uuid: str) -> bool:
    """Cancel the domain's job (a migration under way); whether there was one."""
    dom = _lookup(conn, uuid)
    try:
        dom.abortJob()
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, InvalidState):
            return False
        raise err from None
    return True


def locate(conn: libvirt.virConnect, uuid: str) -> str | None:
    """The domain's state on this host, None when it is not defined here."""
    try:
        dom = conn.lookupByUUIDString(uuid)
        return state_name(dom.state()[0])
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, DomainNotFound):
            return None
        raise err from None


def define_xml(conn: libvirt.virConnect, text: str) -> None:
    """Define a domain from its XML as read on another host."""
    try:
        conn.defineXML(text)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def volume_size(conn: libvirt.virConnect, pool_name: str, name: str) -> int:
    """The volume's file size in bytes (what a copy streams)."""
    pool = _lookup_pool(conn, pool_name)
    try:
        vol = pool.storageVolLookupByName(name)
        return vol.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def copy_volume(conn: libvirt.virConnect, dconn: libvirt.virConnect, pool_name: str,
                name: str, progress=None) -> Volume:
    """Stream the volume ``name`` of the source's pool into a new volume of the same
    name in the target's (``dconn``) pool, 1 MiB at a time; the target's pool is
    refreshed after, so libvirt reads its format (qcow2) from its header. A copy that
    fails half-way is deleted on the target. ``progress(done, total)`` may raise to stop."""
    size = volume_size(conn, pool_name, name)
    source = _lookup_pool(conn, pool_name).storageVolLookupByName(name)
    target_pool = _lookup_pool(dconn, pool_name)
    try:
        vol = target_pool.createXML(xml.build_raw_volume(name, size), 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    down, up = conn.newStream(0), dconn.newStream(0)
    try:
        source.download(down, 0, size, 0)
        vol.upload(up, 0, size, 0)
        done = 0
        while True:
            chunk = down.recv(CHUNK)
            if chunk == -2:  # would block: not on a blocking stream
                continue
            if not chunk:
                break
            done += len(chunk)
            while chunk:
                sent = up.send(chunk)
                chunk = chunk[sent:]
            if progress:
                progress(done, size)
        down.finish()
        up.finish()
        target_pool.refresh(0)
        vol = target_pool.storageVolLookupByName(name)
    except BaseException as exc:
        for stream in (down, up):
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
        try:
            vol.delete(0)
        except libvirt.libvirtError:
            log.warning("volume %s not removed after a failed copy", name)
        if isinstance(exc, libvirt.libvirtError):
            alive = _alive(conn) and _alive(dconn)
            raise translate(exc, alive=alive) from None
        raise
    return Volume(vol.name(), vol.path())


def _alive(conn: libvirt.virConnect) -> bool:
    try:
        return conn.isAlive() == 1
    except libvirt.libvirtError:
        return False


__all__ = ["MigrationJob", "MigrationPlan", "VirtError"]
