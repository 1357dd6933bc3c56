"""The VM page's resize and disk actions (issue 14), and what only the host can tell of
its disks and sizes (asked by the page after it is shown). Each calls one service."""
from flask import jsonify, request
from flask_login import current_user, login_required

from ..services.access import vm_for
from ..services.vms import disks, resize
from ..services.vms import hardware as vm_hardware
from . import bp, on_vm


DISKS = "vm-disks"   # the card the page comes back to


@bp.route("/vms/<int:vm_id>/resize", methods=["POST"])
@login_required
def resize_vm(vm_id: int):
    return on_vm(vm_id, lambda vm: resize.resize_vm(vm, request.form.get("vcpus") or None,
                                                    request.form.get("memory_mib") or None),
                 DISKS)


@bp.route("/vms/<int:vm_id>/disks", methods=["POST"])
@login_required
def disk_add(vm_id: int):
    return on_vm(vm_id, lambda vm: disks.add_disk(vm, request.form.get("size_gib")), DISKS)


@bp.route("/vms/<int:vm_id>/disks/detach", methods=["POST"])
@login_required
def disk_detach(vm_id: int):
    return on_vm(vm_id, lambda vm: disks.detach_disk(vm, request.form.get("disk", "")), DISKS)


@bp.route("/vms/<int:vm_id>/disks/attach", methods=["POST"])
@login_required
def disk_attach(vm_id: int):
    return on_vm(vm_id, lambda vm: disks.attach_disk(vm, request.form.get("disk", "")), DISKS)


@bp.route("/vms/<int:vm_id>/disks/delete", methods=["POST"])
@login_required
def disk_delete(vm_id: int):
    return on_vm(vm_id, lambda vm: disks.delete_disk(vm, request.form.get("disk", "")), DISKS)


@bp.route("/vms/<int:vm_id>/disks/grow", methods=["POST"])
@login_required
def disk_grow(vm_id: int):
    return on_vm(vm_id, lambda vm: disks.grow_disk(vm, request.form.get("disk", ""),
                                                   request.form.get("size_gib")), DISKS)


@bp.route("/vms/<int:vm_id>/hardware.json")
@login_required
def hardware(vm_id: int):
    """Each disk's size and allocation, and a resize waiting for the next boot."""
    return jsonify(vm_hardware.hardware(vm_for(current_user, vm_id)))
