"""/api/v1/images/uploads: an image sent through LouCloud (administrator only), by the
same chunked, resumable protocol as the upload page's script and `manage.py images
upload` (services/uploads.py): open an upload, send the file in chunks at the offset the
server has (raw bytes, application/octet-stream), ask that offset again after a dropped
connection, finish (the SHA-256 checked if given, the file checked from its own bytes,
the image recorded and its copy to the hosts started: 202 with the task's URL) or
abandon."""
from __future__ import annotations

import json

import marshmallow as ma
from flask import current_app, request, url_for
from flask_login import current_user
from werkzeug.exceptions import ClientDisconnected, LengthRequired
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import FieldError, ServiceError
from ..services import images as image_service
from ..services import tasklist as task_service
from ..services import uploads as upload_service
from .common import (Bool, Int, PageArgs, ProblemSchema, admin_only, blueprint, page_of,
                     page_schema)
from .images import FIRMWARE, LOGIN, NAME, NAME_DOC, ImageDetailSchema, image_dict
from .problems import MEDIA_TYPE, problem
from .tasks import TaskSchema, task_url

blp = blueprint("uploads", "Images uploaded through LouCloud in chunks, resumable "
                           "(administrator only).")
URL = "/images/uploads"
blp.before_request(admin_only(_l("Only the administrator uploads images.")))

ID = "A 32-digit hexadecimal id, from the upload's creation"
BINARY = {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}
# A chunk's body: the next bytes of the file, or none when ?zeros=N says them.
CHUNK_BODY = {**BINARY, "required": False,
              "description": "The chunk's bytes; none with ?zeros=N"}


class ChunkTooLarge(ServiceError):
    status = 413


class UploadSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"description": ID})
    name = ma.fields.String(required=True, metadata={"description": "The image's name"})
    filename = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True, metadata={"description": "The file's bytes"})
    offset = ma.fields.Integer(required=True, metadata={
        "description": "The bytes the server has: send the next chunk from there"})
    state = ma.fields.String(required=True, metadata={
        "description": "receiving, done or refused"})
    error = ma.fields.String(required=True, metadata={"description": "Why it was refused"})
    image_id = ma.fields.Integer(required=True, allow_none=True)
    chunk_bytes = ma.fields.Integer(required=True, metadata={
        "description": "The largest chunk the server takes (413 above)"})
    zero_run_bytes = ma.fields.Integer(required=True, metadata={
        "description": "The longest run of zeros one chunk request may say (?zeros=N)"})


UploadPageSchema = page_schema(UploadSchema, "UploadPage")


class UploadBeginSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=NAME, metadata=NAME_DOC)
    filename = ma.fields.String(required=True, validate=ma.validate.Length(1, 255), metadata={
        "description": "The file's name (its extension is checked against its bytes)"})
    size = Int(required=True, validate=ma.validate.Range(
        1, upload_service.MAX_SIZE), metadata={"description": "The file's bytes"})
    format = ma.fields.String(load_default="auto", validate=ma.validate.OneOf(
        list(upload_service.FORMAT_CHOICES)), metadata={
        "description": "auto: from the file's header"})
    sha256 = ma.fields.String(load_default="", validate=ma.validate.Regexp(
        r"^([0-9a-fA-F]{64})?$"), metadata={
        "description": "When given, a file whose SHA-256 differs is refused at the finish "
                       "and nothing is kept"})
    os_type = ma.fields.String(load_default="auto", validate=ma.validate.OneOf(
        ["auto", *image_service.OS_TYPES]), metadata={
        "description": "auto: from the file (an ISO's volume id) or its name"})
    cloud_init = Bool(load_default=False)
    login_user = ma.fields.String(load_default="", validate=LOGIN)
    firmware = ma.fields.String(load_default="bios", validate=FIRMWARE)
    hosts = ma.fields.List(Int(validate=ma.validate.Range(1, 2 ** 63 - 1)),
                           load_default=list, validate=ma.validate.Length(max=1000),
                           metadata={"description": "The hosts to copy it to (ids); "
                                                    "empty: every host"})


class ChunkArgs(ma.Schema):
    offset = ma.fields.Integer(required=True, validate=ma.validate.Range(
        0, upload_service.MAX_SIZE), metadata={
        "description": "Where the chunk starts in the file: the upload's offset"})
    zeros = ma.fields.Integer(validate=ma.validate.Range(1, upload_service.ZERO_RUN_MAX),
                              metadata={"description": (
        "Instead of a body: the next N bytes of the file are zeros (a run the client "
        "found in its file and does not send; the body is then empty). They count in the "
        "SHA-256 and stay a hole in the copies.")})


class ChunkSchema(ma.Schema):
    offset = ma.fields.Integer(required=True, metadata={
        "description": "The bytes the server has now"})


class OffsetProblemSchema(ProblemSchema):
    offset = ma.fields.Integer(metadata={
        "description": "The bytes the server has: send from there (a chunk at another "
                       "offset, or one cut short)"})


class UploadFinishedSchema(ma.Schema):
    image = ma.fields.Nested(ImageDetailSchema, required=True)
    task = ma.fields.Nested(TaskSchema, required=True, metadata={
        "description": "The copy to the hosts"})


class UploadMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


class InspectArgs(ma.Schema):
    filename = ma.fields.String(load_default="", validate=ma.validate.Length(max=255))


class InspectSchema(ma.Schema):
    format = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "qcow2, raw or iso; null when the file is none of them"})
    volume_id = ma.fields.String(required=True, metadata={"description": "An ISO's"})
    os_name = ma.fields.String(required=True)
    os_type = ma.fields.String(required=True)
    problem = ma.fields.String(required=True, metadata={
        "description": "Why the file would be refused, if it would"})


def upload_url(upload) -> str:
    return url_for("api_uploads.get_upload", upload_id=upload.id)


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, UploadPageSchema)
def list_uploads(args):
    """The uploads that stopped half-way (to resume or abandon), oldest first."""
    page = upload_service.unfinished_page(current_user, args["page"], args["limit"])
    return page_of([upload_service.as_dict(u) for u in page.items], page=page.page,
                   pages=page.pages, limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(UploadBeginSchema)
@blp.response(201, UploadSchema)
def begin_upload(data):
    """Open an upload, or find the unfinished one of the same name, file and size.

    The answer's offset says where to send from (0, or where a resumed upload
    stopped). Answers 201 with its URL in Location."""
    guest = image_service.Guest("linux", data["cloud_init"], data["login_user"],
                                data["firmware"])
    upload = upload_service.begin(current_user, data["name"], data["filename"], data["size"],
                                  fmt=data["format"], sha256=data["sha256"], guest=guest,
                                  os_type=data["os_type"], host_ids=data["hosts"])
    return upload_service.as_dict(upload), 201, {"Location": upload_url(upload)}


@blp.route("/<upload_id>")
@blp.response(200, UploadSchema)
def get_upload(upload_id: str):
    """An upload and the offset the server has (ask after a dropped connection)."""
    return upload_service.as_dict(upload_service.upload_for(current_user, upload_id))


@blp.route("/<upload_id>/chunk", methods=["POST"])
@blp.arguments(ChunkArgs, location="query")
@blp.doc(requestBody=CHUNK_BODY)
@blp.response(200, ChunkSchema)
@blp.alt_response(409, schema=OffsetProblemSchema, content_type=MEDIA_TYPE,
                  description="The chunk is not at the server's offset, or it was cut "
                              "short: send again from `offset`")
def send_chunk(args, upload_id: str):
    """Send the next bytes of the file at the server's offset.

    The raw body (application/octet-stream) with its Content-Length, at most
    chunk_bytes (413 above). A chunk at another offset is 409 with the server's
    offset; a chunk cut short keeps nothing of it. A run of zeros in the file
    (a disk image's empty space) may be said instead of sent: ?zeros=N and no body,
    up to zero_run_bytes at once; the zeros count in the SHA-256 and stay a hole in
    the image's copies."""
    upload = upload_service.upload_for(current_user, upload_id)
    length = request.content_length
    if "zeros" in args:
        if length:
            raise FieldError(_("A run of zeros (?zeros=N) has no body."), "zeros")
        try:
            offset = upload_service.receive(current_user, upload.id, args["offset"], None,
                                            args["zeros"], zeros=True)
        except upload_service.OffsetMismatch as exc:
            return _offset_problem(exc)
        return {"offset": offset}
    if length is None:
        raise LengthRequired(_("Send the chunk with its Content-Length."))
    limit = current_app.config["UPLOAD_CHUNK_BYTES"]
    if length > limit:
        raise ChunkTooLarge(_("A chunk holds at most %(limit)s bytes; this one has "
                              "%(length)s.", limit=limit, length=length))
    try:
        offset = upload_service.receive(current_user, upload.id, args["offset"], _read,
                                        length)
    except upload_service.OffsetMismatch as exc:
        return _offset_problem(exc)
    return {"offset": offset}


def _read(size: int) -> bytes:
    """The request's body, a connection dropped under it being an OSError as under
    mod_wsgi (the service keeps nothing of a chunk cut short: 409)."""
    try:
        return request.stream.read(size)
    except ClientDisconnected as exc:
        raise OSError(str(exc)) from None


def _offset_problem(exc: upload_service.OffsetMismatch):
    """409 with the offset the server has, for the client to resume from."""
    response = problem(409, str(exc))
    body = response.get_json()
    body["offset"] = exc.offset
    response.set_data(json.dumps(body))
    return response


@blp.route("/<upload_id>/finish", methods=["POST"])
@blp.response(202, UploadFinishedSchema)
def finish_upload(upload_id: str):
    """Finish an upload: check the file, record the image and copy it to the hosts.

    A SHA-256 given at the start must match (else 422, and nothing is kept); so must
    the file's own bytes (format, backing file, cut short). Answers 202 with the copy
    task's URL in Location."""
    image, task = upload_service.finish(current_user, upload_id)
    return {"image": image_dict(image, detail=True), "task": task_service.as_dict(task)}, \
        202, {"Location": task_url(task.id)}


@blp.route("/<upload_id>/abandon", methods=["POST"])
@blp.response(200, UploadMessageSchema)
def abandon_upload(upload_id: str):
    """Stop an upload and delete what arrived."""
    upload_service.abandon(current_user, upload_id)
    return {"message": _("Upload abandoned; what had arrived is deleted.")}


@blp.route("/inspect", methods=["POST"])
@blp.arguments(InspectArgs, location="query")
@blp.doc(requestBody=BINARY)
@blp.response(200, InspectSchema)
def inspect_file(args):
    """Tell a file's format and propose its OS from its first 40 KiB.

    The upload page asks this before it sends a file."""
    head = request.stream.read(upload_service.imagefiles.HEAD_BYTES)
    if not head:
        raise FieldError(_("Send the file's first bytes (up to 40 KiB) as the body."), "body")
    return upload_service.inspect_head(head, args["filename"])
