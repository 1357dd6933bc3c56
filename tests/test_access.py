"""Route x role truth table, generated from the URL map: a new route without an entry
here fails the test until somebody decides who may use it."""
from __future__ import annotations

import pytest

from loucloud import create_app
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm

ANON, USER, ADMIN = "anonymous", "user", "admin"

# endpoint: (method tried, status for anonymous, user, admin).
# Anonymous visitors of pages are sent to the login page (302); JSON gets 401.
# POSTs carry a valid CSRF token and an empty form.
EXPECTED = {
    "auth.login": ("GET", 200, 302, 302),
    "auth.logout": ("POST", 302, 302, 302),
    "vms.index": ("GET", 302, 200, 200),
    "vms.create": ("GET", 302, 200, 200),
    "vms.detail": ("GET", 302, 404, 200),
    "vms.state": ("GET", 401, 404, 200),
    "vms.act": ("POST", 302, 404, 302),
    "vms.delete": ("POST", 302, 404, 302),
    "vms.console": ("POST", 302, 404, 302),  # admin: refused (no screen), back to the VM
    "vms.screen": ("GET", 302, 404, 200),
    "images.index": ("GET", 302, 403, 200),
    "images.create": ("GET", 302, 403, 200),
    "images.detail": ("GET", 302, 403, 200),
    "images.edit": ("POST", 302, 403, 400),
    "images.recheck": ("POST", 302, 403, 302),
    "images.delete": ("POST", 302, 403, 302),
    "vmtemplates.index": ("GET", 302, 403, 200),
    "vmtemplates.create": ("GET", 302, 403, 200),
    "vmtemplates.edit": ("GET", 302, 403, 200),
    "vmtemplates.delete": ("POST", 302, 403, 302),
    "users.profile": ("GET", 302, 200, 200),
    "users.index": ("GET", 302, 403, 200),
    "users.create": ("GET", 302, 403, 200),
    "users.detail": ("GET", 302, 403, 200),
    "users.edit": ("GET", 302, 403, 200),
    "users.reset_password": ("POST", 302, 403, 400),
    "users.enable": ("POST", 302, 403, 302),
    "users.disable": ("POST", 302, 403, 302),
    "users.delete": ("POST", 302, 403, 302),
    "servers.index": ("GET", 302, 403, 200),
    "servers.status": ("GET", 401, 403, 200),
    "servers.create": ("GET", 302, 403, 200),
    "servers.detail": ("GET", 302, 403, 200),
    "servers.accepts": ("POST", 302, 403, 302),
    "servers.refresh": ("POST", 302, 403, 302),
    "servers.delete": ("POST", 302, 403, 302),
    "settings.index": ("GET", 302, 403, 200),
}
NOT_CHECKED = {"static"}


def _rules():
    app = create_app("test")
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in NOT_CHECKED),
                  key=lambda r: r.endpoint)


RULES = _rules()


def test_every_route_has_an_entry():
    missing = {r.endpoint for r in RULES} - set(EXPECTED)
    assert not missing, f"routes without an access rule in EXPECTED: {sorted(missing)}"
    stale = set(EXPECTED) - {r.endpoint for r in RULES}
    assert not stale, f"entries for routes that no longer exist: {sorted(stale)}"


@pytest.fixture
def world(app, test_host):
    """Objects for the URLs: all of them belong to "target", none to "alice"."""
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("alice")
        target = make_user("target")
        template = make_catalog(("h1", test_host))
        vm = make_vm(target.id, "target-vm", template.id, start=False)
    return {"user_id": target.id, "server_id": vm.server_id, "image_id": template.image_id,
            "template_id": template.id, "vm_id": vm.id, "action": "start"}


@pytest.mark.parametrize("role", [ANON, USER, ADMIN])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.endpoint)
def test_access(app, world, rule, role):
    method, *statuses = EXPECTED[rule.endpoint]
    expected = dict(zip([ANON, USER, ADMIN], statuses))[role]
    url = rule.build({k: world[k] for k in rule.arguments}, append_unknown=False)[1]
    client = Client(app)
    if role != ANON:
        client.login({USER: "alice", ADMIN: "admin"}[role])
    response = client.get(url) if method == "GET" else client.post(url, {})
    assert response.status_code == expected, f"{role} {method} {url}"
    if expected == 302 and role == ANON and rule.endpoint != "auth.logout":
        assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("rule", [r for r in RULES if r.methods - {"GET", "HEAD", "OPTIONS"}],
                         ids=lambda r: r.endpoint)
def test_post_without_csrf_token_is_refused(app, world, rule):
    client = Client(app)
    client.login("admin")
    url = rule.build({k: world[k] for k in rule.arguments}, append_unknown=False)[1]
    response = client.http.post(url, data={})
    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)


@pytest.mark.parametrize("rule", [r for r in RULES if "GET" not in r.methods],
                         ids=lambda r: r.endpoint)
def test_actions_are_not_reachable_by_get(app, world, rule):
    client = Client(app)
    client.login("admin")
    url = rule.build({k: world[k] for k in rule.arguments}, append_unknown=False)[1]
    assert client.get(url).status_code == 405
