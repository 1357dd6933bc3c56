"""Personal API tokens on the Profile page (and the administrator's Users page): made
with a name, read-only or not, an expiry or none; the secret shown once and working at
once against the API; listed with their state and last use; revoked after a confirmation,
and then refused by the API."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import AuditEvent, utcnow
from loucloud.models.tokens import ApiToken
from loucloud.services.tokens import SCHEME
from tests.support.api import ApiClient

SECRET_RE = re.compile(r'id="new-token-secret" value="(lct_[^"]+)"')


def _rows(app) -> list[ApiToken]:
    with app.app_context():
        rows = db.session.execute(db.select(ApiToken).order_by(ApiToken.id)).scalars().all()
        db.session.expunge_all()
        return rows


def _make(client, **form):
    """POST the token form; the page it leads to (the secret in it, this once)."""
    response = client.post("/profile/tokens", {"name": "ci", "expires_days": "", **form})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    assert response.headers["Location"].endswith("/profile#api-tokens")
    return client.get("/profile").get_data(as_text=True)


def test_the_secret_is_shown_once_and_works(app, as_user):
    page = _make(as_user, name="backup script", expires_days="30")
    [secret] = SECRET_RE.findall(page)
    assert secret.startswith(SCHEME)
    assert "copy it now, it will not be shown again" in page
    assert 'data-copy="#new-token-secret"' in page
    assert "Token backup script created: copy it now." in page   # the flash
    [token] = _rows(app)
    assert (token.name, token.read_only, token.state()) == ("backup script", False, "active")
    assert timedelta(days=29, hours=23) < token.expires_at - utcnow() <= timedelta(days=30)
    assert secret not in token.key_hash and secret.startswith(token.prefix)
    # It works at once, as alice.
    answer = ApiClient(app, secret).get("/api/v1/tokens")
    assert answer.status_code == 200 and answer.json["items"][0]["name"] == "backup script"
    # Never again: not on the page, not in the audit log.
    again = as_user.get("/profile").get_data(as_text=True)
    assert secret not in again and "new-token-secret" not in again
    assert token.prefix in again
    with app.app_context():
        events = db.session.execute(db.select(AuditEvent)).scalars().all()
        assert not any(secret in (e.message + e.target) for e in events)
        [made] = [e for e in events if e.action == "users.create_token"]
        assert (made.result, made.username, made.target) == \
            ("ok", "alice", "name 'backup script'")


def test_read_only_and_never_expiring(app, as_user):
    page = _make(as_user, name="monitoring", read_only="y")
    [secret] = SECRET_RE.findall(page)
    [token] = _rows(app)
    assert token.read_only and token.expires_at is None
    row = re.search(r'<tr data-token="%d".*?</tr>' % token.id, page, re.S).group(0)
    assert "read-only" in row and "never" in row and "active" in row
    client = ApiClient(app, secret)
    assert client.get("/api/v1/vms").status_code == 200
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 403


def test_the_list_says_when_and_from_where_a_token_was_last_used(app, as_user):
    [secret] = SECRET_RE.findall(_make(as_user))
    ApiClient(app, secret).get("/api/v1/vms", environ_base={"REMOTE_ADDR": "198.51.100.4"})
    page = as_user.get("/profile").get_data(as_text=True)
    [token] = _rows(app)
    row = re.search(r'<tr data-token="%d".*?</tr>' % token.id, page, re.S).group(0)
    assert f"{token.last_used_at:%Y-%m-%d %H:%M} UTC from 198.51.100.4" in row


@pytest.mark.parametrize("form, field, message", [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "   "}, "name", "Give the token a name"),
    ({"name": "x" * 65}, "name", "Field cannot be longer than 64 characters."),
    ({"name": "tab\there"}, "name", "Give the token a name"),
    ({"expires_days": "0"}, "expires_days", "between 1 and 3650"),
    ({"expires_days": "3651"}, "expires_days", "between 1 and 3650"),
    ({"expires_days": "soon"}, "expires_days", "Not a valid integer value."),
    ({"expires_days": "9" * 40}, "expires_days", "Too large a number."),
])
def test_bad_forms_are_refused_next_to_their_field(app, as_user, form, field, message):
    response = as_user.post("/profile/tokens", {"name": "ci", "expires_days": "", **form})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    [invalid] = re.findall(r'<input class="form-control is-invalid" id="([^"]+)"', page)
    assert invalid == {"name": "token-name", "expires_days": "token-expires"}[field]
    assert message in page
    assert _rows(app) == []


def test_fifty_live_tokens_at_most(app, as_user, user):
    from loucloud.models import User
    from loucloud.services import tokens as token_service
    with app.app_context():
        alice = db.session.get(User, user.id)
        for i in range(50):
            token_service.create_token(alice, f"t{i}")
    response = as_user.post("/profile/tokens", {"name": "one more"})
    assert response.status_code == 400
    assert "alice already has 50 live tokens: revoke one first." in \
        response.get_data(as_text=True)
    assert len(_rows(app)) == 50


def test_revoke_asks_first_then_the_token_stops(app, as_user):
    [secret] = SECRET_RE.findall(_make(as_user, name="old"))
    [token] = _rows(app)
    page = as_user.get("/profile").get_data(as_text=True)
    assert f'action="/tokens/{token.id}/revoke"' in page
    assert "data-confirm=\"Revoke the token old? Scripts using it stop working at once.\"" \
        in page
    response = as_user.post(f"/tokens/{token.id}/revoke")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/profile#api-tokens")
    page = as_user.get("/profile").get_data(as_text=True)
    assert f"Token old ({token.prefix}…) revoked: it no longer works." in page
    assert f'data-token="{token.id}" data-state="revoked"' in page
    assert f'action="/tokens/{token.id}/revoke"' not in page        # nothing more to do
    answer = ApiClient(app, secret).get("/api/v1/vms")
    assert answer.status_code == 401 and "revoked" in answer.json["detail"]


def test_someone_elses_token_is_not_found(app, as_user, other_user):
    from tests.conftest import Client
    bob = Client(app)
    bob.login("bob")
    _make(bob, name="bobs")
    [token] = _rows(app)
    assert as_user.post(f"/tokens/{token.id}/revoke").status_code == 404
    assert "bobs" not in as_user.get("/profile").get_data(as_text=True)
    assert _rows(app)[0].state() == "active"


def test_the_administrator_sees_and_revokes_a_users_tokens(app, as_admin, as_user, user):
    [secret] = SECRET_RE.findall(_make(as_user, name="alices script"))
    [token] = _rows(app)
    page = as_admin.get(f"/users/{user.id}").get_data(as_text=True)
    assert "alices script" in page and token.prefix in page and secret not in page
    assert f'action="/tokens/{token.id}/revoke"' in page
    response = as_admin.post(f"/tokens/{token.id}/revoke")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/users/{user.id}#api-tokens")
    assert _rows(app)[0].state() == "revoked"
    assert ApiClient(app, secret).get("/api/v1/vms").status_code == 401
