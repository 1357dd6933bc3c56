"""/api/v1/lost-vms: VMs lost with a forgotten host (issue 14), their owner's (every one
for the administrator): what was known of them, and deleting the record — the one thing
to do with one, as on its page (loucloud/vms/lost_routes.py) and `manage.py vms lost`."""
from __future__ import annotations

import marshmallow as ma
from flask_login import current_user

from ..services.vms import lost as lost_service
from .common import UtcDateTime, blueprint

blp = blueprint("lost_vms", "VMs lost with a forgotten host: their records.")
URL = "/lost-vms"


class LostVMSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    vm_id = ma.fields.Integer(required=True, metadata={"description": "The id it had as a VM"})
    name = ma.fields.String(required=True)
    owner = ma.fields.Function(lambda lost: lost.owner.username, required=True)
    host_name = ma.fields.String(required=True, metadata={"description": "The host forgotten"})
    template_name = ma.fields.String(required=True)
    image_name = ma.fields.String(required=True)
    vcpus = ma.fields.Integer(required=True)
    memory_mib = ma.fields.Integer(required=True)
    disk_gib = ma.fields.Integer(required=True)
    ip_address = ma.fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)
    lost_at = UtcDateTime(required=True)


class LostListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(LostVMSchema), required=True)


class LostDeletedSchema(ma.Schema):
    message = ma.fields.String(required=True)


@blp.route("")
@blp.response(200, LostListSchema)
def list_lost():
    """The lost VMs the caller may see, newest first."""
    return {"items": lost_service.lost_vms_for(current_user)}


@blp.route("/<int:lost_id>")
@blp.response(200, LostVMSchema)
def get_lost(lost_id: int):
    """One lost VM's record."""
    return lost_service.lost_for(current_user, lost_id)


@blp.route("/<int:lost_id>", methods=["DELETE"])
@blp.response(200, LostDeletedSchema)
def delete_lost(lost_id: int):
    """Delete the record of a lost VM."""
    record = lost_service.lost_for(current_user, lost_id)
    return {"message": lost_service.delete_lost(current_user, record)}
