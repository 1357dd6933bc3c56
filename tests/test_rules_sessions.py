"""Server-side sessions (services/auth.py): what a login stores, what a logout ends,
and that a cookie is only as good as its row."""
from __future__ import annotations

import hashlib

import pytest

from loucloud.console.proxy import Gate
from loucloud.extensions import db
from loucloud.services.console import ConsoleRefused
from loucloud.models import UserSession
from tests.conftest import Client


def sessions(app) -> list[UserSession]:
    with app.app_context():
        rows = db.session.execute(db.select(UserSession).order_by(UserSession.id)).scalars().all()
        db.session.expunge_all()
        return rows


def session_key(app, client) -> str:
    """The random key the signed cookie carries (Flask-Login's user id)."""
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.loads(client.http.get_cookie("loucloud_session").value)["_user_id"]


def test_logging_out_ends_this_session_only(app, user):
    laptop, phone = Client(app), Client(app)
    laptop.login("alice")
    phone.login("alice")
    stolen = laptop.http.get_cookie("loucloud_session").value
    assert laptop.post("/logout").status_code == 302
    replay = app.test_client()
    replay.set_cookie("loucloud_session", stolen)
    assert replay.get("/profile").status_code == 302
    assert phone.get("/profile").status_code == 200
    assert len(sessions(app)) == 1


def test_a_login_stores_the_keys_hash_and_where_it_came_from(app, user):
    client = Client(app)
    client.http.environ_base["HTTP_USER_AGENT"] = "Browser/1.0 " + "x" * 300
    client.http.environ_base["REMOTE_ADDR"] = "2001:db8::17"
    client.login("alice")
    key = session_key(app, client)
    [row] = sessions(app)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() != key
    assert row.user_id == user.id
    assert row.address == "2001:db8::17"
    assert row.user_agent == ("Browser/1.0 " + "x" * 300)[:255]  # fits its column


def test_every_login_is_a_new_session(app, user):
    first, second = Client(app), Client(app)
    first.login("alice")
    second.login("alice")
    assert session_key(app, first) != session_key(app, second)
    assert len({row.key_hash for row in sessions(app)}) == 2


def test_at_the_console_proxy_a_browser_nobody_logged_in_with_is_nobody(app, user):
    """The proxy reads the session from the cookie; a session without a login (the
    login page was shown, nothing more) is no user, and the handshake is refused."""
    stranger = Client(app)
    stranger.get("/login")
    assert "_user_id" not in app.session_interface.get_signing_serializer(app).loads(
        stranger.http.get_cookie("loucloud_session").value)
    with pytest.raises(ConsoleRefused, match="^unknown token$"):
        Gate(app).target(app.config["SITE_URL"], stranger.cookie(), "x" * 43)
