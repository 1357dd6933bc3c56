"""/api/v1/volumes (the administrator's): every volume of LouCloud's storage pool on
every host with what it belongs to, and deleting an orphan. The same service functions as
the Volumes page (loucloud/volumes/routes.py) and `manage.py volumes`."""
from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from ..services import hosts as host_service
from ..services import volumes as volume_service
from .common import PageArgs, PageSchema, admin_only, blueprint
from .networks import HostUnreachableSchema, rows_page

blp = blueprint("volumes", "Volumes of LouCloud's storage pool on the hosts (the "
                           "administrator's).")
URL = "/volumes"
blp.before_request(admin_only(_l("Only the administrator manages volumes.")))


class VolumeSchema(ma.Schema):
    host_id = ma.fields.Integer(required=True)
    host = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    path = ma.fields.String(required=True)
    format = ma.fields.String(required=True)
    capacity = ma.fields.Integer(required=True, metadata={"description": "Bytes"})
    allocation = ma.fields.Integer(required=True, metadata={"description": "Bytes"})
    owner = ma.fields.String(required=True, metadata={
        "description": "What it belongs to, in words; empty: an orphan"})
    orphan = ma.fields.Boolean(required=True, metadata={
        "description": "No record owns it: the administrator may delete it"})
    vm_id = ma.fields.Integer(required=True, allow_none=True)


class VolumePageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(VolumeSchema), required=True)
    pool = ma.fields.String(required=True, metadata={"description": "The storage pool"})
    unreachable = ma.fields.List(ma.fields.Nested(HostUnreachableSchema), required=True,
                                 metadata={"description": "Hosts that could not tell"})


class VolumeListArgs(PageArgs):
    host_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, 2 ** 63 - 1))
    orphans = ma.fields.Boolean(load_default=False, metadata={
        "description": "Only the volumes no record owns"})


class VolumeMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


@blp.route("")
@blp.arguments(VolumeListArgs, location="query")
@blp.response(200, VolumePageSchema)
def list_volumes(args):
    """Every volume of the pool on every host, with its owner, by host, orphans first."""
    report = volume_service.list_volumes()
    rows = [{**r.as_dict(), "host_id": r.host.id}
            for r in (report.orphans if args["orphans"] else report.rows)
            if args["host_id"] in (None, r.host.id)]
    by_name = {h.name: h.id for h in host_service.all_hosts()}
    unreachable = [{"host_id": by_name.get(name, 0), "host": name, "error": why}
                   for name, why in report.problems.items()
                   if args["host_id"] in (None, by_name.get(name))]
    return rows_page(rows, args, pool=report.pool, unreachable=unreachable)


@blp.route("/<int:host_id>/<string(maxlength=255):name>", methods=["DELETE"])
@blp.response(200, VolumeMessageSchema)
def delete_orphan(host_id: int, name: str):
    """Delete an orphan volume from a host (409 when anything owns or uses it)."""
    return {"message": volume_service.delete_orphan(host_service.get_host(host_id), name)}
