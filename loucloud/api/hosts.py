"""/api/v1/hosts (the administrator's): the host pool with live figures, adding and
removing hosts, whether a host accepts new VMs, its migration address, reading its
figures again, copying images to it, Drain / Undrain / Forget (issue 14), and its charts'
series. The same service functions as the Hosts pages (loucloud/hosts/) and
`manage.py hosts`."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from ..services import copytasks
from ..services import hosts as host_service
from ..services import leftovers as leftover_service
from ..services import maintenance, tasklist
from ..services.monitoring import metrics as metrics_service
from .common import PageArgs, UtcDateTime, admin_only, blueprint, page_of, page_schema
from .tasks import task_url

blp = blueprint("hosts", "The hypervisor hosts of the pool (the administrator's).")
URL = "/hosts"
blp.before_request(admin_only(_l("Only the administrator manages hosts.")))


class HostSchema(ma.Schema):
    """A host as the Hosts page (and its status.json) shows it: live, asked now."""
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    uri = ma.fields.String(required=True, metadata={"description": "Its libvirt URI"})
    hostname = ma.fields.String(required=True)
    online = ma.fields.Boolean(required=True, allow_none=True)
    offline_since = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "ISO 8601, UTC"})
    error = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Why it did not answer"})
    accepts_vms = ma.fields.Boolean(required=True)
    demo = ma.fields.Boolean(required=True, metadata={
        "description": "libvirt's test driver: a simulated host"})
    cpus = ma.fields.Integer(required=True)
    memory_mib = ma.fields.Integer(required=True)
    hypervisor = ma.fields.String(required=True)
    hypervisor_version = ma.fields.String(required=True)
    libvirt_version = ma.fields.String(required=True)
    vms = ma.fields.Integer(required=True, metadata={"description": "LouCloud VMs on it"})
    cpu_percent = ma.fields.Float(required=True, allow_none=True)
    memory_used_mib = ma.fields.Integer(required=True, allow_none=True)
    domains = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "Every domain of the host, LouCloud's or not"})


class HostTaskSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    url = ma.fields.String(required=True)


class HostDrainLineSchema(ma.Schema):
    vm = ma.fields.String(required=True)
    what = ma.fields.String(required=True, metadata={
        "description": "Moved where, moving, waiting, or why it could not move"})


class HostDrainSchema(ma.Schema):
    task = ma.fields.Nested(HostTaskSchema, required=True)
    summary = ma.fields.String(required=True)
    vms = ma.fields.List(ma.fields.Nested(HostDrainLineSchema), required=True)


class HostDetailSchema(HostSchema):
    arch = ma.fields.String(required=True)
    migration_address = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Where the other hosts reach it for migrations; null: the host "
                       "part of its URI"})
    draining = ma.fields.Boolean(required=True)
    created_at = UtcDateTime(required=True)
    leftovers = ma.fields.Integer(required=True, metadata={
        "description": "What failed steps left on it, removed when it answers"})
    tasks = ma.fields.List(ma.fields.Nested(HostTaskSchema), required=True, metadata={
        "description": "Its tasks under way (a drain)"})
    drain = ma.fields.Nested(HostDrainSchema, required=True, allow_none=True, metadata={
        "description": "The latest drain, under way or ended"})


HostPageSchema = page_schema(HostSchema, "HostPage")


class HostCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 64), metadata={
        "description": "Letters and digits of any language, '.', '_' or '-', starting with a "
                       "letter or digit; no control, invisible or mixed-script look-alike "
                       "characters; stored NFKC-normalised (a full-width ＶＭ１ is VM1)"})
    uri = ma.fields.String(required=True, validate=ma.validate.Length(1, 255), metadata={
        "description": "qemu:///system, qemu+ssh://root@h1/system, qemu+tcp://10.0.0.5/"
                       "system, qemu+tls://h1/system, or test:///default (a demo host)"})


class HostUpdateSchema(ma.Schema):
    accepts_vms = ma.fields.Boolean(metadata={"description": "Whether new VMs go there"})
    migration_address = ma.fields.String(allow_none=True,
                                         validate=ma.validate.Length(max=255), metadata={
        "description": "An IP address or host name; null or empty: the host part of its "
                       "URI"})


class HostMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


class HostTasksSchema(ma.Schema):
    message = ma.fields.String(required=True)
    tasks = ma.fields.List(ma.fields.Nested(HostTaskSchema), required=True)


class SeriesArgs(ma.Schema):
    range = ma.fields.String(load_default="hour", validate=ma.validate.OneOf(
        list(metrics_service.RANGES)))


def _floats():
    return ma.fields.List(ma.fields.Float(allow_none=True), required=True)


def _integers():
    return ma.fields.List(ma.fields.Integer(allow_none=True), required=True)


class HostSeriesSchema(ma.Schema):
    """The sampler's figures of a host over a range, a list per figure, one item per
    time in ``t`` (as the host page's charts read them)."""
    range = ma.fields.String(required=True)
    t = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "ISO 8601 times, UTC"})
    online = ma.fields.List(ma.fields.Boolean(), required=True)
    cpu_percent = _floats()
    memory_used_mib = _integers()
    memory_total_mib = _integers()
    domains_running = _integers()
    vms = _integers()


def _task(task) -> dict:
    return {"id": task.id, "kind": task.kind, "state": task.state, "url": task_url(task.id)}


def detail(host) -> dict:
    view = host_service.host_view(host)
    last = maintenance.last_drain(host)
    head, rows = maintenance.drain_lines(last)
    return {**view.as_dict(), "arch": host.arch, "migration_address": host.migration_address,
            "draining": bool(host.draining), "created_at": host.created_at,
            "leftovers": len(leftover_service.pending({host.id})),
            "tasks": [_task(t) for t in tasklist.active_for("host", host.id)],
            "drain": None if last is None else {
                "task": _task(last), "summary": head,
                "vms": [{"vm": vm, "what": what} for vm, what in rows]}}


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, HostPageSchema)
def list_hosts(args):
    """The hosts by name, with their live state and load."""
    page, views = host_service.hosts_page(args["page"], args["limit"])
    return page_of([v.as_dict() for v in views], page=page.page, pages=page.pages,
                   limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(HostCreateSchema)
@blp.response(201, HostDetailSchema)
def create_host(data):
    """Add a host by name and libvirt URI (it must answer): 201, its URL in Location."""
    host = host_service.add_host(data["name"], data["uri"])
    return detail(host), 201, {"Location": url_for("api_hosts.get_host", host_id=host.id)}


@blp.route("/<int:host_id>")
@blp.response(200, HostDetailSchema)
def get_host(host_id: int):
    """One host with its live figures, its maintenance and its latest drain."""
    return detail(host_service.get_host(host_id))


@blp.route("/<int:host_id>", methods=["PATCH"])
@blp.arguments(HostUpdateSchema)
@blp.response(200, HostDetailSchema)
def update_host(data, host_id: int):
    """Whether the host accepts new VMs, and its migration address (what is sent only)."""
    host = host_service.get_host(host_id)
    if "migration_address" in data:
        maintenance.set_migration_address(current_user, host, data["migration_address"])
    if "accepts_vms" in data:
        host_service.set_accepts_vms(host, data["accepts_vms"])
    return detail(host)


@blp.route("/<int:host_id>", methods=["DELETE"])
@blp.response(200, HostMessageSchema)
def delete_host(host_id: int):
    """Remove the host from the pool (409 while VMs live on it), changing nothing on it."""
    host = host_service.get_host(host_id)
    name = host.name
    host_service.remove_host(host)
    return {"message": _("Host %(name)s removed from the pool. Nothing on it was changed.",
                         name=name)}


@blp.route("/<int:host_id>/refresh", methods=["POST"])
@blp.response(200, HostDetailSchema)
def refresh_host(host_id: int):
    """Read the host's figures (CPUs, memory, versions) again."""
    return detail(host_service.refresh_host(host_service.get_host(host_id)))


@blp.route("/<int:host_id>/copy-images", methods=["POST"])
@blp.response(202, HostTasksSchema)
def copy_images(host_id: int):
    """Copy every uploaded image the host lacks to it, a task each: 202 (409: none)."""
    host = host_service.get_host(host_id)
    started = copytasks.copy_images_to_host(current_user, host)
    message = ngettext("Copying %(num)d image to %(host)s.", "Copying %(num)d images to "
                       "%(host)s.", len(started), host=host.name)
    return {"message": message, "tasks": [_task(t) for t in started]}, 202, {
        "Location": task_url(started[0].id)}


@blp.route("/<int:host_id>/drain", methods=["POST"])
@blp.response(202, HostTaskSchema)
def drain_host(host_id: int):
    """Drain the host: no new VMs, its VMs moved away by a task (202, task in Location)."""
    task = maintenance.drain(current_user, host_service.get_host(host_id))
    return _task(task), 202, {"Location": task_url(task.id)}


@blp.route("/<int:host_id>/undrain", methods=["POST"])
@blp.response(200, HostDetailSchema)
def undrain_host(host_id: int):
    """The host accepts VMs again (a drain under way is cancelled)."""
    return detail(maintenance.undrain(current_user, host_service.get_host(host_id)))


@blp.route("/<int:host_id>/forget", methods=["POST"])
@blp.response(200, HostMessageSchema)
def forget_host(host_id: int):
    """Remove an offline host with its VMs' records (409 while it answers)."""
    return {"message": maintenance.forget_host(current_user, host_service.get_host(host_id))}


@blp.route("/<int:host_id>/metrics")
@blp.arguments(SeriesArgs, location="query")
@blp.response(200, HostSeriesSchema)
def host_metrics(args, host_id: int):
    """The sampler's figures of the host over the last hour, day or week."""
    return metrics_service.host_series(host_service.get_host(host_id), args["range"])
