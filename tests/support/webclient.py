"""A browser-like client of the WSGI app (Flask's test client): logs in through the
form and sends CSRF tokens. Used by the tests and the benchmarks."""
from __future__ import annotations

import re

from tests.factories import DEFAULT_PASSWORD

CSRF_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Client:
    def __init__(self, app, username=None):
        self.app = app
        self.http = app.test_client()
        self.username = username

    def csrf(self) -> str:
        html = self.http.get("/login").get_data(as_text=True)
        match = CSRF_RE.search(html)
        if match is None:  # logged in: /login redirects; any page carries the token
            html = self.http.get("/profile").get_data(as_text=True)
            match = CSRF_RE.search(html)
        return match.group(1)

    def login(self, username, password=DEFAULT_PASSWORD):
        response = self.post("/login", {"username": username, "password": password})
        self.username = username
        return response

    def get(self, url, **kw):
        return self.http.get(url, **kw)

    def post(self, url, data=None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        return self.http.post(url, data=data, **kw)

    def cookie(self, name: str = "loucloud_session") -> str:
        """The session cookie as a Cookie header value (for a websocket)."""
        return f"{name}={self.http.get_cookie(name).value}"
