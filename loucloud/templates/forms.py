from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..forms import IntegerField
from ..services.templates import LIMITS


class TemplateForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    image_id = SelectField("Image", coerce=int, validators=[InputRequired()])
    vcpus = IntegerField("vCPUs", validators=[InputRequired(), NumberRange(*LIMITS["vcpus"])])
    memory_mib = IntegerField("Memory (MiB)", validators=[
        InputRequired(), NumberRange(*LIMITS["memory_mib"])])
    disk_gib = IntegerField("Disk (GiB)", validators=[
        InputRequired(), NumberRange(*LIMITS["disk_gib"])],
        description="At least the image's virtual size.")
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Save template")
