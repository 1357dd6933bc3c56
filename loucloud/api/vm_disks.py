"""/api/v1/vms/{id}/disks, /resize and /hardware (issue 14's disks and sizes): the same
service functions as the VM page's disk card (loucloud/vms/disk_routes.py) and
`manage.py vms disks|disk-add|disk-detach|disk-attach|disk-delete|disk-grow|resize`."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user

from ..services.access import vm_for
from ..services.vms import disks, resize
from ..services.vms import hardware as vm_hardware
from ..services.vms.disks import MAX_DISK_GIB
from ..services.vms.resize import MAX_MEMORY_MIB, MAX_VCPUS, MIN_MEMORY_MIB
from .common import PageArgs, blueprint, page_of, page_schema
from .vms import MessageSchema, VMSchema, vm_dict

blp = blueprint("vm_disks", "A VM's disks and sizes: add, detach, attach, delete and grow "
                            "disks; resize vCPUs and memory.")
URL = "/vms"

TARGET = "<string(maxlength=16):target>"
SIZE = ma.validate.Range(1, MAX_DISK_GIB)


def page_list(items: list, args: dict) -> dict:
    """A page of a list already at hand (a VM's disks or snapshots: a few dozen at
    most), in the envelope of every list of the API."""
    limit, total = args["limit"], len(items)
    pages = max(1, -(-total // limit))
    page = min(args["page"], pages)
    start = (page - 1) * limit
    return page_of(items[start:start + limit], page=page, pages=pages, limit=limit,
                   total=total)


class DiskSchema(ma.Schema):
    target = ma.fields.String(required=True, metadata={
        "description": "vda (the system disk), vdb, vdc..."})
    size_gib = ma.fields.Integer(required=True)
    system = ma.fields.Boolean(required=True, metadata={
        "description": "The system disk: it grows, but goes only with its VM"})
    attached = ma.fields.Boolean(required=True, metadata={
        "description": "False: detached, its volume kept (and counted in the quota)"})
    volume = ma.fields.String(required=True, metadata={
        "description": "Its volume in LouCloud's storage pool on the VM's host"})


class DiskOnHostSchema(DiskSchema):
    capacity_bytes = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "As its host has it (null: the host cannot tell now)"})
    allocation_bytes = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "What it takes on the host now (thin: grows with what is written)"})
    found = ma.fields.Boolean(required=True, allow_none=True, metadata={
        "description": "Whether its volume is on the host (null: the host cannot tell)"})
    held = ma.fields.Boolean(required=True, allow_none=True, metadata={
        "description": "Detached, but the running guest has not let go of it yet"})


class DiskListSchema(page_schema(DiskOnHostSchema, "DiskList")):
    error = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Why the host could not tell the sizes now (they are null)"})


class DiskAddSchema(ma.Schema):
    size_gib = ma.fields.Integer(required=True, strict=True, validate=SIZE)


class DiskGrowSchema(ma.Schema):
    size_gib = ma.fields.Integer(required=True, strict=True, validate=SIZE, metadata={
        "description": "The new size, larger than now (a disk never shrinks)"})


class DiskChangedSchema(ma.Schema):
    message = ma.fields.String(required=True)
    disk = ma.fields.Nested(DiskSchema, required=True, metadata={
        "description": "The disk as it is now (attached again at another target when its "
                       "own was taken)"})


class ResizeSchema(ma.Schema):
    vcpus = ma.fields.Integer(load_default=None, strict=True,
                              validate=ma.validate.Range(1, MAX_VCPUS))
    memory_mib = ma.fields.Integer(load_default=None, strict=True,
                                   validate=ma.validate.Range(MIN_MEMORY_MIB, MAX_MEMORY_MIB))


class DeferredSchema(ma.Schema):
    field = ma.fields.String(required=True, validate=ma.validate.OneOf(["vcpus", "memory_mib"]))
    reason = ma.fields.String(required=True)


class ResizedSchema(ma.Schema):
    message = ma.fields.String(required=True)
    running = ma.fields.Boolean(required=True, metadata={"description": "Whether the VM runs"})
    now = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "The sizes asked that the running VM has at once (vcpus, memory_mib)"})
    at_next_boot = ma.fields.List(ma.fields.Nested(DeferredSchema), required=True, metadata={
        "description": "The sizes asked that apply at the VM's next boot, and why"})
    guest_online = ma.fields.Boolean(required=True, allow_none=True, metadata={
        "description": "vCPUs added live: whether the guest brought them online (null: "
                       "not asked)"})
    vm = ma.fields.Nested(VMSchema, required=True)


class HardwareDiskSchema(ma.Schema):
    capacity_gib = ma.fields.String(required=True, allow_none=True)
    allocation_gib = ma.fields.String(required=True, allow_none=True)
    capacity_bytes = ma.fields.Integer(required=True, allow_none=True)
    allocation_bytes = ma.fields.Integer(required=True, allow_none=True)
    found = ma.fields.Boolean(required=True)
    held = ma.fields.Boolean(required=True)


class HardwareSchema(ma.Schema):
    disks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(HardwareDiskSchema),
                           metadata={"description": "By target (vda, vdb, ...)"})
    pending = ma.fields.String(metadata={
        "description": "A resize waiting for the next boot, said (empty: none)"})
    vcpus = ma.fields.Integer(metadata={"description": "The vCPUs it runs with now"})
    memory_mib = ma.fields.Integer(metadata={"description": "The memory it has now"})
    error = ma.fields.String(metadata={
        "description": "Instead of the rest: why the host cannot tell now"})


def _row(disk) -> dict:
    return {"target": disk.target, "size_gib": disk.size_gib, "system": disk.system,
            "attached": disk.attached, "volume": disk.volume_name}


def _on_host(vm) -> tuple[list[dict], str | None]:
    """The VM's disks with what its host says of each (one look at the host for all),
    and why the host could not tell (None: it could)."""
    live = vm_hardware.hardware(vm)
    found = live.get("disks", {})
    items = []
    for disk in vm.disks:
        seen = found.get(disk.target) or {}
        items.append({**_row(disk), "capacity_bytes": seen.get("capacity_bytes"),
                      "allocation_bytes": seen.get("allocation_bytes"),
                      "found": seen.get("found"), "held": seen.get("held")})
    return items, live.get("error")


@blp.route("/<int:vm_id>/disks")
@blp.arguments(PageArgs, location="query")
@blp.response(200, DiskListSchema)
def list_disks(args, vm_id: int):
    """The VM's disks, with their size and allocation on its host."""
    items, error = _on_host(vm_for(current_user, vm_id))
    return {**page_list(items, args), "error": error}


@blp.route(f"/<int:vm_id>/disks/{TARGET}")
@blp.response(200, DiskOnHostSchema)
def get_disk(vm_id: int, target: str):
    """One disk of the VM, with its size and allocation on its host."""
    vm = vm_for(current_user, vm_id)
    disks.disk_of(vm, target)   # NotFound when it has none there
    items, _error = _on_host(vm)
    return next(item for item in items if item["target"] == target.strip())


@blp.route("/<int:vm_id>/disks", methods=["POST"])
@blp.arguments(DiskAddSchema)
@blp.response(201, DiskChangedSchema)
def add_disk(data, vm_id: int):
    """Add a blank data disk at the next free target (hot-plugged when the VM runs)."""
    vm = vm_for(current_user, vm_id)
    before = {d.target for d in vm.disks}
    message = disks.add_disk(vm, data["size_gib"])
    disk = next(d for d in vm.disks if d.target not in before)
    return {"message": message, "disk": _row(disk)}, 201, {
        "Location": url_for("api_vm_disks.get_disk", vm_id=vm.id, target=disk.target)}


def _on_disk(vm_id: int, target: str, verb) -> dict:
    """``verb(vm, target)``, a disk service function, answered with the disk after."""
    vm = vm_for(current_user, vm_id)
    disk = disks.disk_of(vm, target)
    message = verb(vm, target)
    return {"message": message, "disk": _row(disk)}


@blp.route(f"/<int:vm_id>/disks/{TARGET}/detach", methods=["POST"])
@blp.response(200, DiskChangedSchema)
def detach_disk(vm_id: int, target: str):
    """Detach a data disk; its volume is kept (and counted in the quota)."""
    return _on_disk(vm_id, target, disks.detach_disk)


@blp.route(f"/<int:vm_id>/disks/{TARGET}/attach", methods=["POST"])
@blp.response(200, DiskChangedSchema)
def attach_disk(vm_id: int, target: str):
    """Attach a detached data disk again (at the next free target when its own is taken)."""
    return _on_disk(vm_id, target, disks.attach_disk)


@blp.route(f"/<int:vm_id>/disks/{TARGET}/grow", methods=["POST"])
@blp.arguments(DiskGrowSchema)
@blp.response(200, DiskChangedSchema)
def grow_disk(data, vm_id: int, target: str):
    """Grow a disk, the system disk too, to a larger size."""
    return _on_disk(vm_id, target, lambda vm, t: disks.grow_disk(vm, t, data["size_gib"]))


@blp.route(f"/<int:vm_id>/disks/{TARGET}", methods=["DELETE"])
@blp.response(200, MessageSchema)
def delete_disk(vm_id: int, target: str):
    """Delete a data disk and everything on it (detached first)."""
    return {"message": disks.delete_disk(vm_for(current_user, vm_id), target)}


@blp.route("/<int:vm_id>/resize", methods=["POST"])
@blp.arguments(ResizeSchema)
@blp.response(200, ResizedSchema)
def resize_vm(data, vm_id: int):
    """Give the VM new vCPUs and/or memory; the answer says what applies now and what at
    its next boot."""
    vm = vm_for(current_user, vm_id)
    done = resize.resize(vm, data["vcpus"], data["memory_mib"])
    return {"message": done.message, "running": done.running, "now": list(done.now),
            "at_next_boot": [{"field": f, "reason": why} for f, why in done.at_next_boot],
            "guest_online": done.guest_online, "vm": vm_dict(vm)}


@blp.route("/<int:vm_id>/hardware")
@blp.response(200, HardwareSchema)
def hardware(vm_id: int):
    """What only the host can tell of the VM's disks and sizes now."""
    return vm_hardware.hardware(vm_for(current_user, vm_id))
