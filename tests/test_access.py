"""Route x role x ownership truth table, generated from the URL map: a new route without
an entry here fails until somebody decides who may use it. Every response is also
checked for its security headers, and every POST for its one audit event."""
from __future__ import annotations

import pytest

from loucloud import create_app
from loucloud.extensions import db
from loucloud.models import AuditEvent, User
from loucloud.services import bootjobs, keys
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm, new_public_key
from tests.support.figures import figure

ANON, OWNER, OTHER, ADMIN = "anonymous", "owner", "other user", "admin"
ROLES = [ANON, OWNER, OTHER, ADMIN]
LOGINS = {OWNER: "owner", OTHER: "other", ADMIN: "admin"}

# endpoint: (method tried, status for anonymous, owner, other user, admin).
# Every object in a URL belongs to "owner". Anonymous visitors of pages are sent to the
# login page (302); JSON gets 401. POSTs carry a valid CSRF token and an empty form.
# Someone else's VM is 404 (nobody learns which ids exist); admin pages are 403.
EXPECTED = {
    "auth.login": ("GET", 200, 302, 302, 302),
    "auth.logout": ("POST", 302, 302, 302, 302),
    "vms.index": ("GET", 302, 200, 200, 200),
    "vms.create": ("GET", 302, 200, 200, 200),
    "vms.detail": ("GET", 302, 200, 404, 200),
    "vms.state": ("GET", 401, 200, 404, 200),
    "vms.act": ("POST", 302, 302, 404, 302),
    "vms.delete": ("POST", 302, 302, 404, 302),
    "vms.console": ("POST", 302, 302, 404, 302),  # refused (no screen): back to the VM
    "vms.screen": ("GET", 302, 200, 404, 200),
    "vms.metrics": ("GET", 401, 200, 404, 200),
    "vms.states": ("GET", 401, 200, 200, 200),  # lists only what the user may see
    "dashboard.index": ("GET", 302, 200, 200, 200),
    "users.profile": ("GET", 302, 200, 200, 200),
    "users.index": ("GET", 302, 403, 403, 200),
    "users.create": ("GET", 302, 403, 403, 200),
    "users.detail": ("GET", 302, 403, 403, 200),
    "users.edit": ("GET", 302, 403, 403, 200),
    "users.reset_password": ("POST", 302, 403, 403, 400),
    "users.enable": ("POST", 302, 403, 403, 302),
    "users.disable": ("POST", 302, 403, 403, 302),
    "users.delete": ("POST", 302, 403, 403, 302),
    "images.index": ("GET", 302, 403, 403, 200),
    "images.create": ("GET", 302, 403, 403, 200),
    "images.detail": ("GET", 302, 403, 403, 200),
    "images.edit": ("POST", 302, 403, 403, 400),
    "images.recheck": ("POST", 302, 403, 403, 302),
    "images.delete": ("POST", 302, 403, 403, 302),
    "templates.index": ("GET", 302, 403, 403, 200),
    "templates.create": ("GET", 302, 403, 403, 200),
    "templates.edit": ("GET", 302, 403, 403, 200),
    "templates.delete": ("POST", 302, 403, 403, 302),
    "hosts.index": ("GET", 302, 403, 403, 200),
    "hosts.status": ("GET", 401, 403, 403, 200),
    "hosts.metrics": ("GET", 401, 403, 403, 200),
    "hosts.create": ("GET", 302, 403, 403, 200),
    "hosts.detail": ("GET", 302, 403, 403, 200),
    "hosts.accepts": ("POST", 302, 403, 403, 302),
    "hosts.refresh": ("POST", 302, 403, 403, 302),
    "hosts.delete": ("POST", 302, 403, 403, 302),
    "vms.serial": ("POST", 302, 302, 404, 302),  # refused (test driver: no console)
    "vms.terminal": ("GET", 302, 200, 404, 200),
    "vms.reset_password": ("POST", 302, 302, 404, 302),  # refused: an empty form
    "users.add_key": ("POST", 302, 400, 400, 400),      # an empty form: a form error
    "users.delete_key": ("POST", 302, 302, 404, 404),   # only one's own keys
    "networks.index": ("GET", 302, 403, 403, 200),
    "networks.create": ("POST", 302, 403, 403, 400),
    "networks.act": ("POST", 302, 403, 403, 302),
    "bootjobs.index": ("GET", 302, 403, 403, 200),
    "bootjobs.create": ("GET", 302, 403, 403, 200),
    "bootjobs.edit": ("GET", 302, 403, 403, 200),
    "bootjobs.delete": ("POST", 302, 403, 403, 302),
    "settings.index": ("GET", 302, 403, 403, 200),
    "audit.index": ("GET", 302, 403, 403, 200),
}
NOT_CHECKED = {"static"}
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
                    "X-Frame-Options")


def _rules():
    app = create_app("test")
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in NOT_CHECKED),
                  key=lambda r: r.endpoint)


RULES = _rules()
CELLS = [(rule, role) for rule in RULES for role in ROLES]


def test_every_route_has_an_entry():
    missing = {r.endpoint for r in RULES} - set(EXPECTED)
    assert not missing, f"routes without an access rule in EXPECTED: {sorted(missing)}"
    stale = set(EXPECTED) - {r.endpoint for r in RULES}
    assert not stale, f"entries for routes that no longer exist: {sorted(stale)}"


@pytest.fixture
def world(app, test_host):
    """Everything in URLs belongs to "owner"; "other" owns nothing."""
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("other")
        owner = make_user("owner")
        template = make_catalog(("h1", test_host))
        vm = make_vm(owner.id, "owned-vm", template.id, start=False)
        key = keys.add_key(db.session.get(User, owner.id), "laptop", new_public_key())
        job = bootjobs.create_boot_job("motd", "runcmd: [[touch, /tmp/x]]")
        ids = {"key_id": key.id, "job_id": job.id}
    return {"user_id": owner.id, "host_id": vm.host_id, "image_id": template.image_id,
            "template_id": template.id, "vm_id": vm.id, "action": "start", **ids}


def _url(rule, world):
    return rule.build({k: world[k] for k in rule.arguments}, append_unknown=False)[1]


def _events(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(AuditEvent.id))).scalar()


@pytest.mark.parametrize("rule,role", CELLS,
                         ids=[f"{r.endpoint}-{role}" for r, role in CELLS])
def test_access(app, world, rule, role):
    method, *statuses = EXPECTED[rule.endpoint]
    expected = dict(zip(ROLES, statuses))[role]
    url = _url(rule, world)
    client = Client(app)
    if role != ANON:
        client.login(LOGINS[role])
    before = _events(app)
    response = client.get(url) if method == "GET" else client.post(url, {})
    assert response.status_code == expected, f"{role} {method} {url}"
    if expected == 302 and role == ANON:
        assert "/login" in response.headers["Location"]
    for header in SECURITY_HEADERS:
        assert header in response.headers, f"{header} missing on {method} {url}"
    for cookie in response.headers.getlist("Set-Cookie"):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    if method == "POST":
        assert _events(app) == before + 1, "a POST must leave exactly one audit event"
        if expected in (401, 403, 404) or (role == ANON and rule.endpoint != "auth.logout"):
            with app.app_context():
                last = db.session.execute(
                    db.select(AuditEvent).order_by(AuditEvent.id.desc())).scalars().first()
                assert last.result == "refused"
    else:
        assert _events(app) == before, "a GET must change nothing"


@pytest.mark.parametrize("rule", [r for r in RULES if r.methods - {"GET", "HEAD", "OPTIONS"}],
                         ids=lambda r: r.endpoint)
def test_post_without_csrf_token_is_refused(app, world, rule):
    client = Client(app)
    client.login("admin")
    response = client.http.post(_url(rule, world), data={})
    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)


@pytest.mark.parametrize("rule", [r for r in RULES if "GET" not in r.methods],
                         ids=lambda r: r.endpoint)
def test_actions_are_not_reachable_by_get(app, world, rule):
    client = Client(app)
    client.login("admin")
    assert client.get(_url(rule, world)).status_code == 405


def test_matrix_size():
    """The figure docs/reliability.md reports."""
    assert len(CELLS) == 4 * len(RULES) >= 4 * 42
    figure("access_matrix", {"routes": len(RULES), "roles": len(ROLES), "cells": len(CELLS),
                             "post_routes_without_csrf": len(
                                 [r for r in RULES if r.methods - {"GET", "HEAD", "OPTIONS"}])})
