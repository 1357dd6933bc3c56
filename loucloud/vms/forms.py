from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Optional, Regexp


class VMCreateForm(FlaskForm):
    name = StringField("Name", validators=[
        InputRequired(), Length(max=64),
        Regexp(r"^[A-Za-z0-9._-]+$", message="Use letters, digits, '-', '_' or '.'.")],
        render_kw={"placeholder": "web-1", "autofocus": True})
    template_id = SelectField("Template", coerce=int, validators=[InputRequired()])
    host_id = SelectField("Host", coerce=int, validators=[Optional()],
                            description="Automatic: the host with the image and the most "
                                        "free memory.")
    start = BooleanField("Start it now", default=True)
    submit = SubmitField("Create VM")


class VMFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField("Search", validators=[Optional(), Length(max=64)])
    owner = SelectField("Owner", coerce=int, validators=[Optional()])
    host = SelectField("Host", coerce=int, validators=[Optional()])
    state = SelectField("State", validators=[Optional()])
