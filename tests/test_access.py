"""Route x role x ownership truth table, generated from the URL map: a new route without
an entry here fails until somebody decides who may use it. Every response is also
checked for its security headers, and every POST for its one audit event and its effect
(EFFECTS): an allowed POST did what a user would notice (the VM runs, the user is
disabled, the flag is off...) or was refused by the service with its message; a refused
POST changed nothing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from loucloud import create_app
from loucloud.extensions import db
from loucloud.models import VM, AuditEvent, BootJob, ConsoleToken, Host, Image, \
    ImageLocation, LostVM, SshKey, Task, Template, Upload, User, utcnow
from loucloud.models.tokens import ApiToken
from loucloud.services import bootjobs, keys, tokens, uploads
from loucloud.services import tasklist
from loucloud.services.hypervisors import pool
from loucloud.services.passwords import verify_password
from loucloud.services.settings import SPECS
from tests.conftest import PASSWORD, Client
from tests.factories import give_screen, make_catalog, make_user, make_vm, new_public_key
from tests.support.figures import figure
from tests.support.fuzz import assert_same, domains_and_volumes, snapshot

ANON, OWNER, OTHER, ADMIN = "anonymous", "owner", "other user", "admin"
ROLES = [ANON, OWNER, OTHER, ADMIN]
LOGINS = {OWNER: "owner", OTHER: "other", ADMIN: "admin"}

# endpoint: (method tried, status for anonymous, owner, other user, admin).
# Every object in a URL belongs to "owner". Anonymous visitors of pages are sent to the
# login page (302); JSON gets 401. POSTs carry a valid CSRF token and the form of their
# EFFECTS entry (most are empty). Someone else's VM is 404 (nobody learns which ids
# exist); admin pages are 403.
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
    "users.reset_password": ("POST", 302, 403, 403, 302),
    "users.enable": ("POST", 302, 403, 403, 302),
    "users.disable": ("POST", 302, 403, 403, 302),
    "users.delete": ("POST", 302, 403, 403, 302),
    "images.index": ("GET", 302, 403, 403, 200),
    "images.create": ("GET", 302, 403, 403, 200),
    "images.detail": ("GET", 302, 403, 403, 200),
    "images.edit": ("POST", 302, 403, 403, 302),
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
    "vms.serial": ("POST", 302, 302, 404, 302),
    "vms.terminal": ("GET", 302, 200, 404, 200),
    "vms.events": ("GET", 302, 200, 200, 200),  # streams only what the user may see
    "vms.live": ("GET", 401, 200, 404, 200),
    "vms.reset_password": ("POST", 302, 302, 404, 302),
    "users.add_key": ("POST", 302, 302, 302, 302),      # each to his own profile
    "users.delete_key": ("POST", 302, 302, 404, 404),   # only one's own keys
    "networks.index": ("GET", 302, 403, 403, 200),
    "networks.create": ("POST", 302, 403, 403, 302),
    "networks.act": ("POST", 302, 403, 403, 302),
    "bootjobs.index": ("GET", 302, 403, 403, 200),
    "bootjobs.create": ("GET", 302, 403, 403, 200),
    "bootjobs.edit": ("GET", 302, 403, 403, 200),
    "bootjobs.delete": ("POST", 302, 403, 403, 302),
    "settings.index": ("GET", 302, 403, 403, 200),
    "audit.index": ("GET", 302, 403, 403, 200),
    "tasks.index": ("GET", 302, 200, 200, 200),   # lists only what the user may see
    "tasks.detail": ("GET", 302, 200, 404, 200),
    "tasks.cancel": ("POST", 302, 302, 404, 302),
    "tasks.retry": ("POST", 302, 302, 404, 302),
    "images.upload_page": ("GET", 302, 403, 403, 200),
    "images.upload_begin": ("POST", 302, 403, 403, 400),   # the form is not the JSON
    "images.upload_inspect": ("POST", 302, 403, 403, 200),
    "images.upload_status": ("GET", 302, 403, 403, 200),
    "images.upload_chunk": ("POST", 302, 403, 403, 400),   # no offset given
    "images.upload_finish": ("POST", 302, 403, 403, 409),  # nothing has arrived yet
    "images.upload_abandon": ("POST", 302, 403, 403, 302),
    "images.copy": ("POST", 302, 403, 403, 302),
    "hosts.copy_images": ("POST", 302, 403, 403, 302),
    "vms.insert_media": ("POST", 302, 302, 404, 302),
    "vms.eject_media": ("POST", 302, 302, 404, 302),
    # issue 14: snapshots, saved state, rebuild, clone
    "vms.snapshot_create": ("POST", 302, 302, 404, 302),
    "vms.snapshot_revert": ("POST", 302, 302, 404, 302),
    "vms.snapshot_delete": ("POST", 302, 302, 404, 302),
    "vms.discard_saved": ("POST", 302, 302, 404, 302),
    "vms.rebuild_vm": ("POST", 302, 302, 404, 302),
    "vms.clone_vm": ("POST", 302, 302, 404, 302),
    # migration and host maintenance (issue 14): the administrator's; the owner is
    # refused by the service (flashed), someone else's VM is 404
    "vms.migrate": ("POST", 302, 302, 404, 302),
    "hosts.migration_address": ("POST", 302, 403, 403, 302),
    "hosts.drain": ("POST", 302, 403, 403, 302),
    "hosts.undrain": ("POST", 302, 403, 403, 302),
    "hosts.forget": ("POST", 302, 403, 403, 302),
    # issue 14: resize and disks (the VM page), volumes (admin)
    "vms.resize_vm": ("POST", 302, 302, 404, 302),
    "vms.disk_add": ("POST", 302, 302, 404, 302),
    "vms.disk_detach": ("POST", 302, 302, 404, 302),
    "vms.disk_attach": ("POST", 302, 302, 404, 302),
    "vms.disk_delete": ("POST", 302, 302, 404, 302),
    "vms.disk_grow": ("POST", 302, 302, 404, 302),   # refused: the test driver can't grow
    "vms.hardware": ("GET", 401, 200, 404, 200),
    "volumes.index": ("GET", 302, 403, 403, 200),
    "volumes.delete_orphan": ("POST", 302, 403, 403, 302),
    # issue 15: the API's reference page and its OpenAPI document, public
    "api_docs.reference": ("GET", 200, 200, 200, 200),
    "api-docs.openapi_json": ("GET", 200, 200, 200, 200),
    # issue 15: personal API tokens on the Profile page; the administrator may revoke
    # anyone's (from the user's page), as in the API
    "users.create_token": ("POST", 302, 302, 302, 302),     # each to his own profile
    "users.revoke_token": ("POST", 302, 302, 404, 302),
    # issue 14: a VM lost with a forgotten host, its owner's (and the administrator's)
    "vms.lost": ("GET", 302, 200, 404, 200),
    "vms.delete_lost": ("POST", 302, 302, 404, 302),
}
NOT_CHECKED = {"static"}
# The REST API has its own matrix, by token (tests/test_api_access.py); its reference
# page and document are public pages.
API_PREFIX = "api_"
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
                    "X-Frame-Options")


def _rules():
    app = create_app("test")
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in NOT_CHECKED
                   and (not r.endpoint.startswith(API_PREFIX)
                        or r.endpoint == "api_docs.reference")),
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
        admin_id = make_user("admin", is_admin=True).id
        make_user("other")
        owner = make_user("owner")
        template = make_catalog(("h1", test_host))
        vm = make_vm(owner.id, "owned-vm", template.id, start=False)
        key = keys.add_key(db.session.get(User, owner.id), "laptop", new_public_key())
        job = bootjobs.create_boot_job("motd", "runcmd: [[touch, /tmp/x]]")
        task = tasklist.ping(db.session.get(User, owner.id))
        upload = uploads.begin(db.session.get(User, admin_id), "coming", "coming.qcow2",
                               1 << 20)
        token = tokens.create_token(db.session.get(User, owner.id), "laptop script").token
        # a VM of the owner's lost with a forgotten host (issue 14): only its record
        lost = LostVM(owner_id=owner.id, vm_id=10**6, name="lost-vm", host_name="gone",
                      created_at=utcnow())
        db.session.add(lost)
        db.session.commit()
        ids = {"key_id": key.id, "job_id": job.id, "task_id": task.id,
               "upload_id": upload.id, "token_id": token.id, "lost_id": lost.id}
    return {"user_id": owner.id, "host_id": vm.host_id, "image_id": template.image_id,
            "template_id": template.id, "vm_id": vm.id, "action": "start",
            "vm_uuid": vm.uuid, "host_uri": test_host, **ids}


def _url(rule, world):
    return rule.build({k: world[k] for k in rule.arguments}, append_unknown=False)[1]


def _events(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(AuditEvent.id))).scalar()


def _last_event(app) -> AuditEvent:
    with app.app_context():
        event = db.session.execute(
            db.select(AuditEvent).order_by(AuditEvent.id.desc())).scalars().first()
        db.session.expunge(event)
        return event


# -- what each POST does ---------------------------------------------------------------
SAME = "the service refuses: nothing changes"
NEW_PASSWORD = "a brand new password 7"
NEW_KEY = new_public_key("new@laptop")


@dataclass(frozen=True)
class Effect:
    """What a POST does as its user notices it. ``observe(app, world, client)`` reads
    it; an allowed POST turns it into ``after`` (a function of the role, or SAME when
    the service refuses the action: then the audit result is "refused" and ``message``
    the reason); a refused POST leaves it as it was."""
    observe: Callable[[Any, dict, Client], Any]
    after: Any
    message: str = ""  # in the audit event: what the user was shown
    result: str = "ok"
    form: dict = field(default_factory=dict)
    prepare: Callable[[Any, dict, str], None] | None = None  # (app, world, role)


def _row(model, key: str, read: Callable[[Any], Any] = lambda row: True):
    """An observer: ``read(row)`` of the world's object, None once it is gone."""
    def observe(app, world, _client):
        with app.app_context():
            row = db.session.get(model, world[key])
            return read(row) if row is not None else None
    return observe


def _domain(app, world, _client) -> str:
    def read(conn):
        found = [d for d in conn.listAllDomains(0) if d.UUIDString() == world["vm_uuid"]]
        return ("running" if found[0].isActive() else "shut off") if found else "gone"
    with app.app_context():
        return pool().call(world["host_uri"], read, timeout=10)


def _vm(app, world, client):
    return _row(VM, "vm_id")(app, world, client), _domain(app, world, client)


def _token_holders(app, world, _client) -> list[str]:
    with app.app_context():
        return sorted(db.session.execute(
            db.select(User.username).join(ConsoleToken, ConsoleToken.user_id == User.id)
            .where(ConsoleToken.vm_id == world["vm_id"])).scalars())


def _presence(app, world, _client) -> list[bool]:
    with app.app_context():
        return [loc.present for loc in db.session.get(Image, world["image_id"]).locations]


def _profile(_app, _world, client) -> int:
    """200 while the client is logged in, 302 (to the login page) once not."""
    return client.get("/profile").status_code


def _change(model, key: str, **values):
    """A preparation: set columns of the world's object."""
    def prepare(app, world, _role):
        with app.app_context():
            row = db.session.get(model, world[key])
            for name, value in values.items():
                setattr(row, name, value)
            db.session.commit()
    return prepare


def _disable_owner(app, world, role):
    if role != OWNER:  # the owner must be able to log in to be refused
        _change(User, "user_id", active=False)(app, world, role)


def _start_domain(app, world, _role):
    def start(conn):
        conn.lookupByUUIDString(world["vm_uuid"]).create()
    with app.app_context():
        pool().call(world["host_uri"], start, timeout=10)


def _nothing(_app, _world, _client) -> None:
    """Nothing a test can read changes (a password inside the guest): the audit says."""


def _key_owners(app, _world, _client) -> list[str]:
    with app.app_context():
        return sorted(db.session.execute(
            db.select(User.username).join(SshKey, SshKey.user_id == User.id)).scalars())


def _networks(app, world, _client) -> dict[str, bool]:
    def read(conn):
        return {n.name(): bool(n.isActive()) for n in conn.listAllNetworks(0)}
    with app.app_context():
        return pool().call(world["host_uri"], read, timeout=10)


def _forget_presence(app, world, _role):
    with app.app_context():
        for loc in db.session.execute(db.select(ImageLocation)).scalars():
            loc.present = False
        db.session.commit()


def _tasks(app, _world, _client) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(Task.id))).scalar()


EFFECTS = {
    "auth.logout": Effect(_profile, 302, "You are logged out."),
    "vms.act": Effect(_domain, "running", "owned-vm is starting."),
    "vms.delete": Effect(_vm, (None, "gone"), "owned-vm was deleted with its disks."),
    "vms.console": Effect(_token_holders, lambda role: [LOGINS[role]],
                          prepare=lambda app, world, _role: give_screen(
                              app, world["host_uri"], world["vm_uuid"])),
    "users.reset_password": Effect(
        _row(User, "user_id", lambda u: verify_password(u.password_hash, NEW_PASSWORD)[0]),
        True, "New password set for owner; their sessions have ended.",
        form={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
    "users.enable": Effect(_row(User, "user_id", lambda u: u.active), True,
                           "User owner enabled.", prepare=_disable_owner),
    "users.disable": Effect(_row(User, "user_id", lambda u: u.active), False,
                            "User owner disabled; their sessions have ended."),
    "users.delete": Effect(_row(User, "user_id"), SAME,
                           "owner still owns 1 VM. Delete them first.", "refused"),
    "images.edit": Effect(_row(Image, "image_id", lambda i: (i.name, i.os_type)),
                          ("renamed", "windows"), "Image renamed saved.",
                          form={"name": "renamed", "os_type": "windows"}),
    "images.recheck": Effect(_presence, [True], "Presence on the hosts checked again.",
                             prepare=_forget_presence),
    "images.delete": Effect(_row(Image, "image_id"), SAME,
                            "Templates use base: small. Delete or change them first.",
                            "refused"),
    "templates.delete": Effect(_row(Template, "template_id"), SAME,
                               "1 VM uses small. Delete them first.", "refused"),
    "hosts.accepts": Effect(_row(Host, "host_id", lambda h: h.accepts_vms), False,
                            "h1 no longer accepts new VMs."),
    "hosts.refresh": Effect(_row(Host, "host_id", lambda h: h.cpus), 4,
                            "Figures of h1 read again.",
                            prepare=_change(Host, "host_id", cpus=99)),
    "hosts.delete": Effect(_row(Host, "host_id"), SAME,
                           "h1 still holds 1 LouCloud VM. Delete or move them first.",
                           "refused"),
    "vms.serial": Effect(_token_holders, lambda role: [LOGINS[role]], prepare=_start_domain),
    "vms.reset_password": Effect(_nothing, SAME, "The password of debian in owned-vm was "
                                 "changed.", form={"user": "debian",
                                                   "password": NEW_PASSWORD},
                                 prepare=_start_domain),
    "users.add_key": Effect(_key_owners, lambda role: sorted(["owner", LOGINS[role]]),
                            "added.", form={"name": "new", "key": NEW_KEY}),
    "users.delete_key": Effect(_row(SshKey, "key_id"), None, "Key laptop deleted."),
    "networks.create": Effect(_networks, {"default": True, "lab": True},
                              "Network lab (10.50.0.0/24) made and started on h1.",
                              form={"name": "lab", "subnet": "10.50.0.0/24", "hosts": "1"}),
    "networks.act": Effect(_networks, {"default": False}, "default stopped on h1",
                           form={"host_id": "1", "name": "default", "action": "stop"}),
    "bootjobs.delete": Effect(_row(BootJob, "job_id"), None, "Boot job motd deleted."),
    "tasks.cancel": Effect(_row(Task, "task_id", lambda t: t.state), "cancelled",
                           "cancelled."),
    # the ping task and the upload's copy task, then the new try
    "tasks.retry": Effect(_tasks, 3, "queued (a new try of task",
                          prepare=_change(Task, "task_id", state="failed")),
    "images.upload_begin": Effect(_row(Upload, "upload_id", lambda u: u.state), SAME,
                                  "Send the upload's facts as a JSON object.", "refused"),
    "images.upload_inspect": Effect(_nothing, SAME),
    "images.upload_chunk": Effect(_row(Upload, "upload_id", lambda u: u.received), SAME,
                                  "Say the chunk's offset", "refused"),
    "images.upload_finish": Effect(_row(Upload, "upload_id", lambda u: u.state), SAME,
                                   "0 of 1048576 bytes have arrived", "refused"),
    "images.upload_abandon": Effect(_row(Upload, "upload_id"), None, "Upload abandoned"),
    "images.copy": Effect(_tasks, SAME, "was added by its path on the hosts", "refused"),
    "hosts.copy_images": Effect(_tasks, SAME, "h1 has every image LouCloud uploaded",
                                "refused"),
    "vms.insert_media": Effect(_row(VM, "vm_id", lambda vm: vm.cdrom_image_id), SAME,
                               "Choose an ISO that is on h1.", "refused"),
    "vms.eject_media": Effect(_row(VM, "vm_id", lambda vm: vm.cdrom_image_id), SAME,
                              "The CD-ROM drive of owned-vm is empty.", "refused"),
    # migration and host maintenance (issue 14)
    "vms.migrate": Effect(_vm, SAME, "Cannot move owned-vm", "refused",
                          form={"target_id": "1"}),
    "hosts.migration_address": Effect(_row(Host, "host_id", lambda h: h.migration_address),
                                      "10.9.9.9", "h1's migration address: 10.9.9.9.",
                                      form={"migration_address": "10.9.9.9"}),
    "hosts.drain": Effect(_row(Host, "host_id", lambda h: h.draining), True,
                          "Draining h1: its VMs are moved away"),
    "hosts.undrain": Effect(_row(Host, "host_id", lambda h: h.draining), False,
                            "h1 accepts VMs again.",
                            prepare=_change(Host, "host_id", draining=True)),
    "hosts.forget": Effect(_row(Host, "host_id"), SAME, "h1 answers: drain it", "refused"),
}


# issue 14: snapshots, saved state, rebuild, clone
def _on_owned_vm(*steps):
    """A preparation: run service steps on the world's VM (start, snapshot, save...)."""
    def prepare(app, world, _role):
        from loucloud.services.vms import lifecycle, snapshots
        with app.app_context():
            for step, *args in steps:
                vm = db.session.get(VM, world["vm_id"])
                if step == "snapshot":
                    snapshots.create_snapshot(vm, *args)
                else:
                    lifecycle.act_on_vm(vm, step)
    return prepare


def _snapshot_names(app, world, _client) -> list[str]:
    def read(conn):
        dom = conn.lookupByUUIDString(world["vm_uuid"])
        return sorted(s.getName() for s in dom.listAllSnapshots(0))
    with app.app_context():
        return pool().call(world["host_uri"], read, timeout=10)


def _saved_state(app, world, _client) -> bool:
    def read(conn):
        return conn.lookupByUUIDString(world["vm_uuid"]).hasManagedSaveImage(0) == 1
    with app.app_context():
        return pool().call(world["host_uri"], read, timeout=10)


def _owner_vms(app, world, _client) -> list[str]:
    with app.app_context():
        return sorted(db.session.execute(db.select(VM.name).where(
            VM.owner_id == world["user_id"])).scalars())


EFFECTS.update({
    "vms.snapshot_create": Effect(_snapshot_names, ["s1"], "Snapshot s1 of owned-vm's disks "
                                  "taken.", form={"name": "s1"}),
    "vms.snapshot_revert": Effect(_domain, "running", "owned-vm is back at snapshot s1: "
                                  "running", form={"name": "s1"}, prepare=_on_owned_vm(
                                      ("start",), ("snapshot", "s1"), ("poweroff",))),
    "vms.snapshot_delete": Effect(_snapshot_names, [], "Snapshot s1 of owned-vm deleted.",
                                  form={"name": "s1"}, prepare=_on_owned_vm(("snapshot", "s1"))),
    "vms.discard_saved": Effect(_saved_state, False, "The saved state of owned-vm was "
                                "discarded", prepare=_on_owned_vm(("start",), ("save",))),
    "vms.rebuild_vm": Effect(_snapshot_names, [], "owned-vm was rebuilt from base: its disk "
                             "is new.", prepare=_on_owned_vm(("snapshot", "s1"))),
    "vms.clone_vm": Effect(_owner_vms, ["owned-copy", "owned-vm"], "Cloning owned-vm as "
                           "owned-copy: task", form={"name": "owned-copy"}),
})


# issue 14: resize and disks, volumes
def _disks(app, world, _client) -> list[tuple[str, bool]]:
    with app.app_context():
        return [(d.target, d.attached) for d in db.session.get(VM, world["vm_id"]).disks]


def _add_disk(app, world, _role):
    from loucloud.services.vms import disks
    with app.app_context():
        disks.add_disk(db.session.get(VM, world["vm_id"]), 1)


def _add_detached_disk(app, world, role):
    from loucloud.services.vms import disks
    _add_disk(app, world, role)
    with app.app_context():
        disks.detach_disk(db.session.get(VM, world["vm_id"]), "vdb")


STRAY = "stray.qcow2"


def _stray(app, world, _client) -> bool:
    def read(conn):
        return STRAY in conn.storagePoolLookupByName("loucloud").listVolumes()
    with app.app_context():
        return pool().call(world["host_uri"], read, timeout=10)


def _make_stray(app, world, _role):
    def make(conn):
        conn.storagePoolLookupByName("loucloud").createXML(
            f"<volume><name>{STRAY}</name><capacity>1048576</capacity></volume>", 0)
    with app.app_context():
        pool().call(world["host_uri"], make, timeout=10)


EFFECTS.update({
    "vms.resize_vm": Effect(_row(VM, "vm_id", lambda vm: (vm.vcpus, vm.memory_mib)),
                            (2, 1024), "owned-vm now has 2 vCPUs and 1024 MiB of memory",
                            form={"vcpus": "2", "memory_mib": "1024"}),
    "vms.disk_add": Effect(_disks, [("vda", True), ("vdb", True)],
                           "A 1 GiB disk vdb was added to owned-vm", form={"size_gib": "1"}),
    "vms.disk_detach": Effect(_disks, [("vda", True), ("vdb", False)],
                              "vdb was detached from owned-vm", form={"disk": "vdb"},
                              prepare=_add_disk),
    "vms.disk_attach": Effect(_disks, [("vda", True), ("vdb", True)],
                              "vdb was attached to owned-vm again", form={"disk": "vdb"},
                              prepare=_add_detached_disk),
    "vms.disk_delete": Effect(_disks, [("vda", True)], "Disk vdb of owned-vm was deleted",
                              form={"disk": "vdb"}, prepare=_add_disk),
    "vms.disk_grow": Effect(_row(VM, "vm_id", lambda vm: vm.disk_gib), SAME,
                            "Growing vda of owned-vm failed on h1", "refused",
                            form={"disk": "vda", "size_gib": "3"}),
    "volumes.delete_orphan": Effect(_stray, False, "Orphan volume stray.qcow2 deleted",
                                    form={"host_id": "1", "name": STRAY},
                                    prepare=_make_stray),
    "vms.delete_lost": Effect(_row(LostVM, "lost_id", lambda lost: lost.name), None,
                              "The record of lost-vm, lost with the host gone, was "
                              "deleted."),
})


# issue 15: personal API tokens
def _token_owners(app, _world, _client) -> list[str]:
    with app.app_context():
        return sorted(db.session.execute(
            db.select(User.username).join(ApiToken, ApiToken.user_id == User.id)).scalars())


EFFECTS.update({
    "users.create_token": Effect(_token_owners, lambda role: sorted(["owner", LOGINS[role]]),
                                 "Token ci created: copy it now.",
                                 form={"name": "ci", "expires_days": "30"}),
    "users.revoke_token": Effect(_row(ApiToken, "token_id", lambda t: t.state()), "revoked",
                                 "Token laptop script (lct_"),
})


def test_every_post_has_an_effect():
    posts = {endpoint for endpoint, (method, *_) in EXPECTED.items() if method == "POST"}
    assert posts == set(EFFECTS), "a POST in EXPECTED needs its entry in EFFECTS"


def _allowed(endpoint: str, role: str) -> bool:
    method, *statuses = EXPECTED[endpoint]
    return role != ANON and dict(zip(ROLES, statuses))[role] not in (401, 403, 404)


@pytest.mark.parametrize("rule,role", CELLS,
                         ids=[f"{r.endpoint}-{role}" for r, role in CELLS])
def test_access(app, world, rule, role):
    method, *statuses = EXPECTED[rule.endpoint]
    expected = dict(zip(ROLES, statuses))[role]
    url = _url(rule, world)
    effect = EFFECTS[rule.endpoint] if method == "POST" else None
    if effect and effect.prepare:
        effect.prepare(app, world, role)
    client = Client(app)
    if role != ANON:
        client.login(LOGINS[role])
    seen = effect.observe(app, world, client) if effect else None
    before = _events(app)
    response = client.get(url) if method == "GET" else client.post(url, effect.form)
    assert response.status_code == expected, f"{role} {method} {url}"
    if expected == 302 and role == ANON:
        assert "/login" in response.headers["Location"]
    for header in SECURITY_HEADERS:
        assert header in response.headers, f"{header} missing on {method} {url}"
    for cookie in response.headers.getlist("Set-Cookie"):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    if method == "GET":
        assert _events(app) == before, "a GET must change nothing"
        return
    assert _events(app) == before + 1, "a POST must leave exactly one audit event"
    last = _last_event(app)
    now = effect.observe(app, world, client)
    if not _allowed(rule.endpoint, role):
        assert last.result == "refused"
        assert now == seen, f"refused ({expected}), but {seen!r} became {now!r}"
        return
    action = f"vms.{world['action']}" if rule.endpoint == "vms.act" else rule.endpoint
    assert (last.result, last.action) == (effect.result, action), last.message
    assert effect.message in last.message
    if effect.after == SAME:
        assert now == seen, f"the service refused, but {seen!r} became {now!r}"
        return
    after = effect.after(role) if callable(effect.after) else effect.after
    assert seen != after, f"{after!r} before the POST: the check proves nothing"
    assert now == after, f"{role}: {seen!r} should have become {after!r}, is {now!r}"


SETTINGS_FORM = {spec.key: str(spec.default) for spec in SPECS} | {"console_token_seconds": "90"}
QUOTA_FORM = {"max_vms": "3", "max_vcpus": "4", "max_memory_mib": "4096", "max_disk_gib": "50"}
SIZES_FORM = {"vcpus": "2", "memory_mib": "1024", "disk_gib": "3", "notes": ""}
# A valid form for each route whose POST the matrix does not try (it GETs the page).
FORMS: dict[str, Callable[[dict], dict]] = {
    "auth.login": lambda w: {"username": "admin", "password": PASSWORD},
    "users.profile": lambda w: {"current_password": PASSWORD, "password": NEW_PASSWORD,
                                "confirm": NEW_PASSWORD},
    "users.create": lambda w: {"username": "newbie", "password": NEW_PASSWORD,
                               "confirm": NEW_PASSWORD, **QUOTA_FORM},
    "users.edit": lambda w: {"username": "renamed", "full_name": "R", **QUOTA_FORM},
    "vms.create": lambda w: {"name": "new-vm", "template_id": str(w["template_id"]),
                             "host_id": "0", "start": "y"},
    "images.create": lambda w: {"name": "raw", "path": "/var/lib/images/base.raw",
                                "os_type": "linux"},
    "templates.create": lambda w: {"name": "big", "image_id": str(w["image_id"]),
                                   **SIZES_FORM},
    "templates.edit": lambda w: {"name": "renamed", "image_id": str(w["image_id"]),
                                 **SIZES_FORM},
    "hosts.create": lambda w: {"name": "h2", "uri": "test:///default"},
    "bootjobs.create": lambda w: {"name": "hello", "script": "runcmd: [[touch, /tmp/h]]"},
    "bootjobs.edit": lambda w: {"name": "renamed", "script": "runcmd: [[touch, /tmp/h]]"},
    "settings.index": lambda w: SETTINGS_FORM,
}
POSTS = [r for r in RULES if r.methods - {"GET", "HEAD", "OPTIONS"}]


def test_every_form_route_has_a_form():
    forms = {r.endpoint for r in POSTS} - set(EFFECTS)
    assert forms == set(FORMS), "a route that takes a POST needs a FORMS or EFFECTS entry"


@pytest.mark.parametrize("rule", POSTS, ids=lambda r: r.endpoint)
def test_post_without_csrf_token_is_refused(app, world, rule):
    """The administrator, who may do everything, with a valid form but no token, an
    empty one or a forged one: refused, and nothing changed (database and host). Then
    the same form with the session's token does change something (the control)."""
    effect = EFFECTS.get(rule.endpoint)
    if effect and effect.prepare:
        effect.prepare(app, world, ADMIN)
    form = effect.form if effect else FORMS[rule.endpoint](world)
    client = Client(app)
    client.login("admin")
    url, uris = _url(rule, world), {world["host_uri"]}
    before = snapshot(app, uris)
    for token in (None, "", "forged-" + client.csrf()[7:]):
        data = dict(form, **({} if token is None else {"csrf_token": token}))
        response = client.http.post(url, data=data)
        assert response.status_code == 400
        assert "form has expired" in response.get_data(as_text=True)
        assert _last_event(app).result == "refused"
        assert_same(before, snapshot(app, uris), f"POST {url} with csrf_token={token!r}")
    if rule.endpoint == "auth.login" or (effect and effect.after == SAME) or \
            (effect and not _allowed(rule.endpoint, ADMIN)):
        return  # logged in already / refused by the service / not the admin's to do
    response = client.post(url, form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    after = snapshot(app, uris)
    assert (after.db, domains_and_volumes(after.hosts)) != \
        (before.db, domains_and_volumes(before.hosts)), f"the control POST {url} did nothing"


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
                             "post_routes_without_csrf": len(POSTS)})
