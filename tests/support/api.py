"""The REST API in tests: a personal token made by the real service, and a client that
sends it."""
from __future__ import annotations

from datetime import timedelta

from loucloud.extensions import db
from loucloud.models import User, utcnow
from loucloud.services import tokens as token_service


def make_token(app, username: str, *, read_only: bool = False, state: str = "active") -> str:
    """A token of ``username`` (made by the service); ``state`` 'expired' or 'revoked'
    makes it so afterwards. Returns the secret."""
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
        new = token_service.create_token(user, f"{state} token", read_only=read_only,
                                         expires_days=30)
        if state == "expired":
            new.token.expires_at = utcnow() - timedelta(seconds=1)
        elif state == "revoked":
            new.token.revoked_at = utcnow()
        db.session.commit()
        return new.secret


class ApiClient:
    """Flask's test client with a bearer token (or none)."""

    def __init__(self, app, token: str | None = None):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def open(self, method: str, url: str, **kw):
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def post(self, url, **kw):
        return self.open("POST", url, **kw)

    def delete(self, url, **kw):
        return self.open("DELETE", url, **kw)

    def patch(self, url, **kw):
        return self.open("PATCH", url, **kw)

    def put(self, url, **kw):
        return self.open("PUT", url, **kw)
