from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, PasswordField, SelectField, SelectMultipleField,
                     StringField, SubmitField)
from wtforms.validators import InputRequired, Length, Optional


class VMCreateForm(FlaskForm):
    # The rules are the service's (services/names.py): letters of any language.
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)],
                       render_kw={"placeholder": "web-1", "autofocus": True})
    template_id = SelectField(_l("Template"), coerce=int, validators=[InputRequired()])
    host_id = SelectField(_l("Host"), coerce=int, validators=[Optional()],
                            description=_l("Automatic: the host with the image and the most "
                                           "free memory."))
    password = PasswordField(_l("Login password"), validators=[Optional(), Length(max=128)],
                             render_kw={"autocomplete": "new-password"},
                             description=_l("For the image's login user (cloud images). Leave "
                                            "it empty and one is made and shown to you once."))
    boot_jobs = SelectMultipleField(_l("Boot jobs"), coerce=int, validators=[Optional()],
                                    description=_l("Extra first-boot scripts to run."))
    ip_address = StringField(_l("Fixed address"), validators=[Optional(), Length(max=45)],
                             description=_l("On a network LouCloud made: a free address of its "
                                            "range (empty: the next free one)."))
    start = BooleanField(_l("Start it now"), default=True)
    submit = SubmitField(_l("Create VM"))


class VMPasswordForm(FlaskForm):
    user = StringField(_l("Guest user"), validators=[InputRequired(), Length(max=32)])
    password = PasswordField(_l("New password"), validators=[InputRequired(), Length(max=128)],
                             render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Set password"))


class VMFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField(_l("Search"), validators=[Optional(), Length(max=64)])
    owner = SelectField(_l("Owner"), coerce=int, validators=[Optional()])
    host = SelectField(_l("Host"), coerce=int, validators=[Optional()])
    state = SelectField(_l("State"), validators=[Optional()])
