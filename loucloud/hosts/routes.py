from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext

from flask_login import current_user

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import copytasks
from ..services import leftovers as leftover_service
from ..services import maintenance
from ..services import hosts as host_service
from ..services.monitoring import metrics as metrics_service
from ..services.settings import get_settings
from . import bp
from .forms import AcceptsForm, HostForm


@bp.route("/")
@admin_required
def index():
    return render_template("hosts/index.html", views=host_service.list_hosts())


@bp.route("/status.json")
@admin_required
def status():
    return jsonify([v.as_dict() for v in host_service.list_hosts()])


@bp.route("/<int:host_id>/metrics.json")
@admin_required
def metrics(host_id: int):
    host = host_service.get_host(host_id)
    return jsonify(metrics_service.host_series(host, request.args.get("range", "hour")))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = HostForm()
    if form.validate_on_submit():
        try:
            host = host_service.add_host(form.name.data, form.uri.data)
        except FieldError as exc:
            show_error(form, exc, "uri")
        else:
            flash(_("Host %(name)s added: %(hostname)s, %(cpus)s CPUs, %(memory)s MiB.",
                    name=host.name, hostname=host.hostname, cpus=host.cpus,
                    memory=host.memory_mib), "success")
            return redirect(url_for("hosts.detail", host_id=host.id))
    return render_template("hosts/form.html", form=form), 400 if form.errors else 200


@bp.route("/<int:host_id>")
@admin_required
def detail(host_id: int):
    view = host_service.host_view(host_service.get_host(host_id))
    return render_template("hosts/detail.html", view=view, host=view.host,
                           leftovers=leftover_service.pending({host_id}),
                           maintenance=maintenance.maintenance_view(view.host),
                           refresh_seconds=get_settings().sample_interval_seconds)


@bp.route("/<int:host_id>/accepts", methods=["POST"])
@admin_required
def accepts(host_id: int):
    host = host_service.get_host(host_id)
    on = AcceptsForm().accepts.data == "1"
    return perform(lambda: host_service.set_accepts_vms(host, on),
                   done=_("%(name)s accepts new VMs.", name=host.name) if on else
                   _("%(name)s no longer accepts new VMs.", name=host.name),
                   back=url_for("hosts.detail", host_id=host.id))


@bp.route("/<int:host_id>/refresh", methods=["POST"])
@admin_required
def refresh(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: host_service.refresh_host(host),
                   done=_("Figures of %(name)s read again.", name=host.name),
                   back=url_for("hosts.detail", host_id=host.id))


@bp.route("/<int:host_id>/copy-images", methods=["POST"])
@admin_required
def copy_images(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: copytasks.copy_images_to_host(current_user, host),
                   done=lambda started: ngettext("Copying %(num)d image to %(host)s; see Tasks.",
                                                 "Copying %(num)d images to %(host)s; see Tasks.",
                                                 len(started), host=host.name),
                   back=url_for("hosts.detail", host_id=host.id))


@bp.route("/<int:host_id>/delete", methods=["POST"])
@admin_required
def delete(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: host_service.remove_host(host),
                   done=_("Host %(name)s removed from the pool. Nothing on it was changed.",
                          name=host.name),
                   back=url_for("hosts.index"),
                   refused_back=url_for("hosts.detail", host_id=host.id))

