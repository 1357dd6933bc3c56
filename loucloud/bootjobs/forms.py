from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional


class BootJobForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)])
    description = StringField(_l("Description"), validators=[Optional(), Length(max=255)])
    script = TextAreaField(_l("Script (cloud-config YAML)"), validators=[
        InputRequired(), Length(max=16384)], render_kw={"rows": 10, "class": "font-monospace"},
        description=_l("runcmd, write_files, packages or bootcmd, as in cloud-init's "
                       "#cloud-config; at most 16 KiB."))
    is_default = BooleanField(_l("Run it in every new VM of a cloud image"))
    user_choice = BooleanField(_l("Users may add it to their VMs"))
    submit = SubmitField(_l("Save boot job"))
