from flask import render_template, request
from wtforms import Form, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional

from ..helpers import page_arg
from ..security import admin_required
from ..services import audit as audit_service
from . import bp

PER_PAGE = 100


class AuditFilter(Form):
    username = StringField("User", validators=[Optional(), Length(max=64)])
    action = StringField("Action", validators=[Optional(), Length(max=64)])
    result = SelectField("Result", choices=[SelectChoice("", "Any result")] + [
        SelectChoice(r, r) for r in ("ok", "refused", "failed")], validators=[Optional()])
    q = StringField("Search", validators=[Optional(), Length(max=100)])


@bp.route("/")
@admin_required
def index():
    form = AuditFilter(request.args)
    values = {k: (form[k].data or "").strip() for k in ("username", "action", "result", "q")} \
        if form.validate() else {}
    page = audit_service.search(**values, page=page_arg(PER_PAGE), per_page=PER_PAGE)
    return render_template("audit/index.html", page=page, form=form)
