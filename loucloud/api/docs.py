"""/api/v1/docs: the browsable reference, Swagger UI from npm served by LouCloud (a
page, not part of the API: no token needed to read the reference)."""
from __future__ import annotations

from flask import Blueprint, make_response, render_template, url_for

from ..security import allow_inline_styles

bp = Blueprint("api_docs", __name__)


@bp.route("/api/v1/docs")
def reference():
    """Swagger UI over /api/v1/openapi.json (its styles are made at run time)."""
    page = render_template("api/reference.html",
                           spec_url=url_for("api-docs.openapi_json"))
    return allow_inline_styles(make_response(page))
