"""The work of LouCloud: each function orders database and hypervisor calls for one user
action, owns its transaction and undoes what it did on a host when a later step fails.

Every refusal is a ServiceError whose ``status`` is the HTTP status the web and API
doors answer with and whose text is the message shown to the person (the CLI prints it).
"""
from __future__ import annotations

import functools

from flask_babel import gettext as _

from ..extensions import db
from . import said


class ServiceError(Exception):
    """An action was refused or failed; ``str(e)`` is the message shown to the user.
    Raised with a lazy message (``_l(...)``, said.Joined) it keeps it as ``said``: a
    task's row stores it, to be said in its reader's language (said.of)."""

    status = 400

    def __init__(self, *args):
        self.said = args[0] if args and said.is_message(args[0]) else None
        if self.said is not None:
            args = (str(self.said),) + args[1:]
        super().__init__(*args)


class FieldError(ServiceError):
    """Bad input. ``errors`` maps each form field at fault to its message; ``field`` is
    the first of them (None: the input as a whole)."""

    def __init__(self, message: str, field: str | None = None, *,
                 errors: dict[str, str] | None = None, status: int | None = None):
        super().__init__(message)
        message = str(self)
        self.errors = dict(errors) if errors else ({field: message} if field else {})
        self.field = next(iter(self.errors), None)
        if status is not None:
            self.status = status

    @classmethod
    def of(cls, errors: dict[str, str]) -> FieldError:
        """One refusal naming several fields."""
        return cls("; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)


class NotAllowed(ServiceError):
    status = 403


class NotFound(ServiceError):
    """No such thing, or not the asker's to see (the two are never told apart)."""

    status = 404

    def __init__(self, message: str | None = None):
        super().__init__(message or _("There is nothing here, or it is not yours to see."))


class Conflict(ServiceError):
    """The action does not fit the current state (HTTP 409)."""

    status = 409


class Unavailable(ServiceError):
    """A host (or the database) cannot do it now (HTTP 503)."""

    status = 503


def transaction(fn):
    """A service function's unit of work: when it refuses (ServiceError), whatever it
    had changed in the session is thrown away before the refusal goes up, so no caller
    ever has to roll back."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ServiceError:
            db.session.rollback()
            raise
    return run


def paginate(stmt, page: int, per_page: int):
    """A page of ``stmt``'s rows (Flask-SQLAlchemy's Pagination); a page beyond the last
    shows the last one."""
    result = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    if result.pages and result.page > result.pages:
        result = db.paginate(stmt, page=result.pages, per_page=per_page, error_out=False)
    return result
