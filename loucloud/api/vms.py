"""/api/v1/vms: list, create, read, act on and delete VMs; console links. The same
service functions as the VM pages (loucloud/vms/routes.py) and `manage.py vms`."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user

from ..services import hosts as host_service
from ..services import templates as template_service
from ..services import console as console_service
from ..services.access import vm_for
from ..services.vms import create as vm_create
from ..services.vms import lifecycle, state, views
from ..security import console_url
from .common import Bool, Int, PageArgs, blueprint, page_of, page_schema

blp = blueprint("vms", "Virtual machines: the user's own (every VM for the administrator).")
URL = "/vms"

ACTIONS = sorted(lifecycle.ACTIONS)
NAME = ma.validate.Length(1, 64)


class VMSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    owner = ma.fields.String(required=True, metadata={"description": "The owner's username"})
    host = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={
        "description": "libvirt's state (running, shut off, paused, crashed...), missing, "
                       "host offline, or the action under way"})
    status = ma.fields.String(required=True, metadata={
        "description": "LouCloud's record: ready, error, or the action under way"})
    vcpus = ma.fields.Integer(required=True)
    memory_mib = ma.fields.Integer(required=True)
    disk_gib = ma.fields.Integer(required=True)
    template = ma.fields.String(required=True)
    actions = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "What may be done now (start, shutdown, console...)"})
    error = ma.fields.String(allow_none=True, metadata={"description": "The last failure"})
    addresses = ma.fields.List(ma.fields.String(), required=True)
    network = ma.fields.String(allow_none=True)
    mac = ma.fields.String(allow_none=True)
    state_at = ma.fields.String(allow_none=True, metadata={
        "description": "When the state was last confirmed (ISO 8601, UTC)"})


VMPageSchema = page_schema(VMSchema, "VMPage")


class VMListArgs(PageArgs):
    q = ma.fields.String(load_default="", validate=ma.validate.Length(max=64),
                         metadata={"description": "Part of the name"})
    state = ma.fields.String(load_default="", validate=ma.validate.OneOf(
        [""] + views.FILTER_STATES))
    owner_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, 2 ** 63 - 1),
                                 metadata={"description": "Administrator only"})
    host_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, 2 ** 63 - 1),
                                metadata={"description": "Administrator only"})


class VMCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=NAME)
    template_id = Int(required=True, validate=ma.validate.Range(1, 2 ** 63 - 1))
    start = Bool(load_default=True)
    password = ma.fields.String(load_default=None, validate=ma.validate.Length(8, 128),
                                metadata={"description": "The guest user's password "
                                          "(cloud images); one is made and answered once "
                                          "when not given"})
    host_id = Int(load_default=None, validate=ma.validate.Range(1, 2 ** 63 - 1),
                  metadata={"description": "Administrator only"})
    ip_address = ma.fields.IPv4(load_default=None, metadata={"description": "Administrator only"})
    boot_job_ids = ma.fields.List(Int(validate=ma.validate.Range(1, 2 ** 63 - 1)),
                                  load_default=list, validate=ma.validate.Length(max=20))


class VMCreatedSchema(VMSchema):
    password = ma.fields.String(allow_none=True, metadata={
        "description": "The password made for the guest user, shown only in this answer"})


class MessageSchema(ma.Schema):
    message = ma.fields.String(required=True)
    vm = ma.fields.Nested(VMSchema)


class ConsoleSchema(ma.Schema):
    url = ma.fields.String(required=True, metadata={
        "description": "Open in a browser within a minute: the VM's screen (or its text "
                       "console), once"})
    websocket = ma.fields.String(required=True, metadata={
        "description": "The console proxy's WebSocket address"})
    token = ma.fields.String(required=True, metadata={"description": "One-time token"})


class ConsoleArgs(ma.Schema):
    kind = ma.fields.String(load_default="vnc", validate=ma.validate.OneOf(["vnc", "serial"]))


def vm_dict(vm) -> dict:
    return state.view_of(vm).as_dict()


@blp.route("")
@blp.arguments(VMListArgs, location="query")
@blp.response(200, VMPageSchema)
def list_vms(args):
    """The VMs the caller may see, by name; filtered as the VM list page filters."""
    page = state.list_vms(current_user, q=args["q"], owner_id=args["owner_id"],
                          host_id=args["host_id"], state=args["state"], page=args["page"],
                          per_page=args["limit"])
    return page_of([v.as_dict() for v in page.items], page=page.page, pages=page.pages,
                   limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(VMCreateSchema)
@blp.response(201, VMCreatedSchema)
def create_vm(data):
    """Create a VM from a template (and start it unless start is false). Answers 201,
    the VM's URL in Location."""
    template = template_service.get_template(data["template_id"])
    admin = current_user.is_admin
    host = host_service.get_host(data["host_id"]) if admin and data["host_id"] else None
    password, generated = data["password"], None
    if password is None and template.image.cloud_init:
        password = generated = vm_create.generate_password()
    vm = vm_create.create_vm(current_user, data["name"], template, host,
                             start=data["start"], password=password,
                             boot_job_ids=data["boot_job_ids"],
                             ip_address=str(data["ip_address"])
                             if admin and data["ip_address"] else None)
    return {**vm_dict(vm), "password": generated}, 201, {
        "Location": url_for("api_vms.get_vm", vm_id=vm.id)}


@blp.route("/<int:vm_id>")
@blp.response(200, VMSchema)
def get_vm(vm_id: int):
    """One VM with its live state and addresses."""
    return vm_dict(vm_for(current_user, vm_id))


@blp.route("/<int:vm_id>", methods=["DELETE"])
@blp.response(200, MessageSchema)
def delete_vm(vm_id: int):
    """Delete the VM, its disks and its record."""
    return {"message": lifecycle.delete_vm(vm_for(current_user, vm_id))}


@blp.route("/<int:vm_id>/actions/<any(%s):action>" % ",".join(ACTIONS), methods=["POST"])
@blp.response(200, MessageSchema)
def act(vm_id: int, action: str):
    """Start, shutdown, poweroff, reboot, reset, pause, resume or save (suspend to
    disk). 409 when the action does not fit the VM's state."""
    vm = vm_for(current_user, vm_id)
    message = lifecycle.act_on_vm(vm, action)
    return {"message": message, "vm": vm_dict(vm)}


@blp.route("/<int:vm_id>/console", methods=["POST"])
@blp.arguments(ConsoleArgs, location="query")
@blp.response(200, ConsoleSchema)
def console(args, vm_id: int):
    """A one-time console link: the screen (vnc) or the text console (serial) of a
    running VM."""
    vm = vm_for(current_user, vm_id)
    token = console_service.issue_token(current_user, vm, args["kind"])
    page = "vms.screen" if args["kind"] == "vnc" else "vms.terminal"
    return {"url": url_for(page, vm_id=vm.id, _anchor=token, _external=True),
            "websocket": console_url(), "token": token}
