"""Logging in and out, throttling, sessions that end, safe redirects, password hashes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from loucloud import create_app
from loucloud.extensions import db
from loucloud.models import LoginAttempt, UserSession
from loucloud.services import settings as settings_service
from loucloud.services.auth import BAD_CREDENTIALS
from tests.conftest import PASSWORD, Client
from tests.factories import make_user


def test_login_and_logout(anon, user):
    response = anon.login("alice")
    assert response.status_code == 302
    assert anon.get("/profile").status_code == 200
    response = anon.post("/logout")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert anon.get("/profile").status_code == 302


@pytest.mark.parametrize("username,password", [
    ("alice", "wrong password!"),   # a real user, wrong password
    ("nobody", PASSWORD),           # no such user
    ("ALICE", "wrong password!"),
])
def test_one_generic_message(anon, user, username, password):
    response = anon.login(username, password)
    assert response.status_code == 401
    assert BAD_CREDENTIALS in response.get_data(as_text=True)


def test_user_names_are_case_insensitive(anon, user):
    assert anon.login("Alice").status_code == 302


def test_disabled_user_cannot_log_in(app, anon):
    with app.app_context():
        make_user("carol", active=False)
    response = anon.login("carol")
    assert response.status_code == 401
    assert BAD_CREDENTIALS in response.get_data(as_text=True)


def test_throttle_per_account(app, anon, user):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        assert anon.login("alice", "wrong password!").status_code == 401
    # Even the right password is refused now, with a message saying when to retry.
    response = anon.login("alice")
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    # Another account from the same address is not locked by alice's failures.
    with app.app_context():
        make_user("bob")
    assert Client(app).login("bob").status_code == 302


def test_throttle_per_address(app):
    with app.app_context():
        make_user("victim")
    limit = app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    client = Client(app)
    for i in range(limit):
        client.login(f"guess{i}", "whatever password")
    response = client.login("victim")
    assert response.status_code == 429


def test_throttle_window_passes(app, anon, user):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        anon.login("alice", "wrong password!")
    with app.app_context():
        for attempt in db.session.execute(db.select(LoginAttempt)).scalars():
            attempt.at -= timedelta(seconds=app.config["LOGIN_WINDOW_SECONDS"] + 1)
        db.session.commit()
    assert anon.login("alice").status_code == 302


def test_success_resets_the_account_count(app, anon, user):
    limit = app.config["LOGIN_MAX_FAILURES_PER_USER"]
    for _ in range(limit - 1):
        anon.login("alice", "wrong password!")
    assert anon.login("alice").status_code == 302
    anon.post("/logout")
    for _ in range(limit - 1):
        anon.login("alice", "wrong password!")
    assert anon.login("alice").status_code == 302


@pytest.mark.parametrize("target,expected", [
    ("/users/", "/users/"),
    ("/profile?tab=1", "/profile?tab=1"),
    ("//evil.example/x", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("/%0d%0aSet-Cookie:x=1", "/"),  # CR LF: refused, no header injection
])
def test_next_stays_on_site(app, admin, target, expected):
    client = Client(app)
    response = client.post(f"/login?next={target}",
                           {"username": "admin", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_logout_makes_the_cookie_worthless(app, user):
    client = Client(app)
    client.login("alice")
    stolen = client.http.get_cookie("loucloud_session").value
    client.post("/logout")
    replay = app.test_client()
    replay.set_cookie("loucloud_session", stolen)
    assert replay.get("/profile").status_code == 302


def test_idle_session_expires(app, as_user):
    with app.app_context():
        settings_service.update_settings({"session_idle_minutes": 5})
        for row in db.session.execute(db.select(UserSession)).scalars():
            row.last_seen_at -= timedelta(minutes=6)
        db.session.commit()
    response = as_user.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(UserSession.id))).scalar() == 0


def test_active_session_is_kept_alive(app, as_user):
    with app.app_context():
        settings_service.update_settings({"session_idle_minutes": 5})
        for row in db.session.execute(db.select(UserSession)).scalars():
            row.last_seen_at -= timedelta(minutes=4)
        db.session.commit()
    assert as_user.get("/profile").status_code == 200
    with app.app_context():
        settings_service.update_settings({"session_idle_minutes": 1})
    # last_seen_at was just refreshed, so a 1-minute idle bound still holds.
    assert as_user.get("/profile").status_code == 200


def test_password_change_ends_other_sessions_only(app, user):
    laptop, phone = Client(app), Client(app)
    laptop.login("alice")
    phone.login("alice")
    response = laptop.post("/profile", {"current_password": PASSWORD,
                                        "password": "a brand new secret",
                                        "confirm": "a brand new secret"})
    assert response.status_code == 302
    assert laptop.get("/profile").status_code == 200
    assert phone.get("/profile").status_code == 302
    assert Client(app).login("alice", "a brand new secret").status_code == 302


def test_password_change_needs_the_current_password(as_user):
    response = as_user.post("/profile", {"current_password": "not it at all",
                                         "password": "a brand new secret",
                                         "confirm": "a brand new secret"})
    assert response.status_code == 400
    assert "current password is wrong" in response.get_data(as_text=True)


def test_disabling_a_user_ends_their_sessions(app, as_admin, user):
    victim = Client(app)
    victim.login("alice")
    assert victim.get("/profile").status_code == 200
    as_admin.post(f"/users/{user.id}/disable")
    assert victim.get("/profile").status_code == 302
    assert Client(app).login("alice").status_code == 401


def test_admin_password_reset_ends_sessions(app, as_admin, user):
    victim = Client(app)
    victim.login("alice")
    response = as_admin.post(f"/users/{user.id}/password",
                             {"password": "reset by admin 1", "confirm": "reset by admin 1"})
    assert response.status_code == 302
    assert victim.get("/profile").status_code == 302
    assert Client(app).login("alice", "reset by admin 1").status_code == 302


def test_session_cookie_flags(app, user):
    client = Client(app)
    response = client.login("alice")
    cookie = response.headers.getlist("Set-Cookie")[-1]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_password_hash_strength(tmp_path):
    """The real (non-test) configuration hashes with Argon2id at OWASP strength."""
    app = create_app("default", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'p.sqlite'}",
                     SECRET_KEY="x" * 40, CACHE_TYPE="SimpleCache")
    with app.app_context():
        from loucloud.services.passwords import hash_password, verify_password
        stored = hash_password("some long password")
        assert stored.startswith("$argon2id$")
        params = dict(p.split("=") for p in stored.split("$")[3].split(","))
        assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2
        assert verify_password(stored, "some long password") == (True, None)
        assert verify_password(stored, "some long passwore")[0] is False
        db.engine.dispose()


def test_weaker_hashes_are_upgraded_at_login(app, anon, user):
    app.config["PASSWORD_TIME_COST"] += 1
    assert anon.login("alice").status_code == 302
    with app.app_context():
        stored = db.session.get(type(user), user.id).password_hash
    assert f"t={app.config['PASSWORD_TIME_COST']}" in stored


def test_production_refuses_a_default_secret_key(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production", SECRET_KEY="change-me")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production", SECRET_KEY=None)
