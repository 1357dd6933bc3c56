"""Acting on VMs on libvirt's test driver: actions that follow the state, refusals,
one action at a time, ownership, delete, and the lifecycle through the command line."""
from __future__ import annotations

import json
import re
import threading

import pytest

from loucloud.extensions import db
from loucloud.models import VM
from loucloud.services.vms import lifecycle as vm_service
from tests.conftest import Client
from tests.factories import cut_off_host, make_user
from tests.support.fuzz import counted
from tests.support.fuzz_web import submit, world  # noqa: F401 (world: a fixture)
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    domains_on,
    state_of,
    vms,
    volumes_in,
)


# -- actions -------------------------------------------------------------------------
def test_actions_follow_the_state(app, as_user, catalog):
    create(as_user, "cycle", catalog.id, start=False)
    [vm] = vms(app)
    assert state_of(as_user, vm.id) == "shut off"
    for action, expected in [("start", "running"), ("pause", "paused"), ("resume", "running"),
                             ("reset", "running"), ("reboot", "running"),
                             ("poweroff", "shut off")]:
        response = act(as_user, vm.id, action, json_=True)
        assert response.status_code == 200, (action, response.get_data(as_text=True))
        assert state_of(as_user, vm.id) == expected, action


@pytest.mark.parametrize("setup,action,message", [
    ([], "start", "the VM is running"),
    (["poweroff"], "shutdown", "the VM is shut off"),
    (["poweroff"], "pause", "the VM is shut off"),
    ([], "resume", "the VM is running"),
])
def test_actions_that_do_not_fit_are_refused_with_409(app, as_user, catalog, setup, action,
                                                      message):
    create(as_user, "refuse", catalog.id)
    [vm] = vms(app)
    for step in setup:
        act(as_user, vm.id, step)
    response = act(as_user, vm.id, action, json_=True)
    assert response.status_code == 409
    assert message in response.get_json()["error"]
    page = act(as_user, vm.id, action).headers["Location"]
    assert message in as_user.get(page).get_data(as_text=True)


def test_two_concurrent_actions_one_success_one_refusal(app, as_user, catalog):
    create(as_user, "race", catalog.id, start=False)
    [vm] = vms(app)
    codes = []
    barrier = threading.Barrier(2)
    clients = [Client(app), Client(app)]
    for c in clients:
        c.login("alice")

    def go(c):
        barrier.wait()
        codes.append(act(c, vm.id, "start", json_=True).status_code)

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]
    assert state_of(as_user, vm.id) == "running"


def test_busy_vm_refuses_other_actions(app, as_user, catalog):
    create(as_user, "busy", catalog.id)
    [vm] = vms(app)
    with app.app_context():
        row = db.session.get(VM, vm.id)
        row.status = "starting"
        db.session.commit()
    response = act(as_user, vm.id, "poweroff", json_=True)
    assert response.status_code == 409 and "busy" in response.get_json()["error"]


# -- ownership -----------------------------------------------------------------------
def test_other_users_can_neither_see_nor_touch(app, as_user, catalog, other_user, test_host):
    create(as_user, "mine", catalog.id)
    [vm] = vms(app)
    bob = Client(app)
    bob.login("bob")
    assert "mine" not in bob.get("/").get_data(as_text=True)
    assert bob.get(f"/vms/{vm.id}").status_code == 404
    assert bob.get(f"/vms/{vm.id}.json").status_code == 404
    for action in vm_service.ACTIONS:
        assert act(bob, vm.id, action).status_code == 404
    assert bob.post(f"/vms/{vm.id}/delete").status_code == 404
    assert domains_on(app, test_host) == {vm.domain_name: "running"}
    assert vms(app)[0].status == "ready"


# -- delete --------------------------------------------------------------------------
def test_delete_removes_domain_and_overlay_but_never_the_image(app, as_user, catalog,
                                                                test_host):
    create(as_user, "doomed", catalog.id)
    [vm] = vms(app)
    response = as_user.post(f"/vms/{vm.id}/delete", follow_redirects=True)
    assert "doomed was deleted with its disks" in response.get_data(as_text=True), \
        re.findall(r'alert-\w+[^>]*>\s*([^<]+)', response.get_data(as_text=True))
    assert vms(app) == []
    assert domains_on(app, test_host) == {}
    assert volumes_in(app, test_host) == {}
    assert "base.qcow2" in volumes_in(app, test_host, "images")
    page = as_user.get("/profile").get_data(as_text=True)
    assert "0 / 5" in page  # the quota is free again


def test_delete_on_an_offline_host_keeps_the_vm_with_the_reason(app, as_user, catalog,
                                                                tmp_path):
    create(as_user, "stranded", catalog.id)
    [vm] = vms(app)
    cut_off_host(app, vm.host_id, tmp_path)
    response = as_user.post(f"/vms/{vm.id}/delete", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert "delete it again when the host is back" in response.get_json()["error"]
    [kept] = vms(app)
    assert kept.status == "error" and "Delete did not finish" in kept.last_error


def test_refused_actions_leave_the_error_of_a_vm_as_it_was(app, as_user, catalog, tmp_path):
    """A failed delete leaves the VM in error with the reason; an action then refused
    (409: it does not fit the state; 503: the host is down) changes neither."""
    create(as_user, "stranded", catalog.id)
    [vm] = vms(app)
    with app.app_context():
        row = db.session.get(VM, vm.id)
        row.status, row.last_error = VM.ERROR, "Delete did not finish: host gone"
        db.session.commit()
    assert act(as_user, vm.id, "start", json_=True).status_code == 409
    assert act(as_user, vm.id, "resume").status_code == 302
    [kept] = vms(app)
    assert (kept.status, kept.last_error) == (VM.ERROR, "Delete did not finish: host gone")
    cut_off_host(app, vm.host_id, tmp_path)
    assert act(as_user, vm.id, "poweroff", json_=True).status_code == 503
    [kept] = vms(app)
    assert (kept.status, kept.last_error) == (VM.ERROR, "Delete did not finish: host gone")


# -- command line --------------------------------------------------------------------
def test_cli_lifecycle(app, test_host, monkeypatch):
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("carol")
    run = app.test_cli_runner().invoke
    assert run(args=["hosts", "add", "h1", test_host]).exit_code == 0
    result = run(args=["images", "add", "base", "/var/lib/images/base.qcow2"])
    assert result.exit_code == 0, result.output
    assert run(args=["templates", "add", "small", "--image", "base", "--vcpus", "1",
                     "--memory", "256", "--disk", "1"]).exit_code == 0
    result = run(args=["vms", "create", "cli-1", "--owner", "carol", "--template", "small"])
    assert result.exit_code == 0, result.output
    rows = json.loads(run(args=["vms", "list", "--json"]).output)
    assert [(r["name"], r["owner"], r["state"]) for r in rows] == [("cli-1", "carol", "running")]
    assert run(args=["vms", "pause", "cli-1", "--owner", "carol"]).exit_code == 0
    refused = run(args=["vms", "pause", "cli-1", "--owner", "carol"])
    assert refused.exit_code == 1 and refused.output.startswith("error: Cannot pause")
    assert run(args=["templates", "delete", "small"]).exit_code == 1
    assert run(args=["vms", "delete", "cli-1", "--owner", "carol"]).exit_code == 0
    assert json.loads(run(args=["vms", "list", "--json"]).output) == []
    assert run(args=["templates", "delete", "small"]).exit_code == 0
    assert run(args=["images", "delete", "base"]).exit_code == 0
    images = json.loads(run(args=["images", "list", "--json"]).output)
    assert images == []


# -- found by the fuzz tests once: a refused action wiped the error of a VM ------------
def test_refused_vm_action_keeps_the_error_of_the_vm(app, world):
    alice = world.poster("alice")
    running = world.vm_ids[0]
    with app.app_context():
        vm = db.session.get(VM, running)
        vm.status, vm.last_error = VM.ERROR, "Delete did not finish: host gone"
        db.session.commit()
    with counted("web POST /vms/<id>/<action> on a VM in error") as count:
        for action, as_json in (("start", True), ("resume", False)):
            _, _, refused = submit(
                world, alice, f"/vms/{running}/{action}", [], count,
                headers={"Accept": "application/json"} if as_json else None)
            assert refused
