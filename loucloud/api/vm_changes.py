"""/api/v1/vms/{id}/...: a VM's snapshots, saved state, rebuild, clone, migration
(the administrator's), install media, guest password, and what its host and the sampler
tell of it (live status, metrics). The same service functions as the VM page
(loucloud/vms/routes.py, snapshot_routes.py, migration_routes.py) and `manage.py vms`
(cli/vms.py, vm_snapshots.py, vm_migration.py). Disks and resize: vm_disks.py."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..services import FieldError, NotAllowed, NotFound
from ..services import hosts as host_service
from ..services.access import vm_for
from ..services.monitoring import metrics as metrics_service
from ..services.vms import clone, guest, media, migration, rebuild, snapshots, state
from ..services.vms.create import generate_password
from .common import PageArgs, blueprint, page_schema
from .tasks import task_url
from .vm_disks import page_list
from .vms import NAME, NAME_DOC, MessageSchema, VMSchema, vm_dict

blp = blueprint("vm_changes", "A VM's snapshots, saved state, rebuild, clone, migration, "
                              "install media, guest password, live status and metrics.")
URL = "/vms"

SNAPSHOT = "<string(maxlength=64):name>"
ID = ma.validate.Range(1, 2 ** 63 - 1)


# -- schemas ------------------------------------------------------------------------------
class SnapshotSchema(ma.Schema):
    name = ma.fields.String(required=True)
    memory = ma.fields.Boolean(required=True, metadata={
        "description": "With the running machine (else of the disks only)"})
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(["memory", "disk-only"]))
    size_bytes = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "What the disk grew by when it was taken (null: unknown)"})
    created_at = ma.fields.String(required=True, metadata={"description": "ISO 8601, UTC"})


SnapshotPageSchema = page_schema(SnapshotSchema, "SnapshotList")


class SnapshotCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 64), metadata={
        "description": "Letters, digits, '-', '_' or '.', starting with a letter or digit"})
    memory = ma.fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "true: with the running machine (a running or paused VM); false: "
                       "the disks only (a shut-off VM); null or absent: what fits its state"})


class SnapshotTakenSchema(ma.Schema):
    message = ma.fields.String(required=True)
    snapshot = ma.fields.Nested(SnapshotSchema, required=True)


class ActedSchema(ma.Schema):
    message = ma.fields.String(required=True)
    vm = ma.fields.Nested(VMSchema, required=True)


class PasswordArgs(ma.Schema):
    password = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(1, 128),
        metadata={"description": "The login password its new first-boot data sets (cloud "
                                 "images on a real host); one is made and answered once "
                                 "when not given"})


class RebuiltSchema(ActedSchema):
    password = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "The login password made for it, shown only in this answer"})


class CloneSchema(PasswordArgs):
    name = ma.fields.String(required=True, validate=NAME, metadata=NAME_DOC)
    start = ma.fields.Boolean(load_default=True, metadata={
        "description": "Start the clone once its disk is copied"})


class TaskStartedSchema(ma.Schema):
    message = ma.fields.String(required=True)
    task_id = ma.fields.Integer(required=True)
    task_url = ma.fields.String(required=True, metadata={
        "description": "Where the task's progress is read (also in Location)"})


class ClonedSchema(TaskStartedSchema):
    vm_id = ma.fields.Integer(required=True, metadata={
        "description": "The clone's id: it is ready once the task has succeeded"})
    password = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "The login password made for the clone, shown only in this answer"})


class MigrateSchema(ma.Schema):
    target_id = ma.fields.Integer(load_default=None, allow_none=True, strict=True,
                                  validate=ID, metadata={
                                      "description": "The host (null: placement's choice)"})
    offline = ma.fields.Boolean(load_default=False, metadata={
        "description": "Only as a shut-off VM (its volumes copied); refused if it runs"})


class TargetSchema(ma.Schema):
    host_id = ma.fields.Integer(required=True)
    host = ma.fields.String(required=True)
    able = ma.fields.Boolean(required=True)
    reason = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Why it cannot take the VM (null: it can)"})
    note = ma.fields.String(required=True, metadata={
        "description": "What a move there does first (the image copied...)"})


TargetPageSchema = page_schema(TargetSchema, "MigrationTargetList")


class IsoSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class MediaSchema(ma.Schema):
    inserted = ma.fields.Nested(IsoSchema, required=True, allow_none=True, metadata={
        "description": "The ISO in the CD-ROM drive (null: empty)"})
    available = ma.fields.List(ma.fields.Nested(IsoSchema), required=True, metadata={
        "description": "The ISOs it can take: published and on its host"})


class InsertSchema(ma.Schema):
    image_id = ma.fields.Integer(required=True, strict=True, validate=ID)


class GuestPasswordSchema(ma.Schema):
    user = ma.fields.String(load_default="", validate=ma.validate.Length(max=32), metadata={
        "description": "The guest user (default: the image's login user)"})
    password = ma.fields.String(required=True, validate=ma.validate.Length(1, 128))


class MetricsArgs(ma.Schema):
    range = ma.fields.String(load_default="hour",
                             validate=ma.validate.OneOf(list(metrics_service.RANGES)))


def _series(**kw):
    return ma.fields.List(ma.fields.Float(allow_none=True), required=True, **kw)


class LimitsSchema(ma.Schema):
    cpu_percent = ma.fields.Integer(required=True, metadata={"description": "100 per vCPU"})
    memory_mib = ma.fields.Integer(required=True)


class MetricsSchema(ma.Schema):
    range = ma.fields.String(required=True)
    t = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Each sample's time (ISO 8601, UTC); the series follow it"})
    cpu_percent = _series()
    memory_used_mib = _series()
    disk_read_bps = _series()
    disk_write_bps = _series()
    net_rx_bps = _series()
    net_tx_bps = _series()
    limits = ma.fields.Nested(LimitsSchema, required=True)


class LiveSchema(ma.Schema):
    state = ma.fields.String()
    cpu_time_s = ma.fields.Float(allow_none=True)
    vnc = ma.fields.String(allow_none=True, metadata={"description": "address:port"})
    disk = ma.fields.String(allow_none=True, metadata={"description": "The system disk's path"})
    domain_type = ma.fields.String(allow_none=True)
    cpu_mode = ma.fields.String(allow_none=True)
    firmware = ma.fields.String(allow_none=True)
    error = ma.fields.String(metadata={
        "description": "Instead of the rest: why the host cannot tell now"})


# -- snapshots and the saved state ----------------------------------------------------------
def _snapshot(row) -> dict:
    return {"name": row.name, "memory": row.memory,
            "kind": "memory" if row.memory else "disk-only", "size_bytes": row.size_bytes,
            "created_at": row.created_at.isoformat() + "Z"}


@blp.route("/<int:vm_id>/snapshots")
@blp.arguments(PageArgs, location="query")
@blp.response(200, SnapshotPageSchema)
def list_snapshots(args, vm_id: int):
    """The VM's snapshots, as its host has them, oldest first."""
    rows = snapshots.list_snapshots(vm_for(current_user, vm_id))
    return page_list([_snapshot(row) for row in rows], args)


@blp.route(f"/<int:vm_id>/snapshots/{SNAPSHOT}")
@blp.response(200, SnapshotSchema)
def get_snapshot(vm_id: int, name: str):
    """One snapshot of the VM, as its host has it."""
    vm = vm_for(current_user, vm_id)
    row = next((r for r in snapshots.list_snapshots(vm) if r.name == name), None)
    if row is None:
        raise NotFound(_("%(vm)s has no snapshot named %(name)s.", vm=vm.name, name=name))
    return _snapshot(row)


@blp.route("/<int:vm_id>/snapshots", methods=["POST"])
@blp.arguments(SnapshotCreateSchema)
@blp.response(201, SnapshotTakenSchema)
def create_snapshot(data, vm_id: int):
    """Take a snapshot: with the running machine of a running VM, of the disks of a
    shut-off one."""
    vm = vm_for(current_user, vm_id)
    message = snapshots.create_snapshot(vm, data["name"], data["memory"])
    row = next(r for r in vm.snapshots if r.name == data["name"].strip())
    return {"message": message, "snapshot": _snapshot(row)}, 201, {
        "Location": url_for("api_vm_changes.get_snapshot", vm_id=vm.id, name=row.name)}


@blp.route(f"/<int:vm_id>/snapshots/{SNAPSHOT}/revert", methods=["POST"])
@blp.response(200, ActedSchema)
def revert_snapshot(vm_id: int, name: str):
    """Put the VM back to a snapshot; what changed since is lost."""
    vm = vm_for(current_user, vm_id)
    return {"message": snapshots.revert_snapshot(vm, name), "vm": vm_dict(vm)}


@blp.route(f"/<int:vm_id>/snapshots/{SNAPSHOT}", methods=["DELETE"])
@blp.response(200, MessageSchema)
def delete_snapshot(vm_id: int, name: str):
    """Delete a snapshot of the VM."""
    return {"message": snapshots.delete_snapshot(vm_for(current_user, vm_id), name)}


@blp.route("/<int:vm_id>/saved-state/discard", methods=["POST"])
@blp.response(200, ActedSchema)
def discard_saved_state(vm_id: int):
    """Discard the saved memory state of a VM suspended to disk: it boots afresh."""
    vm = vm_for(current_user, vm_id)
    return {"message": snapshots.discard_saved_state(vm), "vm": vm_dict(vm)}


# -- rebuild and clone --------------------------------------------------------------------
def _password(chosen: str | None, seeded: bool) -> tuple[str | None, str | None]:
    """(the password a new seed sets, the one made here to answer once)."""
    if chosen is None and seeded:
        made = generate_password()
        return made, made
    return chosen, None


@blp.route("/<int:vm_id>/rebuild", methods=["POST"])
@blp.arguments(PasswordArgs, required=False)
@blp.response(200, RebuiltSchema)
def rebuild_vm(data, vm_id: int):
    """Put the VM back on its template's image: a new system disk, its snapshots gone;
    name, address and data disks stay."""
    vm = vm_for(current_user, vm_id)
    password, made = _password(data["password"], rebuild.gets_seed(vm))
    message = rebuild.rebuild_vm(vm, password)
    return {"message": message, "vm": vm_dict(vm), "password": made}


@blp.route("/<int:vm_id>/clone", methods=["POST"])
@blp.arguments(CloneSchema)
@blp.response(202, ClonedSchema)
def clone_vm(data, vm_id: int):
    """Clone the shut-off VM as a new VM of the same owner and host, as a task: answers
    202, the task's URL in Location."""
    vm = vm_for(current_user, vm_id)
    password, made = _password(data["password"], clone.gets_seed(vm))
    name = data["name"].strip()
    task = clone.clone_vm(vm, name, start=data["start"], password=password)
    url = task_url(task.id)
    return {"message": _("Cloning %(vm)s as %(name)s: task %(task)s; %(name)s is ready "
                         "once its disk is copied.", vm=vm.name, name=name, task=task.id),
            "task_id": task.id, "task_url": url, "vm_id": clone.clone_id(task),
            "password": made}, 202, {"Location": url}


# -- migration (the administrator's) ------------------------------------------------------
MIGRATION_REFUSED = _l("Only the administrator may move VMs between hosts.")


def _admin(refusal) -> None:
    """403 unless the caller is the administrator; ``refusal``: a lazy message."""
    if not current_user.is_admin:
        raise NotAllowed(str(refusal))


@blp.route("/<int:vm_id>/migrate", methods=["POST"])
@blp.arguments(MigrateSchema)
@blp.response(202, TaskStartedSchema)
def migrate(data, vm_id: int):
    """Move the VM to another host (the administrator's), live when it runs, offline
    when it is shut off, as a task: answers 202, the task's URL in Location."""
    _admin(MIGRATION_REFUSED)
    vm = vm_for(current_user, vm_id)
    target = None
    if data["target_id"] is not None:
        try:
            target = host_service.get_host(data["target_id"])
        except NotFound:
            raise FieldError(_("There is no such host."), "target_id") from None
    task = migration.migrate_vm(current_user, vm, target, offline=data["offline"])
    url = task_url(task.id)
    return {"message": _("Moving %(name)s: see task %(task)s.", name=vm.name, task=task.id),
            "task_id": task.id,
            "task_url": url}, 202, {"Location": url}


@blp.route("/<int:vm_id>/migration-targets")
@blp.arguments(PageArgs, location="query")
@blp.response(200, TargetPageSchema)
def migration_targets(args, vm_id: int):
    """Every other host, and why it cannot take the VM (the administrator's)."""
    _admin(MIGRATION_REFUSED)
    choices = migration.targets_for(vm_for(current_user, vm_id))
    return page_list([{"host_id": c.host.id, "host": c.host.name, "able": c.reason is None,
                       "reason": c.reason, "note": c.note} for c in choices], args)


# -- install media, guest password ----------------------------------------------------------
def _iso(image) -> dict:
    return {"id": image.id, "name": image.name}


@blp.route("/<int:vm_id>/media")
@blp.response(200, MediaSchema)
def get_media(vm_id: int):
    """The ISO in the VM's CD-ROM drive, and the ISOs it can take."""
    vm = vm_for(current_user, vm_id)
    return {"inserted": _iso(vm.cdrom_image) if vm.cdrom_image else None,
            "available": [_iso(i) for i in media.isos_for(vm)]}


@blp.route("/<int:vm_id>/media", methods=["POST"])
@blp.arguments(InsertSchema)
@blp.response(200, ActedSchema)
def insert_media(data, vm_id: int):
    """Put an ISO into the VM's CD-ROM drive: it boots from it at its next start or reset."""
    vm = vm_for(current_user, vm_id)
    return {"message": media.insert_iso(current_user, vm, data["image_id"]),
            "vm": vm_dict(vm)}


@blp.route("/<int:vm_id>/media", methods=["DELETE"])
@blp.response(200, ActedSchema)
def eject_media(vm_id: int):
    """Empty the VM's CD-ROM drive: it boots from its disk."""
    vm = vm_for(current_user, vm_id)
    return {"message": media.eject_iso(current_user, vm), "vm": vm_dict(vm)}


@blp.route("/<int:vm_id>/password", methods=["POST"])
@blp.arguments(GuestPasswordSchema)
@blp.response(200, MessageSchema)
def set_guest_password(data, vm_id: int):
    """Set a guest user's password in the running VM (QEMU guest agent)."""
    vm = vm_for(current_user, vm_id)
    return {"message": guest.reset_password(vm, data["user"], data["password"])}


# -- what the host and the sampler tell ------------------------------------------------------
@blp.route("/<int:vm_id>/live")
@blp.response(200, LiveSchema)
def live(vm_id: int):
    """What only the VM's host can tell now: CPU time, VNC, disk, machine type."""
    return state.live_status(vm_for(current_user, vm_id))


@blp.route("/<int:vm_id>/metrics")
@blp.arguments(MetricsArgs, location="query")
@blp.response(200, MetricsSchema)
def metrics(args, vm_id: int):
    """The VM's CPU, memory, disk and network series over the last hour, day or week."""
    return metrics_service.vm_series(vm_for(current_user, vm_id), args["range"])
