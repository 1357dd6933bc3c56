"""Tasks: what the worker runs, as people see it. Each test runs a task the way the
worker does (services.tasks.execute, the function the queue calls); the worker process
itself, with SQLite and Redis queues, is in tests/system/test_image_copies.py."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from loucloud.extensions import db
from loucloud.models import Image, Task, User, utcnow
from loucloud.services import Conflict, NotFound
from loucloud.services import copytasks
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from loucloud.taskqueue import Retry
from tests.factories import make_server, make_stored_image, make_user, write_test_node


def _said(app, text):
    """What a task's column says, in English (the worker stores messages: said.py)."""
    with app.app_context():
        return tasklist.says(text)


def _task(app, task_id) -> Task:
    with app.app_context():
        task = db.session.get(Task, task_id)
        db.session.expunge(task)
        return task


def test_ping_runs_and_says_which_worker_answered(app, admin):
    with app.app_context():
        task = tasklist.ping(admin)
        assert (task.state, task.message) == ("queued", "Waiting for the worker.")
        task_service.execute(task.id)
    done = _task(app, task.id)
    assert done.state == "succeeded" and "answered" in _said(app, done.result)
    assert (done.progress, done.attempts) == (1.0, 1) and done.finished_at


@pytest.fixture
def world(app, tmp_path):
    """An uploaded image (kept by LouCloud) and two hosts on libvirt's test driver,
    which has no volume upload: its copies fail, each saying why."""
    with app.app_context():
        admin = make_user("admin", is_admin=True)
        alice = make_user("alice")
        hosts = [make_server(f"h{i}", write_test_node(tmp_path / f"h{i}.xml")) for i in (1, 2)]
        image = make_stored_image(tmp_path)
        return {"admin": admin.id, "alice": alice.id, "image": image.id,
                "hosts": [h.id for h in hosts]}


def _start_copy(app, world) -> int:
    with app.app_context():
        image = db.session.get(Image, world["image"])
        return copytasks.copy_image(db.session.get(User, world["admin"]), image,
                                    world["hosts"]).id


def test_a_copy_that_libvirt_refuses_fails_with_each_hosts_reason(app, world):
    task_id = _start_copy(app, world)
    with app.app_context():
        task_service.execute(task_id)
        image = db.session.get(Image, world["image"])
        locs = sorted(image.locations, key=lambda loc: loc.host_id)
        assert [(loc.present, loc.copy_state) for loc in locs] == [(False, "failed")] * 2
        assert all("not supported" in loc.error for loc in locs)
        assert image.locations[0].host.name in locs[0].error
    task = _task(app, task_id)
    assert task.state == "failed" and "Copied to no host; failed: h1" in _said(app, task.error)
    with app.app_context():
        admin = db.session.get(User, world["admin"])
        again = tasklist.retry(admin, task_id)
        assert (again.state, json.loads(again.args)["host_ids"]) == ("queued", world["hosts"])
        assert again.id != task_id


def test_cancel_a_queued_task_and_it_never_runs(app, world):
    task_id = _start_copy(app, world)
    with app.app_context():
        tasklist.cancel(db.session.get(User, world["admin"]), task_id)
        task_service.execute(task_id)  # the queue still delivers it: nothing happens
        locs = db.session.get(Image, world["image"]).locations
        assert {(loc.copy_state, loc.error) for loc in locs} == \
            {("failed", "The copy was cancelled.")}
        with pytest.raises(Conflict):
            tasklist.cancel(db.session.get(User, world["admin"]), task_id)
    task = _task(app, task_id)
    assert (task.state, task.attempts) == ("cancelled", 0)


def test_a_host_out_of_reach_is_tried_again_with_a_growing_back_off(app, admin, tmp_path):
    calls = []

    @task_service.kind("test.flaky", "Flaky", attempts=3)
    def flaky(ctx):
        calls.append(ctx.task.attempts)
        raise task_service.TryAgain("h9 could not be reached.")
    try:
        with app.app_context():
            task = task_service.start("test.flaky", admin)
            for delay in (5, 10):
                with pytest.raises(Retry) as retry:
                    task_service.execute(task.id)
                assert retry.value.delay == delay
                waiting = db.session.get(Task, task.id)
                assert waiting.state == "queued" and waiting.retry_at > utcnow()
                assert f"Trying again in {delay} s" in tasklist.says(waiting.message)
            task_service.execute(task.id)  # the last attempt: failed, no more retries
        done = _task(app, task.id)
        assert (done.state, done.attempts, calls) == ("failed", 3, [1, 2, 3])
        assert done.error == "h9 could not be reached."
    finally:
        task_service.KINDS.pop("test.flaky")


def test_a_task_past_its_time_limit_stops_and_tidies_up(app, admin):
    tidied = []

    @task_service.kind("test.slow", "Slow", timeout=0, on_stop=lambda ctx, why:
                       tidied.append(why))
    def slow(ctx):
        ctx.report(0.5, "half-way", force=True)
        return "never"
    try:
        with app.app_context():
            task = task_service.start("test.slow", admin)
            task_service.execute(task.id)
        done = _task(app, task.id)
        assert done.state == "failed" and "time limit" in done.error
        assert tidied == ["failed"]
    finally:
        task_service.KINDS.pop("test.slow")


def test_a_running_task_cancelled_stops_at_its_next_report(app, admin):
    @task_service.kind("test.loop", "Loop")
    def loop(ctx):
        with app.app_context():  # another request cancels it meanwhile
            tasklist.cancel(admin_again(), ctx.task.id)
        ctx.report(0.3, force=True)
        return "finished anyway"

    def admin_again():
        return db.session.get(User, admin.id)
    try:
        with app.app_context():
            task = task_service.start("test.loop", admin)
            task_service.execute(task.id)
        assert _task(app, task.id).state == "cancelled"
    finally:
        task_service.KINDS.pop("test.loop")


def test_a_dead_workers_task_is_queued_again_then_failed_never_running_for_ever(app, world):
    task_id = _start_copy(app, world)
    with app.app_context():
        task = db.session.get(Task, task_id)
        task.state, task.attempts, task.worker = "running", 1, "gone:1"
        task.heartbeat_at = utcnow() - timedelta(seconds=task_service.STALE_SECONDS + 5)
        db.session.commit()
        assert task_service.recover() == 1
        task = db.session.get(Task, task_id)
        assert task.state == "queued" and "worker stopped" in task.message
        locs = db.session.get(Image, world["image"]).locations
        assert {loc.error for loc in locs} == {"The worker stopped during the copy."}
        # Its last attempt dies too: failed, and "Try again" is offered.
        task.state, task.attempts = "running", task.max_attempts
        task.heartbeat_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
        task_service.recover()
    task = _task(app, task_id)
    assert task.state == "failed" and "worker running it stopped" in _said(app, task.error)


def test_a_live_workers_task_is_left_alone(app, world):
    task_id = _start_copy(app, world)
    with app.app_context():
        task = db.session.get(Task, task_id)
        task.state, task.worker, task.heartbeat_at = "running", "alive:1", utcnow()
        db.session.commit()
        assert task_service.recover() == 0
        assert db.session.get(Task, task_id).state == "running"


def test_the_tasks_page_shows_everybodys_to_the_admin_and_his_own_to_a_user(
        app, as_admin, as_user, admin, user):
    with app.app_context():
        mine = tasklist.ping(db.session.merge(user)).id
        theirs = tasklist.ping(db.session.merge(admin)).id
    listed = as_user.get("/tasks/?format=json").get_json()["tasks"]
    assert [t["id"] for t in listed] == [mine]
    assert {t["id"] for t in as_admin.get("/tasks/?format=json").get_json()["tasks"]} == \
        {mine, theirs}
    assert as_user.get(f"/tasks/{theirs}").status_code == 404
    assert as_user.post(f"/tasks/{theirs}/cancel").status_code in (302, 404)
    assert _task(app, theirs).state == "queued"
    page = as_user.get("/tasks/").get_data(as_text=True)
    assert "Check that the worker answers" in page and f'data-task="{mine}"' in page
    r = as_user.post(f"/tasks/{mine}/cancel", follow_redirects=True)
    assert f"Task {mine} cancelled." in r.get_data(as_text=True)


def test_cli_lists_tasks_as_json(app, admin):
    with app.app_context():
        task = tasklist.ping(db.session.merge(admin))
        task_service.execute(task.id)
        out = CliRunner().invoke(app.cli, ["tasks", "list", "--json"]).output
    rows = json.loads(out)
    assert [(r["id"], r["kind"], r["state"]) for r in rows] == [(task.id, "ping", "succeeded")]


def test_an_image_being_copied_cannot_be_deleted(app, world):
    task_id = _start_copy(app, world)
    from loucloud.services import images as image_service
    with app.app_context():
        image = db.session.get(Image, world["image"])
        with pytest.raises(Conflict, match="being copied"):
            image_service.delete_image(image)
        task_service.execute(task_id)
        image_service.delete_image(db.session.get(Image, world["image"]),
                                   delete_copies=True)
        assert db.session.get(Image, world["image"]) is None
    with pytest.raises(NotFound):
        with app.app_context():
                tasklist.task_for(db.session.get(User, world["alice"]), task_id)


def test_a_task_whose_worker_process_is_gone_from_this_machine_is_taken_over_at_once(
        app, world):
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    task_id = _start_copy(app, world)
    with app.app_context():
        task = db.session.get(Task, task_id)
        task.state, task.attempts, task.heartbeat_at = "running", 1, utcnow()  # fresh
        task.worker = f"{socket.gethostname()}:{gone.pid}"
        db.session.commit()
        assert task_service.recover() == 1
        assert db.session.get(Task, task_id).state == "queued"
