"""1. The VM list page at 10 to 4000 VMs on 2 and 4 hosts, against the libvirt floor.

The page: GET / (the VM list) as the administrator through the WSGI app. The floor: the
same hosts asked directly with libvirt-python, in parallel, with the same bulk call
(virt.domains.states: three bulk calls) on connections already open, rendering nothing.
VM rows are inserted in bulk and their domains defined with LouCloud's XML builder."""
from __future__ import annotations

import collections
import concurrent.futures
import re
import time
from datetime import datetime, timezone

import libvirt

from .common import Section, add_catalog, add_user, login, make_app, median, ms, ratio
from .counting import per_host
from .lab import Population, boot_image, domain_uuid, vm_name

SIZES = (10, 100, 1000, 4000)
LAYOUTS = (2, 4)
OWNERS = 10
STATE_RE = re.compile(r'data-state="([^"]+)"')


def split(total: int, hosts: int) -> list[int]:
    return [total // hosts + (1 if i < total % hosts else 0) for i in range(hosts)]


class ListWorld:
    """The app with the lab's hosts, a catalog, owners and an administrator logged in;
    ``load`` puts N VMs (rows and domains) on the first ``layout`` hosts."""

    def __init__(self, ctx):
        from loucloud.extensions import db

        self.ctx, self.lab = ctx, ctx.lab
        self.app = make_app(ctx.workdir / "list")
        ctx.keep(self.close)  # the dead-host benchmark goes on with it
        image = boot_image(self.lab.lab, self.lab.hosts[0], "bench-base.raw", 64 << 20)
        for h in self.lab.hosts[1:]:
            boot_image(self.lab.lab, h, "bench-base.raw", 64 << 20)
        with self.app.app_context():
            add_user("admin", admin=True)
            self.owners = [add_user(f"owner{i:02d}") for i in range(OWNERS)]
            self.catalog = add_catalog(self.lab.hosts, image)
            db.session.remove()
        self.admin = login(self.app, "admin")
        self.population = Population(self.lab, ctx.domain_type)
        self.floor_conns = {h.uri: libvirt.open(h.uri) for h in self.lab.hosts}
        self.floor_pool = concurrent.futures.ThreadPoolExecutor(len(self.lab.hosts))
        self.layout = 0

    def close(self) -> None:
        from .common import close_app

        self.floor_pool.shutdown()
        for conn in self.floor_conns.values():
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
        self.population.close()
        close_app(self.app)

    def uris(self, layout: int | None = None) -> list[str]:
        return [h.uri for h in self.lab.hosts[:layout or self.layout]]

    def load(self, layout: int, total: int) -> None:
        from loucloud.extensions import db
        from loucloud.models import VM

        counts = dict(zip((h.index for h in self.lab.hosts[:layout]), split(total, layout)))
        # Hosts outside the layout keep their one running guest (no VM row, never asked):
        # stopping and booting guests between layouts would only add noise.
        self.population.resize({h.index: counts.get(h.index, 1) for h in self.lab.hosts})
        self.lab.settle()
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        servers, tpl, img = (self.catalog["servers"], self.catalog["template"],
                             self.catalog["image"])
        rows = []
        for index, count in counts.items():
            for k in range(count):
                uuid = domain_uuid(index, k)
                rows.append(dict(
                    name=vm_name(index, k), owner_id=self.owners[(k + index) % OWNERS],
                    host_id=servers[index], template_id=tpl, image_id=img,
                    domain_name=f"lc-{uuid}", uuid=uuid, vcpus=1, memory_mib=64, disk_gib=1,
                    volume_name=f"lc-{uuid}.qcow2",
                    volume_path=f"/var/lib/libvirt/loucloud/lc-{uuid}.qcow2",
                    # On a network, as every VM made now: its page reads the leases too.
                    nic_kind="network", network="default",
                    mac="52:54:00:" + ":".join(uuid.replace("-", "")[-6:][i:i + 2]
                                               for i in (0, 2, 4)),
                    status=VM.READY, status_since=now, created_at=now))
        with self.app.app_context():
            db.session.execute(db.delete(VM))
            if rows:
                db.session.execute(db.insert(VM), rows)
            db.session.commit()
            db.session.remove()
        self.layout = layout

    # -- one measurement -------------------------------------------------------------
    def page(self, path: str = "/", browser=None) -> tuple[float, list[str]]:
        """Seconds for one GET, and the states the page shows."""
        browser = browser or self.admin
        start = time.perf_counter()
        response = browser.get(path)
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return seconds, STATE_RE.findall(response.get_data(as_text=True))

    def floor(self) -> float:
        """LouCloud's own bulk state query (virt.domains.states: three calls and the
        name → state map), on every host of the layout in parallel, on connections
        already open: no Flask, database or page."""
        from loucloud.virt import domains

        start = time.perf_counter()
        futures = [self.floor_pool.submit(domains.states, self.floor_conns[u])
                   for u in self.uris()]
        for f in futures:
            f.result()
        return time.perf_counter() - start

    def forget(self) -> None:
        """Expire the app's shared cache of host states (LouCloud's own forget_states,
        where this version of the app has one), so the next page asks libvirt."""
        from loucloud.extensions import db
        from loucloud.models import Host
        from loucloud.services.vms import state as vm_state

        forget = getattr(vm_state, "forget_states", None)
        if forget is None:
            return
        with self.app.app_context():
            for server in db.session.execute(db.select(Host)).scalars():
                forget(server)
            db.session.remove()

    def asking(self, path: str = "/", browser=None) -> tuple[float, list[str]]:
        """A page that asks libvirt (no shared state of another page within the cache's
        lifetime): the cache is expired first, outside the time."""
        self.forget()
        return self.page(path, browser)

    def calls(self, path: str = "/") -> list[int]:
        self.forget()
        with self.ctx.counter.counting() as seen:
            self.page(path)
        return per_host(seen, self.uris())

    def compare(self, path: str, runs: int):
        """Page asking libvirt, page right after it (shared states), and the floor,
        interleaved, after a warm-up. Returns three lists of seconds and the states."""
        for _ in range(2):
            self.asking(path)
            self.page(path)
            self.floor()
        asking, cached, floors, states = [], [], [], []
        for r in range(runs):
            if r % 2:
                floors.append(self.floor())
            seconds, states = self.asking(path)
            asking.append(seconds)
            cached.append(self.page(path)[0])
            if not r % 2:
                floors.append(self.floor())
        return asking, cached, floors, states


def run(ctx) -> list[Section]:
    world = ListWorld(ctx)
    ctx.list_world = world
    runs = ctx.runs(15)
    with world.app.app_context():
        ttl = world.app.config.get("LIVE_STATE_CACHE_SECONDS", 0)
    table = Section(
        "1. VM list page (admin, GET /, 50 per page) against the libvirt floor",
        ["hosts", "VMs", "running", "page", "floor", "page / floor",
         "libvirt calls per host", f"page within {ttl:g} s of another" if ttl else
         "page again", "rows shown"])
    medians: dict[tuple[int, int, str], float] = {}
    call_counts: dict[tuple[int, int], list[int]] = {}
    extra = Section(f"1b. Page 2 and a state filter at {SIZES[-1]} VMs",
                    ["hosts", "request", "page", "floor", "page / floor",
                     "libvirt calls per host", "page again", "rows shown",
                     f"÷ page 1 at {SIZES[0]} VMs"])
    for total in SIZES:
        for layout in LAYOUTS:
            world.load(layout, total)
            asking, cached, floors, states = world.compare("/", runs)
            calls = world.calls("/")
            running = layout
            page, floor = median(asking), median(floors)
            medians[(layout, total, "/")] = page
            medians[(layout, total, "floor")] = floor
            medians[(layout, total, "cached")] = median(cached)
            call_counts[(layout, total)] = calls
            table.add(layout, total, running, ms(page), ms(floor), ratio(page, floor),
                      " / ".join(map(str, calls)), ms(median(cached)),
                      f"{len(states)} ({_summary(states)})")
            ctx.progress(f"list: {layout} hosts, {total} VMs: page {ms(page)}, floor "
                         f"{ms(floor)}, again {ms(median(cached))}, calls {calls}")
            if total == SIZES[-1] and layout == LAYOUTS[-1]:
                sampler = _sampler_cost(world, runs)
            if total == SIZES[-1]:
                for path in ("/?page=2", "/?state=running"):
                    asking, cached, floors, states = world.compare(path, runs)
                    calls = world.calls(path)
                    page, floor = median(asking), median(floors)
                    extra.add(layout, f"GET {path}", ms(page), ms(floor), ratio(page, floor),
                              " / ".join(map(str, calls)), ms(median(cached)),
                              f"{len(states)} ({_summary(states)})",
                              ratio(page, medians[(layout, SIZES[0], "/")]))
                    ctx.progress(f"list: {layout} hosts, {total} VMs, {path}: {ms(page)}, "
                                 f"calls {calls}")
    table.notes.append(
        f"page: median of {runs} requests, each made to ask libvirt (LouCloud's shared "
        "cache of host states expired first, outside the time); page again: the same "
        "request right after it, answered from that cache when the app has one; floor: "
        "LouCloud's own bulk state query (virt.domains.states: getAllDomainStats(STATE) of "
        "the running domains, listDefinedDomains for the others, the running ones again, "
        "and the name → state map) on every host of the layout in parallel, over "
        "connections already open, and nothing else. The three interleaved, after 2 warm-up rounds.")
    table.notes.append(
        "libvirt calls: counted on one more page (asking libvirt) by wrapping "
        "libvirt-python's classes; a page answered from the cache makes none. Every VM "
        "row is on the network 'default', so each page also reads its DHCP leases (one "
        "networkLookupByName and one DHCPLeases per host) to show the addresses.")
    most_calls = max(max(c) for c in call_counts.values())
    constant = all(len({tuple(c) for (lay, _n), c in call_counts.items() if lay == layout}) == 1
                   for layout in LAYOUTS)
    table.target("libvirt calls per host per page constant in VM count, ≤ 5 (3 for the "
                 "states, 2 for the DHCP leases of the VMs' network: their addresses)",
                 f"at most {most_calls} per host; "
                 f"{'the same' if constant else 'not the same'} at every size",
                 constant and most_calls <= 5)
    for layout in LAYOUTS:
        big, small = medians[(layout, SIZES[-1], "/")], medians[(layout, SIZES[0], "/")]
        table.target(f"{layout} hosts: page at {SIZES[-1]} VMs ≤ 2 × page at {SIZES[0]}",
                     f"{ms(big)} / {ms(small)} = {big / small:.2f} × (page again: "
                     f"{medians[(layout, SIZES[-1], 'cached')] / medians[(layout, SIZES[0], 'cached')]:.2f} ×)",
                     big / small <= 2)
        table.notes.append(
            f"{layout} hosts, {SIZES[0]} → {SIZES[-1]} VMs: the floor grows "
            f"{medians[(layout, SIZES[-1], 'floor')] / medians[(layout, SIZES[0], 'floor')]:.1f} × "
            f"({ms(medians[(layout, SIZES[0], 'floor')])} → "
            f"{ms(medians[(layout, SIZES[-1], 'floor')])}): listDefinedDomains returns the "
            f"name of every stopped domain of the host. With 50 rows at 100 VMs already, the page grows "
            f"{big / medians[(layout, 100, '/')]:.2f} × from 100 to {SIZES[-1]} VMs.")
    return [table, extra, sampler]


def _sampler_cost(world: ListWorld, runs: int) -> Section:
    """One sampler cycle (python manage.py sampler does one every 10 s by default) with
    the largest layout, against its libvirt floor: the same stats.collect on every host
    in parallel over connections already open, storing nothing."""
    from loucloud.extensions import db
    from loucloud.services.monitoring.sampler import Sampler
    from loucloud.services.settings import get_settings
    from loucloud.virt import stats

    hosts = world.layout
    with world.app.app_context():
        pool_name = get_settings().storage_pool
        sampler = Sampler()
        sampler.cycle()  # the first cycle has no counters to compute rates from
        cycles, floors, samples = [], [], 0
        for _ in range(runs):
            start = time.perf_counter()
            report = sampler.cycle()
            cycles.append(time.perf_counter() - start)
            samples = report.vm_samples
            start = time.perf_counter()
            futures = [world.floor_pool.submit(stats.collect, world.floor_conns[u], pool_name)
                       for u in world.uris()]
            for f in futures:
                f.result()
            floors.append(time.perf_counter() - start)
        db.session.remove()
    total = sum(world.population.counts.values())
    section = Section(f"1c. Sampler cost per cycle, {hosts} hosts × "
                      f"{SIZES[-1] // hosts} VMs",
                      ["hosts", "VMs", "running (sampled)", "one cycle", "floor",
                       "cycle / floor", "share of a 10 s interval"])
    cycle, floor = median(cycles), median(floors)
    section.add(hosts, SIZES[-1], samples, ms(cycle), ms(floor), ratio(cycle, floor),
                f"{100 * cycle / 10:.2f} % of one core")
    section.notes.append(
        f"median of {runs} cycles (after one warm-up) of LouCloud's Sampler.cycle() on its "
        f"SQLite database: one stats.collect per host in parallel (node CPU and memory, "
        f"getAllDomainStats of the running domains, the pool's size), rates from the "
        f"previous counters, one bulk insert of host and VM samples. floor: the same "
        f"stats.collect calls over connections already open, storing nothing. "
        f"{total} domains are defined on the lab hosts; only running domains have counters "
        f"to sample, so the VM rows written per cycle follow the running VMs.")
    return section


def _summary(states: list[str]) -> str:
    counts = collections.Counter(states)
    return ", ".join(f"{n} {s}" for s, n in counts.most_common())
