"""A VM status held by a task (a migration, a clone) is never taken for "stuck" while
the task lives (queued, or running with a fresh heartbeat): neither the pages'
reconciliation nor another action's busy mark resets it, however long the task takes
(issue 14, review finding 3). Once its heartbeat is stale the usual bound applies."""
from __future__ import annotations

from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Task, utcnow
from loucloud.services import settings as settings_service
from tests.factories import make_catalog, make_vm

JSON = {"Accept": "application/json"}


@pytest.fixture
def held(app, user, test_host):
    """alice's VM "busy", "migrating" for 2 hours (the bound: 60 s), and its task."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
        vm = make_vm(user.id, "busy", template.id)
        settings_service.update_settings({"stuck_after_seconds": 60})
        db.session.execute(db.update(VM).where(VM.id == vm.id).values(
            status="migrating", status_since=utcnow() - timedelta(hours=2)))
        task = Task(kind="vm.migrate", target_type="vm", target_id=vm.id,
                    target_name=vm.name, state="running", worker="elsewhere:1",
                    started_at=utcnow() - timedelta(hours=2), heartbeat_at=utcnow())
        db.session.add(task)
        db.session.commit()
        return vm.id, task.id


def _status(app, vm_id) -> str:
    with app.app_context():
        return db.session.get(VM, vm_id).status


def _set_task(app, task_id, **values):
    with app.app_context():
        task = db.session.get(Task, task_id)
        for key, value in values.items():
            setattr(task, key, value)
        db.session.commit()


@pytest.mark.parametrize("task_state", ["running", "queued"])
def test_a_status_held_by_a_live_task_is_not_stuck(app, as_user, held, task_state):
    vm_id, task_id = held
    _set_task(app, task_id, state=task_state)
    as_user.get("/")                                        # the list reconciles
    as_user.get("/?state=running")                        # the state filter too
    assert _status(app, vm_id) == "migrating"
    response = as_user.post(f"/vms/{vm_id}/start", headers=JSON)
    assert response.status_code == 409
    assert "busy (migrating)" in response.get_json()["error"]
    assert _status(app, vm_id) == "migrating"


def test_once_the_task_s_heartbeat_is_stale_the_bound_applies(app, as_user, held):
    vm_id, task_id = held
    _set_task(app, task_id, heartbeat_at=utcnow() - timedelta(minutes=5))
    as_user.get("/")
    assert _status(app, vm_id) == VM.READY


def test_a_finished_task_holds_nothing(app, as_user, held):
    vm_id, task_id = held
    _set_task(app, task_id, state="failed", finished_at=utcnow())
    response = as_user.post(f"/vms/{vm_id}/poweroff", headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
