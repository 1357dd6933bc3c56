"""The host pool: adding, listing with live figures, and removing hypervisor hosts."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from ..extensions import cache, db
from ..models import VM, Server, utcnow
from ..virt import HostUnavailable, VirtError, hosts
from . import Conflict, FieldError, leftovers
from .hostpool import pool, query_timeout

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCHEMES = {"qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix", "qemu+libssh2",
           "qemu+libssh", "test"}
CPU_SAMPLE_MAX_AGE = 120  # seconds; an older sample would average over too long


class ServerError(FieldError):
    """Refused: bad input or a clash; ``field`` names the form field."""


@dataclass
class ServerView:
    """A host with what is known of it right now, for pages and the CLI."""
    server: Server
    online: bool | None
    error: str | None
    load: hosts.HostLoad | None
    vm_count: int

    @property
    def offline_since(self) -> datetime | None:
        return self.server.offline_since

    def as_dict(self) -> dict:
        s, load = self.server, self.load
        return {
            "id": s.id, "name": s.name, "uri": s.uri, "hostname": s.hostname,
            "online": self.online, "offline_since": _iso(s.offline_since),
            "error": self.error, "accepts_vms": s.accepts_vms, "demo": s.is_demo,
            "cpus": s.cpus, "memory_mib": s.memory_mib, "hypervisor": s.hypervisor,
            "hypervisor_version": s.hypervisor_version, "libvirt_version": s.libvirt_version,
            "vms": self.vm_count,
            "cpu_percent": load.cpu_percent if load else None,
            "memory_used_mib": load.memory_used_mib if load else None,
            "domains": load.domains_total if load else None,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def check_uri(uri: str) -> str:
    uri = (uri or "").strip()
    if not uri or len(uri) > 255 or any(c.isspace() or ord(c) < 32 for c in uri):
        raise ServerError("Enter a libvirt URI such as qemu+tcp://10.0.0.5/system.", "uri")
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise ServerError("Use a qemu URI (qemu:///system, qemu+ssh://root@host/system, "
                          "qemu+tcp://host/system, qemu+tls://host/system) or test:///default.",
                          "uri")
    if parts.scheme.startswith("qemu") and parts.path not in ("/system", "/session"):
        raise ServerError("A qemu URI ends in /system (or /session).", "uri")
    return uri


def add_server(name: str, uri: str) -> Server:
    """Connect to a new host and record what libvirt reports of it. Nothing is saved
    when the connection fails; the error carries libvirt's reason."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ServerError("Use 1 to 64 letters, digits, '.', '_' or '-'.", "name")
    uri = check_uri(uri)
    if db.session.execute(db.select(Server.id).where(Server.name == name)).first():
        raise ServerError("A host with this name exists.", "name")
    if db.session.execute(db.select(Server.id).where(Server.uri == uri)).first():
        raise ServerError("This host is already in the pool.", "uri")
    try:
        info = pool().call(uri, hosts.host_info, timeout=query_timeout() * 3)
    except VirtError as exc:
        pool().forget(uri)
        raise ServerError(f"Could not connect to {uri}: {exc}", "uri") from None
    server = Server(name=name, uri=uri)
    _apply_info(server, info)
    db.session.add(server)
    db.session.commit()
    log.info("host %s added (%s)", name, uri)
    return server


def _apply_info(server: Server, info: hosts.HostInfo) -> None:
    server.hostname = info.hostname[:255]
    server.arch = info.arch[:32]
    server.cpus = info.cpus
    server.memory_mib = info.memory_mib
    server.hypervisor = info.hypervisor[:32]
    server.hypervisor_version = info.hypervisor_version
    server.libvirt_version = info.libvirt_version


def refresh_server(server: Server) -> Server:
    """Read the host's figures again (after an upgrade, say)."""
    try:
        info = pool().call(server.uri, hosts.host_info, timeout=query_timeout())
    except VirtError as exc:
        note_states({server.id: exc}, [server])
        raise ServerError(f"{server.name} did not answer: {exc}") from None
    _apply_info(server, info)
    server.offline_since, server.last_error = None, None
    db.session.commit()
    return server


def note_states(outcomes: dict[int, object], servers: list[Server]) -> None:
    """Record in the database when hosts go offline or come back (only on a change).
    ``outcomes`` maps a server id to a result (online) or a VirtError (offline)."""
    changed = False
    for server in servers:
        outcome = outcomes.get(server.id)
        if isinstance(outcome, HostUnavailable):
            if server.offline_since is None:
                server.offline_since, changed = utcnow(), True
            if server.last_error != str(outcome)[:500]:
                server.last_error, changed = str(outcome)[:500], True
        elif outcome is not None and not isinstance(outcome, VirtError):
            if server.offline_since is not None or server.last_error:
                server.offline_since, server.last_error, changed = None, None, True
    if changed:
        db.session.commit()
    leftovers.clean_where_answering(outcomes)


def _cpu_key(server: Server) -> str:
    return f"loucloud:cpu:{server.uri}"


def _vm_counts() -> dict[int, int]:
    return dict(db.session.execute(
        db.select(VM.server_id, db.func.count(VM.id)).group_by(VM.server_id)).all())


def list_servers() -> list[ServerView]:
    """Every host with its live state and load, hosts queried in parallel; a host that
    does not answer within the bound is shown offline and costs no more than that."""
    servers = db.session.execute(db.select(Server).order_by(Server.name)).scalars().all()
    return _views(servers)


def server_view(server: Server) -> ServerView:
    return _views([server])[0]


def _views(servers: list[Server]) -> list[ServerView]:
    now = utcnow().timestamp()
    calls = {}
    for server in servers:
        previous = cache.get(_cpu_key(server))
        if previous is not None and now - previous.at > CPU_SAMPLE_MAX_AGE:
            previous = None
        calls[server.uri] = (hosts.host_load, (previous,))
    results = pool().call_each(calls, timeout=query_timeout())
    counts = _vm_counts()
    views, outcomes = [], {}
    for server in servers:
        result = results.get(server.uri)
        outcomes[server.id] = result
        if isinstance(result, VirtError):
            online = not isinstance(result, HostUnavailable)
            views.append(ServerView(server, online, str(result), None,
                                    counts.get(server.id, 0)))
        else:
            if result.cpu_sample is not None:
                cache.set(_cpu_key(server), result.cpu_sample, timeout=CPU_SAMPLE_MAX_AGE)
            views.append(ServerView(server, True, None, result, counts.get(server.id, 0)))
    note_states(outcomes, servers)
    return views


def set_accepts_vms(server: Server, accepts: bool) -> Server:
    server.accepts_vms = accepts
    db.session.commit()
    return server


def remove_server(server: Server) -> None:
    """Remove a host from the pool. Refused while LouCloud VMs live on it; nothing on
    the host itself is changed."""
    count = db.session.execute(
        db.select(db.func.count(VM.id)).where(VM.server_id == server.id)).scalar()
    if count:
        raise Conflict(f"{server.name} still holds {count} LouCloud VM"
                       f"{'s' if count > 1 else ''}. Delete or move them first.")
    uri = server.uri
    db.session.delete(server)
    db.session.commit()
    pool().forget(uri)
    cache.delete(f"loucloud:cpu:{uri}")
    log.info("host %s removed", server.name)
