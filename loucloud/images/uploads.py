"""Uploading an image: the page, and the JSON doors its script (and any client) uses:
open an upload (POST /images/uploads), send chunks at an offset (POST
/images/uploads/<id>/chunk?offset=N, the bytes as the body), ask the offset after a
dropped connection (GET /images/uploads/<id>), finish (…/finish: check, record, start
the copy to the hosts) or abandon (…/abandon)."""
from flask import g, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..errors import error_response
from ..helpers import perform
from ..security import admin_required
from ..services import FieldError, ServiceError
from ..services import hosts as host_service
from ..services import tasklist as task_service
from ..services import uploads as upload_service
from ..services.images import Guest
from . import bp
from .forms import UploadForm


@bp.route("/upload")
@admin_required
def upload_page():
    form = UploadForm()
    hosts = host_service.all_hosts()
    form.hosts.choices = [(h.id, h.name) for h in hosts]
    form.hosts.data = [h.id for h in hosts]
    return render_template("images/upload.html", form=form,
                           unfinished=upload_service.unfinished(current_user))


def _answer(fn, status=200):
    try:
        return jsonify(fn()), status
    except upload_service.OffsetMismatch as exc:
        g.error_message = str(exc)  # for the audit log
        return jsonify({"error": str(exc), "offset": exc.offset}), 409
    except ServiceError as exc:
        g.error_message = str(exc)
        body = {"error": str(exc)}
        if getattr(exc, "errors", None):
            body["fields"] = exc.errors
        return jsonify(body), exc.status


@bp.route("/uploads", methods=["POST"])
@admin_required
def upload_begin():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error_response(400, _("Send the upload's facts as a JSON object."))

    def begin():
        try:
            size = int(data.get("size"))
            hosts = [int(h) for h in data.get("hosts") or []]
        except (TypeError, ValueError):
            raise FieldError(_("Give the file's size in bytes and host ids."))
        guest = Guest("linux", bool(data.get("cloud_init")),
                      str(data.get("login_user") or ""), str(data.get("firmware") or "bios"))
        upload = upload_service.begin(current_user, str(data.get("name") or ""),
                                      str(data.get("filename") or ""), size,
                                      fmt=str(data.get("format") or "auto"),
                                      sha256=str(data.get("sha256") or ""), guest=guest,
                                      os_type=str(data.get("os_type") or "auto"),
                                      host_ids=hosts)
        return upload_service.as_dict(upload)
    return _answer(begin, 201)


@bp.route("/inspect", methods=["POST"])
@admin_required
def upload_inspect():
    """What the first 40 KiB of a file tell (the page sends them before the upload)."""
    head = request.get_data(cache=False)[:upload_service.imagefiles.HEAD_BYTES]
    return jsonify(upload_service.inspect_head(head, request.args.get("filename", "")))


@bp.route("/uploads/<upload_id>", methods=["GET"])
@admin_required
def upload_status(upload_id: str):
    return _answer(lambda: upload_service.as_dict(
        upload_service.upload_for(current_user, upload_id)))


@bp.route("/uploads/<upload_id>/chunk", methods=["POST"])
@admin_required
def upload_chunk(upload_id: str):
    try:
        offset = int(request.args.get("offset", ""))
    except ValueError:
        return error_response(400, _("Say the chunk's offset (?offset=N)."))
    length = request.content_length
    if "zeros" in request.args:  # a run of zeros the page found in the file, not sent
        try:
            run = int(request.args["zeros"])
        except ValueError:
            return error_response(400, _("Say the run's length (?zeros=N)."))
        if length:
            return error_response(400, _("A run of zeros (?zeros=N) has no body."))
        return _answer(lambda: {"offset": upload_service.receive(
            current_user, upload_id, offset, None, run, zeros=True)})
    if length is None:
        return error_response(411, _("Send the chunk with its Content-Length."))
    stream = request.stream
    return _answer(lambda: {"offset": upload_service.receive(current_user, upload_id,
                                                             offset, stream.read, length)})


@bp.route("/uploads/<upload_id>/finish", methods=["POST"])
@admin_required
def upload_finish(upload_id: str):
    def finish():
        image, task = upload_service.finish(current_user, upload_id)
        return {"image_id": image.id, "format": image.format, "os_type": image.os_type,
                "sha256": image.sha256, "task": task_service.as_dict(task),
                "url": url_for("images.detail", image_id=image.id)}
    return _answer(finish)


@bp.route("/uploads/<upload_id>/abandon", methods=["POST"])
@admin_required
def upload_abandon(upload_id: str):
    return perform(lambda: upload_service.abandon(current_user, upload_id),
                   done=_("Upload abandoned; what had arrived is deleted."),
                   back=url_for("images.upload_page"))
