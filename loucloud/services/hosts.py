"""The host pool: adding, listing with live figures, and removing hypervisor hosts."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask_babel import gettext as _, ngettext

from ..extensions import cache, db
from ..models import INT64_MAX, VM, Host, HostSample, utcnow
from ..virt import HostUnavailable, VirtError
from ..virt.driver import HostInfo, HostLoad, on_each
from . import Conflict, FieldError, NotFound, leftovers, paginate, transaction
from .hypervisors import hypervisor, hypervisor_at
from .names import display_name, normal

log = logging.getLogger(__name__)

SCHEMES = {"qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix", "qemu+libssh2",
           "qemu+libssh", "test"}
CPU_SAMPLE_MAX_AGE = 120  # seconds; an older sample would average over too long


@dataclass
class HostView:
    """A host with what is known of it right now, for pages and the CLI."""
    host: Host
    online: bool | None
    error: str | None
    load: HostLoad | None
    vm_count: int

    @property
    def offline_since(self) -> datetime | None:
        return self.host.offline_since

    def as_dict(self) -> dict:
        s, load = self.host, self.load
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
        raise FieldError(_("Enter a libvirt URI such as qemu+tcp://10.0.0.5/system."), "uri")
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise FieldError(_("Use a qemu URI (qemu:///system, qemu+ssh://root@host/system, "
                           "qemu+tcp://host/system, qemu+tls://host/system) or "
                           "test:///default."), "uri")
    if parts.scheme.startswith("qemu") and parts.path not in ("/system", "/session"):
        raise FieldError(_("A qemu URI ends in /system (or /session)."), "uri")
    return uri


@transaction
def add_host(name: str, uri: str) -> Host:
    """Connect to a new host and record what libvirt reports of it. Nothing is saved
    when the connection fails; the error carries libvirt's reason."""
    name = display_name(name, what="host")
    uri = check_uri(uri)
    if db.session.execute(db.select(Host.id).where(Host.name == name)).first():
        raise FieldError(_("A host with this name exists."), "name")
    if db.session.execute(db.select(Host.id).where(Host.uri == uri)).first():
        raise FieldError(_("This host is already in the pool."), "uri")
    hv = hypervisor_at(uri)
    try:
        info = hv.info(first_contact=True)
    except VirtError as exc:
        hv.forget()
        raise FieldError(_("Could not connect to %(uri)s: %(error)s", uri=uri, error=exc),
                         "uri") from None
    host = Host(name=name, uri=uri)
    _apply_info(host, info)
    db.session.add(host)
    db.session.flush()
    from .maintenance import adopt_remnants  # a forgotten host's, back (issue 14)
    adopt_remnants(host)
    db.session.commit()
    log.info("host %s added (%s)", name, uri)
    return host


def _apply_info(host: Host, info: HostInfo) -> None:
    host.hostname = info.hostname[:255]
    host.arch = info.arch[:32]
    host.cpus = info.cpus
    host.memory_mib = info.memory_mib
    host.hypervisor = info.hypervisor[:32]
    host.hypervisor_version = info.hypervisor_version
    host.libvirt_version = info.libvirt_version


@transaction
def refresh_host(host: Host) -> Host:
    """Read the host's figures again (after an upgrade, say)."""
    try:
        info = hypervisor(host).info()
    except VirtError as exc:
        note_states({host.id: exc}, [host])
        raise FieldError(_("%(host)s did not answer: %(error)s", host=host.name,
                           error=exc)) from None
    _apply_info(host, info)
    host.offline_since, host.last_error = None, None
    db.session.commit()
    return host


def note_states(outcomes: dict[int, object], hosts: list[Host]) -> None:
    """Record in the database when hosts go offline or come back (only on a change).
    ``outcomes`` maps a host id to a result (online) or a VirtError (offline)."""
    changed = False
    for host in hosts:
        outcome = outcomes.get(host.id)
        if isinstance(outcome, HostUnavailable):
            if host.offline_since is None:
                host.offline_since, changed = utcnow(), True
            if host.last_error != str(outcome)[:500]:
                host.last_error, changed = str(outcome)[:500], True
        elif outcome is not None and not isinstance(outcome, VirtError):
            if host.offline_since is not None or host.last_error:
                host.offline_since, host.last_error, changed = None, None, True
    if changed:
        db.session.commit()
    leftovers.clean_where_answering(outcomes)


def _cpu_key(host: Host) -> str:
    return f"loucloud:cpu:{host.uri}"


def _vm_counts() -> dict[int, int]:
    return dict(db.session.execute(
        db.select(VM.host_id, db.func.count(VM.id)).group_by(VM.host_id)).all())


def list_hosts() -> list[HostView]:
    """Every host with its live state and load, hosts queried in parallel; a host that
    does not answer within the bound is shown offline and costs no more than that."""
    return _views(all_hosts())


def hosts_page(page: int = 1, per_page: int = 50):
    """A page of hosts by name (Flask-SQLAlchemy's Pagination) and their live views:
    only that page's hosts are asked, in parallel (the API's list)."""
    result = paginate(db.select(Host).order_by(Host.name), page, per_page)
    return result, _views(list(result.items))


def host_view(host: Host) -> HostView:
    return _views([host])[0]


def _views(hosts: list[Host]) -> list[HostView]:
    now = utcnow().timestamp()
    previous = {}
    for host in hosts:
        sample = cache.get(_cpu_key(host))
        previous[host.uri] = sample if sample is not None and \
            now - sample.at <= CPU_SAMPLE_MAX_AGE else None
    results = on_each([hypervisor(s) for s in hosts],
                      lambda h: h.load(previous[h.uri]))
    counts = _vm_counts()
    views, outcomes = [], {}
    for host in hosts:
        result = results.get(host.uri)
        outcomes[host.id] = result
        if isinstance(result, VirtError):
            online = not isinstance(result, HostUnavailable)
            views.append(HostView(host, online, str(result), None,
                                    counts.get(host.id, 0)))
        else:
            if result.cpu_sample is not None:
                cache.set(_cpu_key(host), result.cpu_sample, timeout=CPU_SAMPLE_MAX_AGE)
            views.append(HostView(host, True, None, result, counts.get(host.id, 0)))
    note_states(outcomes, hosts)
    return views


def set_accepts_vms(host: Host, accepts: bool) -> Host:
    host.accepts_vms = accepts
    db.session.commit()
    return host


@transaction
def remove_host(host: Host) -> None:
    """Remove a host from the pool. Refused while LouCloud VMs live on it; nothing on
    the host itself is changed."""
    count = db.session.execute(
        db.select(db.func.count(VM.id)).where(VM.host_id == host.id)).scalar()
    if count:
        raise Conflict(ngettext("%(host)s still holds %(num)d LouCloud VM. Delete or move "
                                "them first.",
                                "%(host)s still holds %(num)d LouCloud VMs. Delete or move "
                                "them first.", count, host=host.name))
    hv = hypervisor(host)
    db.session.delete(host)
    db.session.commit()
    hv.forget()
    cache.delete(_cpu_key(host))
    log.info("host %s removed", host.name)


def get_host(host_id: int) -> Host:
    """The host with this id. Raises NotFound."""
    host = db.session.get(Host, host_id) if 0 < host_id <= INT64_MAX else None
    if host is None:
        raise NotFound()
    return host


def host_by_name(name: str) -> Host:
    """The host called ``name``. Raises NotFound."""
    host = db.session.execute(db.select(Host).where(Host.name == normal(name))).scalar()
    if host is None:
        raise NotFound(_("There is no host named %(name)s.", name=name))
    return host


def all_hosts() -> list[Host]:
    """Every registered host by name (for choices in forms; no host is asked)."""
    return db.session.execute(db.select(Host).order_by(Host.name)).scalars().all()


def stored_host_views() -> list[HostView]:
    """Every host as the watcher (health) and the sampler (its last sample's load) left
    it in the database: no host is asked."""
    hosts = all_hosts()
    latest = db.select(HostSample.host_id, db.func.max(HostSample.at).label("at")) \
        .where(HostSample.online.is_(True)).group_by(HostSample.host_id).subquery()
    samples = {row.host_id: row for row in db.session.execute(
        db.select(HostSample).join(latest, db.and_(HostSample.host_id == latest.c.host_id,
                                                  HostSample.at == latest.c.at))).scalars()}
    counts = _vm_counts()
    views = []
    for host in hosts:
        online = host.offline_since is None
        sample = samples.get(host.id) if online else None
        load = HostLoad(host.cpus, sample.cpu_percent, sample.memory_total_mib or 0,
                        sample.memory_used_mib or 0, sample.vms or 0,
                        sample.domains_running or 0, None) if sample else None
        views.append(HostView(host, online, host.last_error, load, counts.get(host.id, 0)))
    return views
