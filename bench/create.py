"""2. Create to running: the create POST through the WSGI app against a bare script.

LouCloud: a user's POST /vms/new (automatic placement, start now), from the moment it is
sent to the moment libvirt reports the domain running. The floor: a script on a
connection already open that does only what must be done: create the same qcow2
overlay volume, define the same domain XML (LouCloud's builder) and start it, until
libvirt reports it running. Each side with a 1 GiB and a 50 GiB sparse raw image, all
four interleaved; every VM is deleted between runs (outside the time)."""
from __future__ import annotations

import time
import uuid as uuidlib

import libvirt

from tests.support.webclient import CSRF_RE

from .common import Section, add_catalog, add_user, close_app, login, make_app, median, ms
from .lab import boot_image

GIB = 1024 ** 3
SIZES = (1, 50)


class CreateWorld:
    def __init__(self, ctx):
        from loucloud.extensions import db
        from loucloud.models import Image
        from loucloud.services import images, templates as template_service

        self.ctx = ctx
        self.host = ctx.lab.hosts[0]
        lab = ctx.lab.lab
        self.app = make_app(ctx.workdir / "create")
        ctx.cleanup(close_app, self.app)
        paths = {size: boot_image(lab, self.host, f"bench-sparse-{size}g.raw", size * GIB)
                 for size in SIZES}
        self.templates, self.images = {}, {}
        with self.app.app_context():
            add_user("alice")
            cat = add_catalog([self.host], paths[1], template="t1", disk_gib=1, image="raw1")
            self.templates[1] = cat["template"]
            img = images.add_image("raw50", paths[50], "linux")
            self.templates[50] = template_service.create_template(
                "t50", template_service.Sizes(1, 64, 50), img,
                network=template_service.Network("none")).id
            for size in SIZES:
                image = db.session.execute(db.select(Image).filter_by(
                    name=f"raw{size}")).scalar_one()
                self.images[size] = (image.path, image.format)
            db.session.remove()
        self.alice = login(self.app, "alice")
        self.conn = libvirt.open(self.host.uri)
        ctx.cleanup(self.conn.close)
        self.n = 0

    # -- LouCloud ----------------------------------------------------------------------
    def app_create(self, size: int) -> tuple[float, dict, int]:
        """Seconds from the POST to 'running' (the DB lookup of the new VM's UUID is
        not counted), the libvirt calls the POST made ({method: (count, seconds)}),
        and the VM's id."""
        from loucloud.extensions import db
        from loucloud.models import VM

        self.n += 1
        form = self.alice.get("/vms/new").get_data(as_text=True)
        token = CSRF_RE.search(form).group(1)
        seconds: dict = {}
        with self.ctx.counter.counting(seconds) as calls:
            start = time.perf_counter()
            response = self.alice.post("/vms/new", {"name": f"c{size}-{self.n}",
                                                    "template_id": self.templates[size],
                                                    "host_id": 0, "start": "y",
                                                    "csrf_token": token})
            posted = time.perf_counter()
        if response.status_code != 302:
            raise RuntimeError(f"create failed: {response.status_code} "
                               f"{response.get_data(as_text=True)[-500:]}")
        vm_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        with self.app.app_context():
            uuid = db.session.get(VM, vm_id).uuid
            db.session.remove()
        looked_up = time.perf_counter()
        self._wait_running(uuid)
        return ((posted - start) + (time.perf_counter() - looked_up),
                self._calls(calls, seconds), vm_id)

    def app_delete(self, vm_id: int) -> None:
        response = self.alice.post(f"/vms/{vm_id}/delete", {})
        if response.status_code != 302:
            raise RuntimeError(f"delete failed: {response.status_code}")

    # -- the floor ---------------------------------------------------------------------
    def floor_create(self, size: int) -> tuple[float, dict, tuple[str, str]]:
        from loucloud.virt.xml import DomainSpec, build_domain, build_overlay_volume

        uuid = str(uuidlib.uuid4())
        path, fmt = self.images[size]
        seconds: dict = {}
        with self.ctx.counter.counting(seconds) as calls:
            start = time.perf_counter()
            pool = self.conn.storagePoolLookupByName("loucloud")
            vol = pool.createXML(build_overlay_volume(f"lc-{uuid}.qcow2", size * GIB, path,
                                                      fmt), 0)
            spec = DomainSpec(name=f"lc-{uuid}", uuid=uuid, title=f"f{size}", vcpus=1,
                              memory_mib=64, disk_path=vol.path(),
                              domain_type=self.ctx.domain_type, arch="x86_64",
                              vnc_listen=self.host.address, vm_id=1, owner="alice")
            self.conn.defineXML(build_domain(spec)).create()
        self._wait_running(uuid)
        return (time.perf_counter() - start, self._calls(calls, seconds),
                (uuid, f"lc-{uuid}.qcow2"))

    def _calls(self, calls: dict, seconds: dict) -> dict:
        uri = self.host.uri
        return {m: (n, seconds.get(uri, {}).get(m, 0.0)) for m, n in calls.get(uri, {}).items()}

    def floor_delete(self, ids: tuple[str, str]) -> None:
        uuid, volume = ids
        dom = self.conn.lookupByUUIDString(uuid)
        dom.destroy()
        dom.undefineFlags(0)
        self.conn.storagePoolLookupByName("loucloud").storageVolLookupByName(volume).delete(0)

    def _wait_running(self, uuid: str) -> None:
        deadline = time.monotonic() + 60
        while self.conn.lookupByUUIDString(uuid).state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{uuid} not running after 60 s")
            time.sleep(0.001)


def run(ctx) -> list[Section]:
    world = CreateWorld(ctx)
    runs = ctx.runs(11)
    # Warm-up: the pool "loucloud" is created by the first create, and both sides'
    # caches (libvirt's, Python's) are hot before anything is timed.
    for size in SIZES:
        _, _, vm_id = world.app_create(size)
        world.app_delete(vm_id)
        _, _, ids = world.floor_create(size)
        world.floor_delete(ids)
    samples = {(side, size): [] for side in ("app", "floor") for size in SIZES}
    order = [("app", 1), ("floor", 1), ("app", 50), ("floor", 50)]
    for r in range(runs):
        for side, size in order[r % 4:] + order[:r % 4]:
            if side == "app":
                seconds, calls, vm_id = world.app_create(size)
                world.app_delete(vm_id)
            else:
                seconds, calls, ids = world.floor_create(size)
                world.floor_delete(ids)
            samples[(side, size)].append((seconds, calls))
        ctx.progress(f"create: run {r + 1}/{runs}")

    def med(side, size, fn):
        return median([fn(sec, calls) for sec, calls in samples[(side, size)]])

    total = lambda sec, calls: sec  # noqa: E731
    start = lambda sec, calls: calls.get("create", (0, 0.0))[1]  # noqa: E731
    in_libvirt = lambda sec, calls: sum(t for _, t in calls.values())  # noqa: E731
    outside = lambda sec, calls: sec - in_libvirt(sec, calls)  # noqa: E731
    ncalls = lambda sec, calls: sum(n for n, _ in calls.values())  # noqa: E731
    table = Section("2. Create to running (user POST /vms/new → libvirt says running)",
                    ["image", "side", "create → running", "of which the start (dom.create)",
                     "other libvirt calls", "outside libvirt", "libvirt calls"])
    for size in SIZES:
        for side, label in (("app", "LouCloud"), ("floor", "floor")):
            table.add(f"{size} GiB sparse raw", label, ms(med(side, size, total)),
                      ms(med(side, size, start)),
                      ms(med(side, size, lambda s, c: in_libvirt(s, c) - start(s, c))),
                      ms(med(side, size, outside)), f"{med(side, size, ncalls):.0f}")
    m = {(side, size): med(side, size, total) for side in ("app", "floor") for size in SIZES}
    table.notes.append(
        f"Median of {runs} runs each, the four kinds interleaved, after one warm-up of each; "
        f"{ctx.domain_type.upper()} guests with 64 MiB and one vCPU, booting a one-sector "
        "disk that halts. Every VM deleted between runs, outside the time.")
    table.notes.append(
        "floor: storagePoolLookupByName + createXML of the overlay, defineXML + create, then "
        "polling state until running; LouCloud's figure also ends at the first poll that sees "
        "it running (the POST returns after the start). Time in libvirt is measured by "
        "wrapping libvirt-python's calls (the polling not included); 'outside libvirt' is "
        "the rest: for LouCloud the request, the form, placement, the database, the page.")
    table.notes.append(
        "LouCloud's extra libvirt calls: placement (host load: 4), preparing the host (pool "
        "lookup, state, autostart, XML; node info; capabilities; network), and the state "
        "check before the start.")
    for size in SIZES:
        r = m[("app", size)] / m[("floor", size)]
        table.target(f"{size} GiB image: LouCloud / floor ≤ 1.2", f"{r:.2f}", r <= 1.2)
    grow = m[("app", 50)] / m[("app", 1)]
    table.target("LouCloud: 50 GiB / 1 GiB image ≤ 1.1", f"{grow:.2f} "
                 f"(floor: {m[('floor', 50)] / m[('floor', 1)]:.2f})", grow <= 1.1)
    return [table]
