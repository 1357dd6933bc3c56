"""manage.py tokens create|list|revoke: the Profile page's personal API tokens from the
command line. The secret is printed once (alone on standard output, for scripts), works
against the API at once, and is never printed again; revoking stops it at once."""
from __future__ import annotations

import getpass
import json
from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import AuditEvent, utcnow
from loucloud.models.tokens import ApiToken
from loucloud.services.tokens import SECRET_LENGTH, SCHEME
from tests.support.api import ApiClient
from tests.test_cli_validation import make_world, refused, run


@pytest.fixture
def world(app, test_host):
    """admin and carol, host h1, images and the template small (test_cli_validation's)."""
    return make_world(app, test_host)


def _create(world, *args: str):
    result = run(world, ["tokens", "create", *args])
    assert result.exit_code == 0, result.output
    return result


def _tokens(app) -> list[ApiToken]:
    with app.app_context():
        rows = db.session.execute(db.select(ApiToken).order_by(ApiToken.id)).scalars().all()
        db.session.expunge_all()
        return rows


def _last_event(app) -> AuditEvent:
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id.desc())
                                   ).scalars().first()
        db.session.expunge(event)
        return event


def test_create_prints_the_secret_once_and_it_works(world, app):
    result = _create(world, "carol", "--name", "backup script")
    secret = result.stdout.strip()
    assert secret.startswith(SCHEME) and len(secret) == SECRET_LENGTH
    assert result.stdout == secret + "\n"          # alone: TOKEN=$(manage.py tokens create)
    assert "will not be shown again" in result.stderr
    assert '"backup script" of carol: read-write, never expires' in result.stderr
    [token] = _tokens(app)
    assert (token.name, token.read_only, token.expires_at) == ("backup script", False, None)
    assert secret not in (token.key_hash, token.prefix) and secret.startswith(token.prefix)
    me = ApiClient(app, secret).get("/api/v1/tokens")
    assert me.status_code == 200 and [t["name"] for t in me.json["items"]] == ["backup script"]
    event = _last_event(app)
    assert (event.action, event.result, event.target, event.address) == \
        ("tokens.create", "ok", "carol", "cli")
    assert event.username == f"cli:{getpass.getuser()}" and secret not in event.message
    # Listing never prints it again.
    listed = run(world, ["tokens", "list", "carol", "--json"])
    assert secret not in listed.output and token.prefix in listed.output


def test_read_only_and_expiry(world, app):
    secret = _create(world, "carol", "--read-only", "--expires", "7").stdout.strip()
    [token] = _tokens(app)
    assert token.read_only and token.name == "command line"
    assert timedelta(days=7) - timedelta(minutes=1) < token.expires_at - utcnow() \
        <= timedelta(days=7)
    client = ApiClient(app, secret)
    assert client.get("/api/v1/vms").status_code == 200
    refused_write = client.post("/api/v1/tokens", json={"name": "more"})
    assert refused_write.status_code == 403 and "read-only" in refused_write.json["detail"]
    assert len(_tokens(app)) == 1


def test_list_shows_state_use_and_origin(world, app):
    secret = _create(world, "carol", "--name", "used").stdout.strip()
    _create(world, "carol", "--name", "gone")
    ApiClient(app, secret).get("/api/v1/vms", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    gone = _tokens(app)[1]
    assert run(world, ["tokens", "revoke", str(gone.id)]).exit_code == 0
    rows = json.loads(run(world, ["tokens", "list", "carol", "--json"]).stdout)
    assert [(r["name"], r["state"], r["from"]) for r in rows] == \
        [("gone", "revoked", ""), ("used", "active", "192.0.2.7")]
    assert rows[1]["last_used"].endswith("UTC") and rows[0]["last_used"] == "never"
    table = run(world, ["tokens", "list", "carol"]).stdout.splitlines()
    assert table[0].split()[:5] == ["ID", "NAME", "PREFIX", "ACCESS", "STATE"]
    assert len(table) == 3 and "revoked" in table[1] and "192.0.2.7" in table[2]
    assert run(world, ["tokens", "list", "admin"]).stdout.splitlines()[1:] == []


def test_revoke_stops_the_token_at_once(world, app):
    secret = _create(world, "carol").stdout.strip()
    client = ApiClient(app, secret)
    assert client.get("/api/v1/vms").status_code == 200
    [token] = _tokens(app)
    result = run(world, ["tokens", "revoke", str(token.id)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f'Token {token.id} "command line" of carol revoked.\n'
    answer = client.get("/api/v1/vms")
    assert answer.status_code == 401 and "revoked" in answer.json["detail"]
    event = _last_event(app)
    assert (event.action, event.result, event.target) == ("tokens.revoke", "ok", str(token.id))
    # Again: nothing more to do, said the same way.
    assert run(world, ["tokens", "revoke", str(token.id)]).exit_code == 0


@pytest.mark.parametrize("args, message, action, target", [
    (["tokens", "create", "--", "nobody"], "There is no user named nobody.",
     "tokens.create", "nobody"),
    (["tokens", "create", "carol", "--name", ""], "Give the token a name",
     "tokens.create", "carol"),
    (["tokens", "create", "carol", "--name", "   "], "Give the token a name",
     "tokens.create", "carol"),
    (["tokens", "create", "carol", "--name", "x" * 65], "Give the token a name",
     "tokens.create", "carol"),
    (["tokens", "create", "carol", "--name", "tab\there"], "Give the token a name",
     "tokens.create", "carol"),
    (["tokens", "create", "carol", "--expires", "0"], "expires after 1 to 3650 days",
     "tokens.create", "carol"),
    (["tokens", "create", "carol", "--expires", "3651"], "expires after 1 to 3650 days",
     "tokens.create", "carol"),
    (["tokens", "create", "carol", "--expires", str(10 ** 30)],
     "expires after 1 to 3650 days", "tokens.create", "carol"),
    (["tokens", "revoke", "999"], "There is no token 999", "tokens.revoke", "999"),
])
def test_refusals_change_nothing(world, args, message, action, target):
    refused(world, args, message, action, target)


def test_fifty_live_tokens_at_most(world, app):
    for i in range(50):
        _create(world, "carol", "--name", f"t{i}")
    refused(world, ["tokens", "create", "carol"], "already has 50 live tokens",
            "tokens.create", "carol")
    assert run(world, ["tokens", "revoke", str(_tokens(app)[0].id)]).exit_code == 0
    _create(world, "carol")


def test_bad_arguments_are_usage_errors(world, app):
    for args in (["tokens", "create", "carol", "--expires", "soon"],
                 ["tokens", "revoke", "0"], ["tokens", "revoke", "abc"],
                 ["tokens", "list"]):
        result = run(world, args)
        assert result.exit_code == 2, (args, result.output)
    assert _tokens(app) == []
