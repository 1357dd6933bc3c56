"""Who is asking: a personal token (`Authorization: Bearer lct_…`) or, for the pages' own
scripts, the session cookie. A token acts as its user (an administrator's as the
administrator); a read-only token may only read. A write sent with the cookie needs its
CSRF token like any form (no exemption: a page elsewhere cannot make the browser act);
a bearer token is never sent by a browser on its own, so it needs none."""
from __future__ import annotations

from flask import g, request
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import csrf
from ..services import NotAllowed
from ..services import tokens as token_service
from ..services.tokens import TokenRefused

SAFE = {"GET", "HEAD", "OPTIONS"}


def authenticate() -> None:
    """Before every request of a protected API blueprint."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _space, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise TokenRefused(_("Send the token as `Authorization: Bearer <token>`."))
        token = token_service.authenticate(secret.strip(), request.remote_addr)
        g._login_user = token.user      # Flask-Login's current_user, for this request only
        g.api_token = token
        if token.read_only and request.method not in SAFE:
            raise NotAllowed(_("This token is read-only: it may not change anything."))
        return
    g.api_token = None
    if not current_user.is_authenticated:
        raise TokenRefused(_("Send a LouCloud API token: `Authorization: Bearer <token>`."))
    if request.method not in SAFE:
        csrf.protect()
