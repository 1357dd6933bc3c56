"""/api/v1/images: the disk images and install media VMs are made from (administrator
only, as the images pages): list, read with the copy on each host, add by its path on
the hosts, edit, check again, delete, copy to the hosts that lack it. The same service
functions as loucloud/images/routes.py and `manage.py images`. Uploads: uploads.py."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import copytasks, imagecopy
from ..services import images as image_service
from ..services import tasklist as task_service
from .common import Bool, PageArgs, admin_only, blueprint, page_of, page_schema
from .tasks import TaskSchema, task_url

blp = blueprint("images", "Disk images and install media (administrator only).")
URL = "/images"

NAME = ma.validate.Length(1, 64)
NAME_DOC = {"description": "Letters and digits of any language (Debian 12 桌面), spaces or "
                          ". _ ( ) + -, starting with a letter or digit; no control, "
                          "invisible or mixed-script look-alike characters; stored "
                          "NFKC-normalised (a full-width ＶＭ１ is VM1)"}
OS_TYPE = ma.validate.OneOf(list(image_service.OS_TYPES))
FIRMWARE = ma.validate.OneOf(list(image_service.FIRMWARES))
LOGIN = ma.validate.Length(max=32)


blp.before_request(admin_only(_l("Only the administrator manages images.")))


def iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


class ImageCopySchema(ma.Schema):
    """The image on one host."""

    host = ma.fields.String(required=True)
    host_id = ma.fields.Integer(required=True)
    present = ma.fields.Boolean(required=True, metadata={
        "description": "Usable there: VMs may be made on that host"})
    state = ma.fields.String(required=True, metadata={
        "description": "found or missing (an image added by path); queued, copying, done "
                       "or failed (a copy LouCloud writes)"})
    copied = ma.fields.Integer(required=True, metadata={"description": "Bytes copied"})
    total = ma.fields.Integer(required=True, metadata={"description": "Bytes to copy"})
    error = ma.fields.String(required=True)
    checked_at = ma.fields.String(required=True, allow_none=True)


class ImageSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    path = ma.fields.String(required=True, metadata={"description": "Its file on the hosts"})
    format = ma.fields.String(required=True, metadata={"description": "qcow2, raw or iso"})
    virtual_size = ma.fields.Integer(required=True, metadata={"description": "Bytes"})
    os_type = ma.fields.String(required=True)
    cloud_init = ma.fields.Boolean(required=True)
    login_user = ma.fields.String(required=True)
    firmware = ma.fields.String(required=True)
    uploaded = ma.fields.Boolean(required=True, metadata={
        "description": "Uploaded through LouCloud (which keeps its own copy and copies it "
                       "to the hosts), rather than added by its path"})
    file_size = ma.fields.Integer(required=True, allow_none=True)
    sha256 = ma.fields.String(required=True, allow_none=True)
    created_at = ma.fields.String(required=True)
    hosts = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "The hosts where it is usable"})


class ImageDetailSchema(ImageSchema):
    copies = ma.fields.List(ma.fields.Nested(ImageCopySchema), required=True)
    tasks = ma.fields.List(ma.fields.Nested(TaskSchema), required=True, metadata={
        "description": "Its queued and running tasks (copies)"})


ImagePageSchema = page_schema(ImageSchema, "ImagePage")


class GuestFields(ma.Schema):
    os_type = ma.fields.String(validate=OS_TYPE, metadata={
        "description": "windows keeps the clock in local time"})
    cloud_init = Bool(metadata={
        "description": "It takes cloud-init first-boot data (a cloud image)"})
    login_user = ma.fields.String(validate=LOGIN, metadata={
        "description": "Its default user (debian, ubuntu...); needed with cloud_init"})
    firmware = ma.fields.String(validate=FIRMWARE)


class ImageAddSchema(GuestFields):
    name = ma.fields.String(required=True, validate=NAME, metadata=NAME_DOC)
    path = ma.fields.String(required=True, validate=ma.validate.Length(1, 1024), metadata={
        "description": "A qcow2 or raw file already at this path on the hosts"})


class ImageEditSchema(GuestFields):
    name = ma.fields.String(validate=NAME, metadata=NAME_DOC)


class ImageDeleteArgs(ma.Schema):
    delete_copies = ma.fields.Boolean(load_default=False, metadata={
        "description": "Also delete the copies LouCloud uploaded to the hosts (and its "
                       "own); the files of an image added by path are never touched"})


class ImageMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


class ImageRecheckedSchema(ImageMessageSchema):
    unreachable = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Hosts that could not be checked (and why)"})
    image = ma.fields.Nested(ImageDetailSchema, required=True)


class ImageDeletedSchema(ImageMessageSchema):
    not_deleted_on = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Hosts where a copy could not be deleted (offline)"})


def image_dict(image, *, detail: bool = False) -> dict:
    out = {"id": image.id, "name": image.name, "path": image.path, "format": image.format,
           "virtual_size": image.virtual_size, "os_type": image.os_type,
           "cloud_init": image.cloud_init, "login_user": image.login_user,
           "firmware": image.firmware, "uploaded": image.uploaded,
           "file_size": image.file_size, "sha256": image.sha256,
           "created_at": iso(image.created_at),
           "hosts": sorted(loc.host.name for loc in image.locations if loc.present)}
    if detail:
        out["copies"] = imagecopy.copies_progress(image)
        out["tasks"] = [task_service.as_dict(t)
                        for t in task_service.active_for("image", image.id)]
    return out


def image_url(image) -> str:
    return url_for("api_images.get_image", image_id=image.id)


def _guest(data: dict, image=None) -> image_service.Guest:
    """The guest's facts from the body, what it leaves out from ``image`` (or the
    defaults)."""
    base = image_service.Guest() if image is None else image_service.Guest(
        image.os_type, image.cloud_init, image.login_user, image.firmware)
    return image_service.Guest(data.get("os_type", base.os_type),
                               data.get("cloud_init", base.cloud_init),
                               data.get("login_user", base.login_user),
                               data.get("firmware", base.firmware))


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, ImagePageSchema)
def list_images(args):
    """The images, by name, with the hosts each is usable on."""
    page = image_service.images_page(args["page"], args["limit"])
    return page_of([image_dict(i) for i in page.items], page=page.page, pages=page.pages,
                   limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(ImageAddSchema)
@blp.response(201, ImageDetailSchema)
def add_image(data):
    """Add an image by the path of its file on the hosts.

    A qcow2 or raw file that already lies there, found through libvirt (never copied
    nor changed). Answers 201 with its URL in Location."""
    image = image_service.add_image(data["name"], data["path"], guest=_guest(data))
    return image_dict(image, detail=True), 201, {"Location": image_url(image)}


@blp.route("/<int:image_id>")
@blp.response(200, ImageDetailSchema)
def get_image(image_id: int):
    """One image, with its copy on each host and its tasks under way."""
    return image_dict(image_service.get_image(image_id), detail=True)


@blp.route("/<int:image_id>", methods=["PATCH"])
@blp.arguments(ImageEditSchema)
@blp.response(200, ImageDetailSchema)
def update_image(data, image_id: int):
    """Rename an image or say again what is inside it (VMs made before keep theirs)."""
    image = image_service.get_image(image_id)
    image_service.update_image(image, data.get("name", image.name),
                               guest=_guest(data, image))
    return image_dict(image, detail=True)


@blp.route("/<int:image_id>/recheck", methods=["POST"])
@blp.response(200, ImageRecheckedSchema)
def recheck_image(image_id: int):
    """Look for the image's file on every host again."""
    image = image_service.get_image(image_id)
    unreachable = image_service.recheck_image(image)
    message = _("Presence on the hosts checked again; not checked on %(hosts)s.",
                hosts=", ".join(unreachable)) if unreachable \
        else _("Presence on the hosts checked again.")
    return {"message": message, "unreachable": unreachable,
            "image": image_dict(image, detail=True)}


@blp.route("/<int:image_id>", methods=["DELETE"])
@blp.arguments(ImageDeleteArgs, location="query")
@blp.response(200, ImageDeletedSchema)
def delete_image(args, image_id: int):
    """Forget an image, and delete the copies LouCloud uploaded if asked.

    409 while templates, VMs or a copy use it. Its files on the hosts stay unless
    delete_copies asks to delete those LouCloud uploaded."""
    image = image_service.get_image(image_id)
    copies = args["delete_copies"]
    name, uploaded = image.name, image.uploaded
    left = image_service.delete_image(image, delete_copies=copies)
    if not copies or not uploaded:
        message = _("Image %(name)s removed from LouCloud; its file on the hosts is "
                    "untouched.", name=name)
    elif left:
        message = _("Image %(name)s removed with the copies LouCloud uploaded; not deleted "
                    "on %(hosts)s (offline).", name=name, hosts=", ".join(left))
    else:
        message = _("Image %(name)s removed with the copies LouCloud uploaded.", name=name)
    return {"message": message, "not_deleted_on": left}


@blp.route("/<int:image_id>/copy", methods=["POST"])
@blp.response(202, TaskSchema)
def copy_image(image_id: int):
    """Copy an uploaded image to every host that lacks it.

    Answers 202 with the copy task's URL in Location."""
    task = copytasks.copy_where_missing(current_user, image_service.get_image(image_id))
    return task_service.as_dict(task), 202, {"Location": task_url(task.id)}
