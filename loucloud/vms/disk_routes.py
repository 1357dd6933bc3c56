"""The VM page's resize and disk actions (issue 14), and what only the host can tell of
its disks and sizes (asked by the page after it is shown). Each calls one service."""
from flask import jsonify, request, url_for
from flask_login import current_user, login_required

from ..helpers import perform
from ..services.access import vm_for
from ..services.vms import disks, resize
from . import bp


def _back(vm_id: int) -> str:
    return url_for("vms.detail", vm_id=vm_id, _anchor="vm-disks")


@bp.route("/vms/<int:vm_id>/resize", methods=["POST"])
@login_required
def resize_vm(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: resize.resize_vm(vm, request.form.get("vcpus") or None,
                                            request.form.get("memory_mib") or None),
                   done=lambda message: message, back=_back(vm.id))


@bp.route("/vms/<int:vm_id>/disks", methods=["POST"])
@login_required
def disk_add(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: disks.add_disk(vm, request.form.get("size_gib")),
                   done=lambda message: message, back=_back(vm.id))


@bp.route("/vms/<int:vm_id>/disks/detach", methods=["POST"])
@login_required
def disk_detach(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: disks.detach_disk(vm, request.form.get("disk", "")),
                   done=lambda message: message, back=_back(vm.id))


@bp.route("/vms/<int:vm_id>/disks/attach", methods=["POST"])
@login_required
def disk_attach(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: disks.attach_disk(vm, request.form.get("disk", "")),
                   done=lambda message: message, back=_back(vm.id))


@bp.route("/vms/<int:vm_id>/disks/delete", methods=["POST"])
@login_required
def disk_delete(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: disks.delete_disk(vm, request.form.get("disk", "")),
                   done=lambda message: message, back=_back(vm.id))


@bp.route("/vms/<int:vm_id>/disks/grow", methods=["POST"])
@login_required
def disk_grow(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: disks.grow_disk(vm, request.form.get("disk", ""),
                                           request.form.get("size_gib")),
                   done=lambda message: message, back=_back(vm.id))


@bp.route("/vms/<int:vm_id>/hardware.json")
@login_required
def hardware(vm_id: int):
    """Each disk's size and allocation, and a resize waiting for the next boot."""
    return jsonify(disks.hardware(vm_for(current_user, vm_id)))
