"""Sampler, retention, chart and state JSON, dashboards and the shared state cache, on
libvirt's test driver (real QEMU figures: tests/system/test_monitoring_system.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import VM, HostSample, Host, VMSample, utcnow
from loucloud.services.monitoring import sampler as sampler_service
from loucloud.services import settings as settings_service
from loucloud.services.hypervisors import pool
from tests.conftest import Client
from tests.factories import make_catalog, make_vm


@pytest.fixture
def running(app, user, test_host):
    with app.app_context():
        template = make_catalog(("h1", test_host))
        return make_vm(user.id, "busy", template.id)


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(model.id))).scalar()


def test_a_cycle_samples_every_host_and_running_vm(app, running, test_host, tmp_path):
    with app.app_context():
        db.session.add(Host(name="dead", uri=f"qemu+unix:///system?socket={tmp_path}/x"))
        db.session.commit()
        report = sampler_service.Sampler().cycle()
        online = sorted(s.online for s in db.session.execute(db.select(HostSample)).scalars())
        dead = db.session.execute(db.select(Host).filter_by(name="dead")).scalar_one()
        assert dead.offline_since is not None  # marked offline by the sampler
    assert (report.hosts, report.hosts_offline, report.vm_samples) == (2, 1, 1)
    assert online == [False, True]


def test_rates_come_from_two_cycles(app, running):
    with app.app_context():
        sampler = sampler_service.Sampler()
        sampler.cycle()
        sampler.cycle()
        samples = db.session.execute(db.select(VMSample).order_by(VMSample.id)).scalars().all()
    assert len(samples) == 2 and samples[0].state == "running"


def test_rate_is_none_when_a_counter_goes_back():
    """A VM restarted between two samples: its counters start again from zero."""
    assert sampler_service._rate(5_000, 10_000, 10) is None
    assert sampler_service._rate(20_000, 10_000, 10) == 1000
    assert sampler_service._rate(20_000, None, 10) is None


def test_retention_thins_then_deletes_and_keeps_the_rest(app, running):
    now = utcnow().replace(microsecond=0)
    ages_levels = [(timedelta(minutes=30), 0), (timedelta(hours=3), 0), (timedelta(hours=3), 1),
                   (timedelta(days=3), 1), (timedelta(days=3), 2), (timedelta(days=20), 2)]
    with app.app_context():
        for age, level in ages_levels:
            db.session.add(VMSample(vm_id=running.id, at=now - age, level=level, state="running"))
        db.session.commit()
        deleted = sampler_service.expire(now)
        kept = sorted((now - s.at, s.level) for s in
                      db.session.execute(db.select(VMSample)).scalars())
    assert deleted["vm_samples"] == 3
    assert kept == [(timedelta(minutes=30), 0), (timedelta(hours=3), 1), (timedelta(days=3), 2)]


def test_retention_period_comes_from_settings(app, running):
    now = utcnow()
    with app.app_context():
        settings_service.update_settings({"retention_days": 2})
        db.session.add(VMSample(vm_id=running.id, at=now - timedelta(days=3), level=2,
                                state="running"))
        db.session.commit()
        assert sampler_service.expire(now)["vm_samples"] == 1


def test_keeper_levels():
    sampler = sampler_service.Sampler()
    from datetime import datetime
    base = datetime(2026, 1, 1, 12, 0, 0)
    levels = [sampler._level(base + timedelta(seconds=s)) for s in (0, 10, 300, 310, 1800)]
    assert levels == [2, 0, 1, 0, 2]


def test_chart_json_and_ownership(app, as_user, running, other_user):
    with app.app_context():
        now = utcnow()
        for i in range(3):
            db.session.add(VMSample(vm_id=running.id, at=now - timedelta(minutes=i), level=0,
                                    state="running", cpu_percent=10.0 * i,
                                    memory_used_mib=100.0))
        db.session.add(VMSample(vm_id=running.id, at=now - timedelta(hours=5), level=2,
                                state="running", cpu_percent=99.0))
        db.session.commit()
    hour = as_user.get(f"/vms/{running.id}/metrics.json").get_json()
    assert hour["cpu_percent"] == [20.0, 10.0, 0.0] and len(hour["t"]) == 3
    assert hour["limits"] == {"cpu_percent": 100, "memory_mib": 512}
    day = as_user.get(f"/vms/{running.id}/metrics.json?range=day").get_json()
    assert day["cpu_percent"] == [99.0]  # only keepers for longer ranges
    bob = Client(app)
    bob.login("bob")
    assert bob.get(f"/vms/{running.id}/metrics.json").status_code == 404
    assert bob.get(f"/hosts/{running.host_id}/metrics.json").status_code == 403


def test_states_json_lists_only_what_the_user_may_see(app, as_user, running, other_user):
    mine = as_user.get(f"/vms/states.json?ids={running.id},999,x").get_json()
    assert mine == {str(running.id): {"state": "running", "actions": [
        "shutdown", "poweroff", "reboot", "reset", "pause", "save"], "addresses": []}}
    bob = Client(app)
    bob.login("bob")
    assert bob.get(f"/vms/states.json?ids={running.id}").get_json() == {}


def test_polling_pages_share_one_bulk_call_per_host(app, as_user, running, test_host):
    app.config["LIVE_STATE_CACHE_SECONDS"] = 1
    with app.app_context():
        before = pool().calls[test_host]
    for _ in range(10):
        as_user.get(f"/vms/states.json?ids={running.id}")
    with app.app_context():  # one bulk call for the states, one for the leases
        assert pool().calls[test_host] - before == 2
    # An action makes the next page read libvirt again (no stale state after a click).
    as_user.post(f"/vms/{running.id}/pause")
    assert as_user.get(f"/vms/states.json?ids={running.id}").get_json()[
        str(running.id)]["state"] == "paused"


def test_dashboards(app, as_admin, as_user, running):
    with app.app_context():
        sampler = sampler_service.Sampler()
        sampler.cycle()
    admin = as_admin.get("/dashboard").get_data(as_text=True)
    assert 'data-state-count="running"' in admin and 'id="dash-capacity"' in admin
    assert 'data-host="h1"' in admin and "All hosts" in admin
    assert 'id="dash-events"' in admin
    user = as_user.get("/dashboard").get_data(as_text=True)
    assert 'data-state-count="running"' in user and "busy" in user
    assert "My quota" in user and "1 / 5" in user
    assert 'id="dash-capacity"' not in user


def test_sampler_command_runs_once(app, running):
    result = app.test_cli_runner().invoke(args=["sampler", "--once"])
    assert result.exit_code == 0, result.output
    assert count(app, VMSample) == 1 and count(app, HostSample) == 1
    with app.app_context():
        assert db.session.get(VM, running.id) is not None


def test_the_dashboards_disk_figure_counts_data_disks(app, as_admin, running):
    """The capacity given to VMs counts every disk of them, as the quota does."""
    from loucloud.models import Disk

    with app.app_context():   # a detached data disk: counted all the same
        vm = db.session.get(VM, running.id)
        vm.disks.append(Disk(target="vdb", volume_name="data.qcow2", size_gib=3,
                             attached=False))
        system = vm.disk_gib
        db.session.commit()
    page = as_admin.get("/dashboard").get_data(as_text=True)
    assert f"{system + 3} / " in page
