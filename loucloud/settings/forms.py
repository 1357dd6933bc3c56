"""The settings form is built from the specs in services.settings, so a new setting
appears in the page by itself."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length, NumberRange

from ..forms import IntegerField

from ..services.settings import SPECS


class _Base(FlaskForm):
    submit = SubmitField(_l("Save settings"))


def settings_form_class():
    attrs = {}
    for spec in SPECS:
        if spec.kind is int:
            field = IntegerField(spec.label, description=spec.help, validators=[
                InputRequired(), NumberRange(spec.minimum, spec.maximum)])
        else:
            field = StringField(spec.label, description=spec.help,
                                validators=[InputRequired(), Length(max=64)])
        attrs[spec.key] = field
    return type("SettingsForm", (_Base,), attrs)


SettingsForm = settings_form_class()
