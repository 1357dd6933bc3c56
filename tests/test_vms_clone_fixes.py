"""Clone on libvirt's test driver, after the review of issue 14: a host being drained
(or excluded from new VMs) gets no clone, said plainly, nothing made; the clone runs
as a task that a cancel or a failure ends leaving nothing, and the command line
follows until it ends."""
from __future__ import annotations

import threading
import time

import pytest

from loucloud.extensions import db
from loucloud.models import Host, Task
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    domains_on,
    host_call,
    vms,
    volumes_in,
)

JSON = {"Accept": "application/json"}


@pytest.fixture
def source(app, as_user, catalog, test_host):
    """alice's shut-off VM "orig" on h1."""
    assert create(as_user, "orig", catalog.id, start=False).status_code == 302
    [vm] = vms(app)
    return vm


def _world(app, uri):
    return sorted(domains_on(app, uri)), sorted(volumes_in(app, uri)), \
        [(v.name, v.status) for v in vms(app)]


@pytest.mark.parametrize("change, why", [
    ({"draining": True}, "h1 is being drained (emptied for maintenance)"),
    ({"accepts_vms": False}, "h1 is excluded from new VMs"),
])
def test_no_clone_on_a_host_being_drained(app, as_user, source, test_host, change, why):
    with app.app_context():
        host = db.session.get(Host, source.host_id)
        for field, value in change.items():
            setattr(host, field, value)
        db.session.commit()
    before = _world(app, test_host)
    response = as_user.post(f"/vms/{source.id}/clone", {"name": "copy"}, headers=JSON)
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == \
        f"{why}: orig cannot be cloned there now (a clone is made on its source's host)."
    assert _world(app, test_host) == before


# -- the clone is a task (review findings 3 and 20) --------------------------------------
def _latest_task(app) -> Task:
    with app.app_context():
        task = db.session.execute(db.select(Task).order_by(Task.id.desc())).scalars().first()
        db.session.expunge(task)
        return task


def test_cancelling_a_queued_clone_leaves_nothing_and_the_source_as_it_was(
        app, as_user, source, test_host):
    before = _world(app, test_host)
    assert as_user.post(f"/vms/{source.id}/clone", {"name": "copy"},
                        headers=JSON).status_code == 200
    assert [(v.name, v.status) for v in vms(app)] == [("orig", "cloning"),
                                                      ("copy", "creating")]
    task = _latest_task(app)
    assert as_user.post(f"/tasks/{task.id}/cancel").status_code == 302
    assert _world(app, test_host) == before
    with app.app_context():
        task_service.execute(task.id)  # the queue still delivers it: nothing happens
    assert _world(app, test_host) == before
    assert _latest_task(app).state == "cancelled"


def test_a_copy_the_host_refuses_fails_the_task_and_leaves_nothing(app, as_user, source,
                                                                  test_host):
    before = _world(app, test_host)
    assert as_user.post(f"/vms/{source.id}/clone", {"name": "copy"},
                        headers=JSON).status_code == 200

    def lose_the_disk(conn):  # what the copy reads is gone (behind LouCloud's back)
        conn.storagePoolLookupByName("loucloud").storageVolLookupByName(
            source.volume_name).delete(0)
    host_call(app, test_host, lose_the_disk)
    with app.app_context():
        task_service.execute(_latest_task(app).id)
    task = _latest_task(app)
    assert task.state == "failed"
    with app.app_context():
        assert tasklist.says(task.error).startswith("h1 could not clone orig as copy: ")
    domains, volumes, rows = before
    assert _world(app, test_host) == (domains, [v for v in volumes
                                                if v != source.volume_name], rows)


def test_the_command_line_follows_the_clone_until_it_ends(app, source, test_host):
    """Without --no-wait the command waits for the task (run here by a worker thread)."""
    def worker():
        with app.app_context():
            for _ in range(200):
                task = db.session.execute(db.select(Task).where(
                    Task.kind == "vm.clone")).scalars().first()
                if task is not None:
                    task_service.execute(task.id)
                    break
                db.session.rollback()
                time.sleep(0.05)
            db.session.remove()
    thread = threading.Thread(target=worker)
    thread.start()
    result = app.test_cli_runner().invoke(args=["vms", "clone", "orig", "copy", "--owner",
                                                "alice", "--no-start"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert "task 1: cloning orig as copy" in result.output
    assert "succeeded: 100 %" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith(
        "orig was cloned as copy on h1 (")
    assert [(v.name, v.status) for v in vms(app)] == [("orig", "ready"), ("copy", "ready")]
    assert domains_on(app, test_host)[vms(app)[1].domain_name] == "shut off"
