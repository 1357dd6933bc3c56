"""Migration (issue 14) between two lab hosts (their own link, the migration addresses).

(a) Live migration of a running VM whose overlay holds 1 GiB of written data: LouCloud's
    "vm.migrate" task (``migrate_vm`` then the task run in-process, as the worker runs
    it: the target's overlay made, the XML retargeted, migrate3 in a thread while the
    job is followed, where it runs confirmed on both hosts, the record moved, the
    source's volume deleted), from the call to the end of the task; against a bare
    script on connections already open that creates the same overlay on the target,
    calls ``migrate3`` with the same flags and parameters (LIVE | PERSIST_DEST |
    UNDEFINE_SOURCE | NON_SHARED_INC; URI, listen address, destination and persistent
    XML, the disk to copy) and deletes the source's volume. Each side its own VM, moved
    back and forth between the two hosts (the overlay's data stays allocated).
(b) Draining a host of 20 shut-off VMs (the "host.drain" task run in-process): its
    wall time, and the ratio to 20 × one offline move (the "vm.migrate" task of one
    shut-off VM)."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid as uuidlib

import libvirt

from .common import Section, add_catalog, add_user, close_app, make_app, median, ms, secs
from .lab import boot_image

GIB = 1024 ** 3
DATA_MIB = 1024
DRAINED = 20
POOL = "loucloud"
XML_FLAGS = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE


def _fill(lab_host, path: str, mib: int) -> None:
    """``mib`` MiB written into the qcow2 overlay at ``path`` (a shut-off VM's)."""
    # its backing file is where the host sees it: not opened (whole clusters written)
    opened = json.dumps({"driver": "qcow2", "backing": None,
                         "file": {"driver": "file", "filename": str(lab_host.host_path(path))}})
    subprocess.run(["qemu-io", "-c", f"write -P 0x5a 0 {mib}M", f"json:{opened}"],
                   check=True, capture_output=True, timeout=600)
    os.sync()   # written back before anything is timed


class MigrationWorld:
    def __init__(self, ctx):
        from loucloud.extensions import db
        from loucloud.models import VM, Host, Template, User
        from loucloud.services import maintenance
        from loucloud.services.vms import create as vm_create
        from loucloud.services.vms import lifecycle

        self.ctx = ctx
        self.hosts = (ctx.lab.hosts[2], ctx.lab.hosts[3])
        self.app = make_app(ctx.workdir / "migration")
        ctx.cleanup(close_app, self.app)
        paths = {boot_image(ctx.lab.lab, h, "bench-migration.raw", 64 << 20)
                 for h in self.hosts}
        if len(paths) != 1:
            raise RuntimeError(f"the image is at different paths: {paths}")
        self.image = paths.pop()
        with self.app.app_context():
            self.admin = add_user("admin", admin=True)
            alice = add_user("alice")
            cat = add_catalog(self.hosts, self.image, memory_mib=64, disk_gib=2,
                              template="mig", image="mig")
            self.host_ids = [cat["servers"][h.index] for h in self.hosts]
            admin = db.session.get(User, self.admin)
            for h, host_id in zip(self.hosts, self.host_ids):
                maintenance.set_migration_address(admin, db.session.get(Host, host_id),
                                                  h.migration_address)
            vm = vm_create.create_vm(db.session.get(User, alice), "mover",
                                     db.session.get(Template, cat["template"]),
                                     db.session.get(Host, self.host_ids[0]), start=False)
            self.vm_id, volume_path = vm.id, vm.volume_path
            self.template_id, self.alice = cat["template"], alice
            db.session.remove()
        _fill(self.hosts[0], volume_path, DATA_MIB)
        with self.app.app_context():
            lifecycle.act_on_vm(db.session.get(VM, self.vm_id), "start")
            db.session.remove()
        self.where = {"app": 0, "floor": 0}
        self.conns = [libvirt.open(h.uri) for h in self.hosts]
        for conn in self.conns:
            ctx.cleanup(conn.close)
        self._floor_vm()

    def _floor_vm(self) -> None:
        from loucloud.virt.xml import DomainSpec, build_domain, build_overlay_volume

        h, conn = self.hosts[0], self.conns[0]
        self.uuid = str(uuidlib.uuid4())
        self.volume = f"lc-{self.uuid}.qcow2"
        pool = conn.storagePoolLookupByName(POOL)
        vol = pool.createXML(build_overlay_volume(self.volume, 2 * GIB, self.image, "raw"), 0)
        _fill(h, vol.path(), DATA_MIB)
        spec = DomainSpec(name=f"lc-{self.uuid}", uuid=self.uuid, title="floor", vcpus=1,
                          memory_mib=64, disk_path=vol.path(), max_vcpus=1,
                          max_memory_mib=64, domain_type=self.ctx.domain_type, arch="x86_64",
                          vnc_listen=h.address, vm_id=1, owner="alice")
        conn.defineXML(build_domain(spec)).create()
        self.ctx.cleanup(self._remove_floor)

    def _remove_floor(self) -> None:
        conn = self.conns[self.where["floor"]]
        try:
            dom = conn.lookupByUUIDString(self.uuid)
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(0)
            conn.storagePoolLookupByName(POOL).storageVolLookupByName(self.volume).delete(0)
        except libvirt.libvirtError:
            pass

    # -- (a) live: LouCloud ----------------------------------------------------------
    def app_live(self) -> tuple[float, dict]:
        from loucloud.extensions import db
        from loucloud.models import VM, Host, Task, User
        from loucloud.services import tasks
        from loucloud.services.vms import migration

        to = 1 - self.where["app"]
        seconds: dict = {}
        with self.app.app_context():
            admin, vm = db.session.get(User, self.admin), db.session.get(VM, self.vm_id)
            target = db.session.get(Host, self.host_ids[to])
            with self.ctx.counter.counting(seconds) as calls:
                start = time.perf_counter()
                task = migration.migrate_vm(admin, vm, target)
                tasks.execute(task.id)
                elapsed = time.perf_counter() - start
            task = db.session.get(Task, task.id)
            if task.state != "succeeded":
                raise RuntimeError(f"LouCloud's migration {task.state}: {task.error}")
            db.session.remove()
        self.where["app"] = to
        return elapsed, _calls(calls, seconds)

    # -- (a) live: the floor ---------------------------------------------------------
    def floor_live(self) -> tuple[float, dict]:
        from loucloud.virt.migration import LIVE_FLAGS
        from loucloud.virt.xml import build_overlay_volume

        frm = self.where["floor"]
        to = 1 - frm
        src, dst = self.conns[frm], self.conns[to]
        a, b = self.hosts[frm], self.hosts[to]
        seconds: dict = {}
        with self.ctx.counter.counting(seconds) as calls:
            start = time.perf_counter()
            dom = src.lookupByUUIDString(self.uuid)
            dst.storagePoolLookupByName(POOL).createXML(
                build_overlay_volume(self.volume, 2 * GIB, self.image, "raw"), 0)
            live = dom.XMLDesc(XML_FLAGS).replace(a.address, b.address)
            persist = dom.XMLDesc(XML_FLAGS | libvirt.VIR_DOMAIN_XML_INACTIVE).replace(
                a.address, b.address)
            dom.migrate3(dst, {
                libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{b.migration_address}",
                libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: b.migration_address,
                libvirt.VIR_MIGRATE_PARAM_DEST_XML: live,
                libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist,
                libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: ["vda"]}, LIVE_FLAGS)
            src.storagePoolLookupByName(POOL).storageVolLookupByName(self.volume).delete(0)
            elapsed = time.perf_counter() - start
        self.where["floor"] = to
        return elapsed, _calls(calls, seconds)

    # -- (b) offline moves and drains ------------------------------------------------
    def make_shut_off(self, names: list[str]) -> None:
        from loucloud.extensions import db
        from loucloud.models import Host, Template, User
        from loucloud.services.vms import create as vm_create

        with self.app.app_context():
            for name in names:
                vm_create.create_vm(db.session.get(User, self.alice), name,
                                    db.session.get(Template, self.template_id),
                                    db.session.get(Host, self.host_ids[0]), start=False)
            db.session.remove()

    def delete(self, names: list[str]) -> None:
        from loucloud.extensions import db
        from loucloud.models import VM
        from loucloud.services.vms import lifecycle

        with self.app.app_context():
            for vm in db.session.execute(db.select(VM).where(VM.name.in_(names))).scalars():
                lifecycle.delete_vm(vm)
            db.session.remove()

    def offline_move(self, name: str) -> float:
        from loucloud.extensions import db
        from loucloud.models import VM, Host, Task, User
        from loucloud.services import tasks
        from loucloud.services.vms import migration

        with self.app.app_context():
            vm = db.session.execute(db.select(VM).filter_by(name=name)).scalar_one()
            to = self.host_ids[1] if vm.host_id == self.host_ids[0] else self.host_ids[0]
            start = time.perf_counter()
            task = migration.migrate_vm(db.session.get(User, self.admin), vm,
                                        db.session.get(Host, to), offline=True)
            tasks.execute(task.id)
            elapsed = time.perf_counter() - start
            task = db.session.get(Task, task.id)
            if task.state != "succeeded":
                raise RuntimeError(f"offline move {task.state}: {task.error}")
            db.session.remove()
        return elapsed

    def drain(self, which: int) -> tuple[float, str]:
        from loucloud.extensions import db
        from loucloud.models import Host, Task, User
        from loucloud.services import maintenance, tasks

        with self.app.app_context():
            admin, host = db.session.get(User, self.admin), db.session.get(
                Host, self.host_ids[which])
            start = time.perf_counter()
            task = maintenance.drain(admin, host)
            tasks.execute(task.id)
            elapsed = time.perf_counter() - start
            task = db.session.get(Task, task.id)
            if task.state != "succeeded":
                raise RuntimeError(f"drain {task.state}: {task.error}\n{task.result}")
            maintenance.undrain(admin, db.session.get(Host, self.host_ids[which]))
            result = task.result
            db.session.remove()
        return elapsed, result


def _calls(calls: dict, seconds: dict) -> dict:
    """{method: (count, seconds)} over both hosts."""
    out: dict = {}
    for uri, methods in calls.items():
        for m, n in methods.items():
            count, sec = out.get(m, (0, 0.0))
            out[m] = (count + n, sec + seconds.get(uri, {}).get(m, 0.0))
    return out


def run(ctx) -> list[Section]:
    world = MigrationWorld(ctx)
    ctx.progress("migration: the VMs hold 1 GiB each")
    runs = ctx.runs(7)
    world.app_live()      # warm-up of both sides (and back where they started), not timed
    world.floor_live()
    samples: dict[str, list] = {"app": [], "floor": []}
    for r in range(runs):
        for side in (("app", "floor") if r % 2 == 0 else ("floor", "app")):
            samples[side].append(world.app_live() if side == "app" else world.floor_live())
        ctx.progress(f"migration: live run {r + 1}/{runs}")

    def med(side, fn):
        return median([fn(sec, calls) for sec, calls in samples[side]])

    total = lambda sec, calls: sec  # noqa: E731
    migrate3 = lambda sec, calls: calls.get("migrate3", (0, 0.0))[1]  # noqa: E731
    ncalls = lambda sec, calls: sum(n for n, _ in calls.values())  # noqa: E731
    live = Section("Live migration of a running VM whose overlay holds 1 GiB of written data",
                   ["side", "call → runs on the target", "of which migrate3",
                    "the rest", "libvirt calls"])
    for side, label in (("app", "LouCloud"), ("floor", "floor")):
        live.add(label, ms(med(side, total)), ms(med(side, migrate3)),
                 ms(med(side, lambda s, c: s - migrate3(s, c))), f"{med(side, ncalls):.0f}")
    live.notes.append(
        f"Median of {runs} runs each, the sides alternating, each VM moved back and forth "
        f"between two lab hosts over their own veth link, after one warm-up move of each; "
        f"{ctx.domain_type.upper()} guests with 64 MiB and one vCPU booting a one-sector "
        "disk that halts; 1 GiB written into each overlay (qemu-io) before it started.")
    live.notes.append(
        "LouCloud's rest: the checks of migrate_vm (the target's fitness, the source's "
        "state, its network), the task row, the target's pool and overlay, the XML "
        "retargeted, the job followed every 0.5 s while migrate3 runs in a thread, where "
        "it runs confirmed on both hosts, the record moved, the source's volume deleted. "
        "The floor's: the overlay created on the target, two XMLDesc, the source's volume "
        "deleted.")
    r = med("app", total) / med("floor", total)
    live.target("live migration, 1 GiB overlay: LouCloud / bare migrate3 ≤ 1.2", f"{r:.2f}",
                r <= 1.2)
    world.delete(["mover"])
    return [live, _drain_section(ctx, world)]


def _drain_section(ctx, world: MigrationWorld) -> Section:
    world.make_shut_off(["single"])
    world.offline_move("single")   # warm-up
    singles = [world.offline_move("single") for _ in range(ctx.runs(7))]
    ctx.progress("migration: single offline moves done")
    world.delete(["single"])
    names = [f"d-{i:02d}" for i in range(1, DRAINED + 1)]
    world.make_shut_off(names)
    drains, result = [], ""
    for r in range(1 if ctx.quick else 3):
        elapsed, result = world.drain(r % 2)
        drains.append(elapsed)
        ctx.progress(f"migration: drain {r + 1}: {elapsed:.1f} s")
    world.delete(names)
    one, drain = median(singles), median(drains)
    table = Section(f"Draining a host of {DRAINED} shut-off VMs",
                    ["what", "wall time", "per VM"])
    table.add(f"drain ({DRAINED} VMs, one task)", secs(drain), ms(drain / DRAINED))
    table.add("one offline move (its own task)", ms(one), ms(one))
    table.notes.append(
        f"Drain: median of {len(drains)} (from one host to the other and back); one move: "
        f"median of {len(singles)}. Each VM a 2 GiB overlay of a 64 MiB raw image, "
        "nothing written (what its volume stream copies is the qcow2 file, a few hundred "
        f"KiB). The drain's summary: {result.splitlines()[0] if result else '-'}")
    r = drain / (DRAINED * one)
    table.target(f"drain / ({DRAINED} × one offline move)", f"{r:.2f}", None)
    return table
