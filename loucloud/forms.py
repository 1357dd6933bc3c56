"""Form fields shared by the blueprints' forms."""
from __future__ import annotations

from flask_babel import gettext as _
from wtforms import IntegerField as _IntegerField

from .models import INT64_MAX

# More characters than any number a column holds could need (19 digits, a sign, spaces).
MAX_NUMBER_LENGTH = 32


class IntegerField(_IntegerField):
    """WTForms' IntegerField that refuses, as a field error, numbers no column can hold.

    Every form uses this one: a whole number beyond float range (>= 2**1024) would make
    NumberRange's math.isnan() raise OverflowError (a 500), and one beyond 64 bits cannot
    be stored."""

    def process_formdata(self, valuelist):
        if valuelist and isinstance(valuelist[0], str) and \
                len(valuelist[0]) > MAX_NUMBER_LENGTH:
            self.data = None
            raise ValueError(_("Too large a number."))
        super().process_formdata(valuelist)
        if self.data is not None and abs(self.data) > INT64_MAX:
            self.data = None
            raise ValueError(_("Too large a number."))
