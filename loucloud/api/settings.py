"""/api/v1/settings (the administrator's): every system setting with its value, default
and bounds, and changing some of them, checked by the same service as the Settings page
(loucloud/settings/routes.py): a wrong value changes nothing and is named (422)."""
from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from ..services import settings as settings_service
from .common import admin_only, blueprint

blp = blueprint("settings", "System settings (the administrator's).")
URL = "/settings"
blp.before_request(admin_only(_l("Only the administrator changes settings.")))


def _field(spec, *, required: bool) -> ma.fields.Field:
    meta = {"description": spec.help}
    if spec.kind is int:
        return ma.fields.Integer(required=required, metadata=meta,
                                 validate=ma.validate.Range(spec.minimum, spec.maximum))
    return ma.fields.String(required=required, metadata=meta,
                            validate=ma.validate.Length(1, 64))


# One property per setting (services/settings.py SPECS), typed: a new setting appears
# in the API by itself, as it does in the page.
SettingValuesSchema = ma.Schema.from_dict(
    {s.key: _field(s, required=True) for s in settings_service.SPECS}, name="SettingValues")
SettingChangeSchema = ma.Schema.from_dict(
    {s.key: _field(s, required=False) for s in settings_service.SPECS},
    name="SettingChange")


class SettingSpecSchema(ma.Schema):
    key = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    group = ma.fields.String(required=True)
    help = ma.fields.String(required=True)
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(["integer", "string"]))
    minimum = ma.fields.Integer(required=True, allow_none=True)
    maximum = ma.fields.Integer(required=True, allow_none=True)


class SettingsSchema(ma.Schema):
    values = ma.fields.Nested(SettingValuesSchema, required=True, metadata={
        "description": "What is in force"})
    defaults = ma.fields.Nested(SettingValuesSchema, required=True)
    specs = ma.fields.List(ma.fields.Nested(SettingSpecSchema), required=True, metadata={
        "description": "Each setting's label, group, help and bounds, in the page's order"})


class SettingsChangedSchema(SettingsSchema):
    changed = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "The settings whose value changed"})


def _settings() -> dict:
    specs = settings_service.SPECS
    return {"values": settings_service.get_settings().as_dict(),
            "defaults": {s.key: s.default for s in specs},
            "specs": [{"key": s.key, "label": s.label, "group": s.group, "help": s.help,
                       "type": "integer" if s.kind is int else "string",
                       "minimum": s.minimum, "maximum": s.maximum} for s in specs]}


@blp.route("")
@blp.response(200, SettingsSchema)
def get_settings():
    """Every setting with its value, its default and its bounds."""
    return _settings()


@blp.route("", methods=["PATCH"])
@blp.arguments(SettingChangeSchema)
@blp.response(200, SettingsChangedSchema)
def update_settings(data):
    """Change the settings sent (all or none: a wrong value changes nothing)."""
    changed = settings_service.update_settings(data)
    return {**_settings(), "changed": sorted(changed)}
