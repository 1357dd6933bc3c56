"""The batch pages' forms (issue 16)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..forms import IntegerField
from ..services.vms.batch import MAX_PER_USER


class BatchForm(FlaskForm):
    group_id = SelectField(_l("For"), coerce=int)
    usernames = TextAreaField(
        _l("Users"), validators=[Optional(), Length(max=20000)], render_kw={"rows": 3},
        description=_l("With \u201ca list of users\u201d: their login names, separated by "
                       "spaces, commas or lines."))
    template_id = SelectField(_l("Template"), coerce=int)
    pattern = StringField(_l("Names"), default="lab-{username}",
                          validators=[InputRequired(), Length(max=64)],
                          description=_l("{username} is each user's login name, {n} the "
                                         "VM's number for its user (with more than one "
                                         "each). Names need to differ only per user."))
    per_user = IntegerField(_l("VMs per user"), default=1,
                            validators=[InputRequired(), NumberRange(1, MAX_PER_USER)])
    expires_at = DateTimeLocalField(
        _l("Expires (UTC)"), validators=[Optional()], format="%Y-%m-%dT%H:%M",
        description=_l("Optional. Then the VMs are shut off and marked expired (kept, "
                       "not deleted) until the expiry is moved on."))
    submit = SubmitField(_l("Create the VMs"))


class ExpiryForm(FlaskForm):
    expires_at = DateTimeLocalField(_l("Expires (UTC)"), validators=[Optional()],
                                    format="%Y-%m-%dT%H:%M",
                                    description=_l("Empty: the VMs never expire."))
    submit = SubmitField(_l("Set the expiry"))
