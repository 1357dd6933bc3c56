from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from wtforms import SelectChoice

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import hosts as host_service
from ..services import networks as network_service
from . import bp
from .forms import NetworkActionForm, NetworkForm


def _form() -> NetworkForm:
    form = NetworkForm()
    form.hosts.choices = [SelectChoice(h.id, h.name) for h in host_service.all_hosts()]
    if not form.is_submitted():
        form.hosts.data = [h.id for h in host_service.all_hosts()]
    return form


@bp.route("/")
@admin_required
def index():
    return render_template("networks/index.html", hosts=network_service.list_host_networks(),
                           mode_label=network_service.mode_label, form=_form())


@bp.route("/new", methods=["POST"])
@admin_required
def create():
    form = _form()
    if form.validate_on_submit():
        try:
            results = network_service.create_network(
                form.name.data, form.subnet.data,
                [host_service.get_host(i) for i in form.hosts.data])
        except FieldError as exc:
            show_error(form, exc, "name")
        else:
            made = [h.name for h, error in results if error is None]
            for host, error in results:
                if error:
                    flash(_("%(name)s not made on %(host)s: %(error)s", name=form.name.data,
                            host=host.name, error=error), "danger")
            if made:
                flash(_("Network %(name)s (%(subnet)s) made and started on %(hosts)s.",
                        name=form.name.data, subnet=form.subnet.data, hosts=", ".join(made)),
                      "success")
            return redirect(url_for("networks.index"))
    return render_template("networks/index.html", hosts=network_service.list_host_networks(),
                           mode_label=network_service.mode_label, form=form), 400


@bp.route("/action", methods=["POST"])
@admin_required
def act():
    form = NetworkActionForm()

    def run() -> str:
        if not form.validate():
            raise FieldError(_("Choose a network and an action."))
        return network_service.network_action(host_service.get_host(form.host_id.data),
                                              form.name.data, form.action.data)

    return perform(run, done=lambda message: message, back=url_for("networks.index"))
