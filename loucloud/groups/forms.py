from flask_wtf import FlaskForm
from wtforms import BooleanField, FileField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..forms import IntegerField
from ..services.bulk_users import MAX_BYTES, MAX_LINES
from ..services.groups import DESCRIPTION_MAX, LIMITS


def _limit(label: str, field: str) -> IntegerField:
    return IntegerField(label, validators=[Optional(), NumberRange(0, LIMITS[field])])


class GroupForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    description = StringField("Description", validators=[Optional(),
                                                          Length(max=DESCRIPTION_MAX)])
    max_vms = _limit("VMs", "max_vms")
    max_vcpus = _limit("vCPUs", "max_vcpus")
    max_memory_mib = _limit("Memory (MiB)", "max_memory_mib")
    max_disk_gib = _limit("Disk (GiB)", "max_disk_gib")
    submit = SubmitField("Save group")


class AddMembersForm(FlaskForm):
    usernames = StringField("User names", validators=[InputRequired(), Length(max=4000)],
                            description="Existing users, separated by spaces or commas.")
    manager = BooleanField("Managers of the group",
                           description="Managers see the members' VMs, start, stop and "
                                       "reset them and open their consoles.")
    submit = SubmitField("Add members")


class BulkUsersForm(FlaskForm):
    users = TextAreaField(
        "New users", validators=[Optional(), Length(max=MAX_BYTES)],
        render_kw={"rows": 8, "placeholder": "username,full name,e-mail"},
        description=f"One user a line: user name, full name, e-mail (the last two may be "
                    f"left out); a header line is allowed; at most {MAX_LINES} users.")
    file = FileField("Or a CSV file", description="The same columns, in UTF-8.")
    submit = SubmitField("Create users")


class DownloadForm(FlaskForm):
    ticket = HiddenField(validators=[InputRequired(), Length(max=64)])
    key = HiddenField(validators=[InputRequired(), Length(max=64)])
