"""What every API module shares: its blueprint (authentication on it),
the pagination arguments and envelope, the problem schema."""
from __future__ import annotations

import functools
from datetime import timezone

import marshmallow as ma
from flask import request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint

from ..extensions import csrf
from ..services import FieldError, NotAllowed
from .problems import flatten

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Int(ma.fields.Integer):
    """An integer in a JSON body: a JSON number without a fraction — never a string, a
    float or a boolean (marshmallow's Integer takes "5", 5.0 and true)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Bool(ma.fields.Boolean):
    """A boolean in a JSON body: true or false only (not 0, 1 or "yes")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):     # 0 == False in Python: checked by type
            raise self.make_error("invalid")
        return value


class UtcDateTime(ma.fields.DateTime):
    """A time the database keeps as naive UTC, answered as RFC 3339 with its zone."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


def blueprint(name: str, description: str, *, public: bool = False) -> Blueprint:
    """The flask-smorest Blueprint of one API module, named api_<name>. Not public:
    every request is authenticated first (auth.py). CSRF is checked by auth.py too:
    only for writes sent with the session cookie, never for a bearer token."""
    from . import auth

    bp = ApiBlueprint(f"api_{name}", __name__, description=description)
    csrf.exempt(bp)
    if not public:
        bp.before_request(auth.authenticate)
    return bp


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint whose routes that take a JSON body refuse a request
    without one (webargs reads a missing body as {}: a PATCH changing nothing, by
    accident). Checked when the route runs: after the blueprint's own checks (the
    token, administrator only), so those answer first."""

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        decorate = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorate
        instance = schema() if isinstance(schema, type) else schema

        def decorator(func):
            parsed = decorate(func)

            @functools.wraps(parsed)
            def view(*args, **kw):
                if not request.get_data(cache=True):
                    raise FieldError(_("This request takes a JSON body (Content-Type: "
                                       "application/json)."), "body")
                data = request.get_json(silent=True)
                loose = loosely_typed(instance, data)
                if loose:   # with what the schema finds wrong besides
                    raise FieldError.of({**flatten(instance.validate(data)), **loose})
                return parsed(*args, **kw)
            return view
        return decorator


def loosely_typed(schema: ma.Schema, data, prefix: str = "") -> dict[str, str]:
    """Fields of a JSON body whose JSON type is not the document's: marshmallow takes
    "5", 5.0 and true for an integer and 0, 1 or "yes" for a boolean; the API does not."""
    out: dict[str, str] = {}
    if not isinstance(data, dict):
        return out
    for name, field in schema.fields.items():
        key = field.data_key or name
        if key in data and not field.dump_only:
            out.update(_field_type(field, data[key], prefix + key))
    return out


def _field_type(field, value, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(field, ma.fields.Nested):
        nested = field.schema
        if field.many and isinstance(value, list):
            return {k: v for i, item in enumerate(value)
                    for k, v in loosely_typed(nested, item, f"{path}[{i}].").items()}
        return loosely_typed(nested, value, path + ".")
    if isinstance(field, ma.fields.List) and isinstance(value, list):
        return {k: v for i, item in enumerate(value)
                for k, v in _field_type(field.inner, item, f"{path}[{i}]").items()}
    if isinstance(field, ma.fields.Integer) and (isinstance(value, bool)
                                                  or not isinstance(value, int)):
        return {path: _("Not a valid integer.")}
    if isinstance(field, ma.fields.Number) and (isinstance(value, bool)
                                                 or not isinstance(value, (int, float))):
        return {path: _("Not a valid number.")}
    if isinstance(field, ma.fields.Boolean) and not isinstance(value, bool):
        return {path: _("Not a valid boolean.")}
    return {}


def admin_only(refusal, *, exempt: frozenset = frozenset(), writes_only: bool = False):
    """A before_request hook of a blueprint whose routes (but ``exempt``'s endpoints;
    with ``writes_only``, its writes) are the administrator's: 403 to anybody else,
    before any argument is read or id looked up. ``refusal``: the whole sentence, a
    lazy message (_l("Only the administrator ...")), said in the caller's language."""
    def check() -> None:
        if request.endpoint in exempt or current_user.is_admin:
            return
        if writes_only and request.method in ("GET", "HEAD", "OPTIONS"):
            return
        raise NotAllowed(str(refusal))
    return check


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details: the body of every error of the API."""

    type = ma.fields.String(metadata={"description": "A URI naming the kind of problem; "
                                                     "about:blank when the status says it"})
    title = ma.fields.String(required=True, metadata={"description": "The status's phrase"})
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(metadata={"description": "What went wrong, for a person"})
    instance = ma.fields.String(metadata={"description": "The path asked"})
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(),
                            metadata={"description": "Invalid fields and why (422)"})


def register_problem_schema(spec) -> None:
    if "Problem" not in spec.components.schemas:
        spec.components.schema("Problem", schema=ProblemSchema)


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(1, 10 ** 6),
                             metadata={"description": "The page, from 1"})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT,
                              validate=ma.validate.Range(1, MAX_LIMIT),
                              metadata={"description": f"Items per page, at most {MAX_LIMIT}"})


class PageSchema(ma.Schema):
    """The envelope of a list: its items and where the list stands."""

    page = ma.fields.Integer(required=True)
    pages = ma.fields.Integer(required=True, metadata={"description": "How many pages"})
    limit = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True, metadata={"description": "Items in all pages"})
    next = ma.fields.String(allow_none=True, metadata={"description": "The next page's URL"})


def page_of(items: list, *, page: int, pages: int, limit: int, total: int) -> dict:
    """A list's answer; ``next`` keeps the request's filters."""
    following = None
    if page < pages:
        args = {**request.args.to_dict(), "page": page + 1, "limit": limit}
        following = url_for(request.endpoint, **(request.view_args or {}), **args)
    return {"items": items, "page": page, "pages": max(pages, 1), "limit": limit,
            "total": total, "next": following}


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The envelope schema of a list of ``item_schema``."""
    return type(name, (PageSchema,), {"items": ma.fields.List(
        ma.fields.Nested(item_schema), required=True)})
