"""10. Images in: an upload through the production set-up to the hosts, the web
processes' memory while it arrives, and what a task costs on the queue.

(a) A 2 GiB raw image (sparse, with real data) uploaded as static/upload.js sends it —
HTTPS, Apache + mod_wsgi with the deploy/ configuration (the concurrency benchmark's
set-up: MariaDB, 4 lab hosts added through Apache), 16 MiB chunks, runs of zeros said
and not sent — finished, then copied by the real worker (`manage.py worker`, as
loucloud-worker.service runs it) to the 4 hosts: from the first request until the image
page says all 4 copies are there. The floor: the same file written by a bare script
with libvirt's volume upload stream (storageVol.upload, 1 MiB sends) to the 4 hosts at
once, a thread and a connection per host. Target: LouCloud's throughput at least 0.8 ×
the floor's. Also shown: LouCloud with every byte sent through Apache, and a bare script
that sends the file's holes as holes (the sparse stream).

(b) The resident memory (VmRSS) of every mod_wsgi daemon process (the page group and
the upload group) before, during (sampled every 0.1 s) and after a 4 GiB upload and its
finish. Target: growth at most 64 MiB.

(c) A no-op task (`ping`, as `manage.py tasks ping` queues it) from queued to finished,
with a real worker process: the queue in SQLite (the default) and in Redis (a real
redis-server on a unix socket in the work directory)."""
from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path

from .common import Section, median, secs
from .concurrency import Site
from .imagefloor import copy_code, floor
from .taskqueue import task_overhead

GiB = 1 << 30
MiB = 1 << 20
SIZE = 2 * GiB
MEMORY_SIZE = 4 * GiB
TARGET_RATIO = 0.8
TARGET_RSS_MIB = 64
# What the throughput runs compare, in the order of the even runs.
SIDES = ("floor", "sparse floor", "code", "loucloud", "every byte", "dense floor",
         "dense loucloud")


class ImageSite(Site):
    """The concurrency benchmark's production set-up (MariaDB; Apache + mod_wsgi over
    HTTPS with deploy/'s configuration; the 4 lab hosts added through Apache), with
    the task worker; no image or template of its own."""

    def _catalog(self, lab) -> str:
        for h in lab.hosts:
            self._ok(self.admin.post("/hosts/new", {"name": h.name, "uri": h.uri}),
                     f"add host {h.name}")
        return ""

    def host_ids(self) -> dict[str, int]:
        response = self.admin.get("/hosts/status.json")
        return {h["name"]: h["id"] for h in response.json()}

    def rss(self) -> dict[int, float]:
        """MiB resident of each mod_wsgi daemon process (both groups)."""
        out = {}
        for pid in self.deployment.wsgi_processes() + \
                self.deployment.wsgi_processes("lc-uploads"):
            with contextlib.suppress(OSError):
                out[pid] = _rss_mib(pid)
        return out


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no VmRSS for {pid}")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, with those of the children it reaped
    (libvirtd's I/O helpers)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds two groups of processes use between start() and stop()."""

    def __init__(self, first: list[int], second: list[int]):
        self.groups = (first, second)
        self.used = (0.0, 0.0)

    def _now(self) -> tuple[float, float]:
        return tuple(sum(_cpu_s(pid) for pid in group) for group in self.groups)

    def start(self) -> "CpuMeter":
        self._start = self._now()
        return self

    def stop(self) -> tuple[float, float]:
        end = self._now()
        self.used = (end[0] - self._start[0], end[1] - self._start[1])
        return self.used


# -- LouCloud --------------------------------------------------------------------------
def through_loucloud(site: ImageSite, uploads, path: Path, name: str,
                     libvirtds: list[int], say_zeros: bool = True) -> dict[str, float]:
    """Upload, finish, copies by the worker (which follow the upload as it arrives):
    the phases' seconds, and the CPU seconds of the upload process and of the worker and
    libvirtds over the whole run; the image deleted with its copies afterwards (outside
    the time). ``say_zeros``: as upload.js sends it (runs of zeros said, not sent);
    without, every byte goes through Apache."""
    uploader = site.deployment.wsgi_processes("lc-uploads")
    cpu_copies = CpuMeter([site.deployment.worker.pid], libvirtds).start()
    start = time.perf_counter()
    opened = uploads.begin(name, path)
    if opened.status_code != 201:
        raise RuntimeError(f"begin: HTTP {opened.status_code} {opened.text[:300]}")
    upload = opened.json()
    cpu_upload = CpuMeter(uploader, []).start()
    uploads.send(upload, path, say_zeros=say_zeros)
    cpu_upload.stop()
    sent = time.perf_counter()
    finished = uploads.finish(upload["id"])
    if finished.status_code != 200:
        raise RuntimeError(f"finish: HTTP {finished.status_code} {finished.text[:300]}")
    checked = time.perf_counter()
    image_id = finished.json()["image_id"]
    uploads.wait_copied(image_id, len(libvirtds), timeout=1800, poll=0.25)
    done = time.perf_counter()
    cpu_copies.stop()
    site._ok(site.admin.post(f"/images/{image_id}/delete", {"delete_copies": "1"}),
             f"delete image {name}")
    return {"total": done - start, "upload": sent - start, "finish": checked - sent,
            "copies": done - checked, "upload_cpu": cpu_upload.used[0],
            "worker_cpu": cpu_copies.used[0], "libvirtd_cpu": cpu_copies.used[1]}


def _quiet() -> None:
    """The previous run's dirty pages on disk before the next one starts."""
    os.sync()
    time.sleep(1)


def throughput(ctx, site: ImageSite, uploads, source: Path, dense: Path) -> Section:
    from loucloud.virt.connections import ensure_event_loop

    hosts = ctx.lab.hosts
    runs = 1 if ctx.quick else 3
    ensure_event_loop()  # copy_code needs it: every run in the same process conditions
    # A round that is not counted: the first writes to a fresh lab (new pool
    # directories, disk blocks never written before) were 1.5 to 2 times slower.
    _quiet()
    libvirtds = [ctx.lab.lab.libvirtd_pid(h) for h in hosts]
    ctx.progress(f"images: warm-up: floor {floor(hosts, source, 'bench-floor.img'):.1f} s, "
                 "loucloud " + secs(through_loucloud(site, uploads, source, "bench warm-up",
                                                     libvirtds)["total"]))
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    louclouds: dict[str, list[dict]] = {"loucloud": [], "every byte": [],
                                        "dense loucloud": []}
    loads: list[float] = []
    cpu: dict[str, list[tuple[float, float]]] = {"floor": [], "code": []}
    for r in range(runs):
        for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
            _quiet()
            loads.append(os.getloadavg()[0])
            meter = CpuMeter([os.getpid()], libvirtds).start()
            if side in ("floor", "sparse floor", "dense floor"):
                times[side].append(floor(hosts, dense if side == "dense floor" else source,
                                         "bench-floor.img", sparse=side == "sparse floor"))
                if side == "floor":
                    cpu["floor"].append(meter.stop())
            elif side == "code":
                times[side].append(copy_code(hosts, source, "bench-code.img"))
                cpu["code"].append(meter.stop())
            else:
                run = through_loucloud(site, uploads,
                                       dense if side == "dense loucloud" else source,
                                       f"bench image {r} {side}", libvirtds,
                                       say_zeros=side != "every byte")
                louclouds[side].append(run)
                times[side].append(run["total"])
                ctx.progress(f"images: {side} " + ", ".join(
                    f"{k} {v:.1f} s" for k, v in run.items()))
                continue
            ctx.progress(f"images: {side} {times[side][-1]:.1f} s")
    med = {side: median(values) for side, values in times.items()}
    phases = {k: median([run[k] for run in louclouds["loucloud"]])
              for k in louclouds["loucloud"][0]}
    dense = {k: median([run[k] for run in louclouds["every byte"]])
             for k in louclouds["every byte"][0]}
    mib = SIZE / MiB
    n = len(hosts)
    table = Section(f"10. Images in: a {SIZE // GiB} GiB upload through Apache to "
                    f"{n} hosts, against the libvirt floor",
                    ["measure", "time", "throughput", "× floor"])

    def row(label: str, seconds: float, ratio: bool = True) -> None:
        table.add(label, secs(seconds), f"{mib / seconds:.0f} MiB/s",
                  f"{med['floor'] / seconds:.2f}" if ratio else "")
    row(f"floor: libvirt volume upload of every byte to the {n} hosts at once",
        med["floor"])
    row("LouCloud as the page sends it: upload, check, copies to every host (end to end)",
        phases["total"])
    row("  of which the chunks through Apache (HTTPS, mod_wsgi)", phases["upload"], False)
    table.add("  of which finish (check the file, record, queue the copy)",
              secs(phases["finish"]), "", "")
    table.add(f"  of which the copies' end after finish (until all {n} present)",
              secs(phases["copies"]), "", "")
    row("LouCloud with every byte sent through Apache (a client that does not say "
        "zeros), end to end", dense["total"])
    row("  of which the chunks through Apache", dense["upload"], False)
    row("LouCloud's copy code alone (host pool + upload_file, no worker, no queue)",
        med["code"])
    dense_run = {k: median([run[k] for run in louclouds["dense loucloud"]])
                 for k in louclouds["dense loucloud"][0]}
    table.add(f"a file with no zeros ({SIZE // GiB} GiB of random bytes): floor",
              secs(med["dense floor"]), f"{mib / med['dense floor']:.0f} MiB/s", "")
    table.add("  LouCloud end to end (every byte is data: sent, written, copied)",
              secs(dense_run["total"]), f"{mib / dense_run['total']:.0f} MiB/s",
              f"{med['dense floor'] / dense_run['total']:.2f} (of its floor)")
    row("a bare script with the sparse stream (`virsh vol-upload --sparse`'s way: the "
        "file's holes sent as holes)", med["sparse floor"])
    ratio = med["floor"] / phases["total"]
    table.target(f"LouCloud end to end ≥ {TARGET_RATIO} × the floor's throughput",
                 f"{ratio:.2f} × floor", ratio >= TARGET_RATIO)
    table.notes.append(
        f"Median of {runs} run(s) of each, alternating, after a warm-up round (not "
        "counted); `sync` before each; the image deleted with its copies between runs. "
        f"A raw file of {SIZE // GiB} GiB with random data, 4 MiB every 32 MiB (an "
        "eighth of it; holes between, as in a disk image's empty space). The floor is the "
        "issue's: a bare script writes the file with libvirt's volume upload stream "
        "(storageVol.upload, 1 MiB sends) to the 4 hosts at once, a thread and a "
        "connection per host, every byte. LouCloud as upload.js sends it: 16 MiB "
        "requests one after another, runs of whole MiBs of zeros said (?zeros=N) and "
        "not sent; the server hashes them and keeps them as a hole; the worker "
        "(`manage.py worker`, 2 at once) follows the file as it arrives and sends its "
        "data and holes to the 4 hosts through libvirt's sparse upload stream. "
        "The hosts are libvirtd in network namespaces of this machine, their pools on "
        "its disk; everything shares the 2 cores.")
    table.notes.append(
        "Each run: " + "; ".join(f"{side} " + ", ".join(secs(t) for t in times[side])
                                 for side in SIDES)
        + f". 1-minute load average before the runs {min(loads):.1f}–{max(loads):.1f}.")

    def cpu_pair(pairs) -> str:
        return (f"{median([a for a, _ in pairs]):.1f} s + the 4 libvirtds "
                f"{median([b for _, b in pairs]):.1f} s")

    def loucloud_cpu(runs_: list[dict]) -> str:
        return ("the worker " + cpu_pair([(x["worker_cpu"], x["libvirtd_cpu"])
                                          for x in runs_])
                + f", the upload process {median([x['upload_cpu'] for x in runs_]):.1f} s")
    table.notes.append(
        "CPU seconds (medians): floor: the script " + cpu_pair(cpu["floor"])
        + "; copy code alone: this process " + cpu_pair(cpu["code"])
        + "; LouCloud as the page sends it: " + loucloud_cpu(louclouds["loucloud"])
        + "; with every byte sent: " + loucloud_cpu(louclouds["every byte"])
        + "; the file with no zeros: " + loucloud_cpu(louclouds["dense loucloud"])
        + f". The worker's VmRSS after the runs: {_rss_mib(site.deployment.worker.pid):.0f}"
        " MiB (it runs as deploy/loucloud-worker.service does, with its glibc allocator "
        "settings).")
    return table


def memory(ctx, site: ImageSite, uploads, source: Path) -> Section:
    """RSS of the daemon processes around a MEMORY_SIZE upload; its copy task is
    cancelled before it starts (the worker is stopped), the image deleted."""
    site.deployment.stop_worker()
    name = "bench memory"
    opened = uploads.begin(name, source, hosts=[site.host_ids()["h1"]])
    if opened.status_code != 201:
        raise RuntimeError(f"begin: HTTP {opened.status_code} {opened.text[:300]}")
    upload = opened.json()
    before = site.rss()
    peak = dict(before)
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            for pid, mib in site.rss().items():
                peak[pid] = max(peak.get(pid, 0.0), mib)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        uploads.send(upload, source, say_zeros=False)  # every byte through Apache
        sent = time.perf_counter()
        finished = uploads.finish(upload["id"])
    finally:
        stop.set()
        sampler.join()
    if finished.status_code != 200:
        raise RuntimeError(f"finish: HTTP {finished.status_code} {finished.text[:300]}")
    after = site.rss()
    body = finished.json()
    site._ok(site.admin.post(f"/tasks/{body['task']['id']}/cancel"), "cancel the copy")
    site._ok(site.admin.post(f"/images/{body['image_id']}/delete", {"delete_copies": "1"}),
             "delete the image")
    uploader = set(site.deployment.wsgi_processes("lc-uploads"))
    table = Section(f"10b. Images in: the web processes' memory during a "
                    f"{MEMORY_SIZE // GiB} GiB upload (VmRSS)",
                    ["mod_wsgi daemon process", "before", "peak during", "after finish",
                     "growth"])
    growths = []
    for pid in sorted(before, key=lambda p: (p not in uploader, p)):
        growth = max(peak.get(pid, 0.0), after.get(pid, 0.0)) - before[pid]
        growths.append(growth)
        table.add(f"{'upload group (lc-uploads)' if pid in uploader else 'page group'} "
                  f"pid {pid}", f"{before[pid]:.1f} MiB", f"{peak.get(pid, 0):.1f} MiB",
                  f"{after.get(pid, 0):.1f} MiB", f"{growth:+.1f} MiB")
    worst = max(growths)
    table.target(f"growth of any daemon process ≤ {TARGET_RSS_MIB} MiB", f"{worst:+.1f} MiB",
                 worst <= TARGET_RSS_MIB)
    table.notes.append(
        f"{MEMORY_SIZE // GiB} GiB in {(sent - start):.1f} s "
        f"({MEMORY_SIZE / MiB / (sent - start):.0f} MiB/s), 16 MiB chunks; 'before' after "
        "the upload was opened (the processes warm from the throughput runs), peak "
        "sampled every 0.1 s, 'after' once finish answered. The copy task was cancelled "
        "(no worker running) and the image deleted.")
    return table


# -- the benchmark ----------------------------------------------------------------------
def run(ctx) -> list[Section]:
    from tests.support.deployment import Uploader, sparse_raw_disk

    site = ImageSite(ctx)
    site.deployment.start_worker()
    uploads = Uploader(site.admin)
    files = ctx.workdir / "images"
    files.mkdir(exist_ok=True)
    ctx.cleanup(shutil.rmtree, files, True)
    source = sparse_raw_disk(files / "bench-2g.img", SIZE)
    dense = files / "bench-2g-random.img"
    with open(dense, "wb") as f:
        for _ in range(SIZE // (64 * MiB)):
            f.write(os.urandom(64 * MiB))
    sections = [throughput(ctx, site, uploads, source, dense)]
    source.unlink()
    dense.unlink()
    ctx.progress("images: memory during a 4 GiB upload")
    big = sparse_raw_disk(files / "bench-4g.img", MEMORY_SIZE)
    sections.append(memory(ctx, site, uploads, big))
    big.unlink()
    sections.append(task_overhead(ctx))
    return sections
