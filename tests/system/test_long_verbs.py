"""A verb over a VM's whole memory that outlives its bound (review finding 6), on the
lab's real libvirtd and QEMU: the VM's QEMU is stopped (SIGSTOP), so libvirtd, which
still answers everything else, waits on it. A memory snapshot and Suspend to disk then
end at their bound (the action bound and so much per GiB of the VM's memory) with
the VM in error and the answer saying the outcome is unknown, never "was not
changed"; the host stays online and answers at once; and when QEMU goes on, what
libvirt finished is what LouCloud shows next."""
from __future__ import annotations

import os
import signal
import time

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, Template, User
from loucloud.services import Unavailable, images
from loucloud.services import said as said_service
from loucloud.services import hosts as host_service
from loucloud.services import settings as settings_service
from loucloud.services import templates as template_service
from loucloud.services.hypervisors import hypervisor
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle, snapshots
from tests.factories import make_user
from tests.support.guest import wait_for
from tests.support.sweep import lab_unsticker, sweep_host

ACTION_BOUND, PER_GIB = 5, 4
# The tiny template: 128 MiB, so 512 MiB of <memory> with its room to grow.
BOUND = ACTION_BOUND + PER_GIB * 512 / 1024
PROBE = 5.0   # HostPool.probe_bound: the small call that tells the host answers


@pytest.fixture(scope="module")
def tiny_image(lab):
    return lab.make_image(lab.host(1), "long-base.qcow2", 64 * 1024 * 1024)


@pytest.fixture
def world(app, lab, tiny_image):
    """h1, a blank image, the template "tiny", alice, the short bounds."""
    with app.app_context():
        alice = make_user("alice")
        host = host_service.add_host("h1", lab.host(1).uri)
        image = images.add_image("base", tiny_image, "linux")
        template = template_service.create_template("tiny", template_service.Sizes(1, 128, 1),
                                                    image)
        settings_service.update_settings({"host_timeout": 2, "action_timeout": ACTION_BOUND,
                                          "memory_timeout_per_gib": PER_GIB})
        ids = {"alice": alice.id, "host": host.id, "template": template.id}
    stopped: list[int] = []
    yield ids, stopped
    for pid in stopped:           # whatever a test did, QEMU goes on
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    with app.app_context():
        for vm in db.session.execute(db.select(VM)).scalars().all():
            try:
                lifecycle.delete_vm(vm)
            except Exception:  # noqa: BLE001 - swept below
                pass
    sweep_host(lab.host(1).uri, unstick=lab_unsticker(lab, lab.host(1)))


def _running_vm(app, ids, name) -> int:
    with app.app_context():
        vm = vm_create.create_vm(db.session.get(User, ids["alice"]), name,
                                 db.session.get(Template, ids["template"]),
                                 db.session.get(Host, ids["host"]))
        return vm.id


def _stop_qemu(lab, app, vm_id, stopped) -> int:
    with app.app_context():
        name = db.session.get(VM, vm_id).domain_name
    pid = int(lab.host(1).host_path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    stopped.append(pid)
    return pid


def _after_the_timeout(app, vm_id, verb) -> tuple[str, float]:
    """Run ``verb(vm)``, which must end in the unknown outcome; then the host must be
    online and answer at once. Returns (the answer, how long it took)."""
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        start = time.monotonic()
        with pytest.raises(Unavailable) as info:
            verb(vm)
        took = time.monotonic() - start
        hv = hypervisor(vm.host)
        assert hv.state.online is True, hv.state
        start = time.monotonic()
        assert hv.info().cpus >= 1            # the host answers, no wait
        assert time.monotonic() - start < 1
        return str(info.value), took


def _row(app, vm_id) -> VM:
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        db.session.expunge(vm)
        return vm


def _error(app, vm: VM) -> str | None:
    """The VM's last error as an English reader reads it (stored as a message)."""
    with app.app_context():
        return said_service.render(vm.last_error)


@pytest.mark.timeout(300)
def test_a_memory_snapshot_past_its_bound_leaves_the_vm_in_error_not_unchanged(app, lab,
                                                                                world):
    ids, stopped = world
    vm_id = _running_vm(app, ids, "long-1")
    pid = _stop_qemu(lab, app, vm_id, stopped)
    said, took = _after_the_timeout(
        app, vm_id, lambda vm: snapshots.create_snapshot(vm, "frozen", memory=True))
    assert said.startswith("h1 gave no answer in time: no answer within "), said
    assert said.endswith("The outcome is unknown: long-1's state will be seen when h1 "
                         "answers."), said
    assert "was not changed" not in said
    assert BOUND <= took < BOUND + PROBE + 3, took
    row = _row(app, vm_id)
    assert row.status == VM.ERROR and _error(app, row).startswith("Snapshot outcome unknown")
    os.kill(pid, signal.SIGCONT)
    # QEMU goes on, libvirt finishes the snapshot: the list follows the host
    with app.app_context():
        wait_for(lambda: [s.name for s in snapshots.list_snapshots(
            db.session.get(VM, vm_id))] == ["frozen"], 60, "the snapshot to be listed")
        # and the VM can be acted on again: the error ends with the next action
        assert "deleted" in snapshots.delete_snapshot(db.session.get(VM, vm_id), "frozen")
    row = _row(app, vm_id)
    assert (row.status, row.last_error) == (VM.READY, None)


@pytest.mark.timeout(300)
def test_suspend_to_disk_past_its_bound_leaves_the_vm_in_error_not_unchanged(app, lab,
                                                                             world):
    ids, stopped = world
    vm_id = _running_vm(app, ids, "long-2")
    pid = _stop_qemu(lab, app, vm_id, stopped)
    said, took = _after_the_timeout(app, vm_id, lambda vm: lifecycle.act_on_vm(vm, "save"))
    assert "The outcome is unknown: long-2's state will be seen when h1 answers." in said
    assert "was not changed" not in said
    assert BOUND <= took < BOUND + PROBE + 3, took
    row = _row(app, vm_id)
    assert row.status == VM.ERROR and _error(app, row).startswith("Suspend to disk outcome "
                                                                 "unknown")
    os.kill(pid, signal.SIGCONT)
    with app.app_context():
        hv = hypervisor(db.session.get(VM, vm_id).host)
        uuid = db.session.get(VM, vm_id).uuid
        wait_for(lambda: hv.domain_state(uuid) == "shut off", 60, "the save to end")
        assert hv.has_saved_state(uuid)       # libvirt did save it
        assert "is starting" in lifecycle.act_on_vm(db.session.get(VM, vm_id), "start")
        assert hv.domain_state(uuid) == "running" and not hv.has_saved_state(uuid)
    row = _row(app, vm_id)
    assert (row.status, row.last_error) == (VM.READY, None)
