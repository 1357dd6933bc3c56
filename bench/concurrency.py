"""4. Concurrent creates through the production set-up: Apache + mod_wsgi (HTTPS, the
deploy/ configuration, 2 processes × 8 threads) and MariaDB (tests/support/deployment.py
and mariadb.py), four real libvirtd hosts.

10 users send their create at the same moment (a barrier releases 10 threads, each with
its own session and a CSRF token fetched beforehand): every create must succeed; the wall
time is compared with the same 10 creates one after another. Then one user whose quota
allows 5 VMs sends 20 creates at once: exactly 5 may succeed."""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

from tests.support.webclient import CSRF_RE

from .common import Section, median, secs
from .lab import boot_image

USERS = 10
QUOTA_VMS, QUOTA_TRIES = 5, 20


class Site:
    """The deployment, its hosts, image and template, and the users' sessions."""

    def __init__(self, ctx):
        from tests.support import mariadb as mariadb_support
        from tests.support.deployment import Deployment, WebClient, unavailable_reason

        for reason in (mariadb_support.unavailable_reason(), unavailable_reason()):
            if reason:
                raise RuntimeError(reason)
        self.ctx = ctx
        workdir = Path(tempfile.mkdtemp(prefix="loucloud-bench-mariadb-"))
        workdir.chmod(0o755)
        ctx.cleanup(shutil.rmtree, workdir, True)
        self.mariadb = mariadb_support.MariaDB(workdir)
        ctx.cleanup(self.mariadb.stop)
        ctx.progress("concurrency: starting MariaDB")
        self.mariadb.start()
        self.deployment = Deployment(self.mariadb.create_database("loucloud_bench")).prepare()
        ctx.cleanup(self.deployment.stop)
        ctx.progress("concurrency: installing and starting Apache + mod_wsgi")
        self.deployment.install()
        self.deployment.start()
        self.WebClient = WebClient
        self.admin = WebClient(self.deployment)
        self._ok(self.admin.login("admin", self.deployment.admin_password), "admin login")
        self.template = self._catalog(ctx.lab)
        self.users = []
        for i in range(USERS):
            self.users.append(self.make_user(f"user{i:02d}", vms=3))
        self.quota_user = self.make_user("quota5", vms=QUOTA_VMS)
        self._names = itertools.count(1)

    @staticmethod
    def _ok(response, what: str, status: int = 302) -> None:
        if response.status_code != status:
            raise RuntimeError(f"{what}: HTTP {response.status_code} "
                               f"{re.findall(r'alert-danger[^>]*>([^<]+)', response.text)}")

    def _catalog(self, lab) -> str:
        path = None
        for h in lab.hosts:
            path = boot_image(lab.lab, h, "bench-conc.raw", 64 << 20)
            self._ok(self.admin.post("/hosts/new", {"name": h.name, "uri": h.uri}),
                     f"add host {h.name}")
        self._ok(self.admin.post("/images/new", {"name": "base", "path": path,
                                                 "os_type": "linux"}), "add image")
        image_id = re.search(r'<option value="(\d+)"',
                             self.admin.get("/templates/new").text).group(1)
        self._ok(self.admin.post("/templates/new", {"name": "tiny", "image_id": image_id,
                                                    "vcpus": 1, "memory_mib": 64,
                                                    "disk_gib": 1}), "add template")
        return re.search(r'href="/templates/(\d+)/edit"', self.admin.get("/templates/").text).group(1)

    def make_user(self, name: str, vms: int):
        password = f"{name} password 1"
        self._ok(self.admin.post("/users/new", {
            "username": name, "password": password, "confirm": password, "max_vms": vms,
            "max_vcpus": 100, "max_memory_mib": 100_000, "max_disk_gib": 1000}),
            f"create user {name}")
        client = self.WebClient(self.deployment)
        self._ok(client.login(name, password), f"login {name}")
        return client

    def same_session(self, client):
        """Another connection of the same browser session (requests' Session is not
        meant to be shared by threads)."""
        twin = self.WebClient(self.deployment)
        twin.http.cookies.update(client.http.cookies)
        return twin

    # -- one create ----------------------------------------------------------------------
    def prepare(self, client) -> str:
        return CSRF_RE.search(client.get("/vms/new").text).group(1)

    def create(self, client, token: str) -> tuple[int, float, str]:
        """POST /vms/new; returns (status, seconds, VM path or refusal)."""
        name = f"b{next(self._names)}"
        start = time.perf_counter()
        response = client.http.post(
            client.base + "/vms/new", timeout=300, allow_redirects=False,
            headers={"Referer": client.base + "/vms/new"},
            data={"csrf_token": token, "name": name, "template_id": self.template,
                  "host_id": 0, "start": "y"})
        seconds = time.perf_counter() - start
        detail = response.headers.get("Location", "") if response.status_code == 302 else \
            " ".join(re.findall(r'alert-danger[^>]*>\s*([^<]+)', response.text)).strip()
        return response.status_code, seconds, detail

    def delete(self, client, location: str) -> None:
        path = location.replace(client.base, "")
        self._ok(client.post(path + "/delete"), f"delete {path}")

    def at_once(self, jobs: list) -> tuple[float, list[tuple[int, float, str]]]:
        """Run create jobs (client, token) released together by a barrier. Returns the
        wall time from the release to the last answer, and each outcome."""
        barrier = threading.Barrier(len(jobs) + 1)
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            def job(client, token):
                barrier.wait()
                return self.create(client, token)
            futures = [pool.submit(job, c, t) for c, t in jobs]
            barrier.wait()
            start = time.perf_counter()
            results = [f.result() for f in futures]
            wall = time.perf_counter() - start
        return wall, results

    def clean(self, made: list[tuple]) -> None:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda cm: self.delete(*cm), made))


def run(ctx) -> list[Section]:
    site = Site(ctx)
    runs = ctx.runs(3)
    walls = {"together": [], "sequential": []}
    latencies: list[float] = []
    failures: list[str] = []
    # Warm-up: both processes have met every host once.
    warm = [(c, site.prepare(c)) for c in site.users[:4]]
    wall, results = site.at_once(warm)
    site.clean([(c, r[2]) for (c, _), r in zip(warm, results) if r[0] == 302])
    for r in range(runs):
        for mode in (("together", "sequential") if r % 2 == 0 else ("sequential", "together")):
            jobs = [(c, site.prepare(c)) for c in site.users]
            if mode == "together":
                wall, results = site.at_once(jobs)
                latencies += [s for _, s, _ in results]
            else:
                start = time.perf_counter()
                results = [site.create(c, t) for c, t in jobs]
                wall = time.perf_counter() - start
            walls[mode].append(wall)
            failures += [f"{mode}: HTTP {st} {d}" for st, _, d in results if st != 302]
            site.clean([(c, d) for (c, _), (st, _, d) in zip(jobs, results) if st == 302])
            ctx.progress(f"concurrency: {mode} {wall:.2f} s, "
                         f"{sum(st == 302 for st, _, _ in results)}/{USERS} created")
    together, sequential = median(walls["together"]), median(walls["sequential"])
    table = Section(
        "4. Concurrent creates through Apache + mod_wsgi + MariaDB (HTTPS)",
        ["measure", "figure"])
    table.add(f"{USERS} users create a VM at the same moment: wall time", secs(together))
    table.add(f"the same {USERS} creates one after another", secs(sequential))
    table.add("together / one after another", f"{together / sequential:.2f}")
    table.add("slowest single create when together",
              secs(max(latencies)) if latencies else "—")
    total = runs * USERS
    table.add("creates that succeeded (together)", f"{total - sum(1 for f in failures if f.startswith('together'))}/{total}")

    quota_outcomes = []
    for _ in range(ctx.runs(2)):
        token = site.prepare(site.quota_user)
        jobs = [(site.same_session(site.quota_user), token) for _ in range(QUOTA_TRIES)]
        _wall, results = site.at_once(jobs)
        statuses = collections.Counter(st for st, _, _ in results)
        made = [d for st, _, d in results if st == 302]
        listed = len(re.findall(r"data-vm-row=", site.quota_user.get("/").text))
        quota_outcomes.append((statuses, len(made), listed))
        site.clean([(site.quota_user, d) for d in made])
    for i, (statuses, made, listed) in enumerate(quota_outcomes, 1):
        table.add(f"{QUOTA_TRIES} creates at once, quota {QUOTA_VMS} VMs (run {i})",
                  f"{made} created, {listed} listed; HTTP "
                  + ", ".join(f"{n}× {s}" for s, n in sorted(statuses.items())))
    table.notes.append(
        f"Wall times: median of {runs} runs of each, alternating, after a warm-up of 4 "
        "creates; every VM deleted between runs (outside the time). Placement is automatic "
        "over 4 hosts; 64 MiB guests, started.")
    if failures:
        table.notes.append("Failed creates: " + "; ".join(failures[:5]))
    all_ok = not [f for f in failures if f.startswith("together")]
    table.target(f"{USERS} concurrent creates: all succeed",
                 f"{total - len([f for f in failures if f.startswith('together')])}/{total}",
                 all_ok)
    exact = all(made == QUOTA_VMS and listed == QUOTA_VMS for _, made, listed in quota_outcomes)
    table.target(f"{QUOTA_TRIES} concurrent creates, quota {QUOTA_VMS}: exactly {QUOTA_VMS} succeed",
                 ", ".join(str(made) for _, made, _ in quota_outcomes), exact)
    table.target("wall time together vs one after another (no target: reported)",
                 f"{together / sequential:.2f}", None)
    return [table]
