"""A class in a real browser (issue 16), on the two real libvirtd + QEMU hosts of the lab:
the teacher, a manager of the group, with a browser that asks for zh-CN, makes a VM for
each of the 12 students in one action from the group's page, follows the task's progress,
ends the class from the group's page and forces the batch off; every page in Chinese.
Then a student sees his own VM only. Screenshots in test-artifacts/ (class-*.png).

The live server runs no worker (the tests' queue is huey in memory): a thread of this
test takes that queue and runs its tasks as `manage.py worker` does. The VMs are 64 MiB,
one vCPU, on a blank 1 MiB image, without a network card: nothing in the guest matters."""
from __future__ import annotations

import contextlib
import re
import threading
import time

import libvirt
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from loucloud import taskqueue
from loucloud.extensions import db
from loucloud.models import VM
from loucloud.services import bulk_users, images
from loucloud.services import groups as group_service
from loucloud.services import hosts as host_service
from loucloud.services import templates as template_service
from loucloud.services.vms.lifecycle import delete_vm
from tests.factories import make_user
from tests.support.browser import login, shot

pytestmark = pytest.mark.browser
libvirt.registerErrorHandler(lambda *a: None, None)

STUDENTS = [f"s{i:02d}" for i in range(1, 13)]
IMAGE = "lc-class-blank.qcow2"
SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF


@contextlib.contextmanager
def worker(app):
    """`manage.py worker` for the live server's queue: a thread that takes each run from
    the app's huey (in memory under the tests' config) and executes it."""
    huey, _run = app.extensions[taskqueue.EXTENSION]
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            task = huey.dequeue()
            if task is None:
                stop.wait(0.1)
            else:
                huey.execute(task)
    thread = threading.Thread(target=loop, name="worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def new_page(browser, **context):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
    page = ctx.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    page.on("console",
            lambda m: page.js_errors.append(m.text) if m.type == "error" else None)
    return page


def domains(lab) -> dict[str, dict[str, int]]:
    """{host name: {domain UUID: libvirt state}} as each lab host's libvirtd says."""
    out = {}
    for h in (lab.host(1), lab.host(2)):
        conn = libvirt.open(h.uri)
        try:
            out[h.name] = {d.UUIDString(): d.state()[0] for d in conn.listAllDomains(0)}
        finally:
            conn.close()
    return out


def wait_for_task(page, timeout=120.0) -> list[int]:
    """Stay on a task's page (it follows the task and reloads itself when the state
    changes) until the task succeeded; return the progress figures seen on the way."""
    seen, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            state = page.get_attribute(".task-state", "data-state", timeout=2000)
            seen.append(int(page.get_attribute("#task .progress", "aria-valuenow",
                                               timeout=2000)))
        except PlaywrightError:     # between two loads of the page
            state = None
        if state == "succeeded":
            return seen
        assert state not in ("failed", "cancelled"), page.inner_text("#task")
        time.sleep(0.3)
    raise AssertionError(f"the task did not succeed within {timeout} s: {seen[-5:]}")


def test_a_teacher_makes_his_class_vms_in_chinese_and_ends_the_class(
        app, lab, live_server, browser):
    base = live_server.url
    with app.app_context():   # the administrator's part, through the services
        make_user("admin", is_admin=True)
        for h in (lab.host(1), lab.host(2)):
            path = lab.make_image(h, IMAGE, 1024 * 1024)
            host_service.add_host(h.name, h.uri)
        image = images.add_image("blank", path, "linux")
        template_service.create_template("tiny", template_service.Sizes(1, 64, 1), image,
                                         network=template_service.Network("none"))
        group = group_service.create_group("class", "Lab 1")
        students = {u.username: u.password for u in bulk_users.create_members(
            group, "\n".join(STUDENTS))}
        teacher_password = bulk_users.create_members(group, "teacher",
                                                      manager=True)[0].password
        group_id = group.id
    teacher = new_page(browser, locale="zh-CN",
                       extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    student = None
    try:
        login(teacher, base, "teacher", teacher_password)
        assert teacher.get_attribute("html", "lang") == "zh-CN"
        teacher.goto(f"{base}/groups/")
        with teacher.expect_navigation():
            teacher.click("main a:text-is('class')")
        assert teacher.url == f"{base}/groups/{group_id}"
        expect(teacher.locator("#class-vms")).to_contain_text("本组的批量")
        with teacher.expect_navigation():
            teacher.click("a:has-text('批量创建')")
        assert "批量创建" in teacher.inner_text(".breadcrumb")
        teacher.fill("#pattern", "lab-{username}")
        with teacher.expect_navigation():
            teacher.click("input[type=submit][value='创建虚拟机']")
        assert re.search(r"/batches/\d+$", teacher.url), teacher.url
        batch_url = teacher.url
        assert "正在创建：已完成 0 %。" in teacher.inner_text("main")  # no worker yet
        shot(teacher, "class-batch-queued-zh")

        with worker(app):
            with teacher.expect_navigation():
                teacher.click("a:has-text('正在创建')")          # to the task's page
            started = time.monotonic()
            progress = wait_for_task(teacher)
            made_in = time.monotonic() - started
            assert "已成功" in teacher.inner_text(".task-state")
            assert any(0 < p < 100 for p in progress), progress   # it moved while we looked
            shot(teacher, "class-batch-task-zh")
            with app.app_context():
                vms = {vm.uuid: (vm.owner.username, vm.name, vm.host.name)
                       for vm in db.session.execute(db.select(VM)).scalars()}
            assert sorted(name for _o, name, _h in vms.values()) == \
                [f"lab-{s}" for s in STUDENTS]
            assert all(name == f"lab-{owner}" for owner, name, _h in vms.values())
            on = domains(lab)
            for host in ("h1", "h2"):   # both hosts got some, and libvirt runs them
                mine = {u: s for u, s in on[host].items() if u in vms}
                assert mine and set(mine.values()) == {libvirt.VIR_DOMAIN_RUNNING}, on
                assert all(vms[u][2] == host for u in mine)
            assert sum(len(set(on[h]) & set(vms)) for h in on) == len(STUDENTS)
            spread = {h: len(set(on[h]) & set(vms)) for h in on}

            teacher.goto(batch_url)
            expect(teacher.locator("tr[data-vm]")).to_have_count(len(STUDENTS))
            assert "运行中" in teacher.inner_text("tbody")
            shot(teacher, "class-batch-zh")

            # End of class: the group's page shuts them all down (blank guests ignore
            # the ACPI request), then the batch's page forces them off.
            teacher.goto(f"{base}/groups/{group_id}")
            assert teacher.get_attribute("html", "lang") == "zh-CN"
            assert "成员的虚拟机" in teacher.inner_text("#vms")
            assert teacher.locator("#vms tr[data-vm-row]").count() == len(STUDENTS)
            shot(teacher, "class-group-zh")
            teacher.click("#class-vms button:has-text('全部关机')")
            teacher.wait_for_selector("#confirm-modal.show")
            assert "class" in teacher.inner_text("#confirm-body")
            with teacher.expect_navigation():
                teacher.click("#confirm-ok")
            assert re.search(r"/tasks/\d+$", teacher.url), teacher.url
            wait_for_task(teacher)    # 12 of 12 asked (said in the worker's language)
            assert re.search(r"\b12\b.*\b12\b", teacher.inner_text("[data-field=result]"))
            teacher.goto(batch_url)
            teacher.click("button:has-text('强制关机')")
            teacher.wait_for_selector("#confirm-modal.show")
            with teacher.expect_navigation():
                teacher.click("#confirm-ok")
            wait_for_task(teacher)
            shot(teacher, "class-forced-off-zh")
        on = domains(lab)
        assert sorted(s for h in on for u, s in on[h].items() if u in vms) == \
            [SHUTOFF] * len(STUDENTS)
        assert teacher.js_errors == []

        # A student, in English: his own VM only, shut off; another's is not there.
        student = new_page(browser, locale="en-US")
        login(student, base, "s01", students["s01"])
        assert student.get_attribute("html", "lang") == "en"
        rows = student.locator("tr[data-vm-row]")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("lab-s01")
        expect(rows).to_contain_text("shut off")
        text = student.inner_text("main")
        assert not any(f"lab-{s}" in text for s in STUDENTS[1:])
        shot(student, "class-student-vms")
        assert student.js_errors == []
        other = next(u for u, (owner, _n, _h) in vms.items() if owner == "s02")
        with app.app_context():
            other_id = db.session.execute(db.select(VM.id).filter_by(uuid=other)).scalar()
        assert student.goto(f"{base}/vms/{other_id}").status == 404
        print(f"\n  12 VMs made in {made_in:.1f} s (task page to succeeded), "
              f"per host {spread}")
    finally:
        for page in (teacher, student):
            if page is not None:
                page.context.close()
        with app.app_context():
            for vm in db.session.execute(db.select(VM)).scalars().all():
                with contextlib.suppress(Exception):
                    delete_vm(vm)
