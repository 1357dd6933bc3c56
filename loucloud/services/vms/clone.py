"""Clone: a new VM of the same owner, on the same host, from another VM's system disk as
it is now. The source must be shut off (a running VM's disk changes while it is
copied) and hold no saved memory state. The copy goes through libvirt
(virStorageVolCreateXMLFrom: qemu-img convert on the host) and stays an overlay on the
same image, so only what the source changed is copied; its internal snapshots stay
behind, and so do its data disks. The clone gets its own UUID, MAC, fixed address and
a new first-boot seed (a new instance id: cloud-init makes new host keys, sets its
hostname and the login password), within the owner's quota, reserved like a create's
(create.py's own steps: _reserve, _nic, _undo).

The request checks and reserves (a refusal is immediate: a bad or taken name, the
quota, a running source) and holds the source "cloning"; the copy, which may take long
for a VM that changed much, is the "vm.clone" task (the worker's): it reports how far
the copy is, and a failure, a cancel or a dead worker leaves nothing and the source
as it was."""
from __future__ import annotations

import json
import logging
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...models import VM, Leftover, Task, utcnow
from ...virt import VirtError
from ...virt.driver import Volume
from .. import Conflict, ServiceError, cloudinit, said, tasks, transaction
from ..hypervisors import hypervisor
from ..settings import get_settings
from . import placement
from .create import GIB, Undo, _abandon, _define, _finish, _nic, _reserve, _seed, _spec, \
    _undo, check_name
from .lifecycle import _begin, _end, _put_back
from .snapshots import host_refusal
from .views import state_label

log = logging.getLogger(__name__)

CLONING = "cloning"
POLL = 1.0                # seconds between two looks at the copy
COPY_BOUND = 6 * 3600     # the copy's own bound (qemu-img convert on the host)


@dataclass(frozen=True)
class Cloned:
    vm: VM
    overlay: bool     # the copy is an overlay on the source's image (else standalone)

    def message(self, source_name: str) -> str:
        vm = self.vm
        how = (_l("an overlay on %(image)s holding what %(source)s changed",
                  image=vm.image.name, source=source_name)
               if self.overlay else _l("a full copy of its disk"))
        if vm.ip_address:
            return _l("%(source)s was cloned as %(name)s on %(host)s (%(how)s), address "
                      "%(address)s.", source=source_name, name=vm.name, host=vm.host.name,
                      how=how, address=vm.ip_address)
        return _l("%(source)s was cloned as %(name)s on %(host)s (%(how)s).",
                  source=source_name, name=vm.name, host=vm.host.name, how=how)


@transaction
def clone_vm(source: VM, name: str, *, start: bool = True,
             password: str | None = None) -> Task:
    """Start cloning the shut-off VM ``source`` as ``name`` (see the module's text),
    started unless ``start`` is False: the new VM's row is reserved and the "vm.clone"
    task queued (returned). Raises FieldError (the name is bad or taken, the password),
    QuotaExceeded, Conflict (the source runs, holds a saved state, is busy, its host is
    being drained or excluded from new VMs), Unavailable, ServiceError; a refusal
    leaves nothing (and the source as it was)."""
    name = check_name(name)
    owner, template, host = source.owner, source.template, source.host
    if host.draining:
        raise Conflict(_("%(host)s is being drained (emptied for maintenance): %(name)s "
                         "cannot be cloned there now (a clone is made on its source's host).",
                         host=host.name, name=source.name))
    if not host.accepts_vms:
        raise Conflict(_("%(host)s is excluded from new VMs: %(name)s cannot be cloned "
                         "there now (a clone is made on its source's host).",
                         host=host.name, name=source.name))
    uuid = str(uuidlib.uuid4())
    seed_iso, _jobs = _seed(name, uuid, template, owner, password, None)  # checks it
    previous = _begin(source, CLONING)
    hv = hypervisor(host)
    try:
        state = hv.domain_state(source.uuid)
        saved = state == "shut off" and hv.has_saved_state(source.uuid)
    except VirtError as exc:
        _put_back(source, previous)
        raise host_refusal(source, exc, _("clone %(name)s", name=source.name)) from None
    if state != "shut off" or saved:
        _put_back(source, previous)
        raise Conflict(_("Shut %(name)s down first: its disk is copied while it is shut "
                         "off (it is %(state)s).", name=source.name, state=state_label(state))
                       if not saved else
                       _("%(name)s holds a saved memory state: start it and shut it down, or "
                         "discard the state, before cloning it.", name=source.name))
    source_id = source.id
    try:
        vm = _reserve(owner, name, template, host, uuid,
                      (source.vcpus, source.memory_mib, source.disk_gib), source.image_id)
    except ServiceError:
        _put_back(db.session.get(VM, source_id), previous)
        raise
    source = db.session.get(VM, source_id)
    task = tasks.start("vm.clone", source.owner, target_type="vm", target_id=source.id,
                       target_name=source.name,
                       args={"source_id": source.id, "vm_id": vm.id, "start": start,
                             "source_status": previous[0],
                             "password_hash": cloudinit.hash_password(password)
                             if password and seed_iso is not None else None})
    if task.finished:  # the queue could not be reached: nothing was done
        db.session.delete(db.session.get(VM, vm.id))
        _put_back(source, previous)
        raise ServiceError(said.Stored(task.error))
    log.info("clone of %s as %s on %s: task %s", source.name, name, host.name, task.id)
    return task


def _records(ctx: tasks.TaskContext) -> tuple[VM | None, VM | None]:
    return (db.session.get(VM, ctx.args["source_id"]),
            db.session.get(VM, ctx.args["vm_id"]))


def _release(ctx: tasks.TaskContext, source: VM | None) -> None:
    """The source as it was before the clone (its status; its last error stays)."""
    if source is not None and source.status == CLONING:
        _end(source, ctx.args.get("source_status") or VM.READY, source.last_error)


def _stopped(ctx: tasks.TaskContext, why: str) -> None:
    """After a failure, a cancel or a dead worker: the new VM's row goes (the task's own
    failure path removed what it made on the host; a dead worker's leftovers are removed
    here, or remembered until the host answers) and the source is released."""
    db.session.rollback()
    source, vm = _records(ctx)
    if vm is not None and vm.status == VM.CREATING:
        if ctx.task.attempts:  # it ran: the host may hold a part of it
            hv, pool_name = hypervisor(vm.host), get_settings().storage_pool
            _undo(vm.host, hv, [
                (Leftover.VOLUME, pool_name, vm.volume_name,
                 lambda h, n=vm.volume_name: h.delete_volume(pool_name, n)),
                (Leftover.VOLUME, pool_name, f"lc-{vm.uuid}-seed.iso",
                 lambda h, n=f"lc-{vm.uuid}-seed.iso": h.delete_volume(pool_name, n)),
                (Leftover.DOMAIN, "", vm.uuid, lambda h, u=vm.uuid: h.remove(u))])
        db.session.delete(vm)
        db.session.commit()
    _release(ctx, source)


def clone_id(task: Task) -> int:
    """The id of the VM a "vm.clone" task makes (its row is reserved at the request)."""
    return json.loads(task.args or "{}")["vm_id"]


def gets_seed(source: VM) -> bool:
    """Whether a clone of ``source`` gets first-boot data of its own (a cloud image on a
    real host): then a login password is set, given or made and shown."""
    return bool(source.image.cloud_init and not source.host.is_demo)


@tasks.kind("vm.clone", _l("Clone a VM"), attempts=1, timeout=COPY_BOUND + 600,
            admin_only=False, on_stop=_stopped)
def _clone(ctx: tasks.TaskContext) -> str:
    source, vm = _records(ctx)
    if source is None or vm is None or vm.status != VM.CREATING:
        raise tasks.Cancelled(_l("The source or the clone's record was deleted; clone "
                                 "again."))
    host, image, template, owner = source.host, source.image, source.template, source.owner
    settings = get_settings()
    kind, nic_source = placement.nic_of(template)
    seed_iso, job_names = _seed(vm.name, vm.uuid, template, owner, None, None,
                                password_hash=ctx.args.get("password_hash"))
    if not gets_seed(source):  # a simulated host boots nothing and takes no uploads
        seed_iso, job_names = None, []
    baseline = placement.cpu_baseline(host) if settings.cpu_mode == "baseline" else None
    listen = placement.vnc_listen_for(host)
    start, source_name = bool(ctx.args.get("start")), source.name
    hv, pool_name = hypervisor(host), settings.storage_pool
    undo: list[Undo] = []
    try:
        ctx.report(0.0, _l("Preparing %(host)s.", host=host.name), force=True)
        prep = hv.prepare_for_vms(pool_name, kind, nic_source,
                                  want_uefi=image.firmware == "uefi")
        undo.append((Leftover.VOLUME, pool_name, vm.volume_name,
                     lambda h, n=vm.volume_name: h.delete_volume(pool_name, n)))
        volume, overlay = _copy(ctx, hv, pool_name, source, vm, image)
        seed_volume: Volume | None = None
        if seed_iso is not None:
            seed_name = f"lc-{vm.uuid}-seed.iso"
            undo.append((Leftover.VOLUME, pool_name, seed_name,
                         lambda h, n=seed_name: h.delete_volume(pool_name, n)))
            seed_volume = hv.upload_volume(pool_name, seed_name, seed_iso)
        ctx.report(0.97, _l("Defining the clone and starting it.") if start else
                   _l("Defining the clone."), force=True)
        nic, note, ip = _nic(host, hv, prep, kind, None, undo)
        spec = _spec(vm, owner, prep, image, volume.path, nic, listen,
                     seed_volume.path if seed_volume else None, None, baseline)
        _define(hv, spec, undo, start, lambda _step: None)
    except (VirtError, ServiceError) as exc:
        _release(ctx, db.session.get(VM, ctx.args["source_id"]))
        _abandon(host, hv, undo, vm.id, exc, "clone",
                 {"source": source_name, "name": vm.name})
    except (tasks.Cancelled, tasks.TimedOut):
        db.session.rollback()
        _undo(host, hv, undo)
        raise
    vm = _finish(vm.id, volume, nic, note, ip, seed_volume, job_names, start, None)
    _release(ctx, db.session.get(VM, ctx.args["source_id"]))
    log.info("VM %s cloned as %s on %s (overlay: %s)", source_name, vm.name, host.name,
             overlay)
    return Cloned(vm, overlay).message(source_name)


def _copy(ctx: tasks.TaskContext, hv, pool_name: str, source: VM, vm: VM, image):
    """The system volume copied (libvirt's own copy, in a thread of its own), the task
    reporting how far it is (what the copy holds against what the source does) and
    keeping both VMs' statuses fresh meanwhile. A cancel or the time limit takes effect
    once the copy has ended (it cannot be interrupted); then the copy is deleted."""
    names = [source.volume_name, vm.volume_name]
    with ThreadPoolExecutor(1, thread_name_prefix="clone") as pool:
        copying = pool.submit(hv.clone_volume, pool_name, source.volume_name,
                              vm.volume_name, source.disk_gib * GIB,
                              None if image.is_iso else image.path_on(source.host_id),
                              image.format, timeout=COPY_BOUND)
        while True:
            try:
                return copying.result(timeout=POLL)
            except TimeoutError:
                pass
            done, total = 0, 0
            try:
                sizes = hv.volume_sizes(pool_name, names)
                total, done = sizes.get(names[0], (0, 0))[1], sizes.get(names[1], (0, 0))[1]
            except VirtError:
                pass
            source.status_since = vm.status_since = utcnow()
            try:
                done_gib, total_gib = f"{done / GIB:.2f}", f"{total / GIB:.2f}"
                ctx.report(min(0.95, done / total) if total else None,
                           _l("Copying the disk of %(name)s: %(done)s of about %(total)s "
                              "GiB.", name=source.name, done=done_gib, total=total_gib))
            except (tasks.Cancelled, tasks.TimedOut) as exc:
                stop = exc  # raised once the copy has ended
                try:
                    made = copying.result()
                except VirtError:
                    raise stop from None
                hv.delete_volume(pool_name, made[0].name)
                raise
