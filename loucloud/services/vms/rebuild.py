"""Rebuild: a VM back on its template's image, as new. Its system disk is replaced by
a fresh overlay on the image (an installer's blank disk, the ISO in the drive, for an
ISO template); its snapshots and any saved memory state are deleted; a cloud image
gets a new first-boot seed (a new instance id, so cloud-init runs again: host keys,
the owner's SSH keys, the login password). It keeps its name, domain (UUID), MAC, fixed
address, owner and data disks, which stay attached: the domain is not redefined, its
system volume is made again under the same name."""
from __future__ import annotations

import logging
import uuid as uuidlib

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...models import VM, utcnow
from ...virt import NoAnswer, VirtError
from .. import Conflict, transaction
from .. import watching
from ..bootjobs import user_choices
from ..hypervisors import hypervisor
from ..settings import get_settings
from .create import GIB, _seed
from .lifecycle import _begin, _end, _put_back, unknown_outcome
from .snapshots import host_refusal
from .state import forget_states

log = logging.getLogger(__name__)


def _chosen_jobs(vm: VM) -> list[int]:
    """The boot jobs the owner chose at create (by name), among those still offered."""
    names = set(filter(None, (vm.boot_job_names or "").split("\n")))
    return [j.id for j in user_choices() if j.name in names]


def gets_seed(vm: VM) -> bool:
    """Whether a rebuild gives the VM first-boot data again (a cloud image with its seed
    drive, on a real host): then a login password is set, given or made and shown."""
    return bool(vm.template.image.cloud_init and vm.seed_volume and not vm.host.is_demo)


@transaction
def rebuild_vm(vm: VM, password: str | None = None) -> str:
    """Put ``vm`` back on its template's image (see the module's text); a VM that ran
    is started again. ``password`` is the login password a cloud image's seed sets
    (the route or command makes one when none is chosen). Raises FieldError (the
    password), Conflict (busy, the image is not on the host), Unavailable; a host that
    fails half-way leaves the VM in error, with the reason (rebuild it again)."""
    template, host, owner = vm.template, vm.host, vm.owner
    image = template.image
    if host.id not in {loc.host_id for loc in image.locations if loc.present}:
        raise Conflict(_("The image %(image)s of %(template)s is not on %(host)s: %(name)s "
                         "cannot be rebuilt there now.", image=image.name,
                         template=template.name, host=host.name, name=vm.name))
    seed_iso, job_names = _seed(vm.name, str(uuidlib.uuid4()), template, owner, password,
                                _chosen_jobs(vm))
    if not gets_seed(vm):  # nowhere to put a seed: no drive for it, or a simulated host
        seed_iso, job_names = None, []
    previous = _begin(vm, "rebuilding")
    hv, pool_name = hypervisor(host), get_settings().storage_pool
    replacing = False
    try:
        state = hv.domain_state(vm.uuid)
        if state != "shut off":
            hv.act(vm.uuid, "poweroff")
        hv.discard_saved_state(vm.uuid)
        hv.drop_snapshots(vm.uuid)
        replacing = True  # from here on, the old system disk is gone
        hv.delete_volume(pool_name, vm.volume_name)
        if image.is_iso:
            volume = hv.create_blank(pool_name, vm.volume_name, vm.disk_gib * GIB)
            hv.change_media(vm.uuid, image.path_on(host.id))
        else:
            volume = hv.create_overlay(pool_name, vm.volume_name, vm.disk_gib * GIB,
                                       image.path_on(host.id), image.format)
        if seed_iso is not None:
            hv.delete_volume(pool_name, vm.seed_volume)
            hv.upload_volume(pool_name, vm.seed_volume, seed_iso)
        if state in ("running", "paused"):
            hv.act(vm.uuid, "start")
    except NoAnswer as exc:   # dropping its snapshots (each walks its memory) ran out
        raise unknown_outcome(vm, exc, _l("Rebuild")) from None
    except VirtError as exc:
        forget_states(host)
        if not replacing:
            _put_back(vm, previous)
            raise host_refusal(vm, exc, _("rebuild %(name)s", name=vm.name)) from None
        _end(vm, VM.ERROR, _l("Rebuild did not finish: %(error)s. Rebuild it again.",
                              error=exc))
        raise host_refusal(vm, exc, _("finish rebuilding %(name)s", name=vm.name)) from None
    forget_states(host)
    vm.snapshots.clear()
    vm.image_id, vm.volume_path = image.id, volume.path
    vm.disks[0].volume_path = volume.path
    vm.cdrom_image_id = image.id if image.is_iso else None
    if seed_iso is not None:
        vm.boot_job_names = "\n".join(job_names)
    running = state in ("running", "paused")
    watching.note_state(vm, "running" if running else "shut off")
    vm.started_at = utcnow() if running else None
    _end(vm)
    log.info("VM %s rebuilt on %s from %s", vm.name, host.name, image.name)
    seeded = seed_iso is not None
    if running and seeded:
        return _("%(name)s was rebuilt from %(image)s and is starting: its disk is new, its "
                 "first boot runs again.", name=vm.name, image=image.name)
    if running:
        return _("%(name)s was rebuilt from %(image)s and is starting: its disk is new.",
                 name=vm.name, image=image.name)
    if seeded:
        return _("%(name)s was rebuilt from %(image)s: its disk is new, its first boot runs "
                 "again.", name=vm.name, image=image.name)
    return _("%(name)s was rebuilt from %(image)s: its disk is new.", name=vm.name,
             image=image.name)

