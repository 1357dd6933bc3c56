"""Install media in a VM's CD-ROM drive: its owner inserts any ISO the administrator
published (an ISO image present on the VM's host), ejects it, and the VM boots from its
disk afterwards (the drive comes first in the boot order: an inserted ISO boots, an
empty drive falls through to the disk)."""
from __future__ import annotations

import logging

from flask_babel import gettext as _

from ...extensions import db
from ...models import VM, Image, User
from ...virt import NotSupported, VirtError
from .. import Conflict, FieldError, NotFound, transaction
from ..access import may_use_vm
from ..hypervisors import hypervisor
from .lifecycle import refusal
from .views import state_label

log = logging.getLogger(__name__)


def isos_for(vm: VM) -> list[Image]:
    """The ISOs this VM can take: published and present on its host."""
    isos = db.session.execute(db.select(Image).where(Image.format == "iso")
                              .order_by(Image.name)).scalars().all()
    return [image for image in isos if image.present_on(vm.host_id)]


def _change(vm: VM, path: str | None, what: str) -> None:
    """``what``: the change, in the reader's language ("insert debian.iso")."""
    if vm.status not in (VM.READY, VM.ERROR):
        raise Conflict(_("%(name)s is busy (%(status)s); try again in a moment.",
                         name=vm.name, status=state_label(vm.status)))
    try:
        hypervisor(vm.host).change_media(vm.uuid, path)
    except NotSupported as exc:
        raise Conflict(_("Cannot %(doing)s: %(error)s.", doing=what, error=exc)) from None
    except VirtError as exc:
        raise refusal(vm, exc, _("Cannot %(doing)s: %(error)s", doing=what,
                                 error=exc)) from None


@transaction
def insert_iso(user: User, vm: VM, image_id: int) -> str:
    """Put an ISO into the VM's drive (running: at once; stopped: at its next start)."""
    if not may_use_vm(user, vm):
        raise NotFound()
    image = next((i for i in isos_for(vm) if i.id == image_id), None)
    if image is None:
        raise FieldError(_("Choose an ISO that is on %(host)s.", host=vm.host.name),
                         "image_id")
    _change(vm, image.path_on(vm.host_id), _("insert %(image)s", image=image.name))
    vm.cdrom_image_id = image.id
    db.session.commit()
    log.info("%s inserted %s into %s", user.username, image.name, vm.name)
    return _("%(image)s is in the CD-ROM drive of %(name)s; the VM boots from it at its "
             "next start or reset.", image=image.name, name=vm.name)


@transaction
def eject_iso(user: User, vm: VM) -> str:
    """Empty the VM's drive: it boots from its disk from then on."""
    if not may_use_vm(user, vm):
        raise NotFound()
    if vm.cdrom_image_id is None:
        raise Conflict(_("The CD-ROM drive of %(name)s is empty.", name=vm.name))
    name = vm.cdrom_image.name if vm.cdrom_image else _("the ISO")
    _change(vm, None, _("eject %(image)s", image=name))
    vm.cdrom_image_id = None
    db.session.commit()
    log.info("%s ejected %s from %s", user.username, name, vm.name)
    return _("%(image)s ejected: %(name)s boots from its disk.", image=name, name=vm.name)
