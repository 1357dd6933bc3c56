from flask_wtf import FlaskForm
from wtforms import (BooleanField, PasswordField, SelectField, SelectMultipleField,
                     StringField, SubmitField)
from wtforms.validators import InputRequired, Length, Optional


class VMCreateForm(FlaskForm):
    # The rules are the service's (services/names.py): letters of any language.
    name = StringField("Name", validators=[InputRequired(), Length(max=64)],
                       render_kw={"placeholder": "web-1", "autofocus": True})
    template_id = SelectField("Template", coerce=int, validators=[InputRequired()])
    host_id = SelectField("Host", coerce=int, validators=[Optional()],
                            description="Automatic: the host with the image and the most "
                                        "free memory.")
    password = PasswordField("Login password", validators=[Optional(), Length(max=128)],
                             render_kw={"autocomplete": "new-password"},
                             description="For the image's login user (cloud images). Leave "
                                         "it empty and one is made and shown to you once.")
    boot_jobs = SelectMultipleField("Boot jobs", coerce=int, validators=[Optional()],
                                    description="Extra first-boot scripts to run.")
    ip_address = StringField("Fixed address", validators=[Optional(), Length(max=45)],
                             description="On a network LouCloud made: a free address of its "
                                         "range (empty: the next free one).")
    start = BooleanField("Start it now", default=True)
    submit = SubmitField("Create VM")


class VMPasswordForm(FlaskForm):
    user = StringField("Guest user", validators=[InputRequired(), Length(max=32)])
    password = PasswordField("New password", validators=[InputRequired(), Length(max=128)],
                             render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Set password")


class VMFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField("Search", validators=[Optional(), Length(max=64)])
    owner = SelectField("Owner", coerce=int, validators=[Optional()])
    host = SelectField("Host", coerce=int, validators=[Optional()])
    state = SelectField("State", validators=[Optional()])
