"""The host pool: adding, listing with live figures, and removing hypervisor hosts."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from ..extensions import cache, db
from ..models import INT64_MAX, VM, Server, utcnow
from ..virt import HostUnavailable, VirtError
from ..virt.driver import HostInfo, HostLoad, on_each
from . import Conflict, FieldError, NotFound, leftovers, transaction
from .hypervisors import hypervisor, hypervisor_at

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCHEMES = {"qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix", "qemu+libssh2",
           "qemu+libssh", "test"}
CPU_SAMPLE_MAX_AGE = 120  # seconds; an older sample would average over too long


@dataclass
class ServerView:
    """A host with what is known of it right now, for pages and the CLI."""
    server: Server
    online: bool | None
    error: str | None
    load: HostLoad | None
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
        raise FieldError("Enter a libvirt URI such as qemu+tcp://10.0.0.5/system.", "uri")
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise FieldError("Use a qemu URI (qemu:///system, qemu+ssh://root@host/system, "
                          "qemu+tcp://host/system, qemu+tls://host/system) or test:///default.",
                          "uri")
    if parts.scheme.startswith("qemu") and parts.path not in ("/system", "/session"):
        raise FieldError("A qemu URI ends in /system (or /session).", "uri")
    return uri


@transaction
def add_server(name: str, uri: str) -> Server:
    """Connect to a new host and record what libvirt reports of it. Nothing is saved
    when the connection fails; the error carries libvirt's reason."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldError("Use 1 to 64 letters, digits, '.', '_' or '-'.", "name")
    uri = check_uri(uri)
    if db.session.execute(db.select(Server.id).where(Server.name == name)).first():
        raise FieldError("A host with this name exists.", "name")
    if db.session.execute(db.select(Server.id).where(Server.uri == uri)).first():
        raise FieldError("This host is already in the pool.", "uri")
    host = hypervisor_at(uri)
    try:
        info = host.info(first_contact=True)
    except VirtError as exc:
        host.forget()
        raise FieldError(f"Could not connect to {uri}: {exc}", "uri") from None
    server = Server(name=name, uri=uri)
    _apply_info(server, info)
    db.session.add(server)
    db.session.commit()
    log.info("host %s added (%s)", name, uri)
    return server


def _apply_info(server: Server, info: HostInfo) -> None:
    server.hostname = info.hostname[:255]
    server.arch = info.arch[:32]
    server.cpus = info.cpus
    server.memory_mib = info.memory_mib
    server.hypervisor = info.hypervisor[:32]
    server.hypervisor_version = info.hypervisor_version
    server.libvirt_version = info.libvirt_version


@transaction
def refresh_server(server: Server) -> Server:
    """Read the host's figures again (after an upgrade, say)."""
    try:
        info = hypervisor(server).info()
    except VirtError as exc:
        note_states({server.id: exc}, [server])
        raise FieldError(f"{server.name} did not answer: {exc}") from None
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
    return _views(all_servers())


def server_view(server: Server) -> ServerView:
    return _views([server])[0]


def _views(servers: list[Server]) -> list[ServerView]:
    now = utcnow().timestamp()
    previous = {}
    for server in servers:
        sample = cache.get(_cpu_key(server))
        previous[server.uri] = sample if sample is not None and \
            now - sample.at <= CPU_SAMPLE_MAX_AGE else None
    results = on_each([hypervisor(s) for s in servers],
                      lambda h: h.load(previous[h.uri]))
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


@transaction
def remove_server(server: Server) -> None:
    """Remove a host from the pool. Refused while LouCloud VMs live on it; nothing on
    the host itself is changed."""
    count = db.session.execute(
        db.select(db.func.count(VM.id)).where(VM.server_id == server.id)).scalar()
    if count:
        raise Conflict(f"{server.name} still holds {count} LouCloud VM"
                       f"{'s' if count > 1 else ''}. Delete or move them first.")
    host = hypervisor(server)
    db.session.delete(server)
    db.session.commit()
    host.forget()
    cache.delete(_cpu_key(server))
    log.info("host %s removed", server.name)


def get_server(server_id: int) -> Server:
    """The host with this id. Raises NotFound."""
    server = db.session.get(Server, server_id) if 0 < server_id <= INT64_MAX else None
    if server is None:
        raise NotFound()
    return server


def server_by_name(name: str) -> Server:
    """The host called ``name``. Raises NotFound."""
    server = db.session.execute(db.select(Server).where(Server.name == name)).scalar()
    if server is None:
        raise NotFound(f"There is no host named {name}.")
    return server


def all_servers() -> list[Server]:
    """Every registered host by name (for choices in forms; no host is asked)."""
    return db.session.execute(db.select(Server).order_by(Server.name)).scalars().all()
