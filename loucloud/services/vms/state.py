"""VM state: what each VM is doing now, read from its host in bulk (one call per host
for a whole page, hosts in parallel, shared for a second by every page and process),
the VM list with its filters, and the reconciliation of states left stuck."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload

from ...extensions import cache, db
from ...models import INT64_MAX, VM, Host, User, utcnow
from ...virt import DomainNotFound, HostUnavailable, VirtError
from ...virt.driver import on_each
from .. import NotFound, leftovers, said, tasks
from .. import networks as network_service
from ..access import OWN, VIEW, vms_visible_to
from ..hypervisors import hypervisor, hypervisor_at
from ..names import normal
from .. import watching
from ..settings import get_settings
from . import stored
from .views import TRANSITIONAL, VMDetail, VMPage, VMView

log = logging.getLogger(__name__)

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


def forget_states(host: Host) -> None:
    """After an action on a host, its next page reads libvirt again."""
    cache.delete(_states_key(host.uri))


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
        fresh = on_each([hypervisor_at(uri) for uri in missing], lambda h: h.states())
        for uri, value in fresh.items():
            out[uri] = value
            if ttl and not isinstance(value, VirtError):
                cache.set(_states_key(uri), value, timeout=ttl)
    return out


def views(vms: list[VM], live: dict | None = None) -> list[VMView]:
    """Live state and addresses of VMs: from the store while the watcher beats (no host
    asked), else one bulk states call per host involved and one leases call per network
    of theirs, hosts in parallel (or the states given). Also clears stuck transitional
    states and cleans up what hosts that answer still hold."""
    if live is None and watching.fresh():
        live = stored.live_map(vms)
        _reconcile_stuck(vms, live)
        leftovers.clean_where_answering({vm.host_id: live.get(vm.host.uri) for vm in vms})
        return stored.views(vms)
    uris = {vm.host.uri for vm in vms}
    if live is None:
        live = live_states(uris) if uris else {}
    _reconcile_stuck(vms, live)
    leftovers.clean_where_answering({vm.host_id: live.get(vm.host.uri) for vm in vms})
    by_mac = network_service.leases_by_mac(vms) if vms else {}
    out = []
    for vm in vms:
        state, online = _state(vm.status, vm.domain_name, live.get(vm.host.uri))
        out.append(VMView(vm, state, online, network_service.addresses(vm, by_mac)))
    return out


def view_of(vm: VM) -> VMView:
    """One VM's live state (its host's bulk states, shared as for a list)."""
    return views([vm])[0]


def views_of_ids(viewer: User, ids: list[int]) -> list[VMView]:
    """Live states of the VMs with these ids that ``viewer`` may see (others are left
    out, as if they did not exist): his own, and for a group's manager the members'
    (the group page follows them)."""
    ids = [i for i in ids if 0 < i <= INT64_MAX]
    if not ids:
        return []
    stmt = vms_visible_to(viewer, db.select(VM).where(VM.id.in_(ids)), VIEW)
    return views(db.session.execute(stmt).scalars().all())


def _reconcile_stuck(vms: list[VM], live: dict) -> None:
    """A VM left in a transitional status longer than the bound (its web process died
    mid-action), and held by no task (tasks.holding), goes back to what its host says:
    ready when its domain exists, error when a create was interrupted before the domain
    was made."""
    bound = utcnow() - timedelta(seconds=get_settings().stuck_after_seconds)
    late = [vm for vm in vms if vm.status in TRANSITIONAL and vm.status_since < bound]
    held = set(db.session.execute(db.select(VM.id).where(
        VM.id.in_([vm.id for vm in late]), tasks.holding("vm", VM.id))).scalars()) \
        if late else set()
    changed = False
    for vm in late:
        if vm.id in held:
            continue  # its task ends it (or its on_stop, when the worker dies)
        states = live.get(vm.host.uri)
        if states is None or isinstance(states, VirtError):
            continue  # the host can't tell now; a later page will
        if vm.domain_name in states or vm.status != VM.CREATING:
            vm.status, vm.last_error = VM.READY, None
        else:
            vm.status = VM.ERROR
            vm.last_error = said.store(_l("Its creation was interrupted before it finished: "
                                          "delete it."), 500)
        vm.status_since, changed = utcnow(), True
        log.warning("VM %s was stuck; now %s", vm.name, vm.status)
    if changed:
        db.session.commit()


def list_vms(viewer: User, *, q: str = "", owner_id: int | None = None,
             host_id: int | None = None, state: str = "", page: int = 1,
             per_page: int = 50) -> VMPage:
    """The viewer's VMs (every VM for the administrator), filtered and paginated on the
    host. Without a state filter only the page's rows are loaded. A group's manager
    finds the members' VMs on the group's page, not here."""
    stmt = vms_visible_to(viewer, db.select(VM).options(
        joinedload(VM.owner), joinedload(VM.host), joinedload(VM.template))
        .order_by(VM.name, VM.id), OWN)
    if viewer.is_admin and owner_id:
        stmt = stmt.where(VM.owner_id == owner_id)
    if host_id and viewer.is_admin:
        stmt = stmt.where(VM.host_id == host_id)
    if q:
        stmt = stmt.where(VM.name.ilike(f"%{normal(q)}%"))  # ＶＭ１ finds VM1
    page = max(1, min(page, INT64_MAX // per_page))  # an offset a query can bind
    if state and watching.fresh():  # the store knows every state: filter in the database
        stmt, state = stored.filter_by_state(stmt, state), ""
    if not state:
        total = db.session.execute(stmt.with_only_columns(db.func.count(VM.id))
                                   .order_by(None)).scalar()
        page = min(page, max(1, -(-total // per_page)))  # beyond the last: the last
        rows = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)
                                  ).unique().scalars().all()
        return VMPage(views(rows), total, page, max(1, -(-total // per_page)))
    return _list_by_state(stmt, state, page, per_page)


def _list_by_state(stmt, state: str, page: int, per_page: int) -> VMPage:
    """A state filter needs the live state of every VM that passes the other filters:
    read only the few columns it takes for all of them, and whole rows for the page."""
    ids = stmt.with_only_columns(VM.id).order_by(None).scalar_subquery()
    light_rows = (db.select(VM.id, VM.status, VM.status_since, VM.domain_name, Host.uri)
                  .join(Host, VM.host_id == Host.id).where(VM.id.in_(ids))
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


def vm_detail(vm: VM) -> VMDetail:
    """Everything the VM page shows: from the store while the watcher beats (what only
    the host can tell, its CPU time or VNC port, the page fetches afterwards from
    ``live_status``), else read live from its host."""
    if watching.fresh():
        return VMDetail(stored.views([vm])[0], None, None)
    try:
        status = hypervisor(vm.host).status(vm.uuid)
    except DomainNotFound:
        return VMDetail(VMView(vm, "missing", True), None,
                        _("The domain is missing on %(host)s.", host=vm.host.name))
    except HostUnavailable as exc:
        return VMDetail(VMView(vm, "host offline", False), None,
                        _("%(host)s does not answer: %(error)s", host=vm.host.name,
                          error=exc))
    except VirtError as exc:
        return VMDetail(VMView(vm, "unknown", True), None, str(exc))
    state = f"{vm.status}…" if vm.status in TRANSITIONAL else status.state
    addresses = network_service.addresses(vm, network_service.leases_by_mac([vm]))
    return VMDetail(VMView(vm, state, True, addresses), status, None)


def find_vm(owner_name: str, name: str) -> VM:
    """The VM called ``name`` of the user ``owner_name`` (the command line's way to
    name a VM). Raises NotFound."""
    vm = db.session.execute(db.select(VM).join(User, VM.owner_id == User.id).where(
        User.username == owner_name, VM.name == normal(name))).scalar()
    if vm is None:
        raise NotFound(_("%(user)s has no VM named %(name)s.", user=owner_name, name=name))
    return vm


def live_status(vm: VM) -> dict:
    """What only the VM's host can tell now (CPU time, memory, VNC, NIC and disk as it
    runs): the VM page asks for it after it is shown, so the page never waits."""
    try:
        status = hypervisor(vm.host).status(vm.uuid)
    except DomainNotFound:
        return {"error": _("The domain is missing on %(host)s.", host=vm.host.name)}
    except HostUnavailable as exc:
        return {"error": _("%(host)s does not answer: %(error)s", host=vm.host.name,
                           error=exc)}
    except VirtError as exc:
        return {"error": str(exc)}
    return {"state": status.state, "cpu_time_s": round(status.cpu_time_ns / 1e9, 1)
            if status.cpu_time_ns is not None else None,
            "vnc": f"{status.vnc_listen}:{status.vnc_port}" if status.vnc_port else None,
            "disk": status.disk_path, "domain_type": status.domain_type,
            "cpu_mode": status.cpu_mode, "firmware": status.firmware}
