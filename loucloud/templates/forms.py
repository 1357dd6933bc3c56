from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (SelectChoice, SelectField, SelectMultipleField, StringField, SubmitField,
                     TextAreaField)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..forms import IntegerField
from ..services.templates import LIMITS

NIC_CHOICES = [SelectChoice("network", _l("A libvirt network (NAT, isolated...)")),
               SelectChoice("bridge", _l("A bridge of the host (the VM on the host's LAN)")),
               SelectChoice("none", _l("No network card"))]

VISIBILITY_CHOICES = [SelectChoice("public", _l("Everybody")),
                      SelectChoice("groups", _l("The members of some groups only"))]


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=64)])
    image_id = SelectField(_l("Image"), coerce=int, validators=[InputRequired()])
    vcpus = IntegerField("vCPUs", validators=[InputRequired(), NumberRange(*LIMITS["vcpus"])])
    memory_mib = IntegerField(_l("Memory (MiB)"), validators=[
        InputRequired(), NumberRange(*LIMITS["memory_mib"])])
    disk_gib = IntegerField(_l("Disk (GiB)"), validators=[
        InputRequired(), NumberRange(*LIMITS["disk_gib"])],
        description=_l("At least the image's virtual size."))
    nic_kind = SelectField(_l("Network card"), choices=NIC_CHOICES, default="network")
    network = StringField(_l("Network or bridge"), validators=[Optional(), Length(max=64)],
                          description=_l("The libvirt network's name (empty: the one in "
                                         "Settings), or the host bridge's name (br0). New VMs "
                                         "go only to hosts where this network is active."))
    boot_jobs = SelectMultipleField(_l("Boot jobs"), coerce=int, validators=[Optional()],
                                    description=_l("First-boot scripts its VMs run (cloud "
                                                   "images only), besides the defaults."))
    visibility = SelectField(_l("Offered to"), choices=VISIBILITY_CHOICES, default="public")
    group_ids = SelectMultipleField(_l("Groups"), coerce=int, validators=[Optional()],
                                    description=_l("When it is offered to some groups only: "
                                                   "their members see it and make VMs of it "
                                                   "(the administrator sees every template)."))
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Save template"))
