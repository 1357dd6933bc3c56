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
from tests.test_access import _add_detached_disk, _add_disk, _on_owned_vm, _start_domain
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


def _ready(prepare):
    """A preparation of tests/test_access.py (app, world, role) as this matrix calls it."""
    return lambda app, w: prepare(app, w, None)


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
    # -- tasks, images and their uploads, templates, boot jobs (helper h5) --------------
    "api_tasks.list_tasks": ("GET", None, 200, 200, 200),
    "api_tasks.get_task": ("GET", None, 200, 404, 200),
    "api_tasks.cancel_task": ("POST", None, 200, 404, 200),            # queued: cancelled
    "api_tasks.retry_task": ("POST", None, 202, 404, 202, lambda app, w: _cancel_task(app, w)),
    "api_images.list_images": ("GET", None, 403, 403, 200),
    "api_images.add_image": ("POST", {"name": "raw", "path": "/var/lib/images/base.raw"},
                             403, 403, 201),
    "api_images.get_image": ("GET", None, 403, 403, 200),
    "api_images.update_image": ("PATCH", {"name": "renamed", "os_type": "windows"},
                                403, 403, 200),
    "api_images.recheck_image": ("POST", None, 403, 403, 200),
    "api_images.delete_image": ("DELETE", None, 403, 403, 409),        # its template uses it
    "api_images.copy_image": ("POST", None, 403, 403, 409),            # added by path: no copy
    "api_uploads.list_uploads": ("GET", None, 403, 403, 200),
    "api_uploads.begin_upload": ("POST", {"name": "up", "filename": "up.qcow2", "size": 4096},
                                 403, 403, 201),
    "api_uploads.get_upload": ("GET", None, 403, 403, 200),
    "api_uploads.send_chunk": ("POST", None, 403, 403, 422),           # no ?offset=
    "api_uploads.finish_upload": ("POST", None, 403, 403, 409),        # nothing arrived yet
    "api_uploads.abandon_upload": ("POST", None, 403, 403, 200),
    "api_uploads.inspect_file": ("POST", None, 403, 403, 422),         # no bytes sent
    "api_templates.list_templates": ("GET", None, 200, 200, 200),
    "api_templates.create_template": ("POST", lambda w: {
        "name": "large", "image_id": w["image_id"], "vcpus": 2, "memory_mib": 1024,
        "disk_gib": 4, "boot_job_ids": [w["job_id"]]}, 403, 403, 201),
    "api_templates.get_template": ("GET", None, 200, 200, 200),        # every user's choice
    "api_templates.update_template": ("PATCH", {"vcpus": 2}, 403, 403, 200),
    "api_templates.delete_template": ("DELETE", None, 403, 403, 409),  # a VM was made of it
    "api_bootjobs.list_boot_jobs": ("GET", None, 200, 200, 200),
    "api_bootjobs.create_boot_job": ("POST", {"name": "more", "script": "runcmd: [[ls]]"},
                                     403, 403, 201),
    "api_bootjobs.get_boot_job": ("GET", None, 404, 404, 200),         # not offered to users
    "api_bootjobs.update_boot_job": ("PATCH", {"user_choice": True}, 403, 403, 200),
    "api_bootjobs.delete_boot_job": ("DELETE", None, 403, 403, 200),
    # issue 14's VM verbs (api/vm_disks.py, api/vm_changes.py): disk "vdb" and snapshot
    # "s1" (ARGUMENTS) readied by the preparations of tests/test_access.py
    "api_vm_disks.list_disks": ("GET", None, 200, 404, 200),
    "api_vm_disks.get_disk": ("GET", None, 200, 404, 200, _ready(_add_disk)),
    "api_vm_disks.add_disk": ("POST", {"size_gib": 1}, 201, 404, 201),
    "api_vm_disks.detach_disk": ("POST", None, 200, 404, 200, _ready(_add_disk)),
    "api_vm_disks.attach_disk": ("POST", None, 200, 404, 200, _ready(_add_detached_disk)),
    # the test driver cannot grow a volume: the host's refusal, nothing changed
    "api_vm_disks.grow_disk": ("POST", {"size_gib": 3}, 400, 404, 400, _ready(_add_disk)),
    "api_vm_disks.delete_disk": ("DELETE", None, 200, 404, 200, _ready(_add_disk)),
    "api_vm_disks.resize_vm": ("POST", {"vcpus": 2, "memory_mib": 1024}, 200, 404, 200),
    "api_vm_disks.hardware": ("GET", None, 200, 404, 200),
    "api_vm_changes.list_snapshots": ("GET", None, 200, 404, 200),
    "api_vm_changes.get_snapshot": ("GET", None, 200, 404, 200,
                                    _ready(_on_owned_vm(("snapshot", "s1")))),
    "api_vm_changes.create_snapshot": ("POST", {"name": "s1"}, 201, 404, 201),
    "api_vm_changes.revert_snapshot": ("POST", None, 200, 404, 200,
                                       _ready(_on_owned_vm(("snapshot", "s1")))),
    "api_vm_changes.delete_snapshot": ("DELETE", None, 200, 404, 200,
                                       _ready(_on_owned_vm(("snapshot", "s1")))),
    "api_vm_changes.discard_saved_state": ("POST", None, 200, 404, 200,
                                           _ready(_on_owned_vm(("start",), ("save",)))),
    "api_vm_changes.rebuild_vm": ("POST", None, 200, 404, 200),
    "api_vm_changes.clone_vm": ("POST", {"name": "owned-copy"}, 202, 404, 202),
    # the administrator's; h1 (the world's one host) is where the VM is already
    "api_vm_changes.migrate": ("POST", lambda w: {"target_id": w["host_id"]}, 403, 403, 409),
    "api_vm_changes.migration_targets": ("GET", None, 403, 403, 200),
    "api_vm_changes.get_media": ("GET", None, 200, 404, 200),
    # the world's image is no ISO (the inserted ISO: tests/test_api_vm_changes.py)
    "api_vm_changes.insert_media": ("POST", lambda w: {"image_id": w["image_id"]},
                                    422, 404, 422),
    "api_vm_changes.eject_media": ("DELETE", None, 409, 404, 409),    # the drive is empty
    "api_vm_changes.set_guest_password": ("POST", {"user": "debian",
                                                   "password": "a brand new password 7"},
                                          200, 404, 200, _ready(_start_domain)),
    "api_vm_changes.live": ("GET", None, 200, 404, 200),
    "api_vm_changes.metrics": ("GET", None, 200, 404, 200),
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
    # issue 14: VMs lost with a forgotten host (the world holds one of the owner's)
    "api_lost_vms.list_lost": ("GET", None, 200, 200, 200),
    "api_lost_vms.get_lost": ("GET", None, 200, 404, 200),
    "api_lost_vms.delete_lost": ("DELETE", None, 200, 404, 200),
}


def _cancel_task(app, world) -> None:
    """The world's task cancelled (by its owner): one to try again."""
    from loucloud.models import User
    from loucloud.services import tasklist

    with app.app_context():
        owner = db.session.get(User, world["user_id"])
        assert tasklist.cancel(owner, world["task_id"]).state == "cancelled"


# URL arguments the world does not hold, by name.
ARGUMENTS = {"action": "start", "target": "vdb", "name": "s1"}


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


def _cells() -> list[tuple]:
    """(rule, roles) per test: a read changes nothing and a refused write changes
    nothing (each is checked), so they share one world; each allowed write gets its own."""
    cells = []
    for rule in RULES:
        if rule.endpoint not in EXPECTED:
            cells.append((rule, (OWNER,)))
            continue
        method = EXPECTED[rule.endpoint][0]
        if method in SAFE:
            cells.append((rule, tuple(ROLES)))
            continue
        refused = tuple(r for r in ROLES if expected(rule.endpoint, r) >= 400)
        if refused:
            cells.append((rule, refused))
        cells += [(rule, (r,)) for r in ROLES if r not in refused]
    return cells


@pytest.mark.parametrize("rule, roles", _cells(),
                         ids=lambda v: v.endpoint if hasattr(v, "endpoint") else "+".join(v))
def test_api_access(app, api_world, rule, roles):
    world, tokens = api_world
    if rule.endpoint not in EXPECTED:
        pytest.fail(f"no entry for {rule.endpoint}")
    method, body, *_, prepare = EXPECTED[rule.endpoint] + (None,) * (
        6 - len(EXPECTED[rule.endpoint]))
    if prepare is not None:
        prepare(app, world)
    url = _url(rule, world)
    uris = [world["host_uri"]]
    for role in roles:
        client = ApiClient(app, tokens.get(role))
        before, events = snapshot(app, uris), _events(app)
        response = client.open(method, url, json=body(world) if callable(body) else body)
        want = expected(rule.endpoint, role)
        assert response.status_code == want, f"{method} {url} as {role}: " \
            f"{response.status_code} {response.get_data(as_text=True)[:300]}"
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"
            assert response.json["status"] == response.status_code
            assert_same(before, snapshot(app, uris), f"{method} {url} as {role}")
        if method not in SAFE:
            assert _events(app) == events + 1, "a write leaves exactly one audit event"
        else:
            assert _events(app) == events, "a read changes nothing"
