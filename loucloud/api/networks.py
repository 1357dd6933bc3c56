"""/api/v1/networks (the administrator's): every host's libvirt networks, making a NAT
network on hosts, and starting, stopping or (un)setting autostart of one. The same
service functions as the Networks page (loucloud/networks/routes.py) and
`manage.py networks`."""
from __future__ import annotations

import math

import marshmallow as ma
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import FieldError, NotFound, ServiceError
from ..services import hosts as host_service
from ..services import networks as network_service
from .common import PageArgs, PageSchema, admin_only, blueprint, page_of

blp = blueprint("networks", "Every host's libvirt networks (the administrator's).")
URL = "/networks"
blp.before_request(admin_only(_l("Only the administrator manages networks.")))

ID = ma.validate.Range(1, 2 ** 63 - 1)


def rows_page(rows: list, args: dict, **extra) -> dict:
    """A page of a list made whole by a service (every host asked at once), with the
    pagination of the other lists."""
    limit = args["limit"]
    pages = max(math.ceil(len(rows) / limit), 1)
    page = min(args["page"], pages)
    return {**page_of(rows[(page - 1) * limit:page * limit], page=page, pages=pages,
                      limit=limit, total=len(rows)), **extra}


def host_of(host_id: int, field: str):
    """The host a body names: 422 naming the field when there is none."""
    try:
        return host_service.get_host(host_id)
    except NotFound:
        raise FieldError(_("There is no host with this id."), field) from None


class HostUnreachableSchema(ma.Schema):
    host_id = ma.fields.Integer(required=True)
    host = ma.fields.String(required=True)
    error = ma.fields.String(required=True)


class NetworkSchema(ma.Schema):
    host_id = ma.fields.Integer(required=True)
    host = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    mode = ma.fields.String(required=True, metadata={
        "description": "NAT, bridge, routed, open or isolated"})
    active = ma.fields.Boolean(required=True)
    autostart = ma.fields.Boolean(required=True)
    managed = ma.fields.Boolean(required=True, metadata={
        "description": "Made by LouCloud: it gives VMs fixed addresses there"})
    bridge = ma.fields.String(required=True)
    subnet = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Its IPv4 network"})
    dhcp_start = ma.fields.String(required=True, allow_none=True)
    dhcp_end = ma.fields.String(required=True, allow_none=True)
    in_use = ma.fields.Integer(required=True, metadata={
        "description": "Addresses leased or reserved"})


class NetworkPageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(NetworkSchema), required=True)
    unreachable = ma.fields.List(ma.fields.Nested(HostUnreachableSchema), required=True,
                                 metadata={"description": "Hosts that could not tell"})


class NetworkListArgs(PageArgs):
    host_id = ma.fields.Integer(load_default=None, validate=ID)
    name = ma.fields.String(load_default="", validate=ma.validate.Length(max=64),
                            metadata={"description": "Only the networks of this name"})


class NetworkCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Regexp(
        network_service.NAME_RE, error=_l("Use 1 to 32 letters, digits, '_' or '-', "
                                          "starting with a letter or digit.")))
    subnet = ma.fields.String(required=True, validate=ma.validate.Length(1, 18), metadata={
        "description": "A private IPv4 network from /16 to /29, such as 10.20.0.0/24"})
    host_ids = ma.fields.List(ma.fields.Integer(validate=ID), load_default=None,
                              validate=ma.validate.Length(1, 1000), metadata={
        "description": "The hosts to make it on; left out: every host"})


class NetworkMadeSchema(ma.Schema):
    host_id = ma.fields.Integer(required=True)
    host = ma.fields.String(required=True)
    made = ma.fields.Boolean(required=True)
    error = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Why it was not made there"})


class NetworkCreatedSchema(ma.Schema):
    name = ma.fields.String(required=True)
    subnet = ma.fields.String(required=True)
    hosts = ma.fields.List(ma.fields.Nested(NetworkMadeSchema), required=True)


class NetworkActionSchema(ma.Schema):
    host_id = ma.fields.Integer(required=True, validate=ID)
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))


class NetworkMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


def _rows(host_networks, host_id: int | None, name: str) -> list[dict]:
    rows = []
    for hn in host_networks:
        if host_id is not None and hn.host.id != host_id:
            continue
        for net in hn.networks:
            if name and net.name != name:
                continue
            v4 = net.desc.ipv4()
            rows.append({"host_id": hn.host.id, "host": hn.host.name, "name": net.name,
                         "mode": network_service.mode_of(net.desc), "active": net.active,
                         "autostart": net.autostart, "managed": net.desc.managed,
                         "bridge": net.desc.bridge,
                         "subnet": str(v4.network) if v4 else None,
                         "dhcp_start": v4.dhcp_start if v4 else None,
                         "dhcp_end": v4.dhcp_end if v4 else None,
                         "in_use": hn.in_use.get(net.name, 0)})
    return rows


@blp.route("")
@blp.arguments(NetworkListArgs, location="query")
@blp.response(200, NetworkPageSchema)
def list_networks(args):
    """Every host's networks, by host; the hosts that could not tell in unreachable."""
    found = network_service.list_host_networks()
    unreachable = [{"host_id": hn.host.id, "host": hn.host.name, "error": hn.error}
                   for hn in found if hn.error and args["host_id"] in (None, hn.host.id)]
    return rows_page(_rows(found, args["host_id"], args["name"]), args,
                     unreachable=unreachable)


@blp.route("", methods=["POST"])
@blp.arguments(NetworkCreateSchema)
@blp.response(201, NetworkCreatedSchema)
def create_network(data):
    """Make a NAT network, started and autostarted, on the hosts: 201, each host's outcome."""
    hosts = [host_of(i, "host_ids") for i in dict.fromkeys(data["host_ids"])] \
        if data["host_ids"] is not None else host_service.all_hosts()
    if not hosts:
        raise FieldError(_("There is no host in the pool yet."), "host_ids")
    results = network_service.create_network(data["name"], data["subnet"], hosts)
    if all(error for _host, error in results):
        raise ServiceError(_("%(name)s was made on no host: %(errors)s", name=data["name"],
                             errors="; ".join(f"{host.name}: {error}"
                                              for host, error in results)))
    return {"name": data["name"], "subnet": data["subnet"].strip(), "hosts": [
        {"host_id": h.id, "host": h.name, "made": error is None, "error": error}
        for h, error in results]}, 201, {
        "Location": url_for("api_networks.list_networks", name=data["name"].strip())}


@blp.route("/actions/<any(%s):action>" % ",".join(f'"{a}"' for a in network_service.ACTIONS),
           methods=["POST"])
@blp.arguments(NetworkActionSchema)
@blp.response(200, NetworkMessageSchema)
def act(data, action: str):
    """Start or stop a host's network, or make it start with the host or not."""
    return {"message": network_service.network_action(
        host_of(data["host_id"], "host_id"), data["name"], action)}
