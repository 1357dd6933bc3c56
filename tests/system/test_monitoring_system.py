"""The sampler on real libvirtd hosts with VMs running in QEMU, and a real browser
watching a VM's charts and its state change without a reload."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from loucloud.extensions import db
from loucloud.models import HostSample, Host, Template, User, VMSample
from loucloud.services import images, hosts as host_service, templates as template_service
from loucloud.services.monitoring import sampler as sampler_service
from loucloud.services import settings as settings_service
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle as vm_service
from tests.conftest import PASSWORD
from tests.factories import make_user
from tests.support.browser import ARTIFACTS, login

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def monitoring_image(lab):
    return [lab.make_image(lab.host(i), "monitor-base.qcow2", 64 * 1024 * 1024)
            for i in (1, 2)][0]


@pytest.fixture
def running_vms(app, lab, monitoring_image):
    """Two running VMs (2 vCPUs, 128 MiB) of alice, one on each host."""
    with app.app_context():
        make_user("admin", is_admin=True)
        alice = make_user("alice")
        for i in (1, 2):
            host_service.add_host(f"h{i}", lab.host(i).uri)
        image = images.add_image("base", monitoring_image, "linux")
        template = template_service.create_template("two", template_service.Sizes(2, 128, 1), image)
        settings_service.update_settings({"host_timeout": 2})
        made = []
        for i in (1, 2):
            vm = vm_create.create_vm(db.session.get(User, alice.id), f"watched-{i}",
                                      db.session.get(Template, template.id),
                                      db.session.execute(db.select(Host).filter_by(
                                          name=f"h{i}")).scalar_one())
            made.append(vm.id)
    yield made
    with app.app_context():
        from loucloud.models import VM
        for vm in db.session.execute(db.select(VM)).scalars().all():
            vm_service.delete_vm(vm)


def _samples(app, vm_id):
    with app.app_context():
        rows = db.session.execute(db.select(VMSample).where(VMSample.vm_id == vm_id)
                                  .order_by(VMSample.at, VMSample.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def test_samples_are_plausible_and_survive_a_restart(app, lab, running_vms, capsys):
    sampler = sampler_service.Sampler()
    with app.app_context():
        sampler.cycle()
        time.sleep(1.5)
        report = sampler.cycle()
    assert report.vm_samples == 2 and report.hosts_offline == 0
    for vm_id in running_vms:
        last = _samples(app, vm_id)[-1]
        assert last.state == "running"
        assert 0 <= last.cpu_percent <= 200  # 2 vCPUs
        assert 0 < last.memory_used_mib <= 128
        assert last.disk_read_bps is not None and last.disk_read_bps >= 0
    # A VM restarted between two cycles: its counters start again, no absurd rate.
    with app.app_context():
        from loucloud.models import VM
        vm = db.session.get(VM, running_vms[0])
        vm_service.act_on_vm(vm, "poweroff")
        vm_service.act_on_vm(vm, "start")
        time.sleep(1.0)
        sampler.cycle()
        time.sleep(1.0)
        sampler.cycle()
        hosts = db.session.execute(db.select(HostSample).where(
            HostSample.online.is_(True), HostSample.cpu_percent.is_not(None))).scalars().all()
    after = _samples(app, running_vms[0])[-2:]
    assert after[0].cpu_percent is None or 0 <= after[0].cpu_percent <= 200
    assert after[1].cpu_percent is not None and 0 <= after[1].cpu_percent <= 200
    assert hosts and all(0 <= h.cpu_percent <= 100 for h in hosts)
    assert all(h.memory_used_mib <= h.memory_total_mib for h in hosts)
    with capsys.disabled():
        print(f"\n  sampler on 2 real hosts, 2 VMs: cycle {report.seconds:.3f} s; after a restart "
              f"the first rate is {after[0].cpu_percent}, the next {after[1].cpu_percent:.1f} %")


def test_a_frozen_host_does_not_stall_the_sampler(app, lab, running_vms):
    sampler = sampler_service.Sampler()
    lab.freeze(lab.host(2))
    try:
        with app.app_context():
            started = time.monotonic()
            report = sampler.cycle()
            took = time.monotonic() - started
            h2 = db.session.execute(db.select(Host).filter_by(name="h2")).scalar_one()
            offline_since = h2.offline_since
    finally:
        lab.thaw(lab.host(2))
    assert report.hosts_offline == 1 and report.vm_samples == 1
    assert took < 2 + 1 and offline_since is not None


@pytest.mark.browser
def test_charts_and_a_live_state_change_in_the_browser(app, lab, running_vms, live_server,
                                                       page, tmp_path, capsys):
    with app.app_context():
        sampler = sampler_service.Sampler()
        for _ in range(3):
            sampler.cycle()
            time.sleep(1.0)
    vm_id = running_vms[0]
    login(page, live_server.url, "alice", PASSWORD)
    page.goto(f"{live_server.url}/vms/{vm_id}")
    page.wait_for_function("() => Number(document.getElementById('charts').dataset.points) >= 3",
                           timeout=15000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "vm-charts.png"), full_page=True)
    assert page.locator("#charts canvas").count() == 4
    assert page.locator(".vm-state").first.inner_text() == "running"

    # Shut off from the command line, against the same database: the open page follows.
    db_url = app.config["SQLALCHEMY_DATABASE_URI"]
    marker = page.evaluate("() => { window.__same_page = 1; return 1; }")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "manage.py", "vms", "poweroff", "watched-1",
                             "--owner", "alice"], cwd=ROOT, capture_output=True, text=True,
                            env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin",
                                 "LOUCLOUD_INSTANCE": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    page.wait_for_selector(".vm-state[data-state='shut off']", timeout=10000)
    seen_after = time.monotonic() - started
    assert page.evaluate("() => window.__same_page") == marker  # no reload happened
    assert page.locator(".vm-action[data-action='start']").is_visible()
    assert not page.locator(".vm-action[data-action='poweroff']").is_visible()
    page.screenshot(path=str(ARTIFACTS / "vm-shut-off-live.png"), full_page=True)
    assert page.js_errors == []
    with capsys.disabled():
        print(f"\n  live state: shut off from the CLI, seen in the open page {seen_after:.1f} s "
              "later (no reload)")
