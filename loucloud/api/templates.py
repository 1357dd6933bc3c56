"""/api/v1/templates: the sizes VMs are made from. Every user reads those offered to him
(the public ones and those of his groups, as on the new VM page); the administrator
reads them all and creates, changes and deletes them, as on the templates pages. The
same service functions as loucloud/templates/routes.py and `manage.py templates`."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import templates as template_service
from .common import Bool, Int, PageArgs, admin_only, blueprint, page_of, page_schema

blp = blueprint("templates", "VM templates (sizes): every user reads those offered to "
                             "him, the administrator manages them.")
URL = "/templates"

ID = ma.validate.Range(1, 2 ** 63 - 1)


def _size(field: str) -> ma.validate.Range:
    return ma.validate.Range(*template_service.LIMITS[field])


class TemplateSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    vcpus = ma.fields.Integer(required=True)
    memory_mib = ma.fields.Integer(required=True)
    disk_gib = ma.fields.Integer(required=True)
    image = ma.fields.String(required=True, metadata={"description": "Its image's name"})
    cloud_init = ma.fields.Boolean(required=True, metadata={
        "description": "Its VMs get first-boot data: a login password, the owner's SSH "
                       "keys, boot jobs"})
    install_media = ma.fields.Boolean(required=True, metadata={
        "description": "Its image is an ISO: its VMs get a blank disk with the ISO "
                       "inserted"})
    # The administrator's (absent for users: the templates page is the administrator's)
    image_id = ma.fields.Integer(metadata={"description": "Administrator only"})
    notes = ma.fields.String(metadata={"description": "Administrator only"})
    nic_kind = ma.fields.String(metadata={
        "description": "network, bridge or none (administrator only)"})
    network = ma.fields.String(allow_none=True, metadata={
        "description": "The libvirt network (null: Settings' one) or the host bridge "
                       "(administrator only)"})
    boot_job_ids = ma.fields.List(ma.fields.Integer(), metadata={
        "description": "The boot jobs its VMs run besides the defaults (administrator "
                       "only)"})
    vms = ma.fields.Integer(metadata={
        "description": "VMs made from it (administrator only)"})
    public = ma.fields.Boolean(metadata={
        "description": "Offered to everybody; false: only to the members of its groups "
                       "(administrator only)"})
    group_ids = ma.fields.List(ma.fields.Integer(), metadata={
        "description": "The groups a template that is not public is offered to "
                       "(administrator only)"})


TemplatePageSchema = page_schema(TemplateSchema, "TemplatePage")

NIC_KIND = ma.validate.OneOf(list(template_service.NIC_KINDS))
NIC_DOC = {"description": "network: a libvirt network; bridge: a host bridge; none: no "
                          "network card"}
NETWORK = ma.validate.Length(max=64)
NETWORK_DOC = {"description": "The libvirt network (empty: Settings' one) or the host "
                              "bridge (br0)"}
JOBS = ma.validate.Length(max=100)
GROUPS = ma.validate.Length(max=500)
PUBLIC_DOC = {"description": "Offered to everybody (default); false: only to the members "
                             "of group_ids"}
GROUPS_DOC = {"description": "The groups it is offered to when it is not public"}


class TemplateCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))
    image_id = Int(required=True, validate=ID)
    vcpus = Int(required=True, validate=_size("vcpus"))
    memory_mib = Int(required=True, validate=_size("memory_mib"))
    disk_gib = Int(required=True, validate=_size("disk_gib"), metadata={
        "description": "At least the image's virtual size"})
    notes = ma.fields.String(load_default="", validate=ma.validate.Length(
        max=template_service.NOTES_MAX))
    nic_kind = ma.fields.String(load_default="network", validate=NIC_KIND, metadata=NIC_DOC)
    network = ma.fields.String(load_default="", validate=NETWORK, metadata=NETWORK_DOC)
    boot_job_ids = ma.fields.List(Int(validate=ID), load_default=list,
                                  validate=JOBS)
    public = Bool(load_default=True, metadata=PUBLIC_DOC)
    group_ids = ma.fields.List(Int(validate=ID), load_default=list, validate=GROUPS,
                               metadata=GROUPS_DOC)


class TemplateUpdateSchema(ma.Schema):
    """Only the fields sent change."""

    name = ma.fields.String(validate=ma.validate.Length(1, 64))
    image_id = Int(validate=ID)
    vcpus = Int(validate=_size("vcpus"))
    memory_mib = Int(validate=_size("memory_mib"))
    disk_gib = Int(validate=_size("disk_gib"))
    notes = ma.fields.String(validate=ma.validate.Length(max=template_service.NOTES_MAX))
    nic_kind = ma.fields.String(validate=NIC_KIND, metadata=NIC_DOC)
    network = ma.fields.String(validate=NETWORK, metadata=NETWORK_DOC)
    boot_job_ids = ma.fields.List(Int(validate=ID), validate=JOBS)
    public = Bool(metadata=PUBLIC_DOC)
    group_ids = ma.fields.List(Int(validate=ID), validate=GROUPS, metadata=GROUPS_DOC)


class TemplateMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


def template_dict(template, counts: dict[int, int] | None = None) -> dict:
    """What a user sees of a template (what the new VM page shows), and what the
    administrator sees of it besides (``counts``: VMs made, by template id)."""
    image = template.image
    out = {"id": template.id, "name": template.name, "vcpus": template.vcpus,
           "memory_mib": template.memory_mib, "disk_gib": template.disk_gib,
           "image": image.name, "cloud_init": image.cloud_init,
           "install_media": image.is_iso}
    if current_user.is_admin:
        out.update(image_id=template.image_id, notes=template.notes,
                   nic_kind=template.nic_kind, network=template.network,
                   boot_job_ids=[j.id for j in template.boot_jobs],
                   vms=(counts if counts is not None else
                        template_service.vm_counts()).get(template.id, 0),
                   public=bool(template.public), group_ids=[g.id for g in template.groups])
    return out


blp.before_request(admin_only(_l("Only the administrator changes templates."),
                                writes_only=True))


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, TemplatePageSchema)
def list_templates(args):
    """The templates offered to the caller (every one to the administrator), by name:
    those he may make a VM of."""
    page = template_service.templates_page(args["page"], args["limit"], current_user)
    counts = template_service.vm_counts() if current_user.is_admin else None
    return page_of([template_dict(t, counts) for t in page.items], page=page.page,
                   pages=page.pages, limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(TemplateCreateSchema)
@blp.response(201, TemplateSchema)
def create_template(data):
    """Create a template on an image. Answers 201, its URL in Location."""
    template = template_service.create_template(
        data["name"], template_service.Sizes(data["vcpus"], data["memory_mib"],
                                             data["disk_gib"]),
        data["image_id"], data["notes"],
        network=template_service.Network(data["nic_kind"], data["network"]),
        boot_job_ids=data["boot_job_ids"],
        visibility=template_service.Visibility(data["public"], tuple(data["group_ids"])))
    return template_dict(template), 201, {
        "Location": url_for("api_templates.get_template", template_id=template.id)}


@blp.route("/<int:template_id>")
@blp.response(200, TemplateSchema)
def get_template(template_id: int):
    """One template offered to the caller (404 for one kept for groups he is not in)."""
    return template_dict(template_service.template_for(current_user, template_id))


@blp.route("/<int:template_id>", methods=["PATCH"])
@blp.arguments(TemplateUpdateSchema)
@blp.response(200, TemplateSchema)
def update_template(data, template_id: int):
    """Change a template (only the fields sent); VMs made from it keep their sizes."""
    template = template_service.get_template(template_id)
    sizes = template_service.Sizes(data.get("vcpus", template.vcpus),
                                   data.get("memory_mib", template.memory_mib),
                                   data.get("disk_gib", template.disk_gib))
    network = None
    if "nic_kind" in data or "network" in data:
        network = template_service.Network(data.get("nic_kind", template.nic_kind),
                                           data.get("network", template.network or ""))
    visibility = None
    if "public" in data or "group_ids" in data:
        public = data.get("public", template.public)
        visibility = template_service.Visibility(public, tuple(data.get(
            "group_ids", [] if public else [g.id for g in template.groups])))
    template_service.update_template(
        template, data.get("name", template.name), sizes,
        data.get("image_id", template.image_id), data.get("notes", template.notes),
        network=network, boot_job_ids=data.get("boot_job_ids"), visibility=visibility)
    return template_dict(template)


@blp.route("/<int:template_id>", methods=["DELETE"])
@blp.response(200, TemplateMessageSchema)
def delete_template(template_id: int):
    """Delete a template; 409 while VMs made from it remain."""
    template = template_service.get_template(template_id)
    name = template.name
    template_service.delete_template(template)
    return {"message": _("Template %(name)s deleted.", name=name)}
