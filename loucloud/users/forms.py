from flask_wtf import FlaskForm
from wtforms import (BooleanField, PasswordField, SelectChoice, SelectField, StringField,
                     SubmitField, TextAreaField)
from wtforms.validators import Email, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from ..forms import IntegerField
from ..services.passwords import MAX_LENGTH, MIN_LENGTH
from ..services.tokens import MAX_DAYS

USERNAME = [InputRequired(), Length(min=2, max=32),
            Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                   message="Use letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit.")]


def _password(label="Password"):
    return PasswordField(label, validators=[InputRequired(), Length(MIN_LENGTH, MAX_LENGTH)],
                         render_kw={"autocomplete": "new-password"})


def _confirm():
    return PasswordField("Repeat the password", validators=[
        InputRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"})


class QuotaMixin:
    max_vms = IntegerField("VMs", validators=[InputRequired(), NumberRange(0, 10_000)])
    max_vcpus = IntegerField("vCPUs", validators=[InputRequired(), NumberRange(0, 100_000)])
    max_memory_mib = IntegerField("Memory (MiB)",
                                  validators=[InputRequired(), NumberRange(0, 100_000_000)])
    max_disk_gib = IntegerField("Disk (GiB)",
                                validators=[InputRequired(), NumberRange(0, 10_000_000)])


class UserCreateForm(QuotaMixin, FlaskForm):
    username = StringField("User name", validators=USERNAME)
    full_name = StringField("Full name", validators=[Optional(), Length(max=120)])
    email = StringField("E-mail", validators=[Optional(), Length(max=254),
                                              Email(check_deliverability=False)])
    password = _password()
    confirm = _confirm()
    submit = SubmitField("Create user")


class UserEditForm(QuotaMixin, FlaskForm):
    username = StringField("User name", validators=USERNAME)
    full_name = StringField("Full name", validators=[Optional(), Length(max=120)])
    email = StringField("E-mail", validators=[Optional(), Length(max=254),
                                              Email(check_deliverability=False)])
    submit = SubmitField("Save")


class PasswordResetForm(FlaskForm):
    password = _password("New password")
    confirm = _confirm()
    submit = SubmitField("Set password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[
        InputRequired(), Length(max=MAX_LENGTH)], render_kw={"autocomplete": "current-password"})
    password = _password("New password")
    confirm = _confirm()
    submit = SubmitField("Change password")


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField("Search", validators=[Optional(), Length(max=64)])
    role = SelectField("Role", choices=[SelectChoice("", "All roles"),
                                        SelectChoice("admin", "Administrator"),
                                        SelectChoice("user", "User")], validators=[Optional()])
    status = SelectField("Status", choices=[SelectChoice("", "Any status"),
                                            SelectChoice("active", "Active"),
                                            SelectChoice("disabled", "Disabled")],
                         validators=[Optional()])


class SshKeyForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=64)],
                       render_kw={"placeholder": "laptop"})
    key = TextAreaField("Public key", validators=[InputRequired(), Length(max=8192)],
                        render_kw={"rows": 3, "placeholder": "ssh-ed25519 AAAA… you@laptop"},
                        description="The contents of your .pub file (ed25519, ECDSA or RSA "
                                    "of 2048 bits or more). New VMs of cloud images get it.")
    submit = SubmitField("Add key")


class ApiTokenForm(FlaskForm):
    # ids of their own: the SSH key form on the same page has a "name" too
    name = StringField("Name", id="token-name", validators=[InputRequired(), Length(max=64)],
                       render_kw={"placeholder": "backup script"})
    read_only = BooleanField("Read-only", id="token-read-only",
                             description="It may read everything you can see, and change "
                                         "nothing.")
    expires_days = IntegerField("Expires after (days)", id="token-expires", default=90,
                                validators=[Optional(), NumberRange(1, MAX_DAYS)],
                                render_kw={"placeholder": "never"},
                                description=f"1 to {MAX_DAYS}; empty: it never expires.")
    submit = SubmitField("Create token", id="token-submit")
