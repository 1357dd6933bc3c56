"""The REST API, /api/v1/: a third door into the same services as the pages and the CLI.

flask-smorest gives the request and response schemas (marshmallow), validation and the
OpenAPI 3 document, generated from this code and served at /api/v1/openapi.json; the
reference page (Swagger UI from npm) at /api/v1/docs. Authentication (auth.py) is a
personal token (`Authorization: Bearer lct_…`) or the pages' session cookie, whose
writes still need their CSRF token. Errors are RFC 9457 problem details (problems.py,
through loucloud/errors.py); rate limits per token and per address (limits.py).

A module per resource, each with one Blueprint made by common.blueprint() (which puts
the authentication and the rate limits on it): add the module to MODULES and its routes
to tests/test_api_access.py."""
from __future__ import annotations

import pkgutil
from importlib import import_module

from flask import Flask
from flask_smorest import Api

PREFIX = "/api/v1"
# Not resources: the package's own machinery and the reference page.
NOT_RESOURCES = {"auth", "common", "docs", "limits", "problems", "ratestore"}


def resources() -> list[str]:
    """The resource modules, by name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if m.name not in NOT_RESOURCES)
TITLE = "LouCloud API"
VERSION = "v1"


class LouCloudApi(Api):
    """flask-smorest's Api without its error handlers: loucloud/errors.py answers every
    error of the site, and under /api/ in the one problem shape, which the document
    says (application/problem+json, the Problem schema) for every error response."""

    def _register_error_handlers(self):
        pass

    def _register_responses(self):
        from http import HTTPStatus

        from .common import ProblemSchema
        from .problems import MEDIA_TYPE

        for status in list(HTTPStatus) + [None]:
            name = status.name if status else "DEFAULT_ERROR"
            response = {"description": status.phrase if status else "An error (RFC 9457)"}
            if status is None or status >= 400:
                response["content"] = {MEDIA_TYPE: {"schema": ProblemSchema}}
            self.spec.components.response(name, response, lazy=True)


def init_app(app: Flask) -> None:
    from . import limits

    app.config.setdefault("API_TITLE", TITLE)
    app.config.setdefault("API_VERSION", VERSION)
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "LouCloud's REST API: every action of the pages and the "
                                "command line. See docs/api.md."},
        "servers": [{"url": "/"}],
        "security": [{"token": []}, {"session": []}],
    })
    api = LouCloudApi(app)
    api.spec.components.security_scheme(
        "token", {"type": "http", "scheme": "bearer",
                  "description": "A personal API token (Profile page, or "
                                 "`manage.py tokens create USERNAME`)."})
    api.spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "loucloud_session",
                    "description": "The pages' session cookie; writes need the "
                                   "X-CSRFToken header."})
    from .common import register_problem_schema

    register_problem_schema(api.spec)
    for name in resources():
        module = import_module(f"{__name__}.{name}")
        api.register_blueprint(module.blp, url_prefix=PREFIX + getattr(module, "URL", ""))
    from .docs import bp as reference

    app.register_blueprint(reference)
    limits.init_app(app)
    app.extensions["loucloud_api"] = api
