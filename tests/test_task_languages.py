"""What the worker says, in each reader's language (issue 16, "Chinese and English"): a
task's message, result and error and a batch's failure reasons are stored by a worker
that speaks English as messages with their values (services/said.py), and read in the
reader's language: the task and batch pages, their JSON, the API (Accept-Language, or
the user's own choice), the command line ($LOUCLOUD_LANG). Rows written before (plain
English) read as they were. Real parts: libvirt's test driver, the worker's own
function (tasks.execute), the web client."""
from __future__ import annotations

import json
import threading

import pytest
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from loucloud.extensions import db
from loucloud.models import Batch, Host, Task, Template, User
from loucloud.services import Conflict, copytasks, maintenance, said, tasklist
from loucloud.services import tasks as task_service
from loucloud.services.vms import batch as batch_service
from tests.factories import (make_catalog, make_server, make_stored_image, make_user, make_vm,
                             write_test_node)

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en"}

# What the batch below did, in each language: ann has a VM named lab already, ben has
# no room left in his quota, cai's VM is made.
MADE_ZH = "3 台虚拟机中已创建 1 台。"
NAME_TAKEN_ZH = "您已有名为 lab 的虚拟机。"
QUOTA_ZH = "超出配额：虚拟机 已用 0，再增加 1 将超过 0。"
RESULT_EN = ("1 of 3 VMs made. 2 could not be made: lab (ann): You already have a VM named "
             "lab.; lab (ben): Over quota: VMs 0 in use + 1 would exceed 0.")
RESULT_ZH = (f"{MADE_ZH} 2 台无法创建：lab（ann）：{NAME_TAKEN_ZH}; lab（ben）："
             f"{QUOTA_ZH}")


@pytest.fixture
def english_worker(monkeypatch):
    """The worker and the command line speak English (as a server's usual $LANG)."""
    monkeypatch.setenv("LOUCLOUD_LANG", "en")


@pytest.fixture
def batch_run(app, admin, test_host, english_worker):
    """A batch of "lab" for ann, ben and cai, run by the worker in English."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
        users = [make_user(name) for name in ("ann", "ben", "cai")]
        ids = [u.id for u in users]
        db.session.get(User, ids[1]).max_vms = 0
        db.session.commit()
        make_vm(ids[0], "lab", template.id)
        batch = batch_service.start_batch_create(
            db.session.get(User, admin.id), db.session.get(Template, template.id),
            [db.session.get(User, i) for i in ids], pattern="lab")
        task_service.execute(batch.task_id)      # the worker's part
        return batch.id, batch.task_id


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_a_batch_run_in_english_reads_in_chinese_and_in_english(app, batch_run, as_admin):
    batch_id, task_id = batch_run
    with app.app_context():
        task = db.session.get(Task, task_id)
        assert task.state == "succeeded"
        # stored as messages with their values, not as the worker's English
        assert "joined" in json.loads(task.result)
        reasons = [reason for _user, _name, reason in db.session.get(
            Batch, batch_id).failure_items]
        assert [r["said"] for r in reasons] == ["You already have a VM named %(name)s.",
                                                "Over quota: %(items)s."]

    # A Chinese reader (his browser's language): the task page, its JSON, the batch
    page = _text(as_admin.get(f"/tasks/{task_id}", headers=ZH))
    assert RESULT_ZH in page and "已完成。" in page
    shown = as_admin.get(f"/tasks/{task_id}?format=json", headers=ZH).get_json()
    assert (shown["result"], shown["message"]) == (RESULT_ZH, "已完成。")
    listed = as_admin.get("/tasks/?format=json", headers=ZH).get_json()["tasks"]
    assert [t["result"] for t in listed if t["id"] == task_id] == [RESULT_ZH]
    page = _text(as_admin.get(f"/batches/{batch_id}", headers=ZH))
    assert f"(ann): {NAME_TAKEN_ZH}</li>" in page and f"(ben): {QUOTA_ZH}</li>" in page
    # ... the API, by Accept-Language
    assert as_admin.get(f"/api/v1/tasks/{task_id}", headers=ZH).get_json()["result"] == \
        RESULT_ZH
    failures = as_admin.get(f"/api/v1/batches/{batch_id}", headers=ZH).get_json()["failures"]
    assert [(f["owner"], f["reason"]) for f in failures] == [("ann", NAME_TAKEN_ZH),
                                                             ("ben", QUOTA_ZH)]

    # An English reader reads it as the worker would have written it
    assert RESULT_EN in _text(as_admin.get(f"/tasks/{task_id}", headers=EN))
    assert as_admin.get(f"/api/v1/tasks/{task_id}", headers=EN).get_json()["result"] == \
        RESULT_EN
    failures = as_admin.get(f"/api/v1/batches/{batch_id}", headers=EN).get_json()["failures"]
    assert [f["reason"] for f in failures] == ["You already have a VM named lab.",
                                               "Over quota: VMs 0 in use + 1 would exceed 0."]
    page = _text(as_admin.get(f"/batches/{batch_id}", headers=EN))
    assert "(ben): Over quota: VMs 0 in use + 1 would exceed 0.</li>" in page

    # The user's own choice of language wins over his browser's
    with app.app_context():
        db.session.execute(db.select(User).filter_by(username="admin")).scalar_one() \
            .locale = "zh_CN"
        db.session.commit()
    assert as_admin.get(f"/api/v1/tasks/{task_id}", headers=EN).get_json()["result"] == \
        RESULT_ZH


def test_the_command_line_says_a_batch_in_its_language(app, batch_run):
    batch_id, task_id = batch_run
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["tasks", "show", str(task_id)],
                          env={"LOUCLOUD_LANG": "zh_CN.UTF-8"})
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["result"] == RESULT_ZH
    listed = runner.invoke(args=["vms", "batch", str(batch_id), "--json"],
                           env={"LOUCLOUD_LANG": "zh_CN.UTF-8"})
    assert listed.exit_code == 0, listed.output
    assert [r["reason"] for r in json.loads(listed.output) if r["reason"]] == \
        [NAME_TAKEN_ZH, QUOTA_ZH]
    listed = runner.invoke(args=["tasks", "list"], env={"LOUCLOUD_LANG": "en"})
    assert "Done." in listed.output


def test_a_running_tasks_progress_reads_in_the_readers_language(app, admin, as_admin,
                                                                english_worker):
    reported, go_on, failures = threading.Event(), threading.Event(), []

    @task_service.kind("test.talks", "Talks", attempts=1)
    def talks(ctx):
        ctx.report(0.25, _l("Making %(name)s for %(user)s (%(done)s of %(total)s).",
                            name="lab1-bob", user="bob", done=3, total=12), force=True)
        reported.set()
        go_on.wait(30)
        return _l("%(made)s of %(total)s VMs made.", made=12, total=12)

    def worker(task_id):
        try:
            with app.app_context():
                task_service.execute(task_id)
        except Exception as exc:  # noqa: BLE001 - failed below
            failures.append(exc)
            reported.set()
    try:
        with app.app_context():
            task_id = task_service.start("test.talks", db.session.get(User, admin.id)).id
        thread = threading.Thread(target=worker, args=(task_id,))
        thread.start()
        try:
            assert reported.wait(30) and not failures, failures
            said_zh = as_admin.get(f"/tasks/{task_id}?format=json", headers=ZH).get_json()
            said_en = as_admin.get(f"/tasks/{task_id}?format=json", headers=EN).get_json()
        finally:
            go_on.set()
            thread.join(30)
        assert said_zh["message"] == "正在为 bob 创建 lab1-bob（3 / 12）。"
        assert said_en["message"] == "Making lab1-bob for bob (3 of 12)."
        done = as_admin.get(f"/tasks/{task_id}?format=json", headers=ZH).get_json()
        assert (done["state"], done["result"]) == ("succeeded", "12 台虚拟机中已创建 12 台。")
    finally:
        task_service.KINDS.pop("test.talks")


def test_a_drains_summary_reads_in_the_readers_language(app, admin, user, test_host,
                                                        test_host2, as_admin, english_worker):
    with app.app_context():
        template = make_catalog(("h1", test_host), ("h2", test_host2))
        h1 = db.session.execute(db.select(Host).filter_by(name="h1")).scalar_one()
        make_vm(user.id, "web", template.id, host_id=h1.id)
        task = maintenance.drain(db.session.get(User, admin.id), h1)
        task_service.execute(task.id)       # h2 (test driver) takes no migrations
        task_id, h1_id = task.id, h1.id
        assert db.session.get(Task, task_id).state == "failed"
    head_zh = "1 台虚拟机中已有 0 台迁离 h1，1 台无法迁移。"
    page = _text(as_admin.get(f"/hosts/{h1_id}", headers=ZH))
    assert head_zh in page
    assert "未迁移：没有主机能接收 web：模拟主机（libvirt 的测试驱动）不接受迁移。" in page
    drain = as_admin.get(f"/api/v1/hosts/{h1_id}", headers=EN).get_json()["drain"]
    assert drain["summary"] == "0 of 1 VM(s) moved off h1, 1 could not move."
    assert drain["vms"] == [{"vm": "web", "what": "not moved: No host can take web: a "
                             "simulated host (libvirt's test driver) takes no migrations."}]
    error = as_admin.get(f"/tasks/{task_id}?format=json", headers=ZH).get_json()["error"]
    assert error == f"{head_zh} 各虚拟机的原因见结果。"


def test_an_image_copys_failure_reads_in_the_readers_language(app, tmp_path, as_admin,
                                                               admin, english_worker):
    with app.app_context():
        hosts = [make_server(f"h{i}", write_test_node(tmp_path / f"c{i}.xml")) for i in (1, 2)]
        image = db.session.merge(make_stored_image(tmp_path))
        task = copytasks.copy_image(db.session.get(User, admin.id), image,
                                    [h.id for h in hosts])
        task_service.execute(task.id)   # the test driver takes no uploads: libvirt says
        task_id, image_id = task.id, image.id
        again = copytasks.copy_image(db.session.get(User, admin.id), image,
                                     [h.id for h in hosts])
        tasklist.cancel(db.session.get(User, admin.id), again.id)
    error = as_admin.get(f"/api/v1/tasks/{task_id}", headers=ZH).get_json()["error"]
    assert error.startswith("已复制到 没有主机；失败：h1: ")   # libvirt's words stay its own
    assert "not supported" in error
    copies = as_admin.get(f"/images/{image_id}?format=json", headers=ZH).get_json()["copies"]
    assert {c["error"] for c in copies} == {"复制已取消。"}
    copies = as_admin.get(f"/images/{image_id}?format=json", headers=EN).get_json()["copies"]
    assert {c["error"] for c in copies} == {"The copy was cancelled."}


def test_rows_written_before_read_as_they_were(app, admin, as_admin):
    with app.app_context():
        task = Task(owner_id=admin.id, kind="ping", target_name="worker", state="failed",
                    message="Failed.", result="5 of 5 VMs made.",
                    error="internal error: virStorageVolUpload: not supported")
        batch = Batch(pattern="old", template_name="small", created_by_id=admin.id,
                      failures=json.dumps([["ann", "old", "no host can take it"],
                                           ["ben", "old", "Over quota: VMs 1 in use + 1 "
                                            "would exceed 1."]]))
        db.session.add_all([task, batch])
        db.session.commit()
        task_id, batch_id = task.id, batch.id
    shown = as_admin.get(f"/api/v1/tasks/{task_id}", headers=ZH).get_json()
    # a message LouCloud kept in English without values: from the catalogue, as before
    assert shown["message"] == "已失败。"
    # any other text as it was written
    assert shown["result"] == "5 of 5 VMs made."
    assert shown["error"] == "internal error: virStorageVolUpload: not supported"
    failures = as_admin.get(f"/api/v1/batches/{batch_id}", headers=ZH).get_json()["failures"]
    assert [f["reason"] for f in failures] == ["没有主机能接收它",
                                               "Over quota: VMs 1 in use + 1 would exceed 1."]
    page = _text(as_admin.get(f"/tasks/{task_id}", headers=ZH))
    assert "5 of 5 VMs made." in page and "virStorageVolUpload: not supported" in page


def test_the_stored_form_nests_keeps_plurals_and_fits_its_column(app):
    inner = _l("%(what)s %(used)s in use + %(add)s would exceed %(total)s", what=_l("VMs"),
               used=0, add=1, total=0)
    message = said.Joined([_l("Over quota: %(items)s.", items=said.Joined([inner], "; ")),
                           lazy_ngettext("%(num)d event", "%(num)d events", 2)], " ")
    stored = said.encode(message)
    assert said.encode(_l("Done.")) == "Done."   # no values: its msgid, as before
    with app.test_request_context("/", headers=ZH):
        assert said.render(stored).startswith("超出配额：虚拟机 已用 0，再增加 1 将超过 0。 2 ")
        assert said.render(said.Stored(stored)) == said.render(stored)
    with app.test_request_context("/", headers=EN):
        assert said.render(stored) == "Over quota: VMs 0 in use + 1 would exceed 0. 2 events"
        # too long for the column: the text in the current language, cut
        assert said.store(message, 20) == "Over quota: VMs 0 in"
        # what is not LouCloud's message is shown as it is
        assert said.render('{"said": broken') == '{"said": broken'
        # values that do not fit the message: its English, never an error page
        assert said.render('{"said":"Over quota: %(items)s.","with":{}}') == \
            "Over quota: %(items)s."


def test_a_refusal_keeps_its_message_for_the_tasks_row(app):
    with app.test_request_context("/", headers=EN):
        refusal = Conflict(_l("You already have a VM named %(name)s.", name="lab"))
        assert str(refusal) == "You already have a VM named lab."
        stored = said.encode(said.of(refusal))
    with app.test_request_context("/", headers=ZH):
        assert said.render(stored) == "您已有名为 lab 的虚拟机。"
        assert said.of(Conflict("libvirt: no such domain")) == "libvirt: no such domain"
