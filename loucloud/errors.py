"""Error pages (errors/<code>.html) and JSON errors for API calls; never a traceback."""
from __future__ import annotations

import logging

from flask import g, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from .api.problems import flatten, is_api_request, problem
from .extensions import db, login_manager
from .services import FieldError, ServiceError

log = logging.getLogger(__name__)

PAGES = {400, 403, 404, 405, 409, 429, 500, 503}
# The error pages' titles, said in the reader's language when shown (the API's problem
# titles are HTTP's own phrases, in English: api/problems.py).
TITLES = {400: _l("Bad request"), 401: _l("Log in required"), 403: _l("Forbidden"),
          404: _l("Not found"), 405: _l("Method not allowed"), 409: _l("Conflict"),
          413: _l("Too large"), 429: _l("Too many requests"), 500: _l("Something went wrong"),
          503: _l("Temporarily unavailable")}
# Werkzeug's own descriptions of the errors LouCloud lets it raise (abort(403), a wrong
# method, a body too large), said in the reader's language: gettext finds them by their
# English text.
WERKZEUG_DESCRIPTIONS = (
    _l("The browser (or proxy) sent a request that this server could not understand."),
    _l("You don't have the permission to access the requested resource. It is either "
       "read-protected or not readable by the server."),
    _l("The method is not allowed for the requested URL."),
    _l("A conflict happened while processing the request. The resource might have been "
       "modified while the request was being processed."),
    _l("The data value transmitted exceeds the capacity limit."),
    _l("This user has exceeded an allotted request count. Try again later."),
    _l("The server is temporarily unable to service your request due to maintenance "
       "downtime or capacity problems. Please try again later."))


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path.endswith(".json"):
        return True
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > \
        request.accept_mimetypes["text/html"]


def error_response(code: int, message: str | None = None, errors: dict | None = None):
    if is_api_request():
        return problem(code, message, errors=errors)
    title = str(TITLES[code]) if code in TITLES else _("Error")
    g.error_message = message or title  # for the audit log
    if wants_json():
        return make_response(jsonify({"error": message or title, "status": code}), code)
    template = f"errors/{code}.html" if code in PAGES else "errors/generic.html"
    return make_response(render_template(template, code=code, title=title, message=message),
                         code)


def register(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(400, _("This form has expired or was not sent from LouCloud. "
                                     "Go back, reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        message = exc.description if code not in (404, 500) else None
        if isinstance(message, str):
            message = _(message)   # werkzeug's English, or a text marked elsewhere
        if code == 404:
            message = _("There is nothing here, or it is not yours to see.")
        errors = None
        data = getattr(exc, "data", None)   # webargs: the fields at fault
        if isinstance(data, dict) and data.get("messages"):
            errors = flatten(data["messages"])
            message = None
        response = error_response(code, message, errors)
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    app.teardown_appcontext(_end_session)

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        if isinstance(exc, FieldError) and is_api_request() and exc.status == 400:
            # the API names the field at fault: 422, as its schemas do
            return error_response(422, str(exc), dict(exc.errors) or None)
        return error_response(exc.status, str(exc))

    @app.errorhandler(OperationalError)
    def database_down(exc):
        log.error("database unavailable: %s", exc.orig if hasattr(exc, "orig") else exc)
        _rollback()
        _forget_user()
        return error_response(503, _("The database is not answering. Try again in a moment."))

    @app.errorhandler(Exception)
    def unexpected(exc):
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            _rollback()
            _forget_user()
            return error_response(503, _("The database connection was lost. Try again."))
        log.exception("unexpected error on %s %s", request.method, request.path)
        _rollback()
        return error_response(500, _("The error has been logged. Try again, or tell the "
                                     "administrator what you were doing."))


def _end_session(_exc) -> None:
    """The request's database session closed when its app context ends (registered
    after Flask-SQLAlchemy's own teardown, so it runs first). Closing rolls back; when
    the database went away during the request, that rollback fails after the answer was
    made, and the failure would turn it into a 500: the session is thrown away
    instead (its connection invalidated, never returned to the pool)."""
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        log.warning("database session dropped at the end of a request: %s",
                    exc.orig if hasattr(exc, "orig") else exc)
        session = db.session.registry()
        try:
            session.invalidate()
        except SQLAlchemyError:
            log.debug("invalidating the dropped session failed", exc_info=True)
        db.session.registry.clear()


def _forget_user() -> None:
    """Render the error page as for an anonymous visitor: loading the user would need
    the database that just failed."""
    g._login_user = login_manager.anonymous_user()


def _rollback() -> None:
    try:
        db.session.rollback()
    except SQLAlchemyError:  # the session may be unusable when the database is gone
        log.debug("rollback after error failed", exc_info=True)
