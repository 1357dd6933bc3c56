"""The REST API's route x token x ownership truth table, generated from the URL map: a
new API route without an entry here fails the suite. Each cell is one request with a
token of its role on a fresh world (tests/test_access.py's: everything in a URL belongs
to "owner"): no token, the owner's, another user's, the owner's read-only one, an
expired and a revoked one, the administrator's. A refused write (4xx) changes nothing in
the database or on the host; every write leaves one audit event; every error is a
problem document."""
from __future__ import annotations

import pytest

from loucloud import create_app
from loucloud.extensions import db
from loucloud.models import AuditEvent
from tests.conftest import PASSWORD
from tests.support.api import ApiClient, make_token
from tests.support.api_admin import stop_default_network, stray_volume
from tests.support.fuzz import assert_same, snapshot
from tests.factories import new_public_key
from tests.test_access import world  # noqa: F401 (fixture)

NONE, OWNER, OTHER, READ_ONLY, EXPIRED, REVOKED, ADMIN = (
    "no token", "owner", "other user", "read-only", "expired", "revoked", "admin")
ROLES = [NONE, OWNER, OTHER, READ_ONLY, EXPIRED, REVOKED, ADMIN]
TOKENS = {OWNER: ("owner", {}), OTHER: ("other", {}),
          READ_ONLY: ("owner", {"read_only": True}),
          EXPIRED: ("owner", {"state": "expired"}), REVOKED: ("owner", {"state": "revoked"}),
          ADMIN: ("admin", {})}
SAFE = {"GET", "HEAD", "OPTIONS"}

# endpoint: (method, body, status for the owner, another user, the administrator[,
# prepare]). ``body`` is the JSON sent (or a function of the world giving it);
# ``prepare(app, world)`` readies the world first (a snapshot to revert, a disk...).
# No token, an expired or a revoked one: 401 everywhere. A read-only token: the owner's
# status for a read, 403 for any write. Someone else's object is 404 (nobody learns
# which ids exist); an administrator's route is 403 to others.
EXPECTED = {
    "api_vms.list_vms": ("GET", None, 200, 200, 200),
    "api_vms.create_vm": ("POST", lambda w: {"name": "api-vm", "template_id": w["template_id"],
                                              "start": False}, 201, 201, 201),
    "api_vms.get_vm": ("GET", None, 200, 404, 200),
    "api_vms.delete_vm": ("DELETE", None, 200, 404, 200),
    "api_vms.act": ("POST", None, 200, 404, 200),               # start
    "api_vms.console": ("POST", None, 409, 404, 409),            # shut off: no screen
    "api_tokens.list_tokens": ("GET", None, 200, 200, 200),
    "api_tokens.create_token": ("POST", {"name": "more"}, 201, 201, 201),
    "api_tokens.get_token": ("GET", None, 200, 404, 200),
    "api_tokens.revoke_token": ("DELETE", None, 200, 404, 200),
    # -- the administrator's resources, users' own profile and keys, the dashboard ----
    # (users, hosts, networks, volumes, settings, audit events, metrics)
    "api_users.list_users": ("GET", None, 403, 403, 200),
    "api_users.create_user": ("POST", {"username": "newbie", "password": "a new password 7",
                                       "quota": {"vms": 2}}, 403, 403, 201),
    "api_users.get_user": ("GET", None, 403, 403, 200),
    "api_users.update_user": ("PATCH", {"full_name": "Renamed", "quota": {"vms": 3}},
                              403, 403, 200),
    "api_users.delete_user": ("DELETE", None, 403, 403, 409),     # owner still owns a VM
    "api_users.enable_user": ("POST", None, 403, 403, 200),
    "api_users.disable_user": ("POST", None, 403, 403, 200),
    "api_users.reset_password": ("POST", {"password": "a new password 7"}, 403, 403, 200),
    "api_users.quota_usage": ("GET", None, 403, 403, 200),
    "api_users.me": ("GET", None, 200, 200, 200),
    "api_users.change_own_password": ("POST", {"current_password": PASSWORD,
                                               "password": "a new password 7"},
                                      200, 200, 200),
    "api_users.list_keys": ("GET", None, 200, 200, 200),
    "api_users.add_key": ("POST", lambda w: {"key": new_public_key("new@laptop")},
                          201, 201, 201),                          # each to his own keys
    "api_users.get_key": ("GET", None, 200, 404, 404),             # only one's own keys
    "api_users.delete_key": ("DELETE", None, 200, 404, 404),
    "api_hosts.list_hosts": ("GET", None, 403, 403, 200),
    "api_hosts.create_host": ("POST", {"name": "h2", "uri": "test:///default"},
                              403, 403, 201),
    "api_hosts.get_host": ("GET", None, 403, 403, 200),
    "api_hosts.update_host": ("PATCH", {"accepts_vms": False,
                                        "migration_address": "10.9.9.9"}, 403, 403, 200),
    "api_hosts.delete_host": ("DELETE", None, 403, 403, 409),     # it holds a VM
    "api_hosts.refresh_host": ("POST", None, 403, 403, 200),
    "api_hosts.copy_images": ("POST", None, 403, 403, 409),       # it has every image
    "api_hosts.drain_host": ("POST", None, 403, 403, 202),
    "api_hosts.undrain_host": ("POST", None, 403, 403, 200),
    "api_hosts.forget_host": ("POST", None, 403, 403, 409),       # it answers
    "api_hosts.host_metrics": ("GET", None, 403, 403, 200),
    "api_networks.list_networks": ("GET", None, 403, 403, 200),
    "api_networks.create_network": ("POST", {"name": "lab", "subnet": "10.50.0.0/24"},
                                    403, 403, 201),
    "api_networks.act": ("POST", lambda w: {"host_id": w["host_id"], "name": "default"},
                         403, 403, 200, stop_default_network),   # start
    "api_volumes.list_volumes": ("GET", None, 403, 403, 200),
    "api_volumes.delete_orphan": ("DELETE", None, 403, 403, 200, stray_volume),
    "api_settings.get_settings": ("GET", None, 403, 403, 200),
    "api_settings.update_settings": ("PATCH", {"console_token_seconds": 90}, 403, 403, 200),
    "api_audit.list_events": ("GET", None, 403, 403, 200),
    "api_dashboard.get_metrics": ("GET", None, 200, 200, 200),
}
# URL arguments the world does not hold, by name.
ARGUMENTS = {"action": "start"}


def _rules():
    app = create_app("test")
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint.startswith("api_")
                   and r.endpoint != "api_docs.reference"), key=lambda r: r.endpoint)


RULES = _rules()


def _method(rule) -> str:
    return EXPECTED[rule.endpoint][0] if rule.endpoint in EXPECTED else "GET"


def test_every_api_route_has_an_entry():
    endpoints = {r.endpoint for r in RULES}
    missing = endpoints - set(EXPECTED)
    assert not missing, f"API routes without an access rule in EXPECTED: {sorted(missing)}"
    stale = set(EXPECTED) - endpoints
    assert not stale, f"entries for API routes that no longer exist: {sorted(stale)}"
    for rule in RULES:
        if rule.endpoint in EXPECTED:
            assert _method(rule) in rule.methods, f"{rule.endpoint}: no {_method(rule)}"


def expected(endpoint: str, role: str) -> int:
    method, _body, owner, other, admin, *_ = EXPECTED[endpoint]
    if role in (NONE, EXPIRED, REVOKED):
        return 401
    if role == READ_ONLY:
        return owner if method in SAFE else 403
    return {OWNER: owner, OTHER: other, ADMIN: admin}[role]


def _url(rule, world) -> str:
    values = {**ARGUMENTS, **world}
    if "token_id" in rule.arguments:
        values["token_id"] = world["api_token_id"]
    return rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]


def _events(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(AuditEvent.id)))


@pytest.fixture
def api_world(app, world):
    """The world, with a token of the owner's whose id is in the tokens' URLs."""
    tokens = {role: make_token(app, name, **kw) for role, (name, kw) in TOKENS.items()}
    owner = ApiClient(app, tokens[OWNER])
    world["api_token_id"] = owner.get("/api/v1/tokens").json["items"][-1]["id"]
    return world, tokens


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.endpoint)
def test_api_access(app, api_world, rule, role):
    world, tokens = api_world
    if rule.endpoint not in EXPECTED:
        pytest.fail(f"no entry for {rule.endpoint}")
    method, body, *_, prepare = EXPECTED[rule.endpoint] + (None,) * (
        6 - len(EXPECTED[rule.endpoint]))
    if prepare is not None:
        prepare(app, world)
    client = ApiClient(app, tokens.get(role))
    url = _url(rule, world)
    uris = [world["host_uri"]]
    before, events = snapshot(app, uris), _events(app)
    response = client.open(method, url, json=body(world) if callable(body) else body)
    want = expected(rule.endpoint, role)
    assert response.status_code == want, \
        f"{method} {url} as {role}: {response.status_code} {response.get_data(as_text=True)[:300]}"
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
        assert response.json["status"] == response.status_code
        assert_same(before, snapshot(app, uris), f"{method} {url} as {role}")
    if method not in SAFE:
        assert _events(app) == events + 1, "a write leaves exactly one audit event"
    else:
        assert _events(app) == events, "a read changes nothing"
