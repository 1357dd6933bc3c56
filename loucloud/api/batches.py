"""/api/v1/batches: batch create (one VM or N per user from a template, named by a
pattern, as a task), a batch with its VMs and what could not be made, its actions
(start, shut down, force off, delete: a task) and its expiry. The same service
functions as the batch pages (loucloud/batches/) and `manage.py vms batch-*`."""
from __future__ import annotations

from datetime import timezone

import marshmallow as ma
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..services import templates as template_service
from ..services import users as user_service
from ..services.vms import batch as batch_service
from ..services import FieldError
from ..services.vms import batch_access, batch_actions, expiry
from .common import Int, PageArgs, UtcDateTime, blueprint, page_of, page_schema
from .tasks import task_url
from .vm_changes import TaskStartedSchema

blp = blueprint("batches", "Many VMs in one action: batch create, batch actions, expiry.")
URL = "/batches"
# The administrator's, and a group's managers' for the group (services/vms/batch_access.py).

ID = ma.validate.Range(1, 2 ** 63 - 1)


class BatchVMSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    owner = ma.fields.String(required=True)
    host = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={
        "description": "Its live state, or expired"})
    expires_at = UtcDateTime(required=True, allow_none=True)
    url = ma.fields.String(required=True)


class FailureSchema(ma.Schema):
    owner = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)


class BatchSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    pattern = ma.fields.String(required=True)
    template = ma.fields.String(required=True)
    group = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "The group it was made for (null: a list of users)"})
    per_user = ma.fields.Integer(required=True)
    asked = ma.fields.Integer(required=True, metadata={"description": "VMs asked for"})
    vms = ma.fields.Integer(required=True, metadata={"description": "VMs it has now"})
    failed = ma.fields.Integer(required=True, metadata={"description": "VMs not made"})
    states = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                            required=True, metadata={"description": "VMs per state"})
    expires_at = UtcDateTime(required=True, allow_none=True)
    created_at = UtcDateTime(required=True)
    created_by = ma.fields.String(required=True)
    task_state = ma.fields.String(required=True)
    task_url = ma.fields.String(required=True, allow_none=True)


class BatchDetailSchema(BatchSchema):
    items = ma.fields.List(ma.fields.Nested(BatchVMSchema), required=True)
    failures = ma.fields.List(ma.fields.Nested(FailureSchema), required=True)


BatchPageSchema = page_schema(BatchSchema, "BatchPage")


class BatchCreateSchema(ma.Schema):
    template_id = Int(required=True, validate=ID)
    group_id = Int(load_default=None, allow_none=True, validate=ID, metadata={
        "description": "For the group's members (its managers excepted)"})
    user_ids = ma.fields.List(Int(validate=ID), load_default=None, allow_none=True,
                              validate=ma.validate.Length(1, batch_service.MAX_VMS),
                              metadata={"description": "Or for these users (the "
                                                       "administrator's)"})
    pattern = ma.fields.String(load_default=batch_service.DEFAULT_PATTERN,
                               validate=ma.validate.Length(1, 64), metadata={
                                   "description": "The VMs' names: {username} and {n}"})
    per_user = Int(load_default=1, validate=ma.validate.Range(1, batch_service.MAX_PER_USER))
    expires_at = ma.fields.AwareDateTime(load_default=None, allow_none=True,
                                         default_timezone=timezone.utc, metadata={
                                             "description": "RFC 3339; the VMs are shut "
                                                            "off and marked expired then"})


class BatchStartedSchema(ma.Schema):
    message = ma.fields.String(required=True)
    batch_id = ma.fields.Integer(required=True)
    batch_url = ma.fields.String(required=True)
    task_id = ma.fields.Integer(required=True)
    task_url = ma.fields.String(required=True)


class BatchActionSchema(ma.Schema):
    action = ma.fields.String(required=True,
                              validate=ma.validate.OneOf(sorted(batch_actions.ACTIONS)))


class ExpirySchema(ma.Schema):
    expires_at = ma.fields.AwareDateTime(required=True, allow_none=True,
                                         default_timezone=timezone.utc, metadata={
                                             "description": "RFC 3339, or null: never"})


def _naive_utc(value):
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value else None


def batch_dict(batch, *, detail: bool = False) -> dict:
    row = batch_service.summary(batch)
    row.update(per_user=batch.per_user, group=batch.group.name if batch.group else None,
               task_url=task_url(batch.task_id) if batch.task_id else None)
    if detail:
        row["items"] = [{"id": vm.id, "name": vm.name, "owner": vm.owner.username,
                         "host": vm.host.name, "expires_at": vm.expires_at,
                         "state": "expired" if vm.expired_at else (vm.live_state or vm.status),
                         "url": url_for("api_vms.get_vm", vm_id=vm.id)}
                        for vm in batch_service.batch_vms(batch)]
        row["failures"] = [{"owner": owner, "name": name, "reason": reason}
                           for owner, name, reason in batch_service.failures(batch)]
    return row


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, BatchPageSchema)
def list_batches(args):
    """The batches, newest first."""
    batches = batch_access.batches_for(current_user)
    limit, page = args["limit"], args["page"]
    pages = -(-len(batches) // limit)
    page = min(page, max(pages, 1))
    items = [batch_dict(b) for b in batches[(page - 1) * limit:page * limit]]
    return page_of(items, page=page, pages=pages, limit=limit, total=len(batches))


@blp.route("", methods=["POST"])
@blp.arguments(BatchCreateSchema)
@blp.response(202, BatchStartedSchema)
def create_batch(data):
    """Make one VM (or per_user each) from the template for each user, as a task:
    answers 202 with the batch's URL and the task's (in Location)."""
    batch_access.check_may_batch(current_user)
    template = template_service.get_template(data["template_id"])
    options = {"pattern": data["pattern"], "per_user": data["per_user"],
               "expires_at": _naive_utc(data["expires_at"])}
    if data["group_id"] is not None:
        group = batch_access.group_for_batches(current_user, data["group_id"])
        batch = batch_access.start_group_batch(current_user, group, template, **options)
    elif data["user_ids"]:
        users = [user_service.get_user(i) for i in dict.fromkeys(data["user_ids"])]
        batch = batch_access.start_user_batch(current_user, template, users, **options)
    else:
        raise FieldError(_("Give group_id or user_ids."), "group_id")
    url = task_url(batch.task_id)
    return {"message": _("Batch %(batch)s: %(count)s VMs from %(template)s, task %(task)s.",
                         batch=batch.id, count=len(batch.planned_items),
                         template=template.name, task=batch.task_id),
            "batch_id": batch.id, "task_id": batch.task_id, "task_url": url,
            "batch_url": url_for("api_batches.get_batch", batch_id=batch.id)}, 202, \
        {"Location": url}


@blp.route("/<int:batch_id>")
@blp.response(200, BatchDetailSchema)
def get_batch(batch_id: int):
    """A batch: its VMs and what could not be made, with the reasons."""
    return batch_dict(batch_access.batch_for(current_user, batch_id), detail=True)


@blp.route("/<int:batch_id>", methods=["PATCH"])
@blp.arguments(ExpirySchema)
@blp.response(200, BatchDetailSchema)
def set_expiry(data, batch_id: int):
    """Move the batch's expiry, or remove it (null): its expired VMs may start again."""
    batch = batch_access.batch_for(current_user, batch_id)
    expiry.set_expiry(batch, _naive_utc(data["expires_at"]))
    return batch_dict(batch, detail=True)


@blp.route("/<int:batch_id>/actions", methods=["POST"])
@blp.arguments(BatchActionSchema)
@blp.response(202, TaskStartedSchema)
def act_on_batch(data, batch_id: int):
    """Start, shut down, force off or delete every VM of the batch, as a task."""
    batch = batch_access.batch_for(current_user, batch_id)
    vms = batch_service.batch_vms(batch)
    task = batch_access.act_on_batch(current_user, batch, data["action"])
    url = task_url(task.id)
    return {"message": _("%(action)s: %(count)s VMs of batch %(batch)s, task %(task)s.",
                         action=str(batch_actions.ACTIONS[data["action"]]), count=len(vms),
                         batch=batch.id, task=task.id),
            "task_id": task.id, "task_url": url}, 202, {"Location": url}
