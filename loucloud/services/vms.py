"""VMs: create (quota reserved atomically, placed on a host, disk as an overlay), act,
delete, and list with libvirt's real state.

Database rows and hypervisor objects are kept in step: a create that fails at any step
removes what it made on the host and its row, so the quota is as before; an action
holds the VM in a transitional status (one action at a time, across processes)."""
from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import socket
import uuid as uuidlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..extensions import cache, db
from ..models import (INT64_MAX, VM, ImageLocation, Leftover, Server, Template, User,
                      utcnow)
from ..virt import (DomainNotFound, HostUnavailable, InvalidState, VirtError, domains, hosts,
                    storage)
from ..virt.xml import DomainSpec
from . import Conflict, FieldError, ServiceError, Unavailable, leftovers
from .console import revoke_for_vm
from .hostpool import action_timeout, pool, query_timeout
from .settings import get_settings
from .users import quota_usage

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
GIB = 1024 ** 3

# Action -> (transitional status, message on success).
ACTIONS = {
    "start": ("starting", "{name} is starting."),
    "shutdown": ("stopping", "Shutdown requested: the guest system powers {name} off. "
                             "A machine without an OS ignores it; use Force off."),
    "poweroff": ("stopping", "{name} was powered off."),
    "reboot": ("rebooting", "Reboot requested from the guest system of {name}. A machine "
                            "without an OS ignores it; use Reset."),
    "reset": ("rebooting", "{name} was reset."),
    "pause": ("pausing", "{name} is paused."),
    "resume": ("resuming", "{name} is running again."),
}
TRANSITIONAL = {"creating", "starting", "stopping", "rebooting", "pausing", "resuming",
                "deleting"}
LABELS = {"start": "Start", "shutdown": "Shut down", "poweroff": "Force off",
          "reboot": "Reboot", "reset": "Reset", "pause": "Pause", "resume": "Resume"}


class VMError(FieldError):
    """Refused: bad input or a clash; ``field`` names the form field."""


class QuotaExceeded(VMError):
    status = 409


# -- names and placement ---------------------------------------------------------------
def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise VMError("Use 1 to 64 letters, digits, '-', '_' or '.'.", "name")
    return name


def vnc_listen_for(server: Server) -> str:
    """The address the VM's VNC server listens on: the Settings policy, else loopback
    for a local host and the host's own address for a remote one. Never 0.0.0.0."""
    policy = get_settings().vnc_listen
    if policy != "auto":
        return policy
    host = urlsplit(server.uri).hostname
    if not host or server.is_demo:
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][4][0]
    except OSError:
        raise VMError(f"Cannot resolve {host} to choose where VNC listens; set the VNC "
                      "listen address in Settings.") from None


def candidate_servers(template: Template) -> list[Server]:
    """Hosts that accept new VMs and hold the template's image."""
    return db.session.execute(
        db.select(Server).join(ImageLocation, ImageLocation.server_id == Server.id)
        .where(ImageLocation.image_id == template.image_id, ImageLocation.present.is_(True),
               Server.accepts_vms.is_(True)).order_by(Server.name)).scalars().all()


def choose_server(template: Template) -> Server:
    """The online candidate host with the most free memory (hosts asked in parallel)."""
    servers = candidate_servers(template)
    if not servers:
        raise Unavailable(f"No host accepting new VMs holds the image {template.image.name}.")
    loads = pool().call_each({s.uri: (lambda conn: hosts.host_load(conn, cpu=False), ())
                              for s in servers}, timeout=query_timeout())
    ranked = sorted(((load.memory_free_mib, -i, s) for i, s in enumerate(servers)
                     if not isinstance(load := loads[s.uri], VirtError)),
                    key=lambda t: t[:2], reverse=True)
    if not ranked:
        raise Unavailable("Every host that could take this VM is offline: "
                          + "; ".join(f"{s.name}: {loads[s.uri]}" for s in servers))
    return ranked[0][2]


# -- create ----------------------------------------------------------------------------
def _reserve(owner: User, name: str, template: Template, server: Server) -> VM:
    """Insert the VM's row if the owner's quota allows it, atomically: the UPDATE on the
    owner's row comes first in a fresh transaction and locks that row (InnoDB) or the
    database (SQLite) until the commit, so concurrent creates queue here."""
    owner_id, template_id = owner.id, template.id
    db.session.commit()  # start a fresh transaction: no read may come before the lock
    db.session.execute(db.update(User).where(User.id == owner_id)
                       .values(quota_lock=User.quota_lock + 1))
    owner = db.session.get(User, owner_id)
    template = db.session.get(Template, template_id)
    usage = quota_usage(owner)
    over = []
    for label, used, total, add in (
            ("VMs", usage.used.vms, usage.total.vms, 1),
            ("vCPUs", usage.used.vcpus, usage.total.vcpus, template.vcpus),
            ("memory (MiB)", usage.used.memory_mib, usage.total.memory_mib,
             template.memory_mib),
            ("disk (GiB)", usage.used.disk_gib, usage.total.disk_gib, template.disk_gib)):
        if used + add > total:
            over.append(f"{label} {used} in use + {add} would exceed {total}")
    if over:
        db.session.rollback()
        raise QuotaExceeded("Over quota: " + "; ".join(over) + ".")
    if db.session.execute(db.select(VM.id).where(VM.owner_id == owner_id,
                                                 VM.name == name)).first():
        db.session.rollback()
        raise VMError(f"You already have a VM named {name}.", "name")
    uuid = str(uuidlib.uuid4())
    vm = VM(name=name, owner_id=owner_id, server_id=server.id, template_id=template_id,
            image_id=template.image_id, domain_name=f"lc-{uuid}", uuid=uuid,
            vcpus=template.vcpus, memory_mib=template.memory_mib, disk_gib=template.disk_gib,
            volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow())
    db.session.add(vm)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise VMError(f"You already have a VM named {name}.", "name") from None
    return vm


def _random_mac() -> str:
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def create_vm(owner: User, name: str, template: Template, server: Server | None = None,
              start: bool = True, progress=None) -> VM:
    """Create a VM for ``owner`` from ``template``, on ``server`` or on the host chosen
    by placement, and start it unless ``start`` is False.

    Raises VMError (bad name), QuotaExceeded, Unavailable (no host) or ServiceError with
    libvirt's reason; in every failure nothing is left: no domain, no volume, no row
    (what a dead host keeps is listed and removed when it answers again).

    ``progress(step)`` is called as each step is reached: "prepared", "volume",
    "defined", "starting" (for progress reports, and for tests that break a step)."""
    step = progress or (lambda _step: None)
    name = check_name(name)
    image = template.image
    if server is None:
        server = choose_server(template)
    elif server.id not in {loc.server_id for loc in image.locations if loc.present}:
        raise VMError(f"The image {image.name} is not on {server.name}.", "server_id")
    settings = get_settings()
    listen = vnc_listen_for(server)
    vm = _reserve(owner, name, template, server)
    uri, timeout = server.uri, action_timeout()
    pool_name, network = settings.storage_pool, settings.network
    undo: list[tuple[str, tuple]] = []
    try:
        prep = pool().call(uri, hosts.prepare_for_vm, pool_name,
                           f"/var/lib/libvirt/{pool_name}", network, timeout=timeout)
        step("prepared")
        undo.append((Leftover.VOLUME, (storage.delete_volume, pool_name, vm.volume_name)))
        volume = pool().call(uri, storage.create_overlay, pool_name, vm.volume_name,
                             vm.disk_gib * GIB, image.path, image.format, timeout=timeout)
        step("volume")
        mac = _random_mac() if prep.network_active else None
        spec = DomainSpec(name=vm.domain_name, uuid=vm.uuid, title=vm.name, vcpus=vm.vcpus,
                          memory_mib=vm.memory_mib, disk_path=volume.path,
                          domain_type=prep.domain_type, arch=prep.arch,
                          os_type=image.os_type, network=network if mac else None, mac=mac,
                          vnc_listen=listen, vm_id=vm.id, owner=owner.username)
        undo.append((Leftover.DOMAIN, (domains.remove, vm.uuid)))
        pool().call(uri, domains.define, spec, timeout=timeout)
        step("defined")
        if start:
            step("starting")
            _start_new(uri, spec, timeout)
    except VirtError as exc:
        _undo(server, undo)
        db.session.rollback()
        db.session.delete(db.session.get(VM, vm.id))
        db.session.commit()
        log.warning("create of %s for %s on %s failed: %s", name, owner.username,
                    server.name, exc)
        if isinstance(exc, HostUnavailable):
            raise Unavailable(f"{server.name} stopped answering while {name} was being "
                              f"created: {exc}. Nothing was kept.") from None
        raise ServiceError(f"{server.name} could not create {name}: {exc}") from None
    forget_states(server)
    vm = db.session.get(VM, vm.id)
    vm.volume_path, vm.mac = volume.path, mac
    vm.status, vm.status_since = VM.READY, utcnow()
    if start:
        vm.started_at = utcnow()
    db.session.commit()
    log.info("VM %s (%s) created for %s on %s", vm.name, vm.domain_name, owner.username,
             server.name)
    return vm


def _start_new(uri: str, spec: DomainSpec, timeout: float) -> None:
    try:
        pool().call(uri, domains.act, spec.uuid, "start", timeout=timeout)
    except VirtError as exc:
        if spec.domain_type != "kvm" or not domains.kvm_unusable(exc):
            raise
        # The host offered KVM but it does not work there: software emulation instead.
        log.warning("KVM unusable on %s (%s); starting %s with TCG", uri, exc, spec.name)
        spec = replace(spec, domain_type="qemu")
        pool().call(uri, domains.define, spec, timeout=timeout)
        pool().call(uri, domains.act, spec.uuid, "start", timeout=timeout)


def _undo(server: Server, steps: list[tuple[str, tuple]]) -> None:
    """Undo creation steps on the host, newest first. A step is undone even when the
    host never confirmed it (the call may have reached it before it died); what can't be
    removed now (the host is gone) is remembered and removed when it answers."""
    for kind, (fn, *args) in reversed(steps):
        try:
            pool().call(server.uri, fn, *args, timeout=action_timeout())
        except VirtError as exc:
            leftovers.remember(server, kind, args[-1], args[0] if len(args) > 1 else "",
                               str(exc))


# -- actions ---------------------------------------------------------------------------
def _begin(vm: VM, status: str) -> tuple[str, datetime]:
    """Mark the VM busy with ``status``, unless another action holds it. A compare-and-
    set UPDATE, so two concurrent actions (any processes) get one success. Returns the
    (status, status_since) it replaced, for _put_back."""
    vm_id = vm.id
    now = utcnow()
    stale = now - timedelta(seconds=get_settings().stuck_after_seconds)
    previous = db.session.execute(db.select(VM.status, VM.status_since)
                                  .where(VM.id == vm_id)).one()
    result = db.session.execute(
        db.update(VM).where(VM.id == vm_id, VM.status == previous.status, db.or_(
            VM.status.in_([VM.READY, VM.ERROR]),
            db.and_(VM.status.in_(TRANSITIONAL), VM.status_since < stale)))
        .values(status=status, status_since=now).execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        db.session.refresh(vm)
        raise Conflict(f"{vm.name} is busy ({vm.status}); try again in a moment.")
    db.session.refresh(vm)
    return previous.status, previous.status_since


def _end(vm: VM, status: str = VM.READY, error: str | None = None) -> None:
    vm.status, vm.status_since, vm.last_error = status, utcnow(), error
    db.session.commit()


def _put_back(vm: VM, previous: tuple[str, datetime]) -> None:
    """Undo _begin when the action did not happen: the VM's status as it was (its
    last_error, which _begin leaves alone, stays: 'Delete did not finish' and such)."""
    vm.status, vm.status_since = previous
    db.session.commit()


def act_on_vm(vm: VM, action: str) -> str:
    """Start, shut down, force off, reboot, reset, pause or resume a VM. Returns the
    message for the user. Raises Conflict when the action does not fit the VM's state
    or another action is under way, Unavailable when its host does not answer."""
    if action not in ACTIONS:
        raise VMError(f"Unknown action {action!r}.")
    status, message = ACTIONS[action]
    previous = _begin(vm, status)
    try:
        pool().call(vm.server.uri, domains.act, vm.uuid, action, timeout=action_timeout())
    except InvalidState as exc:
        _put_back(vm, previous)
        raise Conflict(f"Cannot {LABELS[action].lower()} {vm.name}: {exc}.") from None
    except HostUnavailable as exc:
        _put_back(vm, previous)
        raise Unavailable(f"{vm.server.name} does not answer: {exc}. {vm.name} was not "
                          "changed.") from None
    except VirtError as exc:
        _put_back(vm, previous)
        if isinstance(exc, DomainNotFound):
            raise Conflict(f"{vm.name} is missing on {vm.server.name}.") from None
        raise ServiceError(f"{LABELS[action]} failed: {exc}") from None
    forget_states(vm.server)
    if action == "start":
        vm.started_at = utcnow()
    elif action in ("poweroff", "shutdown"):
        if action == "poweroff":
            vm.started_at = None
        revoke_for_vm(vm.id)  # a stopped VM's console links end with it
    _end(vm)
    return message.format(name=vm.name)


def delete_vm(vm: VM) -> str:
    """Stop and undefine the domain and delete its overlay volume (never the image),
    then the row. If the host can't finish, the VM stays listed with the reason."""
    _begin(vm, "deleting")
    server, pool_name = vm.server, get_settings().storage_pool
    try:
        pool().call(server.uri, domains.remove, vm.uuid, timeout=action_timeout())
        if vm.volume_name:
            pool().call(server.uri, storage.delete_volume, pool_name, vm.volume_name,
                        timeout=action_timeout())
    except VirtError as exc:
        _end(vm, VM.ERROR, f"Delete did not finish: {exc}"[:500])
        if isinstance(exc, HostUnavailable):
            raise Unavailable(f"{server.name} does not answer: {exc}. {vm.name} is kept; "
                              "delete it again when the host is back.") from None
        raise ServiceError(f"Could not delete {vm.name}: {exc}") from None
    name = vm.name
    forget_states(server)
    revoke_for_vm(vm.id)
    db.session.delete(vm)
    db.session.commit()
    log.info("VM %s deleted from %s", name, server.name)
    return f"{name} was deleted with its disk."


# -- reading ---------------------------------------------------------------------------
@dataclass
class VMView:
    vm: VM
    state: str               # libvirt's state, or missing / host offline / a transition
    host_online: bool

    @property
    def busy(self) -> bool:
        return self.vm.status in TRANSITIONAL

    @property
    def actions(self) -> list[str]:
        """The actions that fit the state (the page shows only these)."""
        if self.busy or not self.host_online or self.state in ("missing", "unknown"):
            return []
        actions = [a for a, states in domains.ALLOWED.items() if self.state in states]
        if self.state in ("running", "paused") and not self.vm.server.is_demo:
            actions.append("console")
        return actions

    def as_dict(self) -> dict:
        vm = self.vm
        return {"id": vm.id, "name": vm.name, "owner": vm.owner.username,
                "host": vm.server.name, "state": self.state, "status": vm.status,
                "vcpus": vm.vcpus, "memory_mib": vm.memory_mib, "disk_gib": vm.disk_gib,
                "template": vm.template.name, "actions": self.actions,
                "error": vm.last_error}


def _state_of(vm: VM, live: dict[str, str] | VirtError | None) -> tuple[str, bool]:
    return _state(vm.status, vm.domain_name, live)


def _state(status: str, domain_name: str,
           live: dict[str, str] | VirtError | None) -> tuple[str, bool]:
    if status in TRANSITIONAL:
        return f"{status}…", not isinstance(live, HostUnavailable)
    if isinstance(live, HostUnavailable) or live is None:
        return "host offline", False
    if isinstance(live, VirtError):
        return "unknown", True
    return live.get(domain_name, "missing"), True


def _states_key(uri: str) -> str:
    return f"loucloud:states:{uri}"


def forget_states(server: Server) -> None:
    """After an action on a host, its next page reads libvirt again."""
    cache.delete(_states_key(server.uri))


def live_states(uris: set[str]) -> dict[str, dict[str, str] | VirtError]:
    """Every domain's state on these hosts: one bulk call per host, in parallel, shared
    for LIVE_STATE_CACHE_SECONDS by every page and process."""
    ttl = current_app.config["LIVE_STATE_CACHE_SECONDS"]
    out, missing = {}, set()
    for uri in uris:
        cached = cache.get(_states_key(uri)) if ttl else None
        if cached is None:
            missing.add(uri)
        else:
            out[uri] = cached
    if missing:
        fresh = pool().call_many(missing, domains.states, timeout=query_timeout())
        for uri, value in fresh.items():
            out[uri] = value
            if ttl and not isinstance(value, VirtError):
                cache.set(_states_key(uri), value, timeout=ttl)
    return out


def views(vms: list[VM], live: dict | None = None) -> list[VMView]:
    """Live state of VMs: one bulk call per host involved, hosts in parallel (or the
    states given). Also clears stuck transitional states and cleans up what hosts that
    answer still hold."""
    uris = {vm.server.uri for vm in vms}
    if live is None:
        live = live_states(uris) if uris else {}
    _reconcile_stuck(vms, live)
    leftovers.clean_where_answering({vm.server_id: live.get(vm.server.uri) for vm in vms})
    out = []
    for vm in vms:
        state, online = _state_of(vm, live.get(vm.server.uri))
        out.append(VMView(vm, state, online))
    return out


def _reconcile_stuck(vms: list[VM], live: dict) -> None:
    """A VM left in a transitional status longer than the bound (its web process died
    mid-action) goes back to what its host says: ready when its domain exists, error
    when a create was interrupted before the domain was made."""
    bound = utcnow() - timedelta(seconds=get_settings().stuck_after_seconds)
    changed = False
    for vm in vms:
        if vm.status not in TRANSITIONAL or vm.status_since >= bound:
            continue
        states = live.get(vm.server.uri)
        if states is None or isinstance(states, VirtError):
            continue  # the host can't tell now; a later page will
        if vm.domain_name in states or vm.status != VM.CREATING:
            vm.status, vm.last_error = VM.READY, None
        else:
            vm.status = VM.ERROR
            vm.last_error = "Its creation was interrupted before it finished: delete it."
        vm.status_since, changed = utcnow(), True
        log.warning("VM %s was stuck; now %s", vm.name, vm.status)
    if changed:
        db.session.commit()


@dataclass
class VMPage:
    items: list[VMView]
    total: int
    page: int
    pages: int


def list_vms(viewer: User, *, q: str = "", owner_id: int | None = None,
             server_id: int | None = None, state: str = "", page: int = 1,
             per_page: int = 50) -> VMPage:
    """The viewer's VMs (every VM for the administrator), filtered and paginated on the
    server. Without a state filter only the page's rows are loaded."""
    stmt = db.select(VM).options(joinedload(VM.owner), joinedload(VM.server),
                                 joinedload(VM.template)).order_by(VM.name, VM.id)
    if not viewer.is_admin:
        stmt = stmt.where(VM.owner_id == viewer.id)
    elif owner_id:
        stmt = stmt.where(VM.owner_id == owner_id)
    if server_id and viewer.is_admin:
        stmt = stmt.where(VM.server_id == server_id)
    if q:
        stmt = stmt.where(VM.name.ilike(f"%{q.strip()}%"))
    page = max(1, min(page, INT64_MAX // per_page))  # an offset a query can bind
    if not state:
        total = db.session.execute(
            db.select(db.func.count()).select_from(stmt.order_by(None).subquery())).scalar()
        page = min(page, max(1, -(-total // per_page)))  # beyond the last: the last
        rows = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)
                                  ).unique().scalars().all()
        return VMPage(views(rows), total, page, max(1, -(-total // per_page)))
    return _list_by_state(stmt, state, page, per_page)


def _list_by_state(stmt, state: str, page: int, per_page: int) -> VMPage:
    """A state filter needs the live state of every VM that passes the other filters:
    read only the few columns it takes for all of them, and whole rows for the page."""
    ids = stmt.with_only_columns(VM.id).order_by(None).scalar_subquery()
    light_rows = (db.select(VM.id, VM.status, VM.status_since, VM.domain_name, Server.uri)
                  .join(Server, VM.server_id == Server.id).where(VM.id.in_(ids))
                  .order_by(VM.name, VM.id))
    light = db.session.execute(light_rows).all()
    live = live_states({row.uri for row in light}) if light else {}
    bound = utcnow() - timedelta(seconds=get_settings().stuck_after_seconds)
    stuck = [row.id for row in light
             if row.status in TRANSITIONAL and row.status_since < bound]
    if stuck:  # settle them first, so that they are filtered by what they are now
        _reconcile_stuck(db.session.execute(db.select(VM).where(VM.id.in_(stuck)))
                         .scalars().all(), live)
        light = db.session.execute(light_rows).all()
    matching = [row.id for row in light
                if _state(row.status, row.domain_name, live.get(row.uri))[0].rstrip("…")
                == state]
    total = len(matching)
    start = (page - 1) * per_page
    wanted = matching[start:start + per_page]
    rows = {vm.id: vm for vm in db.session.execute(
        stmt.where(VM.id.in_(wanted))).unique().scalars().all()} if wanted else {}
    return VMPage(views([rows[i] for i in wanted if i in rows], live), total, page,
                  max(1, -(-total // per_page)))


@dataclass
class VMDetail:
    view: VMView
    status: domains.DomainStatus | None
    error: str | None


def vm_detail(vm: VM) -> VMDetail:
    """Everything the VM page shows, read live from its host."""
    try:
        status = pool().call(vm.server.uri, domains.status, vm.uuid, timeout=query_timeout())
    except DomainNotFound:
        return VMDetail(VMView(vm, "missing", True), None,
                        f"The domain is missing on {vm.server.name}.")
    except HostUnavailable as exc:
        return VMDetail(VMView(vm, "host offline", False), None,
                        f"{vm.server.name} does not answer: {exc}")
    except VirtError as exc:
        return VMDetail(VMView(vm, "unknown", True), None, str(exc))
    state = f"{vm.status}…" if vm.status in TRANSITIONAL else status.state
    return VMDetail(VMView(vm, state, True), status, None)
