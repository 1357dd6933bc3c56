from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from ..extensions import db
from ..helpers import show_error
from ..models import Server
from ..security import admin_required
from ..services import ServiceError
from ..services import leftovers as leftover_service
from ..services import metrics as metrics_service
from ..services import servers as server_service
from ..services.settings import get_settings
from . import bp
from .forms import AcceptsForm, ServerForm


def get_server_or_404(server_id: int) -> Server:
    """The host with this id (administrator pages only). Raises 404."""
    server = db.session.get(Server, server_id)
    if server is None:
        abort(404)
    return server


@bp.route("/")
@admin_required
def index():
    return render_template("servers/index.html", views=server_service.list_servers())


@bp.route("/status.json")
@admin_required
def status():
    return jsonify([v.as_dict() for v in server_service.list_servers()])


@bp.route("/<int:server_id>/metrics.json")
@admin_required
def metrics(server_id: int):
    server = get_server_or_404(server_id)
    return jsonify(metrics_service.host_series(server, request.args.get("range", "hour")))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = ServerForm()
    if form.validate_on_submit():
        try:
            server = server_service.add_server(form.name.data, form.uri.data)
        except server_service.ServerError as exc:
            db.session.rollback()
            show_error(form, exc, "uri")
        else:
            flash(f"Host {server.name} added: {server.hostname}, {server.cpus} CPUs, "
                  f"{server.memory_mib} MiB.", "success")
            return redirect(url_for("servers.detail", server_id=server.id))
    return render_template("servers/form.html", form=form), 400 if form.errors else 200


@bp.route("/<int:server_id>")
@admin_required
def detail(server_id: int):
    view = server_service.server_view(get_server_or_404(server_id))
    return render_template("servers/detail.html", view=view, server=view.server,
                           leftovers=leftover_service.pending({server_id}),
                           refresh_seconds=get_settings().sample_interval_seconds)


@bp.route("/<int:server_id>/accepts", methods=["POST"])
@admin_required
def accepts(server_id: int):
    server = get_server_or_404(server_id)
    form = AcceptsForm()
    on = form.accepts.data == "1"
    server_service.set_accepts_vms(server, on)
    flash(f"{server.name} {'accepts' if on else 'no longer accepts'} new VMs.", "success")
    return redirect(url_for("servers.detail", server_id=server.id))


@bp.route("/<int:server_id>/refresh", methods=["POST"])
@admin_required
def refresh(server_id: int):
    server = get_server_or_404(server_id)
    try:
        server_service.refresh_server(server)
    except ServiceError as exc:
        flash(str(exc), "danger")
    else:
        flash(f"Figures of {server.name} read again.", "success")
    return redirect(url_for("servers.detail", server_id=server.id))


@bp.route("/<int:server_id>/delete", methods=["POST"])
@admin_required
def delete(server_id: int):
    server = get_server_or_404(server_id)
    try:
        server_service.remove_server(server)
    except ServiceError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("servers.detail", server_id=server.id))
    flash(f"Host {server.name} removed from the pool. Nothing on it was changed.", "success")
    return redirect(url_for("servers.index"))
