"""Disk add (issue 14): LouCloud's service against a bare script, hot-plugging a new
blank 1 GiB qcow2 data disk into a running VM on the same lab host.

LouCloud: ``services.vms.disks.add_disk`` (the host makes the volume, after a look at
the pool's free room, while one transaction reserves the quota, marks the VM busy and
writes the new row; then the hot-plug; then the row and the VM's status), from the call
to its return. The floor: a
script on a connection already open that looks the pool and the domain up, creates
the same qcow2 volume and attaches the same <disk> live and to the definition. Each
side its own running VM (a one-sector disk that halts); between runs, outside the
time, each VM is powered off, its disk taken out and deleted, and started again (a
halted guest cannot let a hot-plugged disk go)."""
from __future__ import annotations

import time
import uuid as uuidlib

import libvirt

from .common import Section, add_catalog, add_user, close_app, make_app, median, ms
from .lab import boot_image

GIB = 1024 ** 3
LIVE_AND_CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG


class DiskWorld:
    def __init__(self, ctx):
        from loucloud.extensions import db
        from loucloud.models import Host, Template, User
        from loucloud.services.vms import create as vm_create
        from loucloud.virt.xml import DomainSpec, build_domain, build_overlay_volume

        self.ctx = ctx
        self.host = ctx.lab.hosts[2]
        self.app = make_app(ctx.workdir / "disks")
        ctx.cleanup(close_app, self.app)
        image = boot_image(ctx.lab.lab, self.host, "bench-disks.raw", 64 << 20)
        with self.app.app_context():
            alice = add_user("alice")
            cat = add_catalog([self.host], image, memory_mib=64, template="disks",
                              image="disks")
            vm = vm_create.create_vm(db.session.get(User, alice), "disks",
                                     db.session.get(Template, cat["template"]),
                                     db.session.get(Host, cat["servers"][self.host.index]))
            self.vm_id = vm.id
            db.session.remove()
        self.conn = libvirt.open(self.host.uri)
        ctx.cleanup(self.conn.close)
        self.pool = self.conn.storagePoolLookupByName("loucloud")
        self.uuid = str(uuidlib.uuid4())
        vol = self.pool.createXML(build_overlay_volume(f"lc-{self.uuid}.qcow2", GIB, image,
                                                       "raw"), 0)
        spec = DomainSpec(name=f"lc-{self.uuid}", uuid=self.uuid, title="floor", vcpus=1,
                          memory_mib=64, disk_path=vol.path(), max_vcpus=4,
                          max_memory_mib=256, domain_type=ctx.domain_type, arch="x86_64",
                          vnc_listen=self.host.address, vm_id=1, owner="alice")
        self.floor_dom = self.conn.defineXML(build_domain(spec))
        self.floor_dom.create()
        ctx.cleanup(self._remove_floor, vol)
        self.n = 0

    def _remove_floor(self, vol) -> None:
        try:
            if self.floor_dom.isActive():
                self.floor_dom.destroy()
            self.floor_dom.undefineFlags(0)
            vol.delete(0)
        except libvirt.libvirtError:
            pass

    # -- LouCloud ----------------------------------------------------------------------
    def app_add(self) -> tuple[float, dict]:
        from loucloud.extensions import db
        from loucloud.models import VM
        from loucloud.services.vms import disks

        seconds: dict = {}
        with self.app.app_context():
            vm = db.session.get(VM, self.vm_id)
            with self.ctx.counter.counting(seconds) as calls:
                start = time.perf_counter()
                message = disks.add_disk(vm, 1)
                elapsed = time.perf_counter() - start
            db.session.remove()
        if "plugged in" not in message:
            raise RuntimeError(f"disk add did not hot-plug: {message}")
        return elapsed, self._calls(calls, seconds)

    def app_clear(self) -> None:
        from loucloud.extensions import db
        from loucloud.models import VM
        from loucloud.services.vms import disks, lifecycle

        with self.app.app_context():
            lifecycle.act_on_vm(db.session.get(VM, self.vm_id), "poweroff")
            disks.delete_disk(db.session.get(VM, self.vm_id), "vdb")
            lifecycle.act_on_vm(db.session.get(VM, self.vm_id), "start")
            db.session.remove()

    # -- the floor ---------------------------------------------------------------------
    def floor_add(self) -> tuple[float, dict]:
        from loucloud.virt.xml import build_blank_volume, build_disk

        self.n += 1
        name = f"lc-{self.uuid}-vdb-{self.n}.qcow2"
        seconds: dict = {}
        with self.ctx.counter.counting(seconds) as calls:
            start = time.perf_counter()
            pool = self.conn.storagePoolLookupByName("loucloud")
            vol = pool.createXML(build_blank_volume(name, GIB), 0)
            dom = self.conn.lookupByUUIDString(self.uuid)
            dom.attachDeviceFlags(build_disk(vol.path(), "vdb"), LIVE_AND_CONFIG)
            elapsed = time.perf_counter() - start
        self.floor_volume = vol
        return elapsed, self._calls(calls, seconds)

    def floor_clear(self) -> None:
        from loucloud.virt.xml import build_disk

        self.floor_dom.destroy()
        self.floor_dom.detachDeviceFlags(build_disk(self.floor_volume.path(), "vdb"),
                                         libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        self.floor_volume.delete(0)
        self.floor_dom.create()

    def _calls(self, calls: dict, seconds: dict) -> dict:
        uri = self.host.uri
        return {m: (n, seconds.get(uri, {}).get(m, 0.0)) for m, n in calls.get(uri, {}).items()}


def run(ctx) -> list[Section]:
    world = DiskWorld(ctx)
    runs = ctx.runs(11)
    world.app_add()     # warm-up of both sides' caches, not timed
    world.app_clear()
    world.floor_add()
    world.floor_clear()
    samples: dict[str, list] = {"app": [], "floor": []}
    for r in range(runs):
        for side in (("app", "floor") if r % 2 == 0 else ("floor", "app")):
            if side == "app":
                samples["app"].append(world.app_add())
                world.app_clear()
            else:
                samples["floor"].append(world.floor_add())
                world.floor_clear()
        ctx.progress(f"disks: run {r + 1}/{runs}")

    def med(side, fn):
        return median([fn(sec, calls) for sec, calls in samples[side]])

    total = lambda sec, calls: sec  # noqa: E731
    attach = lambda sec, calls: calls.get("attachDeviceFlags", (0, 0.0))[1]  # noqa: E731
    create = lambda sec, calls: calls.get("createXML", (0, 0.0))[1]  # noqa: E731
    in_libvirt = lambda sec, calls: sum(t for _, t in calls.values())  # noqa: E731
    ncalls = lambda sec, calls: sum(n for n, _ in calls.values())  # noqa: E731
    table = Section("Disk add: a blank 1 GiB qcow2 disk hot-plugged into a running VM",
                    ["side", "add → attached", "of which the volume (createXML)",
                     "the hot-plug (attachDeviceFlags)", "other libvirt calls",
                     "outside libvirt", "libvirt calls"])
    for side, label in (("app", "LouCloud"), ("floor", "floor")):
        table.add(label, ms(med(side, total)), ms(med(side, create)), ms(med(side, attach)),
                  ms(med(side, lambda s, c: in_libvirt(s, c) - create(s, c) - attach(s, c))),
                  ms(med(side, lambda s, c: s - in_libvirt(s, c))), f"{med(side, ncalls):.0f}")
    table.notes.append(
        f"Median of {runs} runs each, the sides alternating, after one warm-up of each; "
        f"{ctx.domain_type.upper()} guests with 64 MiB, one vCPU, booting a one-sector disk "
        "that halts. Between runs (outside the time) each VM is powered off, its disk "
        "deleted, and started again.")
    table.notes.append(
        "LouCloud's extra libvirt call: the pool's free room (info; data disks are not "
        "overcommitted). Outside libvirt: what the rows cost beyond the volume's making "
        "(the quota, the busy mark and the new row are written while the host makes the "
        "volume), and the status at the end (SQLite here).")
    r = med("app", total) / med("floor", total)
    table.target("disk add: LouCloud / bare libvirt ≤ 1.2", f"{r:.2f}", r <= 1.2)
    return [table]
