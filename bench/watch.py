"""7. States pushed by the hosts: the VM list read from the watcher's store, a dead host
with the watcher, the event to store latency, the watcher's CPU, and a resync.

The watcher runs as its own process (`manage.py watch` on the list benchmark's
database), as in production: its libvirt calls are not the page's, and its CPU time is
its own. Pages: GET / (and ?state=running) as the administrator through the WSGI app,
with every VM's state in the store; libvirt calls counted on the app's connections."""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import libvirt

from .common import Section, median, ms, ratio
from .counting import per_host

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10, 100, 1000, 4000, 10000)
FULL = 100          # the smallest size whose first page is full (50 rows)
LAYOUTS = (2, 4)
FAULTS = (("link down", "link_down"), ("blackhole route", "blackhole_route"),
          ("packets dropped", "drop_frames"), ("libvirtd frozen", "freeze"))


class Watcher:
    """`manage.py watch` on the list world's database, in its own process."""

    def __init__(self, ctx, world):
        self.ctx, self.world = ctx, world
        url = world.app.config["SQLALCHEMY_DATABASE_URI"]
        instance = ctx.workdir / "watch-instance"
        instance.mkdir(exist_ok=True)
        self.env = dict(os.environ, DATABASE_URL=url, LOUCLOUD_INSTANCE=str(instance))
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "watch"],
                                     cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.ctx.cleanup(self.stop)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_synced(self, total: int, timeout: float = 300) -> float:
        """Until every VM row has a state from the watcher; returns the seconds."""
        from loucloud.extensions import db
        from loucloud.models import VM

        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with self.world.app.app_context():
                done = db.session.execute(db.select(db.func.count(VM.id)).where(
                    VM.live_state.is_not(None))).scalar()
                db.session.remove()
            if done >= total:
                return time.monotonic() - start
            time.sleep(0.2)
        raise RuntimeError(f"the watcher synced {done} of {total} VMs in {timeout} s")


def _reset_store(world) -> None:
    from loucloud.extensions import db
    from loucloud.models import VM

    with world.app.app_context():
        db.session.execute(db.update(VM).values(live_state=None))
        db.session.commit()
        db.session.remove()


def _pages(world, path: str, runs: int) -> list[float]:
    for _ in range(2):
        world.page(path)
    return [world.page(path)[0] for _ in range(runs)]


def _calls(ctx, world, path: str) -> list[int]:
    with ctx.counter.counting() as seen:
        world.page(path)
    return per_host(seen, world.uris())


def _list(ctx, world, watcher, runs) -> tuple[Section, bool]:
    table = Section("7. VM list with the watcher: states from the store (admin, GET /, "
                    "50 per page)",
                    ["hosts", "VMs", "page", "?state=running", "libvirt calls per host",
                     "watcher's first sync"])
    medians, calls_seen = {}, set()
    for layout in LAYOUTS:
        for total in SIZES:
            watcher.stop()
            world.load(layout, total)
            _reset_store(world)
            watcher.start()
            synced = watcher.wait_synced(total)
            page = median(_pages(world, "/", runs))
            running = median(_pages(world, "/?state=running", runs))
            calls = _calls(ctx, world, "/") + _calls(ctx, world, "/?state=running")
            calls_seen.update(calls)
            medians[(layout, total)] = page
            table.add(layout, total, ms(page), ms(running), " / ".join(map(str, calls)),
                      f"{synced:.1f} s")
            ctx.progress(f"watch: {layout} hosts, {total} VMs: page {ms(page)}, "
                         f"?state=running {ms(running)}, calls {calls}")
    table.target("libvirt calls per page: 0", f"{max(calls_seen)} at most",
                 calls_seen == {0})
    ok = True
    for layout in LAYOUTS:
        big, small = medians[(layout, SIZES[-1])], medians[(layout, FULL)]
        tiny = medians[(layout, SIZES[0])]
        table.target(f"{layout} hosts: page at {SIZES[-1]} ≤ 1.2 × page at {SIZES[0]} "
                     f"(50 rows against {SIZES[0]})",
                     f"{ms(big)} / {ms(tiny)} = {big / tiny:.2f} ×", big / tiny <= 1.2)
        met = big / small <= 1.2
        ok &= met
        table.target(f"{layout} hosts: page at {SIZES[-1]} ≤ 1.2 × page at {FULL} "
                     "(both 50 rows)", f"{ms(big)} / {ms(small)} = {big / small:.2f} ×", met)
    table.notes.append(
        f"page: median of {runs} requests after 2 warm-up ones; the watcher ran as its own "
        "process (`manage.py watch`), restarted for each size after the rows were loaded; "
        "its first sync is the time until every VM row had a state. libvirt calls counted "
        "on one page of each kind (the watcher's are not the page's). A page of 10 VMs "
        "renders 10 rows, every larger one 50: the cost of a page follows the rows it "
        "shows (about 50 µs a row), not the number of VMs in the pool.")
    return table, ok and calls_seen == {0}


def _deadhost(ctx, world, watcher, runs) -> Section:
    if world.layout != 4:
        watcher.stop()
        world.load(4, 1000)
        _reset_store(world)
        watcher.start()
        watcher.wait_synced(1000)
    dead = ctx.lab.hosts[3]
    table = Section("8. VM list with 1 of 4 hosts dead, with the watcher (1000 VMs)",
                    ["fault on host 4", "healthy", "first page", "following (median / max)",
                     "rows shown offline after"])
    for label, fault in FAULTS:
        healthy = median(_pages(world, "/", runs))
        getattr(ctx.lab, fault)(dead)
        try:
            start = time.perf_counter()
            first = world.page("/")[0]
            following = [world.page("/")[0] for _ in range(runs)]
            offline_after = None
            while time.perf_counter() - start < 40:
                if "host offline" in world.page("/?state=host+offline")[1]:
                    offline_after = time.perf_counter() - start
                    break
                time.sleep(0.5)
        finally:
            ctx.lab.heal(dead)
        table.add(label, ms(healthy), ms(first),
                  f"{ms(median(following))} / {ms(max(following))}",
                  f"{offline_after:.1f} s" if offline_after else "> 40 s")
        table.target(f"{fault}: first and following ≤ 1.1 × healthy",
                     f"{first / healthy:.2f} × / {median(following) / healthy:.2f} ×",
                     first <= 1.1 * healthy and median(following) <= 1.1 * healthy)
        time.sleep(3)
    table.notes.append(
        "No page asks a host: the watcher's keepalive (5 s × 3) finds the dead host and "
        "marks it; pages show its VMs 'host offline' from then on, at the same speed.")
    return table


def _events(ctx, world, watcher) -> Section:
    from loucloud.extensions import db
    from loucloud.models import VM

    h = ctx.lab.hosts[0]
    conn = libvirt.open(h.uri)
    ctx.cleanup(conn.close)
    from .lab import domain_uuid
    uuid = domain_uuid(h.index, 0)                   # the running guest of host 1
    dom = conn.lookupByUUIDString(uuid)
    with world.app.app_context():
        vm_id = db.session.execute(db.select(VM.id).where(VM.uuid == uuid)).scalar()
        db.session.remove()

    def stored() -> str:
        with world.app.app_context():
            state = db.session.execute(db.select(VM.live_state)
                                       .where(VM.id == vm_id)).scalar()
            db.session.remove()
            return state

    latencies, n = [], ctx.runs(200) if not ctx.quick else 40
    cpu_before = watcher.cpu_seconds()
    for i in range(n):
        paused = i % 2 == 0
        start = time.perf_counter()
        dom.suspend() if paused else dom.resume()
        wanted = "paused" if paused else "running"
        while stored() != wanted:
            if time.perf_counter() - start > 10:
                raise RuntimeError("an event did not reach the store in 10 s")
            time.sleep(0.002)
        latencies.append(time.perf_counter() - start)
    cpu = watcher.cpu_seconds() - cpu_before
    latencies.sort()
    table = Section("9. Events and resync", ["what", "figure"])
    table.add("libvirt call to the store (median)", ms(statistics.median(latencies)))
    table.add("libvirt call to the store (p99)", ms(latencies[int(0.99 * n) - 1]))
    table.add("watcher CPU per 1000 events", f"{cpu / n * 1000:.2f} s")
    table.notes.append(f"{n} suspend/resume of a running guest on host 1, each waited "
                       "for in the database; the watcher's CPU from /proc (user + system).")
    return table


def _resync(ctx, world, table: Section) -> None:
    from loucloud.extensions import db
    from loucloud.models import Host
    from loucloud.services import watching
    from loucloud.virt.watch import read_all

    world.load(2, 2000)                                # 1000 domains on each of 2 hosts
    h = ctx.lab.hosts[0]
    conn = libvirt.open(h.uri)
    ctx.cleanup(conn.close)
    floors, syncs = [], []
    for _ in range(ctx.runs(7)):
        start = time.perf_counter()
        conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
        floors.append(time.perf_counter() - start)
        with world.app.app_context():
            assert db.session.execute(db.select(Host.id).where(Host.uri == h.uri)).scalar()
            _reset_store(world)
            start = time.perf_counter()
            watching.apply_sync(h.uri, read_all(conn), watching.utcnow())
            syncs.append(time.perf_counter() - start)
            db.session.remove()
    table.add("resync of a 1000-VM host (read + store)", ms(median(syncs)))
    table.add("floor: one bulk getAllDomainStats(STATE)", ms(median(floors)))
    table.add("resync / floor", ratio(median(syncs), median(floors)))


def run(ctx) -> list[Section]:
    from .vmlist import ListWorld

    world = ctx.list_world or ListWorld(ctx)
    ctx.list_world = world
    with world.app.app_context():
        from loucloud.services import settings as settings_service
        settings_service.update_settings({"full_sync_seconds": 3600})
    watcher = Watcher(ctx, world)
    runs = ctx.runs(15)
    sections = []
    table, _ = _list(ctx, world, watcher, runs)
    sections.append(table)
    sections.append(_deadhost(ctx, world, watcher, ctx.runs(7)))
    events = _events(ctx, world, watcher)
    watcher.stop()
    _resync(ctx, world, events)
    sections.append(events)
    return sections
