from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FileField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..forms import IntegerField
from ..services.bulk_users import MAX_BYTES, MAX_LINES
from ..services.groups import DESCRIPTION_MAX, LIMITS


def _limit(label, field: str) -> IntegerField:
    return IntegerField(label, validators=[Optional(), NumberRange(0, LIMITS[field])])


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)])
    description = StringField(_l("Description"), validators=[Optional(),
                                                          Length(max=DESCRIPTION_MAX)])
    max_vms = _limit(_l("VMs"), "max_vms")
    max_vcpus = _limit("vCPUs", "max_vcpus")
    max_memory_mib = _limit(_l("Memory (MiB)"), "max_memory_mib")
    max_disk_gib = _limit(_l("Disk (GiB)"), "max_disk_gib")
    submit = SubmitField(_l("Save group"))


class AddMembersForm(FlaskForm):
    usernames = StringField(_l("User names"), validators=[InputRequired(), Length(max=4000)],
                            description=_l("Existing users, separated by spaces or commas."))
    manager = BooleanField(_l("Managers of the group"),
                           description=_l("Managers see the members' VMs, start, stop and "
                                          "reset them and open their consoles."))
    submit = SubmitField(_l("Add members"))


class BulkUsersForm(FlaskForm):
    users = TextAreaField(
        _l("New users"), validators=[Optional(), Length(max=MAX_BYTES)],
        render_kw={"rows": 8, "placeholder": "username,full name,e-mail"},
        description=_l("One user a line: user name, full name, e-mail (the last two may be "
                       "left out); a header line is allowed; at most %(max)d users.",
                       max=MAX_LINES))
    file = FileField(_l("Or a CSV file"), description=_l("The same columns, in UTF-8."))
    submit = SubmitField(_l("Create users"))


class DownloadForm(FlaskForm):
    ticket = HiddenField(validators=[InputRequired(), Length(max=64)])
    key = HiddenField(validators=[InputRequired(), Length(max=64)])
