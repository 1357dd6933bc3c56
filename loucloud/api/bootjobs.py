"""/api/v1/boot-jobs: the administrator's first-boot scripts of cloud images' VMs, as on
the boot jobs pages (loucloud/bootjobs/routes.py, `manage.py bootjobs`). A user reads
only those offered to users, by name and description (as the new VM page shows them),
to choose among them when creating a VM (boot_job_ids)."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import bootjobs as bootjob_service
from .common import Bool, PageArgs, admin_only, blueprint, page_of, page_schema

blp = blueprint("bootjobs", "First-boot scripts of cloud images' VMs (the administrator's; "
                            "users read those offered to them).")
URL = "/boot-jobs"

NAME = ma.validate.Length(1, 64)
DESCRIPTION = ma.validate.Length(max=255)
SCRIPT = ma.validate.Length(1, 16384)
SCRIPT_DOC = {"description": "cloud-config YAML: runcmd, write_files, packages or bootcmd; "
                             "at most 16 KiB"}


class BootJobSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    # The administrator's (absent for users)
    script = ma.fields.String(metadata={"description": "Administrator only"})
    is_default = ma.fields.Boolean(metadata={
        "description": "Run in every new VM of a cloud image (administrator only)"})
    user_choice = ma.fields.Boolean(metadata={
        "description": "Users may add it to their VMs (administrator only)"})
    templates = ma.fields.List(ma.fields.String(), metadata={
        "description": "The templates that run it (administrator only)"})
    created_at = ma.fields.String(metadata={"description": "Administrator only"})


BootJobPageSchema = page_schema(BootJobSchema, "BootJobPage")


class BootJobCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=NAME)
    script = ma.fields.String(required=True, validate=SCRIPT, metadata=SCRIPT_DOC)
    description = ma.fields.String(load_default="", validate=DESCRIPTION)
    is_default = Bool(load_default=False)
    user_choice = Bool(load_default=False)


class BootJobUpdateSchema(ma.Schema):
    """Only the fields sent change."""

    name = ma.fields.String(validate=NAME)
    script = ma.fields.String(validate=SCRIPT, metadata=SCRIPT_DOC)
    description = ma.fields.String(validate=DESCRIPTION)
    is_default = Bool()
    user_choice = Bool()


class BootJobMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


def job_dict(job) -> dict:
    out = {"id": job.id, "name": job.name, "description": job.description}
    if current_user.is_admin:
        out.update(script=job.script, is_default=job.is_default,
                   user_choice=job.user_choice, templates=[t.name for t in job.templates],
                   created_at=job.created_at.isoformat() + "Z")
    return out


blp.before_request(admin_only(_l("Only the administrator changes boot jobs."),
                                writes_only=True))


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, BootJobPageSchema)
def list_boot_jobs(args):
    """The boot jobs by name (for a user: those offered to users)."""
    page = bootjob_service.boot_jobs_page(offered_only=not current_user.is_admin,
                                          page=args["page"], per_page=args["limit"])
    return page_of([job_dict(j) for j in page.items], page=page.page, pages=page.pages,
                   limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(BootJobCreateSchema)
@blp.response(201, BootJobSchema)
def create_boot_job(data):
    """Save a new boot job.

    Its script is checked; answers 201 with its URL in Location."""
    job = bootjob_service.create_boot_job(data["name"], data["script"], data["description"],
                                          is_default=data["is_default"],
                                          user_choice=data["user_choice"])
    return job_dict(job), 201, {"Location": url_for("api_bootjobs.get_boot_job",
                                                    job_id=job.id)}


@blp.route("/<int:job_id>")
@blp.response(200, BootJobSchema)
def get_boot_job(job_id: int):
    """One boot job (a user: only one offered to users)."""
    return job_dict(bootjob_service.boot_job_for(current_user, job_id))


@blp.route("/<int:job_id>", methods=["PATCH"])
@blp.arguments(BootJobUpdateSchema)
@blp.response(200, BootJobSchema)
def update_boot_job(data, job_id: int):
    """Change a boot job (only the fields sent); VMs made before keep what they ran."""
    job = bootjob_service.get_boot_job(job_id)
    bootjob_service.update_boot_job(
        job, data.get("name", job.name), data.get("script", job.script),
        data.get("description", job.description),
        is_default=data.get("is_default", job.is_default),
        user_choice=data.get("user_choice", job.user_choice))
    return job_dict(job)


@blp.route("/<int:job_id>", methods=["DELETE"])
@blp.response(200, BootJobMessageSchema)
def delete_boot_job(job_id: int):
    """Delete a boot job: templates lose it, VMs made with it keep what ran."""
    job = bootjob_service.get_boot_job(job_id)
    name = job.name
    bootjob_service.delete_boot_job(job)
    return {"message": _("Boot job %(name)s deleted.", name=name)}
