from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import InputRequired, Length


class HostForm(FlaskForm):
    # The rules are the service's (services/names.py): letters of any language.
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)],
                       description=_l("Letters and digits of any language, '.', '_' or '-'."))
    uri = StringField("libvirt URI", validators=[InputRequired(), Length(max=255)],
                      render_kw={"placeholder": "qemu+tcp://10.0.0.5/system"},
                      description=_l("qemu:///system (this machine), qemu+ssh://root@h1/system, "
                                     "qemu+tcp://10.0.0.5/system, qemu+tls://h1/system, or "
                                     "test:///default for a simulated demo host."))
    submit = SubmitField(_l("Add host"))


class AcceptsForm(FlaskForm):
    accepts = HiddenField()
