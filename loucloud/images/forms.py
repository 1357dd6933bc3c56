from flask_wtf import FlaskForm
from wtforms import (BooleanField, FileField, SelectChoice, SelectField,
                     SelectMultipleField, StringField, SubmitField)
from wtforms.widgets import CheckboxInput, ListWidget
from wtforms.validators import InputRequired, Length, Optional

OS_CHOICES = [SelectChoice("linux", "Linux / other (UTC clock)"),
              SelectChoice("windows", "Windows (local-time clock)")]
FIRMWARE_CHOICES = [SelectChoice("bios", "BIOS (SeaBIOS)"),
                    SelectChoice("uefi", "UEFI (OVMF on the host)")]


class _Guest(FlaskForm):
    os_type = SelectField("Guest OS", choices=OS_CHOICES)
    cloud_init = BooleanField("Takes cloud-init first-boot data (a cloud image)",
                              description="Then each VM gets its name as hostname, its "
                                          "owner's SSH keys, a login password and the boot "
                                          "jobs, from a small seed CD-ROM.")
    login_user = StringField("Login user", validators=[Optional(), Length(max=32)],
                             render_kw={"placeholder": "debian"},
                             description="The image's default user (debian, ubuntu...): "
                                         "the password and keys are given to this user.")
    firmware = SelectField("Firmware", choices=FIRMWARE_CHOICES, default="bios")


class ImageForm(_Guest):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    path = StringField("Path on the hosts", validators=[InputRequired(), Length(max=1024)],
                       render_kw={"placeholder": "/var/lib/libvirt/images/debian-12.qcow2"},
                       description="A qcow2 or raw file that already lies at this path on "
                                   "the hosts. LouCloud never copies or changes it.")
    submit = SubmitField("Add image")


class ImageEditForm(_Guest):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    submit = SubmitField("Save")


FORMAT_CHOICES = [SelectChoice("auto", "From the file (its header)"),
                  SelectChoice("qcow2", "qcow2 disk image"),
                  SelectChoice("raw", "raw disk image"),
                  SelectChoice("iso", "ISO 9660 install medium")]


class UploadForm(_Guest):
    """Only the page's fields: the script sends the file in chunks (JSON doors)."""
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    file = FileField("File", description="qcow2, raw or ISO; of any size: it goes in "
                                         "chunks and resumes after a dropped connection.")
    format = SelectField("Format", choices=FORMAT_CHOICES, default="auto")
    sha256 = StringField("SHA-256 (optional)", validators=[Optional(), Length(max=64)],
                         description="When given, an upload whose checksum differs is "
                                     "refused and nothing is kept.")
    os_type = SelectField("Guest OS", choices=[SelectChoice("auto", "From the file")]
                          + OS_CHOICES, default="auto")
    hosts = SelectMultipleField("Copy to the hosts", coerce=int,
                                widget=ListWidget(prefix_label=False),
                                option_widget=CheckboxInput())
    submit = SubmitField("Upload")
