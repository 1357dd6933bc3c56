from itertools import groupby

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..helpers import show_error
from ..security import admin_required
from ..services import FieldError
from ..services import settings as settings_service
from . import bp
from .forms import SettingsForm


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    current = settings_service.get_settings().as_dict()
    form = SettingsForm(data=current)
    if form.validate_on_submit():
        values = {spec.key: form[spec.key].data for spec in settings_service.SPECS}
        try:
            changed = settings_service.update_settings(values)
        except FieldError as exc:
            show_error(form, exc)
        else:
            flash(_("Settings saved (%(count)s changed).", count=len(changed)) if changed
                  else _("Nothing changed."), "success")
            return redirect(url_for("settings.index"))
    groups = [(name, [form[s.key] for s in specs])
              for name, specs in groupby(settings_service.SPECS, key=lambda s: s.group)]
    return render_template("settings/index.html", form=form, groups=groups)
