"""More than one LouCloud server behind one address (deploy/README.md, "More than one
LouCloud server"): two production set-ups on this machine — each its own Apache +
mod_wsgi, console proxy, watcher and worker, as their units run them — sharing one
MariaDB and one Redis (cache and task queue) and one SECRET_KEY. A user's session, a
setting, the login throttle and a console link minted on one server work on the other;
the watcher runs once across both and moves to the other when it dies; a task queued
on one is run by the other's worker."""
from __future__ import annotations

import re
import secrets
import signal
import ssl
import subprocess
import time

import pytest
from websockets.sync.client import connect

from tests.support import rfb
from tests.support.deployment import Deployment, WebClient, unavailable_reason
from tests.support.redis import RedisServer


@pytest.fixture(scope="module")
def redis_shared():
    server = RedisServer(shared=True).start()   # the service user reaches its socket
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(mariadb, redis_shared):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    url = mariadb.create_database("loucloud_two")
    shared = {"SECRET_KEY": secrets.token_hex(32), "TASK_BROKER": redis_shared.url,
              "CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_shared.url}
    a = Deployment(url, config=shared).prepare()
    # One address for both (a load balancer's): the console proxies accept its origin.
    b = Deployment(url, config={**shared, "SITE_URL": a.site}).prepare()
    started = []
    try:
        a.install()
        b.install()                  # the schema is there, the administrator too: no-ops
        for site in (a, b):
            site.start()
            started.append(site)
        yield a, b
    except BaseException:
        for site in (a, b):
            print(site.tail())
        raise
    finally:
        for site in (b, a):
            site.stop()


def _client(site: Deployment, like: WebClient | None = None) -> WebClient:
    client = WebClient(site)
    if like is not None:       # the same browser: its cookies, another server
        client.http.cookies = like.http.cookies
    return client


def test_a_session_and_a_setting_are_the_same_on_both(servers):
    a, b = servers
    on_a = _client(a)
    assert on_a.login("admin", a.admin_password).status_code == 302
    on_b = _client(b, like=on_a)
    assert on_b.get("/profile").status_code == 200        # logged in on B too
    page = on_b.get("/settings/").text
    before = re.search(r'name="sample_interval_seconds"[^>]*value="(\d+)"', page)
    form = {name: value for name, value in re.findall(
        r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page) if name != "csrf_token"}
    assert before and form
    new = str(int(before.group(1)) + 7)
    form["sample_interval_seconds"] = new
    assert on_a.post("/settings/", form).status_code == 302
    # Cached on both through the one Redis: B shows A's change at once (a cache per
    # server would keep the old value for minutes).
    assert f'value="{new}"' in on_b.get("/settings/").text


def test_the_login_throttle_counts_on_both(servers, mariadb):
    a, b = servers
    on_a = _client(a)
    assert on_a.login("admin", a.admin_password).status_code == 302
    on_a.post("/users/new", {"username": "carol", "password": "carol password 1",
                             "confirm": "carol password 1", "max_vms": 1, "max_vcpus": 1,
                             "max_memory_mib": 512, "max_disk_gib": 5})
    for _ in range(5):                                     # failures on A ...
        assert _client(a).login("carol", "wrong").status_code == 401
    refused = _client(b).login("carol", "carol password 1")   # ... count on B
    assert refused.status_code in (200, 429) and "Too many" in refused.text


def _watcher_holder(mariadb) -> str | None:
    with mariadb.connect("loucloud_two") as conn, conn.cursor() as cur:
        cur.execute("SELECT holder FROM worker_leases WHERE name = 'watcher' "
                    "AND expires_at > UTC_TIMESTAMP()")
        row = cur.fetchone()
    return row[0] if row else None


def test_the_watcher_runs_once_and_moves_when_it_dies(servers, mariadb):
    a, b = servers
    watchers = {site.dir: site._service("watcher", "watcher.log") for site in (a, b)}
    try:
        deadline = time.monotonic() + 30
        while (holder := _watcher_holder(mariadb)) is None:
            assert time.monotonic() < deadline, "no watcher took the lease"
            time.sleep(0.5)
        pids = {str(p.pid): p for p in watchers.values()}
        first = holder.rsplit(":", 1)[1]
        assert first in pids                     # one of the two, and only one holds it
        pids[first].send_signal(signal.SIGKILL)
        pids[first].wait(10)
        deadline = time.monotonic() + 60
        while (holder := _watcher_holder(mariadb)) is None or holder.endswith(f":{first}"):
            assert time.monotonic() < deadline, f"the lease stayed with {holder}"
            time.sleep(0.5)
        assert holder.rsplit(":", 1)[1] in set(pids) - {first}
    finally:
        for proc in watchers.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)


def test_a_task_queued_on_one_is_run_by_the_others_worker(servers):
    a, b = servers
    worker = b.start_worker()
    try:
        # A has no worker: only B's can run it, through the Redis queue they share.
        try:
            ping = a.manage("tasks", "ping")
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{exc.output}\n{b.tail()}") from None
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert f":{worker.pid} answered" in ping.stdout, ping.stdout   # B's worker
    finally:
        b.stop_worker()


def test_a_console_link_from_one_server_opens_through_the_others_proxy(servers, lab):
    a, b = servers
    admin = _client(a)
    assert admin.login("admin", a.admin_password).status_code == 302
    host = lab.host(1)
    path = lab.make_image(host, "two-base.qcow2", 64 * 1024 * 1024)
    assert admin.post("/hosts/new", {"name": host.name, "uri": host.uri}).status_code == 302
    assert admin.post("/images/new", {"name": "two-base", "path": path,
                                      "os_type": "linux"}).status_code == 302
    image_id = re.search(r'<option value="(\d+)"', admin.get("/templates/new").text).group(1)
    assert admin.post("/templates/new", {"name": "two-tiny", "image_id": image_id,
                                         "vcpus": 1, "memory_mib": 128,
                                         "disk_gib": 1}).status_code == 302
    template = re.search(r'href="/templates/(\d+)/edit"', admin.get("/templates/").text)
    made = admin.post("/vms/new", {"name": "two-servers", "template_id": template.group(1),
                                   "host_id": 0, "start": "y"})
    assert made.status_code == 302, made.text
    vm_id = made.headers["Location"].rsplit("/", 1)[1]
    try:
        token = admin.post(f"/vms/{vm_id}/console").headers["Location"].split("#", 1)[1]
        # Minted on A; the browser's websocket lands on B (behind the one address).
        ws_url = b.site.replace("https://", "wss://") + f"/websockify?token={token}"
        context = ssl.create_default_context(cafile=str(b.cert))
        with connect(ws_url, origin=a.site, ssl=context, open_timeout=10, close_timeout=1,
                     additional_headers={"Cookie": admin.cookie_header()}) as ws:
            seen = rfb.handshake(ws)
        assert seen["greeting"].startswith(b"RFB 003.") and seen["rectangles"] >= 1
    finally:
        assert admin.post(f"/vms/{vm_id}/delete").status_code == 302
