"""Resizing VMs on libvirt's test driver (issue 14): the growth room fixed at create,
a stopped VM's new size, a running VM's at once up to its room and at its next boot
past it (said plainly, shown as pending), quota reserved as at create, and every bad
input or wrong state refused with nothing changed; through the page and the CLI."""
from __future__ import annotations

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM, User
from loucloud.services import users as user_service
from loucloud.virt import xml
from tests.conftest import Client
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    host_call,
    vms,
)

CONFIG = libvirt.VIR_DOMAIN_XML_INACTIVE


def domain(app, uri, uuid, flags=0) -> xml.DomainDesc:
    return xml.parse_domain(host_call(app, uri, lambda c: c.lookupByUUIDString(uuid)
                                      .XMLDesc(flags)))


def resize(client, vm_id, **form):
    return client.post(f"/vms/{vm_id}/resize", form, headers={"Accept": "application/json"})


def usage(app, username="alice"):
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
        return user_service.quota_usage(user).used


@pytest.fixture
def stopped(app, as_user, catalog):
    create(as_user, "box", catalog.id, start=False)
    return vms(app)[0]


@pytest.fixture
def running(app, as_user, catalog):
    create(as_user, "box", catalog.id)
    return vms(app)[0]


def test_a_new_vm_has_room_to_grow_while_it_runs(app, stopped, test_host):
    """The template says 1 vCPU, 512 MiB: room for 4 vCPUs and 2 GiB (room.py)."""
    assert (stopped.vcpus, stopped.max_vcpus) == (1, 4)
    assert (stopped.memory_mib, stopped.max_memory_mib) == (512, 2048)
    desc = domain(app, test_host, stopped.uuid)
    assert (desc.vcpus, desc.max_vcpus, desc.memory_mib, desc.max_memory_mib) == \
        (1, 4, 512, 2048)


def test_a_stopped_vm_takes_its_new_size_and_the_quota_counts_it(app, as_user, stopped,
                                                                   test_host):
    before = usage(app)
    response = resize(as_user, stopped.id, vcpus="2", memory_mib="1024")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == \
        "box now has 2 vCPUs and 1024 MiB of memory; it gets them at its next start."
    desc = domain(app, test_host, stopped.uuid, CONFIG)
    assert (desc.vcpus, desc.memory_mib) == (2, 1024)
    after = usage(app)
    assert (after.vcpus - before.vcpus, after.memory_mib - before.memory_mib) == (1, 512)
    [vm] = vms(app)
    assert (vm.vcpus, vm.memory_mib, vm.status) == (2, 1024, "ready")
    page = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert "2 vCPU" in page and 'value="1024"' in page


def test_past_its_room_a_stopped_vm_gets_more_room(app, as_user, stopped, test_host):
    assert resize(as_user, stopped.id, vcpus="6").status_code == 200
    desc = domain(app, test_host, stopped.uuid, CONFIG)
    assert (desc.vcpus, desc.max_vcpus) == (6, 16)
    assert vms(app)[0].max_vcpus == 16


def test_a_running_vm_grows_at_once_within_its_room(app, as_user, running, test_host):
    response = resize(as_user, running.id, vcpus="3", memory_mib="1536")
    assert response.status_code == 200
    assert response.get_json()["message"] == \
        "box now has 3 vCPUs and 1536 MiB of memory, running."
    live = domain(app, test_host, running.uuid)
    assert (live.vcpus, live.memory_mib) == (3, 1536)
    assert (domain(app, test_host, running.uuid, CONFIG).vcpus) == 3
    assert as_user.get(f"/vms/{running.id}/hardware.json").get_json()["pending"] == ""


def test_past_its_room_or_fewer_vcpus_apply_at_next_boot(app, as_user, running, test_host):
    response = resize(as_user, running.id, vcpus="6", memory_mib="1024")
    message = response.get_json()["message"]
    assert "box now has 1024 MiB of memory, running." in message
    assert "6 vCPUs: applies at next boot (it runs with room for 4)." in message
    live, config = domain(app, test_host, running.uuid), \
        domain(app, test_host, running.uuid, CONFIG)
    assert (live.vcpus, live.memory_mib) == (1, 1024)
    assert (config.vcpus, config.max_vcpus) == (6, 16)
    hardware = as_user.get(f"/vms/{running.id}/hardware.json").get_json()
    assert hardware["pending"] == "At its next boot: 6 vCPUs (now 1)."
    # fewer vCPUs than it runs with: at the next boot too
    assert resize(as_user, running.id, vcpus="2").status_code == 200
    act(as_user, running.id, "poweroff")
    act(as_user, running.id, "start")
    live = domain(app, test_host, running.uuid)
    assert (live.vcpus, live.max_vcpus) == (2, 16)
    assert as_user.get(f"/vms/{running.id}/hardware.json").get_json()["pending"] == ""


def test_fewer_vcpus_of_a_running_vm_wait_for_the_boot(app, as_user, running, test_host):
    assert resize(as_user, running.id, vcpus="3").status_code == 200
    message = resize(as_user, running.id, vcpus="2").get_json()["message"]
    assert message == "2 vCPUs: applies at next boot (vCPUs are removed only at a boot)."
    assert domain(app, test_host, running.uuid).vcpus == 3
    assert domain(app, test_host, running.uuid, CONFIG).vcpus == 2


@pytest.mark.parametrize("form, field, text", [
    ({"vcpus": "0"}, "vcpus", "from 1 to 240"),
    ({"vcpus": "-2"}, "vcpus", "from 1 to 240"),
    ({"vcpus": "99999999999999999999"}, "vcpus", "from 1 to 240"),
    ({"vcpus": "two"}, "vcpus", "whole number"),
    ({"memory_mib": "-512"}, "memory_mib", "from 64 to"),
    ({"memory_mib": "1e9"}, "memory_mib", "whole number"),
    ({"memory_mib": str(1 << 40)}, "memory_mib", "from 64 to"),
    ({}, "vcpus", "Say the new vCPUs"),
    ({"vcpus": "1", "memory_mib": "512"}, "vcpus", "has these sizes already"),
])
def test_bad_sizes_are_refused_with_400(app, as_user, stopped, test_host, form, field, text):
    before = domain(app, test_host, stopped.uuid, CONFIG)
    response = resize(as_user, stopped.id, **form)
    assert response.status_code == 400 and text in response.get_json()["error"]
    assert domain(app, test_host, stopped.uuid, CONFIG) == before
    assert (vms(app)[0].vcpus, vms(app)[0].memory_mib) == (1, 512)


def test_over_quota_is_refused_and_nothing_changes(app, as_user, stopped, test_host):
    """alice may have 8 vCPUs, 8192 MiB (factories.make_user)."""
    before = domain(app, test_host, stopped.uuid, CONFIG)
    response = resize(as_user, stopped.id, vcpus="9", memory_mib="9000")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert "Over quota: vCPUs 1 in use + 8 would exceed 8" in error
    assert "memory (MiB) 512 in use + 8488 would exceed 8192" in error
    assert domain(app, test_host, stopped.uuid, CONFIG) == before
    [vm] = vms(app)
    assert (vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.status) == (1, 512, 4, "ready")
    # shrinking frees quota, and needs none
    assert resize(as_user, stopped.id, memory_mib="256").status_code == 200


def test_a_busy_vm_is_not_resized(app, as_user, stopped):
    with app.app_context():
        db.session.get(VM, stopped.id).status = "starting"
        db.session.commit()
    response = resize(as_user, stopped.id, vcpus="2")
    assert response.status_code == 409 and "busy" in response.get_json()["error"]
    assert vms(app)[0].vcpus == 1


def test_another_users_vm_is_404(app, as_user, stopped, other_user):
    bob = Client(app)
    bob.login("bob")
    assert resize(bob, stopped.id, vcpus="2").status_code == 404
    assert bob.get(f"/vms/{stopped.id}/hardware.json").status_code == 404
    assert vms(app)[0].vcpus == 1


def test_resize_through_the_command_line(app, stopped, test_host):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["vms", "resize", "box", "--owner", "alice", "--vcpus", "2",
                                 "--memory", "768"])
    assert result.exit_code == 0, result.output
    assert "box now has 2 vCPUs and 768 MiB of memory" in result.output
    assert domain(app, test_host, stopped.uuid, CONFIG).vcpus == 2
    refused = runner.invoke(args=["vms", "resize", "box", "--owner", "alice", "--vcpus",
                                  "-1"])
    assert refused.exit_code == 1 and "from 1 to 240" in refused.output
    missing = runner.invoke(args=["vms", "resize", "nope", "--owner", "alice", "--vcpus", "2"])
    assert missing.exit_code == 1


def test_memory_past_the_running_room_waits_for_the_next_boot(app, as_user, running,
                                                               test_host):
    """Below the room the balloon takes a new size live, and nothing is pending (what the
    balloon has given back so far lags behind); past it, the page says what waits."""
    room = domain(app, test_host, running.uuid).max_memory_mib
    assert resize(as_user, running.id, memory_mib=str(room - 128)).status_code == 200
    assert as_user.get(f"/vms/{running.id}/hardware.json").get_json()["pending"] == ""
    response = resize(as_user, running.id, memory_mib=str(room + 256))
    assert "applies at next boot" in response.get_json()["message"]
    assert as_user.get(f"/vms/{running.id}/hardware.json").get_json()["pending"] == \
        f"At its next boot: {room + 256} MiB of memory (now at most {room} MiB)."


def test_a_windows_vm_gets_no_memory_room(app, as_user, catalog, test_host):
    """Windows has no balloon driver of its own (and zeroes its memory at boot): room
    above its memory would be memory it keeps. Its vCPUs still have room."""
    from loucloud.extensions import db
    from loucloud.models import Image

    with app.app_context():
        db.session.get(Image, catalog.image_id).os_type = "windows"
        db.session.commit()
    create(as_user, "win", catalog.id, start=False)
    [vm] = vms(app)
    assert (vm.vcpus, vm.max_vcpus, vm.memory_mib, vm.max_memory_mib) == (1, 4, 512, 512)
    desc = domain(app, test_host, vm.uuid)
    assert (desc.memory_mib, desc.max_memory_mib) == (512, 512)
    message = resize(as_user, vm.id, memory_mib="768").get_json()["message"]
    assert "768 MiB of memory; it gets them at its next start" in message
