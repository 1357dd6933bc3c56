"""Migration of a VM to another host (issue 14), the administrator's: which hosts can
take it (and why the others can't), and the service that starts the "vm.migrate" task.
The work itself (live with its overlays copied, offline through volume streams, and
where the VM ended up after a failure) is vms/moving.py.

The VM is held "migrating" (one action at a time, lifecycle._begin) from the request to
the end of the task; LouCloud's record (VM.host_id, its disks' paths) moves only once
libvirt says the domain runs (or, offline, is defined) on the target, and the watcher
leaves a migrating VM's live state alone meanwhile."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...models import VM, Host, Task, User
from ...virt import DomainNotFound, HostUnavailable, VirtError
from ...virt.driver import on_each
from .. import (Conflict, NotAllowed, NotFound, ServiceError, Unavailable, said, tasklist,
               tasks, transaction)
from ..hypervisors import hypervisor
from ..names import normal
from . import moving  # noqa: F401 (registers the "vm.migrate" task kind)
from .lifecycle import _begin, _put_back
from .targets import check_network
from .views import state_label

log = logging.getLogger(__name__)

LIVE_STATES = ("running", "paused")


def migration_address(host: Host) -> str:
    """Where the other hosts reach ``host`` for a migration: its migration address, else
    the host part of its URI."""
    return host.migration_address or urlsplit(host.uri).hostname or ""


@dataclass
class TargetChoice:
    host: Host
    why: object | None       # None: it can take the VM; else why not (lazy: said.py)
    note: str = ""           # e.g. "the image is copied there first"

    @property
    def reason(self) -> str | None:
        """Why not, in the reader's language (None: it can take the VM)."""
        return None if self.why is None else str(self.why)


def _image_reason(vm: VM, source: Host, target: Host) -> tuple[str | None, str]:
    image = vm.image
    if image.is_iso and vm.cdrom_image_id is None:
        return None, ""   # installed from an ISO since ejected: no base image
    if image.present_on(target.id):
        if image.path_on(target.id) != image.path_on(source.id):
            return _l("its copy of the image %(image)s is at another path (%(path)s)",
                      image=image.name, path=image.path_on(target.id)), ""
        return None, ""
    from ..imagecopy import store_path
    if image.uploaded and os.path.exists(store_path(image.volume)):
        return None, _l("the image %(image)s is copied there first", image=image.name)
    if not image.uploaded:
        return _l("it lacks the image %(image)s (added by path: copy the file there)",
                  image=image.name), ""
    return _l("it lacks the image %(image)s", image=image.name), ""


def target_reason(vm: VM, target: Host) -> tuple[str | None, str]:
    """Why ``target`` cannot take ``vm`` (None: it can), from what LouCloud knows (no
    host is asked), and a note on what the migration does first."""
    source = vm.host
    if target.id == source.id:
        return _l("it is already on %(host)s", host=target.name), ""
    if target.offline_since is not None:
        return _l("%(host)s is offline (%(why)s)", host=target.name,
                  why=target.last_error or _l("not answering")), ""
    if target.draining:
        return _l("%(host)s is being drained", host=target.name), ""
    if not target.accepts_vms:
        return _l("%(host)s is excluded from new VMs", host=target.name), ""
    if target.is_demo or source.is_demo:
        return _l("a simulated host (libvirt's test driver) takes no migrations"), ""
    if vm.nic_kind == "bridge":
        pass  # the same bridge name is expected on every host; QEMU fails otherwise
    return _image_reason(vm, source, target)


def targets_for(vm: VM) -> list[TargetChoice]:
    """Every other host, with why it cannot take the VM (for the page's form)."""
    hosts = db.session.execute(db.select(Host).where(Host.id != vm.host_id)
                               .order_by(Host.name)).scalars().all()
    return [TargetChoice(h, *target_reason(vm, h)) for h in hosts]


def choose_target(vm: VM) -> Host:
    """Placement's choice: of the hosts that can take the VM, the one with the most free
    memory (asked in parallel) whose network can give it its card and fixed address
    (check_network). Raises Conflict with every host's reason."""
    choices = targets_for(vm)
    able = [c.host for c in choices if c.why is None]
    if not able:
        raise Conflict(_l("No host can take %(name)s: %(reasons)s.", name=vm.name,
                          reasons=said.Joined([c.why for c in choices], "; "))
                       if choices else _l("No other host to move %(name)s to.", name=vm.name))
    loads = on_each([hypervisor(h) for h in able], lambda hv: hv.load(cpu=False))
    ranked = sorted(((load.memory_free_mib, -i, h) for i, h in enumerate(able)
                     if not isinstance(load := loads[h.uri], VirtError)),
                    key=lambda t: t[:2], reverse=True)
    if not ranked:
        raise Unavailable(_l("No host that could take %(name)s answers now.", name=vm.name))
    refused = []
    for _free, _order, host in ranked:
        try:
            check_network(vm, host)
        except Conflict as exc:
            refused.append(str(exc).rstrip(".。"))
        except VirtError:
            continue
        else:
            return host
    if refused:
        raise Conflict(_l("No host can take %(name)s: %(reasons)s.", name=vm.name,
                          reasons="; ".join(refused)))
    raise Unavailable(_l("No host that could take %(name)s answers now.", name=vm.name))


def check_disks(vm: VM, mode: str) -> None:
    """A live move copies the disks the running domain has: a detached data disk would
    arrive empty (its volume is no device of the domain). Refused, saying which."""
    detached = [d.target for d in vm.disks if not d.attached]
    if mode == "live" and detached:
        raise Conflict(_l("%(name)s has detached data disks (%(disks)s), which a live move "
                          "would not copy: attach or delete them, or shut it off for an "
                          "offline move.", name=vm.name, disks=", ".join(detached)))


def _source_state(vm: VM) -> str:
    """The VM's state on its host, refused when it cannot be moved as it is: snapshots
    (libvirt moves none: live it refuses, offline they would be lost) or a saved memory
    state (an offline move would drop it)."""
    if vm.snapshots:
        raise Conflict(_l("%(name)s has %(count)s snapshot(s), which a move would lose: "
                          "delete them first.", name=vm.name, count=len(vm.snapshots)))
    hv = hypervisor(vm.host)
    try:
        state = hv.domain_state(vm.uuid)
        if state == "shut off" and (vm.live_reason == "saved" or hv.has_saved_state(vm.uuid)):
            raise Conflict(_l("%(name)s holds a saved memory state (suspended to disk), "
                              "which a move would lose: start it (then move it live) or "
                              "discard the state first.", name=vm.name))
        return state
    except DomainNotFound:
        raise Conflict(_l("%(name)s is missing on %(host)s; nothing to move.", name=vm.name,
                          host=vm.host.name)) from None
    except HostUnavailable as exc:
        raise Unavailable(_l("%(host)s does not answer: %(error)s. %(name)s can be moved "
                             "when it is back (or the host forgotten).", host=vm.host.name,
                             error=said.of(exc), name=vm.name)) from None
    except VirtError as exc:
        raise ServiceError(_l("%(host)s cannot tell the state of %(name)s: %(error)s",
                              host=vm.host.name, name=vm.name, error=said.of(exc))) from None


@transaction
def migrate_vm(user: User, vm: VM, target: Host | None = None, *,
               offline: bool = False) -> Task:
    """Start moving ``vm`` to ``target`` (None: placement's choice): live when it runs,
    offline when it is shut off (``offline`` asks for that and refuses a running VM).
    Returns the task. Raises NotAllowed (not the administrator), Conflict (same,
    offline, draining or unfit host; busy VM; wrong state), Unavailable."""
    if not user.is_admin:
        raise NotAllowed(_("Cannot move %(name)s: only the administrator moves VMs "
                           "between hosts.", name=vm.name))
    if vm.status != VM.READY and vm.status != VM.ERROR:
        raise Conflict(_("Cannot move %(name)s: it is busy (%(status)s); try again when it "
                         "is done.", name=vm.name, status=state_label(vm.status)))
    if tasklist.active_for("vm", vm.id):
        raise Conflict(_("Cannot move %(name)s: it has a task under way; see Tasks.",
                         name=vm.name))
    if target is not None:
        reason, _note = target_reason(vm, target)
        if reason:
            raise Conflict(_("Cannot move %(name)s to %(host)s: %(reason)s.", name=vm.name,
                             host=target.name, reason=reason))
    state = _source_state(vm)
    if state in LIVE_STATES:
        if offline:
            raise Conflict(_("%(name)s is %(state)s; shut it off for an offline move, or "
                             "move it live.", name=vm.name, state=state_label(state)))
        mode = "live"
    elif state == "shut off":
        mode = "offline"
    else:
        raise Conflict(_("%(name)s is %(state)s; only a running, paused or shut-off VM can "
                         "be moved.", name=vm.name, state=state_label(state)))
    check_disks(vm, mode)
    if target is None:
        target = choose_target(vm)   # its network checked as the chosen one's
    else:
        # the card's network and the fixed address, before the VM is held: a refusal
        # now, not after its volumes were copied
        try:
            check_network(vm, target)
        except VirtError as exc:
            raise Unavailable(_("%(host)s does not answer: %(error)s", host=target.name,
                                error=exc)) from None
    return start_move(user, vm, target, mode)


def start_move(user: User, vm: VM, target: Host, mode: str) -> Task:
    """The checked move started: the VM held "migrating", the task queued. The status
    it replaced goes with the task's arguments: a cancel before the task runs puts it
    back (moving.stopped)."""
    previous = _begin(vm, VM.MIGRATING)
    task = tasks.start("vm.migrate", user, target_type="vm", target_id=vm.id,
                       target_name=vm.name,
                       args={"vm_id": vm.id, "source_id": vm.host_id,
                             "target_id": target.id, "mode": mode,
                             "previous": previous[0]})
    if task.finished:  # the queue could not be reached
        _put_back(vm, previous)
    log.info("migration of %s from %s to %s (%s) started: task %s", vm.name,
             vm.host.name, target.name, mode, task.id)
    return task


def target_by_name(name: str | None) -> Host | None:
    if not name:
        return None
    host = db.session.execute(db.select(Host).where(Host.name == normal(name))).scalar()
    if host is None:
        raise NotFound(_("There is no host named %(name)s.", name=name))
    return host


