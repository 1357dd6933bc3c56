"""manage.py vms batch-create|batches|batch|batch-action|batch-expiry (issue 16): the
batch create and its actions from the command line, over the batch services."""
from __future__ import annotations

import threading
import time

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Task
from loucloud.services import tasks as task_service
from tests.factories import make_user
from tests.test_cli_validation import make_world, run


@pytest.fixture
def world(app, test_host):
    """admin and carol, host h1, the template small (test_cli_validation's); dora too."""
    made = make_world(app, test_host)
    with app.app_context():
        make_user("dora")
    return made


def _worker(app, kind: str):
    """A worker thread that runs the first task of ``kind`` once it is queued."""
    def work():
        with app.app_context():
            for _ in range(200):
                task = db.session.execute(db.select(Task).where(
                    Task.kind == kind, Task.state == "queued")).scalars().first()
                if task is not None:
                    task_service.execute(task.id)
                    break
                db.session.rollback()
                time.sleep(0.05)
            db.session.remove()
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def _vms(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return sorted((vm.owner.username, vm.name, vm.live_state or vm.status)
                      for vm in db.session.execute(db.select(VM)).scalars())


def test_batch_create_follows_its_task_and_lists_what_failed(app, world):
    with app.app_context():
        run(world, ["vms", "create", "lab-carol", "--owner", "carol", "--template",
                    "small", "--no-start"])
    thread = _worker(app, "vm.batch-create")
    result = run(world, ["vms", "batch-create", "--template", "small",
                         "--users", "carol,dora", "--pattern", "lab-{username}",
                         "--expires", "2099-01-31"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("batch 1, task 1: 2 VMs from small\n")
    assert result.output.rstrip().splitlines()[-1] == (
        "1 of 2 VMs made. 1 could not be made: lab-carol (carol): You already have a VM "
        "named lab-carol.")
    assert [v[:2] for v in _vms(app)] == [("carol", "lab-carol"), ("dora", "lab-dora")]
    shown = run(world, ["vms", "batch", "1"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].split() == ["OWNER", "NAME", "HOST", "STATE", "REASON"]
    assert lines[1].split()[:3] == ["dora", "lab-dora", "h1"]
    assert lines[2].split()[:4] == ["carol", "lab-carol", "not", "made"]
    listed = run(world, ["vms", "batches", "--json"])
    assert '"expires_at": "2099-01-31 00:00"' in listed.output
    assert '"failed": 1' in listed.output and '"vms": 1' in listed.output


def test_batch_action_delete_asks_first_and_batch_expiry(app, world):
    thread = _worker(app, "vm.batch-create")
    assert run(world, ["vms", "batch-create", "--template", "small", "--users", "dora",
                       "--count", "2", "--pattern", "vm{n}"]).exit_code == 0
    thread.join()
    assert [v[:2] for v in _vms(app)] == [("dora", "vm1"), ("dora", "vm2")]
    asked = run(world, ["vms", "batch-action", "delete", "1"], env=None)
    assert asked.exit_code == 1 and "Delete the 2 VMs of batch 1 with their disks?" in \
        asked.output
    assert len(_vms(app)) == 2
    bad = run(world, ["vms", "batch-expiry", "1", "next week"])
    assert bad.exit_code == 1 and "Give the expiry as YYYY-MM-DD" in bad.output
    moved = run(world, ["vms", "batch-expiry", "1", "2099-02-01 08:00"])
    assert moved.output.strip() == "The batch's VMs now expire on 2099-02-01 08:00 UTC."
    thread = _worker(app, "vm.batch-action")
    gone = run(world, ["vms", "batch-action", "delete", "1", "--yes"])
    thread.join()
    assert gone.exit_code == 0, gone.output
    assert gone.output.rstrip().splitlines()[-1] == "2 of 2 VMs deleted."
    assert _vms(app) == []
    missing = run(world, ["vms", "batch-action", "start", "7"])
    assert missing.exit_code == 1 and "There is no batch 7." in missing.output


def test_batch_create_for_a_group_gives_its_members_but_its_managers_a_vm(app, world):
    from loucloud.services import groups as group_service
    with app.app_context():
        make_user("teacher")
        lab = group_service.create_group("lab")
        group_service.add_members(lab, group_service.users_named(["carol", "dora"]))
        group_service.add_members(lab, group_service.users_named(["teacher"]), manager=True)
    both = run(world, ["vms", "batch-create", "--template", "small", "--group", "lab",
                       "--users", "carol"])
    assert both.exit_code == 1 and "Give --group or --users, not both." in both.output
    thread = _worker(app, "vm.batch-create")
    result = run(world, ["vms", "batch-create", "--template", "small", "--group", "lab",
                         "--pattern", "lab1-{username}"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().splitlines()[-1] == "2 of 2 VMs made."
    assert [v[:2] for v in _vms(app)] == [("carol", "lab1-carol"), ("dora", "lab1-dora")]
    listed = run(world, ["vms", "batches", "--json"])
    assert '"pattern": "lab1-{username}"' in listed.output
    missing = run(world, ["vms", "batch-create", "--template", "small", "--group", "nope"])
    assert missing.exit_code == 1
