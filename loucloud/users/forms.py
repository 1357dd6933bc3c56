from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, PasswordField, SelectChoice, SelectField, StringField,
                     SubmitField, TextAreaField)
from wtforms.validators import Email, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from ..forms import IntegerField
from ..services.passwords import MAX_LENGTH, MIN_LENGTH
from ..services.tokens import MAX_DAYS
from ..services.users import USERNAME_MESSAGE

USERNAME = [InputRequired(), Length(min=2, max=32),
            Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", message=USERNAME_MESSAGE)]
USERNAME_HINT = _l("The login name: ASCII letters (a-z, A-Z), digits, '.', '_' or '-'. The "
                   "full name may use any language.")


def _password(label=None):
    return PasswordField(label if label is not None else _l("Password"),
                         validators=[InputRequired(), Length(MIN_LENGTH, MAX_LENGTH)],
                         render_kw={"autocomplete": "new-password"})


def _confirm():
    return PasswordField(_l("Repeat the password"), validators=[
        InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})


class QuotaMixin:
    max_vms = IntegerField(_l("VMs"), validators=[InputRequired(), NumberRange(0, 10_000)])
    max_vcpus = IntegerField("vCPUs", validators=[InputRequired(), NumberRange(0, 100_000)])
    max_memory_mib = IntegerField(_l("Memory (MiB)"),
                                  validators=[InputRequired(), NumberRange(0, 100_000_000)])
    max_disk_gib = IntegerField(_l("Disk (GiB)"),
                                validators=[InputRequired(), NumberRange(0, 10_000_000)])


class UserCreateForm(QuotaMixin, FlaskForm):
    username = StringField(_l("User name"), validators=USERNAME, description=USERNAME_HINT)
    full_name = StringField(_l("Full name"), validators=[Optional(), Length(max=120)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=254),
                                              Email(check_deliverability=False)])
    password = _password()
    confirm = _confirm()
    submit = SubmitField(_l("Create user"))


class UserEditForm(QuotaMixin, FlaskForm):
    username = StringField(_l("User name"), validators=USERNAME, description=USERNAME_HINT)
    full_name = StringField(_l("Full name"), validators=[Optional(), Length(max=120)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=254),
                                              Email(check_deliverability=False)])
    submit = SubmitField(_l("Save"))


class PasswordResetForm(FlaskForm):
    password = _password(_l("New password"))
    confirm = _confirm()
    submit = SubmitField(_l("Set password"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[
        InputRequired(), Length(max=MAX_LENGTH)], render_kw={"autocomplete": "current-password"})
    password = _password(_l("New password"))
    confirm = _confirm()
    submit = SubmitField(_l("Change password"))


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField(_l("Search"), validators=[Optional(), Length(max=64)])
    role = SelectField(_l("Role"), choices=[SelectChoice("", _l("All roles")),
                                            SelectChoice("admin", _l("Administrator")),
                                            SelectChoice("user", _l("User"))],
                       validators=[Optional()])
    status = SelectField(_l("Status"), choices=[SelectChoice("", _l("Any status")),
                                                SelectChoice("active", _l("Active")),
                                                SelectChoice("disabled", _l("Disabled"))],
                         validators=[Optional()])


class SshKeyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=64)],
                       render_kw={"placeholder": _l("laptop")})
    key = TextAreaField(_l("Public key"), validators=[InputRequired(), Length(max=8192)],
                        render_kw={"rows": 3, "placeholder": "ssh-ed25519 AAAA… you@laptop"},
                        description=_l("The contents of your .pub file (ed25519, ECDSA or "
                                       "RSA of 2048 bits or more). New VMs of cloud images "
                                       "get it."))
    submit = SubmitField(_l("Add key"))


class ApiTokenForm(FlaskForm):
    # ids of their own: the SSH key form on the same page has a "name" too
    name = StringField(_l("Name"), id="token-name",
                       validators=[InputRequired(), Length(max=64)],
                       render_kw={"placeholder": _l("backup script")})
    read_only = BooleanField(_l("Read-only"), id="token-read-only",
                             description=_l("It may read everything you can see, and change "
                                            "nothing."))
    expires_days = IntegerField(_l("Expires after (days)"), id="token-expires", default=90,
                                validators=[Optional(), NumberRange(1, MAX_DAYS)],
                                render_kw={"placeholder": _l("never")},
                                description=_l("1 to %(max)d; empty: it never expires.",
                                               max=MAX_DAYS))
    submit = SubmitField(_l("Create token"), id="token-submit")
