"""16. Classes and languages (issue 16).

(a) Batch create of 40 VMs (one for each member of a group of 40, 64 MiB guests, started)
    over the 4 lab hosts: the administrator's POST /batches/new, then the batch's
    "vm.batch-create" task run in-process as the worker runs it (tasks.execute), until
    libvirt reports all 40 running; against the same 40 (same owners, names, template)
    made one by one through the pages: each member's POST /vms/new (automatic
    placement, start now), each until libvirt reports it running, then the next. Every
    VM is deleted between the sides (outside the time). And the spread: VMs per host.
(b) The VM list page (admin, GET /, 50 per page, 4 hosts × 4000 VMs: the list
    benchmark's world, loaded here when it is not there) with Accept-Language zh-CN
    against en, interleaved."""
from __future__ import annotations

import collections
import time
from pathlib import Path

import libvirt

from .common import Section, add_catalog, add_user, close_app, login, make_app, median, ms, secs

STUDENTS = 40
PATTERN = "lab-{username}"
LIST_TOTAL, LIST_LAYOUT = 4000, 4
LANGS = {"zh-CN": "zh-CN,zh;q=0.9,en;q=0.8", "en": "en-US,en;q=0.9"}
CATALOGUE = (Path(__file__).resolve().parents[1] / "loucloud" / "translations" / "zh_Hans_CN"
             / "LC_MESSAGES" / "messages.mo")


class BatchWorld:
    """The app with the 4 lab hosts, a 64 MiB template, an administrator and a group of
    40 members, each logged in with a CSRF token at hand (so no request but the
    measured ones is made while timing)."""

    def __init__(self, ctx):
        from loucloud.extensions import db
        from loucloud.models import User
        from loucloud.services import groups

        from .lab import boot_image

        self.ctx, self.hosts = ctx, ctx.lab.hosts
        # Cheap password hashes: 41 logins to set up, none of them timed.
        self.app = make_app(ctx.workdir / "batches", PASSWORD_TIME_COST=1,
                            PASSWORD_MEMORY_KIB=8192, PASSWORD_PARALLELISM=1)
        ctx.cleanup(close_app, self.app)
        paths = {boot_image(ctx.lab.lab, h, "bench-batch.raw", 64 << 20) for h in self.hosts}
        if len(paths) != 1:
            raise RuntimeError(f"the image is at different paths: {paths}")
        self.names = [f"s{i:02d}" for i in range(1, STUDENTS + 1)]
        with self.app.app_context():
            add_user("admin", admin=True)
            ids = [add_user(n) for n in self.names]
            cat = add_catalog(self.hosts, paths.pop(), template="lab", image="lab",
                              memory_mib=64, disk_gib=1)
            self.template = cat["template"]
            self.host_ids = [cat["servers"][h.index] for h in self.hosts]
            group = groups.create_group("class-1", "the benchmark's class")
            groups.add_members(group, [db.session.get(User, i) for i in ids])
            self.group = group.id
            db.session.remove()
        self.conns = {hid: libvirt.open(h.uri) for hid, h in zip(self.host_ids, self.hosts)}
        for conn in self.conns.values():
            ctx.cleanup(conn.close)
        self.admin = login(self.app, "admin")
        self.admin_token = self.admin.csrf()
        self.students = {n: login(self.app, n) for n in self.names}
        self.tokens = {n: c.csrf() for n, c in self.students.items()}

    def by_batch(self) -> tuple[float, collections.Counter, dict]:
        """Seconds from the batch's POST to all its VMs running, VMs per host, and the
        phases (the task, the wait after it)."""
        from loucloud.extensions import db
        from loucloud.models import Batch, Task
        from loucloud.services import tasks

        start = time.perf_counter()
        response = self.admin.http.post("/batches/new", data={
            "group_id": self.group, "usernames": "", "template_id": self.template,
            "pattern": PATTERN, "per_user": 1, "expires_at": "",
            "csrf_token": self.admin_token})
        if response.status_code != 302:
            raise RuntimeError(f"batch POST: {response.status_code} "
                               f"{response.get_data(as_text=True)[-500:]}")
        batch_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        with self.app.app_context():
            task_id = db.session.get(Batch, batch_id).task_id
            began = time.perf_counter()
            tasks.execute(task_id)
            ran = time.perf_counter()
            task = db.session.get(Task, task_id)
            if task.state != "succeeded" or not task.result.startswith(f"{STUDENTS} of"):
                raise RuntimeError(f"batch task {task.state}: {task.error} {task.result}")
            vms = [(vm.uuid, vm.host_id) for vm in db.session.get(Batch, batch_id).vms]
            db.session.remove()
        for uuid, host_id in vms:
            self._wait_running(host_id, uuid)
        end = time.perf_counter()
        return (end - start, collections.Counter(h for _, h in vms),
                {"task": ran - began, "wait": end - ran})

    def by_pages(self) -> tuple[float, collections.Counter, dict]:
        """Seconds from the first POST /vms/new to the 40th VM running, one at a time."""
        from loucloud.extensions import db
        from loucloud.models import VM

        placed = collections.Counter()
        start = time.perf_counter()
        for name in self.names:
            response = self.students[name].http.post("/vms/new", data={
                "name": PATTERN.format(username=name), "template_id": self.template,
                "host_id": 0, "start": "y", "csrf_token": self.tokens[name]})
            if response.status_code != 302:
                raise RuntimeError(f"create of {name}: {response.status_code} "
                                   f"{response.get_data(as_text=True)[-500:]}")
            vm_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
            with self.app.app_context():
                vm = db.session.get(VM, vm_id)
                uuid, host_id = vm.uuid, vm.host_id
                db.session.remove()
            self._wait_running(host_id, uuid)
            placed[host_id] += 1
        return time.perf_counter() - start, placed, {}

    def delete_all(self) -> None:
        from loucloud.extensions import db
        from loucloud.models import VM
        from loucloud.services.vms import lifecycle

        with self.app.app_context():
            for vm in db.session.execute(db.select(VM)).scalars().all():
                lifecycle.delete_vm(vm)
            db.session.remove()

    def warm_up(self) -> None:
        """One VM made and deleted on each host (its pool, caches, connections)."""
        from loucloud.extensions import db
        from loucloud.models import Host, Template, User
        from loucloud.services.vms import create

        with self.app.app_context():
            owner = db.session.execute(db.select(User).filter_by(username="s01")).scalar_one()
            for host_id in self.host_ids:
                create.create_vm(owner, f"warm-{host_id}",
                                 db.session.get(Template, self.template),
                                 db.session.get(Host, host_id))
            db.session.remove()
        self.delete_all()

    def _wait_running(self, host_id: int, uuid: str) -> None:
        deadline = time.monotonic() + 120
        conn = self.conns[host_id]
        with self.ctx.counter.paused():
            while conn.lookupByUUIDString(uuid).state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{uuid} not running after 120 s")
                time.sleep(0.001)

    def spread(self, placed: collections.Counter) -> tuple[str, str]:
        counts = [placed.get(h, 0) for h in self.host_ids]
        ratio = f"{max(counts) / min(counts):.2f}" if min(counts) else "∞ (a host got none)"
        return " / ".join(map(str, counts)), f"{max(counts)} / {min(counts)} = {ratio}"


def run(ctx) -> list[Section]:
    return [_batch_create(ctx), _languages(ctx)]


def _batch_create(ctx) -> Section:
    world = BatchWorld(ctx)
    world.warm_up()
    rounds = 1 if ctx.quick else 3
    samples: dict[str, list] = {"batch": [], "pages": []}
    for r in range(rounds):
        for side in (("batch", "pages") if r % 2 == 0 else ("pages", "batch")):
            ctx.lab.settle()
            spent: dict = {}
            with ctx.counter.counting(spent) as calls:
                seconds, placed, phases = world.by_batch() if side == "batch" else \
                    world.by_pages()
            phases["libvirt"] = sum(t for m in spent.values() for t in m.values())
            phases["start"] = sum(m.get("create", 0.0) for m in spent.values())
            phases["calls"] = sum(n for m in calls.values() for n in m.values())
            samples[side].append((seconds, placed, phases))
            ctx.progress(f"batches: {side} run {r + 1}/{rounds}: {secs(seconds)}, "
                         f"per host {world.spread(placed)[0]}")
            ctx.lab.settle()
            world.delete_all()
    table = Section(f"16. Batch create of {STUDENTS} VMs over {len(world.hosts)} hosts "
                    "against one by one through the pages",
                    ["side", "POST → all running", "per VM", "in libvirt (of which the "
                     "starts)", "outside libvirt", "libvirt calls per VM",
                     "VMs per host (each run)", "max / min per host"])
    wall = {}
    for side, label in (("batch", "batch (POST /batches/new + its task)"),
                        ("pages", f"one by one ({STUDENTS} × POST /vms/new)")):
        wall[side] = median([s for s, _, _ in samples[side]])
        spreads = [world.spread(p) for _, p, _ in samples[side]]

        def med(key, side=side):
            return median([ph[key] for _, _, ph in samples[side]])
        table.add(label, secs(wall[side]), ms(wall[side] / STUDENTS),
                  f"{secs(med('libvirt'))} ({secs(med('start'))})",
                  secs(median([s - ph["libvirt"] for s, _, ph in samples[side]])),
                  f"{med('calls') / STUDENTS:.1f}",
                  "; ".join(s for s, _ in spreads), "; ".join(r for _, r in spreads))
    task = median([ph["task"] for _, _, ph in samples["batch"]])
    wait = median([ph["wait"] for _, _, ph in samples["batch"]])
    runs = f"median of {rounds} runs of each, alternating" if rounds > 1 else "one run of each"
    table.notes.append(
        f"{runs}, after one VM made and deleted on each host; {ctx.domain_type.upper()} "
        "guests with 64 MiB and one vCPU booting a one-sector disk that halts; every VM "
        "deleted between the runs, outside the time, and the lab's guests left to settle "
        "before each. Owners: the 40 members of one group, each logged in beforehand.")
    table.notes.append(
        f"batch: the administrator's POST of the batch form (the group, pattern {PATTERN}), "
        "then the batch's task run in-process by tasks.execute as the worker runs it (the "
        f"queue's own wait, 75 ms median with SQLite, not included), then each VM's state "
        f"polled until running; the task took {secs(task)}, the wait after it {ms(wait)} "
        "(create_vm returns after the start). one by one: each member's POST /vms/new "
        "(automatic placement, start now) and its VM polled until running before the "
        "next POST; the VMs' rows looked up between (a few ms in all) are inside the time. "
        "Time in libvirt: LouCloud's calls, timed by wrapping libvirt-python's (the "
        "benchmark's own polls not counted); outside libvirt: the rest (the requests, "
        "forms, placement, quotas, the database, the task's bookkeeping, the polls).")
    table.notes.append(
        "Placement: the batch asks the hosts' free memory once and takes each VM's 64 MiB "
        "off its host's figure (the most free first), so it goes round the hosts; a single "
        "create asks the hosts each time and takes the most free. The 4 lab hosts are "
        "namespaces of one machine and report one kernel's free memory: each single create "
        "is a near tie, which goes to the first host by name unless the figure moved "
        "between the four answers.")
    r = wall["batch"] / wall["pages"]
    table.target(f"batch of {STUDENTS} / one by one through the pages (no target: reported)",
                 f"{r:.2f} ({secs(wall['batch'])} against {secs(wall['pages'])})", None)
    table.target("spread per host, max / min VMs (no target: reported)",
                 "; ".join(f"{name} " + ", ".join(world.spread(p)[1] for _, p, _ in samples[side])
                           for side, name in (("batch", "batch"), ("pages", "one by one"))),
                 None)
    return table


def _list_world(ctx):
    from .vmlist import ListWorld

    world = ctx.list_world
    if world is None:
        world = ctx.list_world = ListWorld(ctx)
    if world.layout != LIST_LAYOUT or sum(world.population.counts.get(h.index, 0)
                                          for h in world.lab.hosts[:LIST_LAYOUT]) != LIST_TOTAL:
        ctx.progress(f"batches: loading {LIST_TOTAL} VMs on {LIST_LAYOUT} hosts")
        world.load(LIST_LAYOUT, LIST_TOTAL)
    return world


def _languages(ctx) -> Section:
    if not CATALOGUE.exists():
        raise RuntimeError(f"no compiled Chinese catalogue ({CATALOGUE}): run make assets")
    world = _list_world(ctx)
    n = 41 if ctx.quick else 101

    def get(lang: str, asking: bool) -> tuple[float, str]:
        if asking:
            world.forget()
        start = time.perf_counter()
        response = world.admin.get("/", headers={"Accept-Language": LANGS[lang]})
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"GET / ({lang}): {response.status_code}")
        return seconds, response.get_data(as_text=True)

    pages = {lang: get(lang, True)[1] for lang in LANGS}
    for lang, html in pages.items():
        if f'<html lang="{lang.split("-")[0]}' not in html:
            raise RuntimeError(f"GET / with Accept-Language {lang}: not in that language")
    table = Section(f"16b. VM list page in Chinese and English (admin, GET /, 50 per page, "
                    f"{LIST_LAYOUT} hosts, {LIST_TOTAL} VMs)",
                    ["states", "Accept-Language: zh-CN", "en", "zh-CN / en"])
    ratios = {}
    ttl = world.app.config["LIVE_STATE_CACHE_SECONDS"]
    for asking, label in ((True, "asked of libvirt by each request (the list benchmark's "
                                 "page)"), (False, "from the shared cache (rendering only)")):
        world.app.config["LIVE_STATE_CACHE_SECONDS"] = ttl if asking else 3600
        try:
            times: dict[str, list[float]] = {lang: [] for lang in LANGS}
            for r in range(n + 2):
                for lang in (("zh-CN", "en") if r % 2 else ("en", "zh-CN")):
                    seconds = get(lang, asking)[0]
                    if r >= 2:    # two warm-up rounds
                        times[lang].append(seconds)
        finally:
            world.app.config["LIVE_STATE_CACHE_SECONDS"] = ttl
        zh, en = median(times["zh-CN"]), median(times["en"])
        ratios[asking] = zh / en
        table.add(label, ms(zh), ms(en), f"{zh / en:.3f}")
        ctx.progress(f"batches: list page ({label}): zh-CN {ms(zh)}, en {ms(en)}")
    table.target("list page in Chinese ≤ 1.1 × in English (states asked of libvirt)",
                 f"{ratios[True]:.3f}", ratios[True] <= 1.1)
    table.target("the same, rendering only (states from the shared cache)",
                 f"{ratios[False]:.3f}", ratios[False] <= 1.1)
    table.notes.append(
        f"median of {n} requests of each language, interleaved (the order alternating), "
        "after 2 warm-up rounds, through the WSGI app as the administrator (no language "
        "of his own, no language cookie: the Accept-Language header decides; each page "
        "checked to be in the language asked). Asked of libvirt: the shared cache of host "
        "states expired before each request, outside the time; rendering only: the "
        "cache's lifetime raised to an hour for these requests, so none asks a host.")
    table.notes.append(
        f"page size: zh-CN {len(pages['zh-CN'].encode()) / 1024:.1f} KiB, en "
        f"{len(pages['en'].encode()) / 1024:.1f} KiB.")
    return table
