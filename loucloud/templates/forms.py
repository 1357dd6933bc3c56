from flask_wtf import FlaskForm
from wtforms import (SelectChoice, SelectField, SelectMultipleField, StringField, SubmitField,
                     TextAreaField)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..forms import IntegerField
from ..services.templates import LIMITS

NIC_CHOICES = [SelectChoice("network", "A libvirt network (NAT, isolated...)"),
               SelectChoice("bridge", "A bridge of the host (the VM on the host's LAN)"),
               SelectChoice("none", "No network card")]

VISIBILITY_CHOICES = [SelectChoice("public", "Everybody"),
                      SelectChoice("groups", "The members of some groups only")]


class TemplateForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    image_id = SelectField("Image", coerce=int, validators=[InputRequired()])
    vcpus = IntegerField("vCPUs", validators=[InputRequired(), NumberRange(*LIMITS["vcpus"])])
    memory_mib = IntegerField("Memory (MiB)", validators=[
        InputRequired(), NumberRange(*LIMITS["memory_mib"])])
    disk_gib = IntegerField("Disk (GiB)", validators=[
        InputRequired(), NumberRange(*LIMITS["disk_gib"])],
        description="At least the image's virtual size.")
    nic_kind = SelectField("Network card", choices=NIC_CHOICES, default="network")
    network = StringField("Network or bridge", validators=[Optional(), Length(max=64)],
                          description="The libvirt network's name (empty: the one in "
                                      "Settings), or the host bridge's name (br0). New VMs "
                                      "go only to hosts where this network is active.")
    boot_jobs = SelectMultipleField("Boot jobs", coerce=int, validators=[Optional()],
                                    description="First-boot scripts its VMs run (cloud "
                                                "images only), besides the defaults.")
    visibility = SelectField("Offered to", choices=VISIBILITY_CHOICES, default="public")
    group_ids = SelectMultipleField("Groups", coerce=int, validators=[Optional()],
                                    description="When it is offered to some groups only: "
                                                "their members see it and make VMs of it "
                                                "(the administrator sees every template).")
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Save template")
