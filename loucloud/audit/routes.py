from flask import render_template, request
from flask_babel import lazy_gettext as _l
from wtforms import Form, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional

from ..helpers import page_arg
from ..security import admin_required
from ..services import audit as audit_service
from . import bp

PER_PAGE = 100


class AuditFilter(Form):
    username = StringField(_l("User"), validators=[Optional(), Length(max=64)])
    action = StringField(_l("Action"), validators=[Optional(), Length(max=64)])
    result = SelectField(_l("Result"), choices=[SelectChoice("", _l("Any result"))] + [
        SelectChoice(r, label) for r, label in (("ok", _l("ok")), ("refused", _l("refused")),
                                                ("failed", _l("failed")))],
        validators=[Optional()])
    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)])


@bp.route("/")
@admin_required
def index():
    form = AuditFilter(request.args)
    values = {k: (form[k].data or "").strip() for k in ("username", "action", "result", "q")} \
        if form.validate() else {}
    page = audit_service.search(**values, page=page_arg(PER_PAGE), per_page=PER_PAGE)
    return render_template("audit/index.html", page=page, form=form)
