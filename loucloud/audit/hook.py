"""One audit event per state-changing request, whatever its outcome: the action is the
route (and its action word), the target the object in the URL or the name being
created, the result from the status and the messages shown to the user."""
from __future__ import annotations

from flask import g, message_flashed, request
from flask_login import current_user

from ..services import audit

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Form fields that name what is being created (never a password field).
NAME_FIELDS = ("name", "username")


def _target() -> str:
    args = dict(request.view_args or {})
    args.pop("action", None)
    parts = [f"{key.removesuffix('_id')} {value}" for key, value in sorted(args.items())]
    if not parts:
        for field in NAME_FIELDS:
            value = request.form.get(field)
            if value:
                parts.append(f"{field} {value[:64]!r}")
                break
    return ", ".join(parts)


# Flashes that carry a secret shown once (a VM's generated password): never recorded.
SECRET_CATEGORIES = {"password"}


def _remember_flash(app, message, category, **_extra) -> None:
    # Flashed messages may be rendered (and so consumed) within the request: keep a copy.
    if category not in SECRET_CATEGORIES:
        g.setdefault("audit_flashes", []).append((category, str(message)))


def register(app) -> None:
    message_flashed.connect(_remember_flash, app)

    @app.after_request
    def audit_state_changes(response):
        if request.method not in STATE_CHANGING or request.endpoint in (None, "static"):
            return response
        action = request.endpoint
        if request.view_args and "action" in request.view_args:
            action = f"{request.blueprint}.{request.view_args['action']}"
        shown = g.get("audit_flashes", [])
        if g.get("audit_result"):
            result = g.audit_result
        elif response.status_code >= 500:
            result = audit.FAILED
        elif response.status_code >= 400 or any(c == "danger" for c, _ in shown):
            result = audit.REFUSED
        else:
            result = audit.OK
        message = g.get("error_message") or next(
            (text for c, text in shown if c == "danger"), None) or \
            (shown[-1][1] if shown else "")
        user_id, username = None, ""
        if current_user.is_authenticated:
            user_id, username = current_user.id, current_user.username
        elif request.endpoint == "auth.login":
            username = (request.form.get("username") or "")[:64]
        audit.record(action, result, target=_target(), message=message, user_id=user_id,
                     username=username, address=request.remote_addr or "")
        return response
