from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

OS_CHOICES = [SelectChoice("linux", "Linux / other (UTC clock)"),
              SelectChoice("windows", "Windows (local-time clock)")]


class ImageForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    path = StringField("Path on the hosts", validators=[InputRequired(), Length(max=1024)],
                       render_kw={"placeholder": "/var/lib/libvirt/images/debian-12.qcow2"},
                       description="A qcow2 or raw file that already lies at this path on "
                                   "the hosts. LouCloud never copies or changes it.")
    os_type = SelectField("Guest OS", choices=OS_CHOICES)
    submit = SubmitField("Add image")


class ImageEditForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    os_type = SelectField("Guest OS", choices=OS_CHOICES)
    submit = SubmitField("Save")
