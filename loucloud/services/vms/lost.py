"""VMs lost with a forgotten host (issue 14): "Forget" an offline host turns each of its
VMs into a LostVM (models/maintenance.py). Its owner keeps seeing it, marked lost, in
the VM list and on its page, until they delete the record; it holds none of their quota
and nothing else can be done with it (its host, and what it held there, are gone from
LouCloud)."""
from __future__ import annotations

import logging

from flask_babel import gettext as _

from ...extensions import db
from ...models import INT64_MAX, VM, Host, LostVM, User
from .. import NotFound, transaction
from ..access import may_use_vm
from ..names import normal

log = logging.getLogger(__name__)


def record_lost(vm: VM, host: Host) -> LostVM:
    """The lost record of ``vm``, whose host is being forgotten (the VM row itself is
    deleted by the caller). Does not commit."""
    lost = LostVM(owner_id=vm.owner_id, vm_id=vm.id, name=vm.name, host_name=host.name,
                  template_name=vm.template.name if vm.template else "",
                  image_name=vm.image.name if vm.image else "", vcpus=vm.vcpus,
                  memory_mib=vm.memory_mib,
                  disk_gib=sum(d.size_gib for d in vm.disks) or vm.disk_gib,
                  ip_address=vm.ip_address, created_at=vm.created_at)
    db.session.add(lost)
    return lost


def lost_vms_for(user: User) -> list[LostVM]:
    """The lost VMs ``user`` may see (the administrator: everybody's), newest first."""
    stmt = db.select(LostVM).order_by(LostVM.lost_at.desc(), LostVM.id.desc())
    if not user.is_admin:
        stmt = stmt.where(LostVM.owner_id == user.id)
    return db.session.execute(stmt).scalars().all()


def lost_for(user: User, lost_id: int) -> LostVM:
    """One lost VM if ``user`` may see it (its owner, the administrator). Raises
    NotFound otherwise, as for a VM."""
    lost = db.session.get(LostVM, lost_id) if 0 < lost_id <= INT64_MAX else None
    if not may_use_vm(user, lost):
        raise NotFound()
    return lost


def lost_at_old_address(user: User, vm_id: int) -> LostVM | None:
    """The lost VM that had the id ``vm_id`` when it was a VM, if ``user`` may see it
    and no VM has that id now (its page's old address)."""
    if not 0 < vm_id <= INT64_MAX or db.session.get(VM, vm_id) is not None:
        return None
    lost = db.session.execute(db.select(LostVM).where(LostVM.vm_id == vm_id)
                              .order_by(LostVM.id.desc()).limit(1)).scalar()
    return lost if may_use_vm(user, lost) else None


def lost_by_name(owner: User, name: str) -> list[LostVM]:
    """The owner's lost VMs called ``name`` (the command line). Raises NotFound."""
    rows = db.session.execute(db.select(LostVM).where(
        LostVM.owner_id == owner.id, LostVM.name == normal(name))
        .order_by(LostVM.id)).scalars().all()
    if not rows:
        raise NotFound(_("%(user)s has no lost VM named %(name)s.", user=owner.username,
                         name=name))
    return rows


@transaction
def delete_lost(user: User, lost: LostVM) -> str:
    """Delete a lost VM's record (its owner or the administrator): the only thing that
    can be done with it."""
    if not may_use_vm(user, lost):
        raise NotFound()
    name, host_name = lost.name, lost.host_name
    db.session.delete(lost)
    db.session.commit()
    log.info("record of %s, lost with %s, deleted", name, host_name)
    return _("The record of %(name)s, lost with the host %(host)s, was deleted.", name=name,
             host=host_name)
