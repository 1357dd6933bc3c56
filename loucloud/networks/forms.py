from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

from ..forms import IntegerField


class NetworkForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=32)],
                       render_kw={"placeholder": "lab"})
    subnet = StringField(_l("IPv4 network"), validators=[InputRequired(), Length(max=18)],
                         render_kw={"placeholder": "10.20.0.0/24"},
                         description=_l("A private network; the host takes its first "
                                        "address, VMs get fixed addresses from the rest."))
    hosts = SelectMultipleField(_l("Hosts"), coerce=int, validators=[InputRequired()])
    submit = SubmitField(_l("Create network"))


class NetworkActionForm(FlaskForm):
    host_id = IntegerField(validators=[InputRequired()])
    name = HiddenField(validators=[InputRequired(), Length(max=64)])
    action = HiddenField(validators=[InputRequired(), Length(max=16)])
