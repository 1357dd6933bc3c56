"""Clone: a new VM of the same owner, on the same host, from another VM's system disk as
it is now. The source must be shut off (a running VM's disk changes while it is
copied) and hold no saved memory state. The copy goes through libvirt
(virStorageVolCreateXMLFrom: qemu-img convert on the host) and stays an overlay on the
same image, so only what the source changed is copied; its internal snapshots stay
behind, and so do its data disks. The clone gets its own UUID, MAC, fixed address and
a new first-boot seed (a new instance id: cloud-init makes new host keys, sets its
hostname and the login password), within the owner's quota, reserved like a create's
(create.py's own steps: _reserve, _nic, _undo)."""
from __future__ import annotations

import logging
import uuid as uuidlib
from dataclasses import dataclass

from ...models import VM, Leftover
from ...virt import VirtError
from ...virt.driver import Volume
from .. import Conflict, ServiceError, transaction
from ..hypervisors import hypervisor
from ..settings import get_settings
from . import placement
from .create import GIB, Undo, _abandon, _define, _finish, _nic, _reserve, _seed, _spec, \
    check_name
from .lifecycle import _begin, _end, _put_back
from .snapshots import host_refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cloned:
    vm: VM
    overlay: bool     # the copy is an overlay on the source's image (else standalone)

    def message(self, source_name: str) -> str:
        vm = self.vm
        how = (f"an overlay on {vm.image.name} holding what {source_name} changed"
               if self.overlay else "a full copy of its disk")
        return (f"{source_name} was cloned as {vm.name} on {vm.host.name} ({how})"
                + (f", address {vm.ip_address}" if vm.ip_address else "") + ".")


@transaction
def clone_vm(source: VM, name: str, *, start: bool = True,
             password: str | None = None) -> Cloned:
    """Clone the shut-off VM ``source`` as ``name`` (see the module's text), started
    unless ``start`` is False. Raises FieldError (the name is bad or taken, the
    password), QuotaExceeded, Conflict (the source runs, holds a saved state, is busy,
    its host is being drained or excluded from new VMs), Unavailable, ServiceError; a failure leaves nothing (and the source as it was)."""
    name = check_name(name)
    owner, template, host, image = source.owner, source.template, source.host, source.image
    if host.draining or not host.accepts_vms:
        raise Conflict(f"{host.name} is " + ("being drained (emptied for maintenance)"
                                             if host.draining else "excluded from new VMs")
                       + f": {source.name} cannot be cloned there now (a clone is made on "
                       "its source's host).")
    settings = get_settings()
    listen = placement.vnc_listen_for(host)
    kind, nic_source = placement.nic_of(template)
    uuid = str(uuidlib.uuid4())
    seed_iso, job_names = _seed(name, uuid, template, owner, password, None)
    if host.is_demo:  # a simulated host boots nothing and takes no uploads
        seed_iso, job_names = None, []
    baseline = placement.cpu_baseline(host) if settings.cpu_mode == "baseline" else None
    previous = _begin(source, "cloning")
    hv, pool_name = hypervisor(host), settings.storage_pool
    try:
        state = hv.domain_state(source.uuid)
        saved = state == "shut off" and hv.has_saved_state(source.uuid)
    except VirtError as exc:
        _put_back(source, previous)
        raise host_refusal(source, exc, "clone") from None
    if state != "shut off" or saved:
        _put_back(source, previous)
        raise Conflict(f"Shut {source.name} down first: its disk is copied while it is "
                       f"shut off (it is {state})." if not saved else
                       f"{source.name} holds a saved memory state: start it and shut it "
                       "down, or discard the state, before cloning it.")
    try:
        vm = _reserve(owner, name, template, host, uuid,
                      (source.vcpus, source.memory_mib, source.disk_gib), source.image_id)
    except ServiceError:
        _put_back(source, previous)
        raise
    undo: list[Undo] = []
    try:
        prep = hv.prepare_for_vms(pool_name, kind, nic_source,
                                  want_uefi=image.firmware == "uefi")
        undo.append((Leftover.VOLUME, pool_name, vm.volume_name,
                     lambda h, n=vm.volume_name: h.delete_volume(pool_name, n)))
        volume, overlay = hv.clone_volume(
            pool_name, source.volume_name, vm.volume_name, source.disk_gib * GIB,
            None if image.is_iso else image.path_on(host.id), image.format)
        seed_volume: Volume | None = None
        if seed_iso is not None:
            seed_name = f"lc-{vm.uuid}-seed.iso"
            undo.append((Leftover.VOLUME, pool_name, seed_name,
                         lambda h, n=seed_name: h.delete_volume(pool_name, n)))
            seed_volume = hv.upload_volume(pool_name, seed_name, seed_iso)
        nic, note, ip = _nic(host, hv, prep, kind, None, undo)
        spec = _spec(vm, owner, prep, image, volume.path, nic, listen,
                     seed_volume.path if seed_volume else None, None, baseline)
        _define(hv, spec, undo, start, lambda _step: None)
    except (VirtError, ServiceError) as exc:
        _put_back(source, previous)
        _abandon(host, hv, undo, vm.id, exc, f"clone {source.name} as {name}",
                 f"{source.name} was being cloned")
    vm = _finish(vm.id, volume, nic, note, ip, seed_volume, job_names, start, None)
    _end(source)
    log.info("VM %s cloned as %s on %s (overlay: %s)", source.name, vm.name, host.name,
             overlay)
    return Cloned(vm, overlay)
