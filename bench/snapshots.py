"""Snapshot create and revert (issue 14): the page's POSTs through the WSGI app against a
bare script.

LouCloud: a user's POST /vms/<id>/snapshots (with memory) of a running VM, then POST
/vms/<id>/snapshots/revert to it, each from the moment it is sent to its answer (the
service has then had libvirt's answer). The floor: a script on a connection already
open that takes the same internal snapshot (snapshotCreateXML with LouCloud's XML) of
the same kind of domain (defined as LouCloud defines it, with the growth room of
resize) and reverts to it (revertToSnapshot). Both sides' VMs run the
same one-sector disk that halts, as an overlay in the pool; each snapshot is deleted
between runs, outside the time."""
from __future__ import annotations

import time
import uuid as uuidlib

import libvirt

from tests.support.webclient import CSRF_RE

from .common import Section, add_catalog, add_user, close_app, login, make_app, median, ms
from .lab import boot_image

GIB = 1024 ** 3
SIZES = (64, 1024)   # MiB of the VM: the fixed cost alone, and a template-sized VM
SIDES = ("app", "floor", "bare")


class SnapshotWorld:
    def __init__(self, ctx, memory_mib: int):
        from loucloud.extensions import db
        from loucloud.models import Template, User
        from loucloud.services.vms import create as vm_create

        self.ctx = ctx
        self.host = ctx.lab.hosts[0]
        self.memory_mib = memory_mib
        self.app = make_app(ctx.workdir / f"snapshots-{memory_mib}")
        ctx.cleanup(close_app, self.app)
        path = boot_image(ctx.lab.lab, self.host, f"bench-snap-{memory_mib}.raw", GIB)
        with self.app.app_context():
            alice = add_user("alice")
            cat = add_catalog([self.host], path, template="snap", memory_mib=memory_mib,
                              image="snapbase")
            vm = vm_create.create_vm(db.session.get(User, alice), "snap-app",
                                     db.session.get(Template, cat["template"]))
            self.vm_id, self.app_uuid = vm.id, vm.uuid
            self.image = (vm.image.path_on(vm.host_id), vm.image.format)
            self.room = (vm.max_vcpus, vm.max_memory_mib)
            db.session.remove()
        self.alice = login(self.app, "alice")
        self.conn = libvirt.open(self.host.uri)
        ctx.cleanup(self.conn.close)
        # the floor's domain as LouCloud defines its VM (the growth room: <memory> four
        # times <currentMemory>, which QEMU's savevm walks through), and one without it
        self.floor_uuids = {"floor": self._floor_domain(*self.room),
                            "bare": self._floor_domain(None, None)}
        for uuid in self.floor_uuids.values():
            ctx.cleanup(self._remove_floor, uuid)
        self.n = 0

    def _floor_domain(self, max_vcpus: int | None, max_memory_mib: int | None) -> str:
        from loucloud.virt.xml import DomainSpec, build_domain, build_overlay_volume

        uuid = str(uuidlib.uuid4())
        pool = self.conn.storagePoolLookupByName("loucloud")
        path, fmt = self.image
        vol = pool.createXML(build_overlay_volume(f"lc-{uuid}.qcow2", GIB, path, fmt), 0)
        spec = DomainSpec(name=f"lc-{uuid}", uuid=uuid, title="snap-floor", vcpus=1,
                          memory_mib=self.memory_mib, disk_path=vol.path(),
                          max_vcpus=max_vcpus, max_memory_mib=max_memory_mib,
                          domain_type=self.ctx.domain_type, arch="x86_64",
                          vnc_listen=self.host.address, vm_id=2, owner="alice")
        self.conn.defineXML(build_domain(spec)).create()
        return uuid

    def _remove_floor(self, uuid: str) -> None:
        dom = self.conn.lookupByUUIDString(uuid)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        self.conn.storagePoolLookupByName("loucloud").storageVolLookupByName(
            f"lc-{uuid}.qcow2").delete(0)

    def _token(self) -> str:
        page = self.alice.get(f"/vms/{self.vm_id}").get_data(as_text=True)
        return CSRF_RE.search(page).group(1)

    # -- LouCloud ----------------------------------------------------------------------
    def app_round(self) -> tuple[float, float, str]:
        """Seconds of the create POST and of the revert POST; the snapshot's name."""
        self.n += 1
        name = f"s{self.n}"
        token = self._token()
        url = f"/vms/{self.vm_id}/snapshots"
        start = time.perf_counter()
        made = self.alice.post(url, {"name": name, "mode": "memory", "csrf_token": token})
        created = time.perf_counter()
        reverted = self.alice.post(url + "/revert", {"name": name, "csrf_token": token})
        done = time.perf_counter()
        for response, what in ((made, "create"), (reverted, "revert")):
            if response.status_code != 302:
                raise RuntimeError(f"snapshot {what} failed: {response.status_code}")
        self._check_app(name)
        return created - start, done - created, name

    def _check_app(self, name: str) -> None:
        """Outside the time: the snapshot is there and the VM runs (the POSTs answer a
        redirect whether or not the service refused)."""
        dom = self.conn.lookupByUUIDString(self.app_uuid)
        if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING or \
                name not in dom.snapshotListNames(0):
            raise RuntimeError(f"LouCloud's snapshot {name} or revert did not happen")

    def app_delete(self, name: str) -> None:
        response = self.alice.post(f"/vms/{self.vm_id}/snapshots/delete", {"name": name})
        if response.status_code != 302:
            raise RuntimeError(f"snapshot delete failed: {response.status_code}")

    # -- the floor ---------------------------------------------------------------------
    def floor_round(self, which: str = "floor") -> tuple[float, float, str]:
        from loucloud.virt.xml.snapshot import build_snapshot

        self.n += 1
        name = f"f{self.n}"
        start = time.perf_counter()
        dom = self.conn.lookupByUUIDString(self.floor_uuids[which])
        snap = dom.snapshotCreateXML(build_snapshot(name), 0)
        created = time.perf_counter()
        dom.revertToSnapshot(snap, 0)
        done = time.perf_counter()
        return created - start, done - created, name

    def floor_delete(self, name: str, which: str = "floor") -> None:
        self.conn.lookupByUUIDString(self.floor_uuids[which]).snapshotLookupByName(
            name, 0).delete(0)

    def bare_round(self) -> tuple[float, float, str]:
        return self.floor_round("bare")

    def bare_delete(self, name: str) -> None:
        self.floor_delete(name, "bare")


def run(ctx) -> list[Section]:
    runs = ctx.runs(11)
    table = Section("Snapshot create and revert (a running VM, with its memory)",
                    ["VM memory", "side", "create", "revert", "create + revert"])
    medians = {}
    for memory_mib in SIZES:
        world = SnapshotWorld(ctx, memory_mib)
        for side in SIDES:  # warm-up: caches and QEMU's first savevm
            _, _, name = getattr(world, f"{side}_round")()
            getattr(world, f"{side}_delete")(name)
        samples = {side: [] for side in SIDES}
        for r in range(runs):
            for side in (SIDES if r % 2 == 0 else tuple(reversed(SIDES))):
                create, revert, name = getattr(world, f"{side}_round")()
                getattr(world, f"{side}_delete")(name)
                samples[side].append((create, revert))
            ctx.progress(f"snapshots ({memory_mib} MiB): run {r + 1}/{runs}")
        for side, label in (("app", "LouCloud (POST → answer)"), ("floor", "floor"),
                            ("bare", "floor without the growth room")):
            for i in (0, 1):
                medians[(memory_mib, side, i)] = median([s[i] for s in samples[side]])
            table.add(f"{memory_mib} MiB", label, ms(medians[(memory_mib, side, 0)]),
                      ms(medians[(memory_mib, side, 1)]),
                      ms(median([a + b for a, b in samples[side]])))
    table.notes.append(
        f"Median of {runs} runs each, the two sides alternating, after one warm-up each; "
        f"{ctx.domain_type.upper()} guests with one vCPU running a one-sector disk that "
        "halts (their memory untouched: QEMU writes little of it), on a qcow2 overlay in "
        "the pool. Internal snapshots (QEMU's savevm/loadvm); every snapshot deleted "
        "between runs, outside the time.")
    table.notes.append(
        "floor: lookupByUUIDString + snapshotCreateXML, then revertToSnapshot, on a domain "
        "defined as LouCloud defines its VM: with the growth room of resize (<memory> four "
        "times <currentMemory>, services/vms/room.py), which QEMU allocates and its savevm "
        "walks through page by page. \"floor without the growth room\": the same calls on a "
        "domain whose <memory> is the template's: what that room costs a snapshot (for "
        "information; the target compares the same domain). LouCloud "
        "also: the request and its session, the one-action-at-a-time status (two commits "
        "each), the state check, the name check, the disk's allocation before and after "
        "(the snapshot's size), the audit event and the page's redirect: 10-20 ms, which "
        "the 64 MiB VM's create (QEMU's savevm of almost nothing) shows bare; the target "
        "is judged on the template-sized 1 GiB VM.")
    big = SIZES[-1]
    for i, what in ((0, "create"), (1, "revert")):
        r = medians[(big, "app", i)] / medians[(big, "floor", i)]
        small = medians[(SIZES[0], "app", i)] / medians[(SIZES[0], "floor", i)]
        table.target(f"snapshot {what} ({big} MiB VM): LouCloud / floor ≤ 1.2",
                     f"{r:.2f} ({SIZES[0]} MiB: {small:.2f})", r <= 1.2)
    return [table]
