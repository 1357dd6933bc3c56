"""Migration between hosts and host maintenance (issue 14) on libvirt's test driver:
what it can show — every refusal (same host, offline or draining host, a simulated
host, a busy VM, not the administrator), the page's choices, the CLI, drain and forget.
The moves themselves run on the real lab hosts: tests/system/test_migration.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from loucloud.extensions import db
from loucloud.models import VM, AuditEvent, Host, Leftover, Remnant, Task, User, utcnow
from loucloud.services import Conflict, FieldError, NotAllowed, maintenance
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from loucloud.services.users import quota_usage
from loucloud.services.vms import migration
from loucloud.services.vms.create import create_vm
from tests.conftest import IMAGE_FILES, IMAGES, Client
from tests.factories import make_catalog, make_vm, write_test_node

JSON = {"Accept": "application/json"}


@pytest.fixture
def two(app, admin, user, test_host, test_host2):
    """h1 and h2 (test driver), the image on both, alice's running VM "web" on h1."""
    with app.app_context():
        template = make_catalog(("h1", test_host), ("h2", test_host2))
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        h1 = db.session.execute(db.select(Host).filter_by(name="h1")).scalar_one()
        vm = make_vm(alice.id, "web", template.id, host_id=h1.id)
        return {"vm_id": vm.id, "template_id": template.id}


def _host(name: str) -> Host:
    return db.session.execute(db.select(Host).filter_by(name=name)).scalar_one()


def _post_migrate(client, vm_id, target: str | None):
    """POST the Migrate form (outside any app context: each request has its own)."""
    form = {}
    if target:
        with client.app.app_context():
            form = {"target_id": str(_host(target).id)}
    return client.post(f"/vms/{vm_id}/migrate", form, headers=JSON)


def _message(response) -> str:
    return json.loads(response.get_data(as_text=True))["error"]


def test_migrating_to_the_same_host_is_a_409_that_says_so(app, two, as_admin):
    response = _post_migrate(as_admin, two["vm_id"], "h1")
    assert response.status_code == 409
    assert "already on h1" in _message(response)
    with app.app_context():
        assert db.session.get(VM, two["vm_id"]).status == VM.READY
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 0


def test_an_offline_or_draining_target_is_refused_with_the_reason(app, two, as_admin):
    with app.app_context():
        h2 = _host("h2")
        h2.offline_since, h2.last_error = utcnow(), "connection refused"
        db.session.commit()
    response = _post_migrate(as_admin, two["vm_id"], "h2")
    assert response.status_code == 409
    assert "h2 is offline (connection refused)" in _message(response)
    with app.app_context():
        h2 = _host("h2")
        h2.offline_since, h2.draining = None, True
        db.session.commit()
    response = _post_migrate(as_admin, two["vm_id"], "h2")
    assert response.status_code == 409
    assert "h2 is being drained" in _message(response)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 0


def test_a_simulated_host_takes_no_migration(app, two, as_admin):
    response = _post_migrate(as_admin, two["vm_id"], "h2")
    assert response.status_code == 409
    assert "simulated host" in _message(response)
    # placement's choice: no host can take it, each one's reason said
    response = _post_migrate(as_admin, two["vm_id"], None)
    assert response.status_code == 409
    assert "No host can take web: a simulated host" in _message(response)


def test_only_the_administrator_migrates(app, two, as_user, other_user):
    response = _post_migrate(as_user, two["vm_id"], "h2")
    assert response.status_code == 403
    assert "only the administrator" in _message(response)
    bob = Client(app)
    bob.login("bob")
    assert _post_migrate(bob, two["vm_id"], "h2").status_code == 404


def test_a_busy_vm_is_not_moved(app, two, admin):
    with app.app_context():
        vm = db.session.get(VM, two["vm_id"])
        vm.status, vm.status_since = "starting", utcnow()
        db.session.commit()
        with pytest.raises(Conflict, match="busy \\(starting\\)"):
            migration.migrate_vm(db.session.get(User, admin.id), vm, _host("h2"))
        with pytest.raises(NotAllowed):
            alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
            migration.migrate_vm(alice, vm, _host("h2"))


def test_the_page_offers_the_hosts_with_why_not_to_the_admin_only(app, two, as_admin,
                                                                  as_user):
    page = as_admin.get(f"/vms/{two['vm_id']}").get_data(as_text=True)
    assert 'id="migration"' in page
    assert "h2 — a simulated host (libvirt&#39;s test driver) takes no migrations" in page
    assert 'id="migration"' not in as_user.get(f"/vms/{two['vm_id']}").get_data(as_text=True)


def test_the_cli_refuses_with_the_reason(app, two):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["vms", "migrate", "web", "--owner", "alice", "--to", "h1"])
    assert result.exit_code == 1
    assert "already on h1" in result.output
    result = runner.invoke(args=["vms", "migrate", "web", "--owner", "alice", "--to", "nope"])
    assert result.exit_code == 1 and "no host named nope" in result.output


def test_the_migration_address_is_set_checked_and_defaults_to_the_uri(app, two, admin):
    with app.app_context():
        h1 = _host("h1")
        assert migration.migration_address(h1) == ""   # test:/// has no host part
        h1.uri = "qemu+tcp://10.0.0.5/system"
        assert migration.migration_address(h1) == "10.0.0.5"
        maintenance.set_migration_address(db.session.get(User, admin.id), h1, " 10.9.0.5 ")
        assert migration.migration_address(_host("h1")) == "10.9.0.5"
        with pytest.raises(Exception, match="IP address or a host name"):
            maintenance.set_migration_address(db.session.get(User, admin.id), _host("h1"),
                                              "bad address!")
        assert _host("h1").migration_address == "10.9.0.5"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["hosts", "migration-address", "h2", "mig.example.org"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _host("h2").migration_address == "mig.example.org"


# -- drain ------------------------------------------------------------------------------
def test_drain_stops_placement_and_summarises_what_could_not_move(app, two, admin):
    with app.app_context():
        task = maintenance.drain(db.session.get(User, admin.id), _host("h1"))
        assert _host("h1").draining
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        from loucloud.models import Template
        vm = create_vm(alice, "new", db.session.get(Template, two["template_id"]))
        assert vm.host.name == "h2"     # placement skips the draining host
        with pytest.raises(Conflict, match="being drained already"):
            maintenance.drain(db.session.get(User, admin.id), _host("h1"))
        task_service.execute(task.id)
        task = db.session.get(Task, task.id)
        assert task.state == "failed"
        assert tasklist.says(task.error).startswith(
            "0 of 1 VM(s) moved off h1, 1 could not move.")
        # each VM's line stays in the task's result: its summary
        head, rows = maintenance.drain_lines(task)
        assert head == "0 of 1 VM(s) moved off h1, 1 could not move."
        [(name, what)] = rows
        assert name == "web" and what.startswith("not moved: No host can take web: ")
        assert "a simulated host" in what
        assert db.session.get(VM, two["vm_id"]).status == VM.READY   # left as it was
        maintenance.undrain(db.session.get(User, admin.id), _host("h1"))
        assert not _host("h1").draining


def test_the_host_page_and_the_cli_list_each_vm_of_the_last_drain(app, two, admin,
                                                                  as_admin):
    with app.app_context():
        h1_id = _host("h1").id
        assert maintenance.last_drain(_host("h1")) is None
        task = maintenance.drain(db.session.get(User, admin.id), _host("h1"))
        page = as_admin.get(f"/hosts/{h1_id}").get_data(as_text=True)
        assert "Being drained" in page and f"task {task.id}" in page
        assert "0 of 1 VM(s) moved off h1, 1 waiting." not in page   # not started yet
        task_service.execute(task.id)
    page = as_admin.get(f"/hosts/{h1_id}").get_data(as_text=True)
    assert "Last drain (failed)" in page
    assert "0 of 1 VM(s) moved off h1, 1 could not move." in page
    assert "<td class=\"text-nowrap\">web</td><td>not moved: No host can take web" in page
    result = app.test_cli_runner().invoke(args=["hosts", "drain-status", "h1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"task {task.id} failed"
    assert lines[1] == "0 of 1 VM(s) moved off h1, 1 could not move."
    assert lines[2].startswith("  web: not moved: No host can take web: ")
    result = app.test_cli_runner().invoke(args=["hosts", "drain-status", "h2"])
    assert result.exit_code == 1 and "h2 was never drained" in result.output


def test_drain_and_undrain_through_the_cli(app, two):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["hosts", "drain", "h1"])
    assert result.exit_code == 0 and "draining h1" in result.output
    result = runner.invoke(args=["hosts", "undrain", "h1"])
    assert result.exit_code == 0 and "accepts VMs again" in result.output
    with app.app_context():
        assert not _host("h1").draining
        actions = db.session.execute(db.select(AuditEvent.action)).scalars().all()
        assert {"hosts.drain", "hosts.undrain"} <= set(actions)


# -- forget -------------------------------------------------------------------------------
def test_forget_refuses_a_host_that_answers(app, two, as_admin):
    with app.app_context():
        h1_id = _host("h1").id
    response = as_admin.post(f"/hosts/{h1_id}/forget", headers=JSON)
    assert response.status_code == 409
    assert "h1 answers" in _message(response)
    with app.app_context():
        assert db.session.get(VM, two["vm_id"]) is not None


def test_forget_an_offline_host_frees_quota_and_remembers_its_leftovers(
        app, two, as_admin, tmp_path):
    gone = Path(tmp_path) / "gone.xml"
    uri = f"test://{gone}"
    with app.app_context():
        # a host whose node file is gone: it does not answer; alice's VM "web" is on it
        dead = Host(name="dead", uri=uri, hostname="dead", cpus=4, memory_mib=8192,
                    offline_since=utcnow())
        db.session.add(dead)
        db.session.flush()
        vm = db.session.get(VM, two["vm_id"])
        uuid, volume = vm.uuid, vm.volume_name
        vm.host_id = dead.id
        db.session.add(Leftover(host_id=dead.id, kind="volume", pool="loucloud",
                                name="half-made.qcow2"))
        db.session.commit()
        dead_id = dead.id
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        assert quota_usage(alice).used.vms == 1
    page = as_admin.get(f"/hosts/{dead_id}").get_data(as_text=True)
    assert "These VMs are lost with it: web." in page   # the confirmation
    response = as_admin.post(f"/hosts/{dead_id}/forget")
    assert response.status_code == 302
    with app.app_context():
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        assert db.session.execute(db.select(Host).filter_by(name="dead")).scalar() is None
        assert db.session.get(VM, two["vm_id"]) is None
        assert quota_usage(alice).used.vms == 0
        kept = {(r.kind, r.name) for r in db.session.execute(db.select(Remnant)).scalars()}
        assert {("domain", uuid), ("volume", volume),
                ("volume", "half-made.qcow2")} <= kept
        event = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id.desc())
                                   ).scalars().first()
        assert event.action == "hosts.forget" and event.result == "ok"
        assert "1 VM(s) are lost with it, marked so for their owners (their quota " \
               "freed): web (alice)." in event.message
    # the host comes back and is added again: what it kept is its leftovers, removed
    write_test_node(gone, pools=IMAGES, volumes=IMAGE_FILES)
    response = as_admin.post("/hosts/new", {"name": "back", "uri": uri})
    assert response.status_code == 302
    with app.app_context():
        back = _host("back")
        assert db.session.execute(db.select(Remnant)).first() is None
        from loucloud.services import leftovers
        assert {r.name for r in leftovers.pending({back.id})} >= {uuid, volume}
        leftovers.clean({back.id})
        assert leftovers.pending({back.id}) == []


def test_when_both_hosts_hold_a_live_copy_the_running_one_or_the_calls_outcome_wins():
    """settle()'s rule for two live copies (a libvirtd killed mid-migration and
    restarted): the running copy beside a paused one, else how the migrate call ended,
    else (after the wait) the source; None: look again."""
    from loucloud.services.vms.settling import _keep
    assert _keep("running", "paused", None, False) == "source"
    assert _keep("paused", "running", None, False) == "target"
    assert _keep("running", "running", "succeeded", False) == "target"
    assert _keep("running", "running", "failed", False) == "source"
    assert _keep("paused", "paused", "failed", False) == "source"
    assert _keep("running", "running", None, False) is None
    assert _keep("running", "running", None, True) == "source"


def test_a_vm_with_snapshots_or_a_saved_state_is_refused_before_anything_moves(app, two,
                                                                                admin):
    """libvirt moves no snapshot (live it refuses, late; offline they would be lost), and
    an offline move would drop a saved memory state: both refused up front, saying why."""
    from loucloud.services.vms import lifecycle, snapshots

    with app.app_context():
        vm = db.session.get(VM, two["vm_id"])
        snapshots.create_snapshot(vm, "s1")
        with pytest.raises(Conflict, match="has 1 snapshot\\(s\\), which a move would lose"):
            migration.migrate_vm(db.session.get(User, admin.id), vm)
        snapshots.delete_snapshot(db.session.get(VM, two["vm_id"]), "s1")
        lifecycle.act_on_vm(db.session.get(VM, two["vm_id"]), "save")
        with pytest.raises(Conflict, match="holds a saved memory state"):
            migration.migrate_vm(db.session.get(User, admin.id),
                                 db.session.get(VM, two["vm_id"]))
        assert db.session.get(VM, two["vm_id"]).status == VM.READY
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 0


def test_a_running_vm_with_a_detached_data_disk_is_not_moved_live(app, two, admin):
    """Review finding 2: the live move copies the domain's devices only; a detached
    disk's volume would arrive empty and the source's be deleted."""
    from loucloud.models import Disk

    with app.app_context():
        vm = db.session.get(VM, two["vm_id"])
        vm.disks.append(Disk(target="vdb", volume_name="web-data.qcow2", size_gib=1,
                             attached=False))
        db.session.commit()
        with pytest.raises(Conflict, match="detached data disks \\(vdb\\)"):
            migration.migrate_vm(db.session.get(User, admin.id), vm)
        assert db.session.get(VM, two["vm_id"]).status == VM.READY
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 0


def test_trying_a_failed_move_again_checks_the_target_and_holds_the_vm(app, two, admin):
    """Review finding 4: "Try again" starts the same task anew; it must not move a VM it
    does not hold, nor to a host drained since."""
    from loucloud.services import tasklist

    with app.app_context():
        vm, h1, h2 = db.session.get(VM, two["vm_id"]), _host("h1"), _host("h2")
        failed = task_service.start("vm.migrate", db.session.get(User, admin.id),
                                    target_type="vm", target_id=vm.id, target_name=vm.name,
                                    args={"vm_id": vm.id, "source_id": h1.id,
                                          "target_id": h2.id, "mode": "live"})
        failed.state = "failed"
        h2.draining = True
        db.session.commit()
        again = tasklist.retry(db.session.get(User, admin.id), failed.id)
        task_service.execute(again.id)
        again = db.session.get(Task, again.id)
        assert again.state == "failed" and "h2 is being drained" in tasklist.says(again.error)
        vm = db.session.get(VM, two["vm_id"])
        assert (vm.status, vm.host_id) == (VM.READY, h1.id)


def test_forget_refuses_a_host_a_vm_is_moving_to(app, two, admin):
    """Review finding 18: that move would end writing leftovers for a host that is gone,
    and its VM would stay "migrating"."""
    with app.app_context():
        vm, h1, h2 = db.session.get(VM, two["vm_id"]), _host("h1"), _host("h2")
        task_service.start("vm.migrate", db.session.get(User, admin.id), target_type="vm",
                           target_id=vm.id, target_name=vm.name,
                           args={"vm_id": vm.id, "source_id": h1.id, "target_id": h2.id,
                                 "mode": "live"})
        with pytest.raises(Conflict, match="web is moving to h2; cancel the move first"):
            maintenance.forget_host(db.session.get(User, admin.id), h2)
        assert _host("h2") is not None


def _dead_host(tmp_path, name: str = "dead") -> Host:
    """A host whose node file is gone: it does not answer (as an offline host)."""
    host = Host(name=name, uri=f"test://{Path(tmp_path) / (name + '-gone.xml')}",
                hostname=name, cpus=4, memory_mib=8192, offline_since=utcnow())
    db.session.add(host)
    db.session.commit()
    return host


def test_cancelling_a_queued_move_puts_the_vm_back_at_once(app, two, admin, as_admin,
                                                           tmp_path, caplog):
    """Review finding 17: a move still queued ran nothing on either host, so its cancel
    (a web request) puts the VM back as it was, without settling where it runs (which
    waits up to 30 s for a target that does not answer, inside the request)."""
    with app.app_context():
        vm = db.session.get(VM, two["vm_id"])
        vm.status, vm.last_error = VM.ERROR, "Delete did not finish: host busy"
        db.session.commit()
        target = _dead_host(tmp_path)
        task = migration.start_move(db.session.get(User, admin.id), vm, target, "live")
        assert db.session.get(VM, two["vm_id"]).status == VM.MIGRATING
        task_id = task.id
    caplog.set_level("INFO", logger="loucloud.services.vms.settling")
    response = as_admin.post(f"/tasks/{task_id}/cancel", follow_redirects=True)
    assert f"Task {task_id} cancelled." in response.get_data(as_text=True)
    assert not [r for r in caplog.records if r.name.endswith("settling")], \
        "a queued move's cancel asked the hosts where the VM runs"
    with app.app_context():
        vm = db.session.get(VM, two["vm_id"])
        # as it was before the move: in error, with its reason
        assert (vm.status, vm.last_error) == (VM.ERROR, "Delete did not finish: host busy")
        assert vm.host.name == "h1"
        assert db.session.get(Task, task_id).state == "cancelled"


# -- the fixed address on the target (review finding 9) -------------------------------
@pytest.fixture
def on_lab(app, two):
    """A LouCloud network "lab" (10.20.0.0/29) on h1 and on h2, a template on it, and
    alice's shut-off VM "lab-1" on h1: its fixed address is 10.20.0.2 (h1's first)."""
    from loucloud.services import networks as network_service
    from loucloud.services import templates as template_service
    from loucloud.models import Template

    with app.app_context():
        hosts = [_host("h1"), _host("h2")]
        assert [e for _, e in network_service.create_network("lab", "10.20.0.0/29",
                                                             hosts)] == [None, None]
        image_id = db.session.get(Template, two["template_id"]).image_id
        template = template_service.create_template(
            "on-lab", template_service.Sizes(1, 256, 2), image_id,
            network=template_service.Network("network", "lab"))
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        vm = make_vm(alice.id, "lab-1", template.id, host_id=hosts[0].id, start=False)
        assert vm.ip_address == "10.20.0.2"
        return {"vm_id": vm.id, "template_id": template.id, "alice": alice.id}


def _entries(host_name: str) -> set[tuple[str, str]]:
    """(MAC, address) of every fixed address on the host's network "lab"."""
    from loucloud.services.hypervisors import hypervisor
    net = next(n for n in hypervisor(_host(host_name)).networks() if n.name == "lab")
    return {(h.mac.lower(), h.ip) for h in net.desc.ipv4().hosts}


def test_a_target_whose_network_holds_the_vms_address_is_refused_before_anything(
        app, on_lab):
    """Review finding 9: the VM's fixed address taken on the target (here by a VM made
    on h2, which got h2's first address too) is the target's refusal, said plainly, at
    the check made before the VM is held and again as the task starts."""
    from loucloud.services.vms import targets

    with app.app_context():
        theirs = make_vm(on_lab["alice"], "lab-2", on_lab["template_id"],
                         host_id=_host("h2").id, start=False)
        assert theirs.ip_address == "10.20.0.2"
        vm = db.session.get(VM, on_lab["vm_id"])
        with pytest.raises(Conflict) as info:
            targets.check_network(vm, _host("h2"))
        assert str(info.value) == ("h2 cannot take lab-1 with its fixed address: "
                                   "10.20.0.2 is in use on lab there.")
        # the machine holding it goes: h2 can take lab-1
        from loucloud.services.vms.lifecycle import delete_vm
        delete_vm(db.session.get(VM, theirs.id))
        assert targets.check_network(db.session.get(VM, on_lab["vm_id"]),
                                     _host("h2")).name == "lab"


def test_an_address_taken_on_the_target_meanwhile_is_a_plain_refusal(app, on_lab):
    """Review finding 9: the late reservation (after the volumes are copied) stays as a
    safety net: a refusal naming the target and the address, not a form field's
    message, and nothing reserved for the VM there."""
    from loucloud.services.hypervisors import hypervisor
    from loucloud.services.vms import targets

    with app.app_context():
        hypervisor(_host("h2")).reserve_address("lab", "52:54:00:aa:bb:cc", "10.20.0.2")
        vm = db.session.get(VM, on_lab["vm_id"])
        with pytest.raises(Conflict) as info:
            targets.reserve_on(vm, _host("h2"))
        assert not isinstance(info.value, FieldError)
        assert str(info.value).startswith("h2 cannot take lab-1 with its fixed address: "
                                          "10.20.0.2 is in use on lab there.")
        assert _entries("h2") == {("52:54:00:aa:bb:cc", "10.20.0.2")}


def test_an_earlier_attempts_entry_on_the_target_is_replaced_not_refused(app, on_lab):
    """Review finding 9: an earlier move's entry for this VM's card (left on h2, noted
    as a leftover) does not refuse the target; the reservation replaces it, and the
    note goes (else its clean-up would remove the moved VM's address later)."""
    from loucloud.services import leftovers
    from loucloud.services.hypervisors import hypervisor
    from loucloud.services.vms import targets

    with app.app_context():
        vm, h2 = db.session.get(VM, on_lab["vm_id"]), _host("h2")
        hypervisor(h2).reserve_address("lab", vm.mac, "10.20.0.5")   # an older try's
        leftovers.remember(h2, Leftover.ADDRESS, f"{vm.mac} 10.20.0.5", "lab", "gone")
        assert targets.check_network(vm, h2).name == "lab"
        assert targets.reserve_on(vm, h2) is True
        db.session.commit()
        assert _entries("h2") == {(vm.mac.lower(), "10.20.0.2")}
        assert leftovers.pending({h2.id}) == []
        # the same entry again (a second try): kept, not refused
        assert targets.reserve_on(db.session.get(VM, on_lab["vm_id"]), h2) is True
        assert _entries("h2") == {(vm.mac.lower(), "10.20.0.2")}


# -- VMs lost with a forgotten host (review finding 18) --------------------------------
def _forget_with_web(app, two, tmp_path, as_admin) -> dict:
    """alice's VM "web" on a host that is gone, which the administrator forgets through
    the host page's button."""
    with app.app_context():
        dead = _dead_host(tmp_path)
        vm = db.session.get(VM, two["vm_id"])
        vm.host_id = dead.id
        db.session.commit()
        facts = {"dead_id": dead.id, "ip": vm.ip_address, "vcpus": vm.vcpus}
    response = as_admin.post(f"/hosts/{facts['dead_id']}/forget")
    assert response.status_code == 302
    return facts


def test_a_forgotten_hosts_vms_stay_visible_to_their_owners_as_lost(app, two, admin,
                                                                    as_admin, as_user,
                                                                    tmp_path):
    """Review finding 18 (issue 14: "removes it with its VMs' records (marked lost, their
    owners' quota freed ...)"): the owner sees the VM in the list and on its page (its
    old address too) marked lost; it holds none of the quota and its name is free; the
    record is all that can be deleted; someone else does not see it; the audit log
    keeps both the forget and the delete."""
    from loucloud.models import LostVM, Template

    vm_id = two["vm_id"]
    _forget_with_web(app, two, tmp_path, as_admin)
    with app.app_context():
        assert db.session.get(VM, vm_id) is None
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        assert quota_usage(alice).used.vms == 0 and quota_usage(alice).used.vcpus == 0
        [lost] = db.session.execute(db.select(LostVM)).scalars().all()
        lost_id = lost.id
        assert (lost.name, lost.host_name, lost.owner_id) == ("web", "dead", alice.id)
    listing = as_user.get("/").get_data(as_text=True)
    assert 'id="lost-vms"' in listing and f'data-lost-row="{lost_id}"' in listing
    assert f'<a href="/vms/lost/{lost_id}">web</a>' in listing
    page = as_user.get(f"/vms/lost/{lost_id}").get_data(as_text=True)
    assert 'data-state="lost">lost</span>' in page
    assert "it was on the host dead, which stopped answering" in page
    assert "It no longer counts against your quota" in page
    assert f'action="/vms/lost/{lost_id}/delete"' in page      # its one button
    assert "/migrate" not in page and "/console" not in page
    # the VM's old address leads there; a VM action on it is a 404 (no VM any more)
    response = as_user.get(f"/vms/{vm_id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/vms/lost/{lost_id}")
    assert as_user.post(f"/vms/{vm_id}/start").status_code == 404
    # somebody else sees nothing of it
    bob = Client(app)
    with app.app_context():
        from tests.factories import make_user
        make_user("bob")
    bob.login("bob")
    assert 'id="lost-vms"' not in bob.get("/").get_data(as_text=True)
    assert bob.get(f"/vms/lost/{lost_id}").status_code == 404
    assert bob.get(f"/vms/{vm_id}").status_code == 404
    assert bob.post(f"/vms/lost/{lost_id}/delete").status_code == 404
    # its name is free for a new VM: the owner makes "web" again
    with app.app_context():
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        again = create_vm(alice, "web", db.session.get(Template, two["template_id"]))
        assert again.name == "web"
    # the owner deletes the record
    response = as_user.post(f"/vms/lost/{lost_id}/delete", follow_redirects=True)
    assert "The record of web, lost with the host dead, was deleted." in \
        response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(LostVM, lost_id) is None
        events = db.session.execute(db.select(AuditEvent.action, AuditEvent.result)
                                    .order_by(AuditEvent.id)).all()
        assert ("hosts.forget", "ok") in events and ("vms.delete_lost", "ok") in events
    assert 'id="lost-vms"' not in as_user.get("/").get_data(as_text=True)


def test_lost_vms_through_the_command_line(app, two, admin, as_admin, tmp_path):
    _forget_with_web(app, two, tmp_path, as_admin)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["vms", "lost", "--owner", "alice", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert (row["name"], row["owner"], row["host"]) == ("web", "alice", "dead")
    result = runner.invoke(args=["vms", "delete-lost", "nope", "--owner", "alice"])
    assert result.exit_code == 1 and "alice has no lost VM named nope" in result.output
    result = runner.invoke(args=["vms", "delete-lost", "web", "--owner", "alice"])
    assert result.exit_code == 0, result.output
    assert "The record of web, lost with the host dead, was deleted." in result.output
    assert json.loads(runner.invoke(args=["vms", "lost", "--json"]).output) == []
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id.desc())
                                   ).scalars().first()
        assert (event.action, event.result, event.target) == ("vms.delete_lost", "ok",
                                                              "web")


def test_forget_refuses_a_host_a_drain_is_moving_a_vm_to(app, two, admin):
    """Review finding 18: a drain of another host moving a VM here (its current move,
    noted in the drain's task) refuses the forget, naming the VM; once that move is
    over, the forget goes on to its next check."""
    from loucloud.services import maintenance as m

    with app.app_context():
        vm, h1, h2 = db.session.get(VM, two["vm_id"]), _host("h1"), _host("h2")
        drain = m.drain(db.session.get(User, admin.id), h1)
        drain.state = "running"           # the worker took it, and is moving "web"
        m._note_move(drain, {"vm_id": vm.id, "vm_name": vm.name, "target_id": h2.id})
        db.session.commit()
        with pytest.raises(Conflict, match=r"web is moving to h2 \(the drain of h1\): "
                                           "wait for the move, or cancel the drain"):
            m.forget_host(db.session.get(User, admin.id), _host("h2"))
        m._note_move(db.session.get(Task, drain.id), None)   # that move is over
        db.session.commit()
        with pytest.raises(Conflict, match="h2 answers"):
            m.forget_host(db.session.get(User, admin.id), _host("h2"))
