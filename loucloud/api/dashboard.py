"""/api/v1/metrics: the dashboard's figures (loucloud/dashboard/routes.py): the pool at
a glance for the administrator (hosts, capacity given to VMs, VMs by state, the busiest
VMs, recent events), a user's own VMs by state and quota usage for anybody else."""
from __future__ import annotations

from dataclasses import asdict

import marshmallow as ma
from flask_login import current_user

from ..services.monitoring import dashboard as dashboard_service
from .audit import AuditEventSchema
from .common import blueprint
from .hosts import HostSchema
from .users import QuotaUsageSchema, usage_dict
from .vms import VMSchema

blp = blueprint("dashboard", "The dashboard's figures.")
URL = "/metrics"


class DashboardCapacitySchema(ma.Schema):
    name = ma.fields.String(required=True, metadata={"description": "A host, or All hosts"})
    vcpus_used = ma.fields.Integer(required=True, metadata={
        "description": "Given to LouCloud VMs"})
    vcpus_total = ma.fields.Integer(required=True)
    memory_used_mib = ma.fields.Integer(required=True)
    memory_total_mib = ma.fields.Integer(required=True)
    disk_used_gib = ma.fields.Float(required=True)
    disk_total_gib = ma.fields.Float(required=True, allow_none=True, metadata={
        "description": "The storage pool's size (null: not sampled yet)"})


class DashboardBusyVMSchema(ma.Schema):
    vm_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    owner = ma.fields.String(required=True)
    host = ma.fields.String(required=True)
    cpu_percent = ma.fields.Float(required=True)


class DashboardSchema(ma.Schema):
    scope = ma.fields.String(required=True, validate=ma.validate.OneOf(["pool", "user"]),
                             metadata={"description": "pool: the administrator's view of "
                                                      "everything; user: the caller's own"})
    states = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                            required=True, metadata={"description": "VMs by state"})
    hosts = ma.fields.List(ma.fields.Nested(HostSchema), metadata={
        "description": "pool only"})
    capacity = ma.fields.List(ma.fields.Nested(DashboardCapacitySchema), metadata={
        "description": "pool only: per host, then All hosts"})
    busiest = ma.fields.List(ma.fields.Nested(DashboardBusyVMSchema), metadata={
        "description": "pool only: the VMs using the most CPU in the last sample"})
    events = ma.fields.List(ma.fields.Nested(AuditEventSchema), metadata={
        "description": "pool only: the latest audit events"})
    usage = ma.fields.Nested(QuotaUsageSchema, metadata={"description": "user only"})
    vms = ma.fields.List(ma.fields.Nested(VMSchema), metadata={
        "description": "user only: the caller's VMs by name"})


@blp.route("")
@blp.response(200, DashboardSchema)
def get_metrics():
    """The dashboard's figures: the pool for the administrator, one's own for a user."""
    if not current_user.is_admin:
        board = dashboard_service.for_user(current_user)
        return {"scope": "user", "states": dict(board.states),
                "usage": usage_dict(current_user, board.usage),
                "vms": [v.as_dict() for v in board.vms]}
    board = dashboard_service.for_admin()
    return {"scope": "pool", "states": dict(board.states),
            "hosts": [v.as_dict() for v in board.hosts],
            "capacity": [asdict(c) for c in board.capacity],
            "busiest": [{"vm_id": vm.id, "name": vm.name, "owner": vm.owner.username,
                         "host": vm.host.name, "cpu_percent": cpu}
                        for vm, cpu in board.busiest],
            "events": board.events}
