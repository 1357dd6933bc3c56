from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, FileField, SelectChoice, SelectField,
                     SelectMultipleField, StringField, SubmitField)
from wtforms.widgets import CheckboxInput, ListWidget
from wtforms.validators import InputRequired, Length, Optional

OS_CHOICES = [SelectChoice("linux", _l("Linux / other (UTC clock)")),
              SelectChoice("windows", _l("Windows (local-time clock)"))]
FIRMWARE_CHOICES = [SelectChoice("bios", "BIOS (SeaBIOS)"),
                    SelectChoice("uefi", _l("UEFI (OVMF on the host)"))]


class _Guest(FlaskForm):
    os_type = SelectField(_l("Guest OS"), choices=OS_CHOICES)
    cloud_init = BooleanField(_l("Takes cloud-init first-boot data (a cloud image)"),
                              description=_l("Then each VM gets its name as hostname, its "
                                             "owner's SSH keys, a login password and the boot "
                                             "jobs, from a small seed CD-ROM."))
    login_user = StringField(_l("Login user"), validators=[Optional(), Length(max=32)],
                             render_kw={"placeholder": "debian"},
                             description=_l("The image's default user (debian, ubuntu...): "
                                            "the password and keys are given to this user."))
    firmware = SelectField(_l("Firmware"), choices=FIRMWARE_CHOICES, default="bios")


class ImageForm(_Guest):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)])
    path = StringField(_l("Path on the hosts"), validators=[InputRequired(), Length(max=1024)],
                       render_kw={"placeholder": "/var/lib/libvirt/images/debian-12.qcow2"},
                       description=_l("A qcow2 or raw file that already lies at this path on "
                                      "the hosts. LouCloud never copies or changes it."))
    submit = SubmitField(_l("Add image"))


class ImageEditForm(_Guest):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)])
    submit = SubmitField(_l("Save"))


FORMAT_CHOICES = [SelectChoice("auto", _l("From the file (its header)")),
                  SelectChoice("qcow2", _l("qcow2 disk image")),
                  SelectChoice("raw", _l("raw disk image")),
                  SelectChoice("iso", _l("ISO 9660 install medium"))]


class UploadForm(_Guest):
    """Only the page's fields: the script sends the file in chunks (JSON doors)."""
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)])
    file = FileField(_l("File"), description=_l("qcow2, raw or ISO; of any size: it goes in "
                                                "chunks and resumes after a dropped connection."))
    format = SelectField(_l("Format"), choices=FORMAT_CHOICES, default="auto")
    sha256 = StringField(_l("SHA-256 (optional)"), validators=[Optional(), Length(max=64)],
                         description=_l("When given, an upload whose checksum differs is "
                                        "refused and nothing is kept."))
    os_type = SelectField(_l("Guest OS"), choices=[SelectChoice("auto", _l("From the file"))]
                          + OS_CHOICES, default="auto")
    hosts = SelectMultipleField(_l("Copy to the hosts"), coerce=int,
                                widget=ListWidget(prefix_label=False),
                                option_widget=CheckboxInput())
    submit = SubmitField(_l("Upload"))
