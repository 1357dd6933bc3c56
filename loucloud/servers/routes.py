from flask import flash, jsonify, redirect, render_template, request, url_for

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import leftovers as leftover_service
from ..services import servers as server_service
from ..services.monitoring import metrics as metrics_service
from ..services.settings import get_settings
from . import bp
from .forms import AcceptsForm, ServerForm


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
    server = server_service.get_server(server_id)
    return jsonify(metrics_service.host_series(server, request.args.get("range", "hour")))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = ServerForm()
    if form.validate_on_submit():
        try:
            server = server_service.add_server(form.name.data, form.uri.data)
        except FieldError as exc:
            show_error(form, exc, "uri")
        else:
            flash(f"Host {server.name} added: {server.hostname}, {server.cpus} CPUs, "
                  f"{server.memory_mib} MiB.", "success")
            return redirect(url_for("servers.detail", server_id=server.id))
    return render_template("servers/form.html", form=form), 400 if form.errors else 200


@bp.route("/<int:server_id>")
@admin_required
def detail(server_id: int):
    view = server_service.server_view(server_service.get_server(server_id))
    return render_template("servers/detail.html", view=view, server=view.server,
                           leftovers=leftover_service.pending({server_id}),
                           refresh_seconds=get_settings().sample_interval_seconds)


@bp.route("/<int:server_id>/accepts", methods=["POST"])
@admin_required
def accepts(server_id: int):
    server = server_service.get_server(server_id)
    on = AcceptsForm().accepts.data == "1"
    return perform(lambda: server_service.set_accepts_vms(server, on),
                   done=f"{server.name} {'accepts' if on else 'no longer accepts'} new VMs.",
                   back=url_for("servers.detail", server_id=server.id))


@bp.route("/<int:server_id>/refresh", methods=["POST"])
@admin_required
def refresh(server_id: int):
    server = server_service.get_server(server_id)
    return perform(lambda: server_service.refresh_server(server),
                   done=f"Figures of {server.name} read again.",
                   back=url_for("servers.detail", server_id=server.id))


@bp.route("/<int:server_id>/delete", methods=["POST"])
@admin_required
def delete(server_id: int):
    server = server_service.get_server(server_id)
    return perform(lambda: server_service.remove_server(server),
                   done=f"Host {server.name} removed from the pool. Nothing on it was "
                        "changed.",
                   back=url_for("servers.index"),
                   refused_back=url_for("servers.detail", server_id=server.id))
