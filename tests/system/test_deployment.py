"""Production set-up, for real: Apache + mod_wsgi with deploy/apache-wsgi.conf (HTTPS),
MariaDB, the console proxy behind Apache on the same origin, the task worker as
loucloud-worker.service runs it, two real libvirtd hosts."""
from __future__ import annotations

import concurrent.futures
import hashlib
import re
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from tests.support import imagefiles, rfb
from tests.support.deployment import (Deployment, Uploader, WebClient,
                                      sparse_raw_disk, unavailable_reason)
from tests.support.figures import figure


DATABASE_PASSWORD = "p@ss%40w/rd:?#&= 'quoted' \"!\\"


@pytest.fixture(scope="module")
def deployment(mariadb):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    url = mariadb.create_database("loucloud_deploy")
    # deploy/loucloud.cfg.example's separate settings, with a password no URL could hold
    # unquoted.
    mariadb.create_user("lc_deploy", DATABASE_PASSWORD, "loucloud_deploy")
    site = Deployment(url, database={
        "DATABASE_USER": "lc_deploy", "DATABASE_PASSWORD": DATABASE_PASSWORD,
        "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": mariadb.port,
        "DATABASE_NAME": "loucloud_deploy"},
        # a limit the API test below reaches quickly (the default is 600 a minute)
        config={"API_RATE_LIMIT_TOKEN": "40 per minute"}).prepare()
    try:
        site.install()
        site.start()
        yield site
    except BaseException:
        print(site.tail())
        raise
    finally:
        site.stop()


@pytest.fixture(scope="module")
def admin(deployment):
    client = WebClient(deployment)
    assert client.login("admin", deployment.admin_password).status_code == 302
    return client


@pytest.fixture(scope="module")
def catalog(deployment, admin, lab):
    """Both lab hosts, an image on them and a template, added through Apache."""
    path = lab.make_image(lab.host(1), "deploy-base.qcow2", 64 * 1024 * 1024)
    lab.make_image(lab.host(2), "deploy-base.qcow2", 64 * 1024 * 1024)
    for host in (lab.host(1), lab.host(2)):
        response = admin.post("/hosts/new", {"name": host.name, "uri": host.uri})
        assert response.status_code == 302, response.text
    assert admin.post("/images/new", {"name": "base", "path": path,
                                      "os_type": "linux"}).status_code == 302
    page = admin.get("/templates/new").text
    image_id = re.search(r'<option value="(\d+)"', page).group(1)
    assert admin.post("/templates/new", {"name": "tiny", "image_id": image_id, "vcpus": 1,
                                         "memory_mib": 128, "disk_gib": 1}).status_code == 302
    template_id = re.search(r'href="/templates/(\d+)/edit"', admin.get("/templates/").text)
    return template_id.group(1)


def make_user(admin, name):
    response = admin.post("/users/new", {
        "username": name, "password": f"{name} password 1", "confirm": f"{name} password 1",
        "max_vms": 3, "max_vcpus": 4, "max_memory_mib": 4096, "max_disk_gib": 20})
    assert response.status_code == 302, response.text
    assert re.search(r"/users/\d+$", response.headers["Location"]), response.headers["Location"]


def test_everything_through_apache(deployment, admin, catalog):
    make_user(admin, "student")
    student = WebClient(deployment)
    assert student.login("student", "student password 1").status_code == 302

    response = student.post("/vms/new", {"name": "through-apache", "template_id": catalog,
                                         "host_id": 0, "start": "y"})
    assert response.status_code == 302, response.text
    vm_path = response.headers["Location"]
    vm_id = vm_path.rsplit("/", 1)[1]
    assert student.get(f"/vms/{vm_id}.json").json()["state"] == "running"

    response = student.post(f"/vms/{vm_id}/console")
    token = response.headers["Location"].split("#", 1)[1]
    ws_url = deployment.site.replace("https://", "wss://") + f"/websockify?token={token}"
    context = ssl.create_default_context(cafile=str(deployment.cert))
    with connect(ws_url, origin=deployment.site, ssl=context, open_timeout=10,
                 close_timeout=1,
                 additional_headers={"Cookie": student.cookie_header()}) as ws:
        seen = rfb.handshake(ws)
    assert seen["greeting"].startswith(b"RFB 003.") and seen["rectangles"] >= 1

    response = student.post(f"/vms/{vm_id}/delete")
    assert response.status_code == 302
    assert student.get(f"/vms/{vm_id}.json").status_code == 404

    log = (deployment.logs / "loucloud-access.log").read_text()
    assert "GET /websockify HTTP/1.1\" 101" in log
    assert token not in log and token not in (deployment.logs / "console.log").read_text()


UPLOAD_SIZE = 1 << 30
CHUNK_LIMIT = 16 * 2 ** 20 + 64 * 1024   # deploy/apache-wsgi.conf's LimitRequestBody


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _read_back(uri: str, pool: str, volume: str) -> tuple[int, int, str, int]:
    """A host's copy as libvirt hands it out (its download stream, on a connection of
    our own): capacity, bytes read, SHA-256, and the bytes it takes on the host's disk."""
    import libvirt

    conn = libvirt.open(uri)
    try:
        vol = conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
        _, capacity, allocation = vol.info()
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        digest, total = hashlib.sha256(), 0
        while data := stream.recv(1 << 20):
            digest.update(data)
            total += len(data)
        stream.finish()
        return capacity, total, digest.hexdigest(), allocation
    finally:
        conn.close()


def _volumes(uri: str, pool: str) -> list[str]:
    import libvirt

    conn = libvirt.open(uri)
    try:
        pool_ = conn.storagePoolLookupByName(pool)
        pool_.refresh(0)
        return pool_.listVolumes()
    finally:
        conn.close()


def test_a_large_image_uploaded_through_apache_is_copied_to_both_hosts(
        deployment, admin, catalog, lab, tmp_path, capsys):
    """A 1 GiB raw disk (sparse, with real data) sent as upload.js sends it: HTTPS,
    Apache, mod_wsgi's upload process group, 16 MiB chunks with the page's CSRF token;
    then the real worker copies it to h1 and h2 through libvirt's upload stream. Each
    host's copy, read back through libvirt, is the file, byte for byte."""
    from loucloud.services.imagecopy import volume_for

    source = sparse_raw_disk(tmp_path / "deploy-upload.img", UPLOAD_SIZE)
    want = imagefiles.sha256(source)
    uploads = Uploader(admin)
    [uploader_pid] = deployment.wsgi_processes("lc-uploads")

    # A body larger than one chunk: Apache answers 413, LouCloud keeps none of it.
    opened = uploads.begin("uploaded disk", source)
    assert opened.status_code == 201, opened.text
    upload = opened.json()
    assert upload["chunk_bytes"] == 16 * 2 ** 20 and upload["offset"] == 0
    assert uploads.chunk(upload["id"], 0, bytes(CHUNK_LIMIT + 1)).status_code == 413
    assert uploads.status(upload["id"]).json()["offset"] == 0

    worker = deployment.start_worker()
    try:
        rss_before = _rss_mib(uploader_pid)
        rss_peak = rss_before

        def sampled(_offset):
            nonlocal rss_peak
            rss_peak = max(rss_peak, _rss_mib(uploader_pid))

        started = time.monotonic()
        # Every byte through Apache, its zeros too (the page would say those: then
        # only an eighth of the file would cross; test_upload.py has that).
        chunks = uploads.send(upload, source, sampled, say_zeros=False)
        sent = time.monotonic()
        finished = uploads.finish(upload["id"])
        assert finished.status_code == 200, finished.text
        body = finished.json()
        assert (body["format"], body["sha256"]) == ("raw", want)
        assert body["task"]["kind"] == "image.copy"
        image = uploads.wait_copied(body["image_id"], hosts=2, timeout=900)
        copied = time.monotonic()
        assert worker.poll() is None, deployment.tail()
    finally:
        deployment.stop_worker()

    assert chunks == UPLOAD_SIZE // (16 * 2 ** 20)
    # The upload doors ran in their own process group (deploy/apache-wsgi.conf).
    log = (deployment.logs / "loucloud-error.log").read_text()
    for said in (f"upload {upload['id']} of uploaded disk", "image uploaded disk uploaded"):
        assert re.search(rf"\[pid {uploader_pid}:tid \d+\].*{said}", log), said
    assert [(c["host"], c["present"], c["state"], c["copied"]) for c in image["copies"]] == \
        [("h1", True, "done", UPLOAD_SIZE), ("h2", True, "done", UPLOAD_SIZE)]
    task = admin.get(f"/tasks/{body['task']['id']}", headers={"Accept": "application/json"})
    assert task.json()["state"] == "succeeded", task.json()
    # The staging file was moved into LouCloud's image store, whole.
    instance = deployment.dir / "instance"
    volume = volume_for("uploaded disk", "raw")
    assert list((instance / "uploads").iterdir()) == []
    assert (instance / "images" / volume).stat().st_size == UPLOAD_SIZE

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        seen = list(pool.map(lambda h: _read_back(h.uri, "loucloud", volume),
                             (lab.host(1), lab.host(2))))
    assert [s[:3] for s in seen] == [(UPLOAD_SIZE, UPLOAD_SIZE, want)] * 2
    # The zeros LouCloud received stay holes on the hosts: each copy takes its data's
    # room (an eighth of the file), not the whole gigabyte.
    assert all(s[3] <= UPLOAD_SIZE // 4 for s in seen), seen

    upload_s, copy_s = sent - started, copied - sent
    growth = rss_peak - rss_before
    with capsys.disabled():
        print(f"\n  1 GiB upload through Apache: {chunks} chunks in {upload_s:.1f} s "
              f"({UPLOAD_SIZE / 2 ** 20 / upload_s:.0f} MiB/s); finish + copies to 2 hosts "
              f"{copy_s:.1f} s; upload process RSS +{growth:.1f} MiB")
    figure("upload_through_apache", {"bytes": UPLOAD_SIZE, "chunks": chunks,
                                     "upload_s": round(upload_s, 2),
                                     "finish_and_copies_s": round(copy_s, 2),
                                     "rss_growth_mib": round(growth, 1)})
    assert growth < 64, f"the upload process grew by {growth:.0f} MiB"

    # Deleting the image with its copies leaves nothing on the hosts, nor here.
    assert admin.post(f"/images/{body['image_id']}/delete",
                      {"delete_copies": "1"}).status_code == 302
    assert not (instance / "images" / volume).exists()
    for h in (lab.host(1), lab.host(2)):
        assert volume not in _volumes(h.uri, "loucloud")


def test_https_headers_and_cookies(deployment):
    client = WebClient(deployment)
    page = client.get("/login")
    h = page.headers
    assert h["Strict-Transport-Security"] == "max-age=31536000"
    assert "frame-ancestors 'self'" in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    static = client.get("/static/app.js")
    assert static.status_code == 200 and static.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in static.headers["Content-Security-Policy"]
    response = client.login("admin", deployment.admin_password)
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    plain = requests.get(f"http://127.0.0.1:{deployment.http_port}/login",
                         allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://localhost:{deployment.https_port}/login"


def _tls_handshake(deployment, *options: str) -> bool:
    """Whether ``openssl s_client`` with ``options`` completes a handshake with the
    test Apache (the client allows old protocols and suites: the server must refuse)."""
    done = subprocess.run(["openssl", "s_client", "-connect",
                           f"127.0.0.1:{deployment.https_port}", "-servername", "localhost",
                           *options], input="", capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and "Cipher is (NONE)" not in done.stdout


def test_tls_is_modern_and_apache_says_no_version(deployment):
    assert _tls_handshake(deployment, "-tls1_3")
    assert _tls_handshake(deployment, "-tls1_2")
    assert _tls_handshake(deployment, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    old = "DEFAULT:@SECLEVEL=0"
    for protocol in ("-tls1", "-tls1_1"):
        assert not _tls_handshake(deployment, protocol, "-cipher", old), protocol
    # The test certificate is ECDSA: the suites it could serve if Apache allowed them.
    for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",  # CBC with SHA-1
                  "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"):  # CBC
        assert not _tls_handshake(deployment, "-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0"), \
            suite
    client = WebClient(deployment)
    assert client.get("/login").headers["Server"] == "Apache"
    missing = client.get("/no-such-page-here")
    assert missing.headers["Server"] == "Apache" and "Apache/" not in missing.text
    # Debian's status page (on for local clients, as this one is) is closed on the site.
    status = client.get("/server-status")
    assert status.status_code == 403 and "Server Version" not in status.text


def test_two_processes_share_throttle_and_settings(deployment, admin):
    assert len(deployment.wsgi_processes()) == 2
    make_user(admin, "victim")
    outcomes = []

    def attempt(password):
        outcomes.append(WebClient(deployment).login("victim", password).status_code)

    threads = [threading.Thread(target=attempt, args=("not the password",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert WebClient(deployment).login("victim", "victim password 1").status_code == 429
    assert outcomes.count(401) >= 5

    page = admin.get("/settings/").text
    values = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', page))
    values["default_max_vms"] = "17"
    assert admin.post("/settings/", values).status_code == 302
    seen = []

    def read_default():
        page = WebClient(deployment)
        page.http.cookies.update(admin.http.cookies)
        seen.append(re.search(r'name="max_vms"[^>]*value="(\d+)"',
                              page.get("/users/new").text).group(1))

    threads = [threading.Thread(target=read_default) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["17"] * 16


def test_api_tokens_and_rate_limits_hold_across_both_processes(deployment, admin):
    """A token made through one mod_wsgi process works in both; its rate limit is
    counted once over both (on the shared cache: files under instance/cache here);
    revoked, it stops everywhere at once."""
    assert len(deployment.wsgi_processes()) == 2
    base = deployment.site
    made = admin.http.post(base + "/api/v1/tokens", json={"name": "deploy test"},
                           headers={"X-CSRFToken": admin.csrf(), "Referer": base + "/"},
                           timeout=30)
    assert made.status_code == 201, made.text
    api = requests.Session()
    api.trust_env, api.verify = False, str(deployment.cert)
    api.headers["Authorization"] = f"Bearer {made.json()['secret']}"
    def call(_):
        return api.get(base + "/api/v1/vms", timeout=120)

    # ten at a time (the session's connection pool), so both processes serve at once
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(call, range(60)))
    statuses = [r.status_code for r in answers]
    # both processes served: a limit counted per process would let up to 80 through
    assert statuses.count(200) == 40 and statuses.count(429) == 20, statuses
    throttled = [r for r in answers if r.status_code == 429]
    assert all(r.headers["Content-Type"] == "application/problem+json" for r in throttled)
    assert all(0 < int(r.headers["Retry-After"]) <= 60 for r in throttled)
    # another token (the first is at its limit): it works in both processes, then not
    second = admin.http.post(base + "/api/v1/tokens", json={"name": "to revoke"},
                             headers={"X-CSRFToken": admin.csrf(), "Referer": base + "/"},
                             timeout=30).json()
    api.headers["Authorization"] = f"Bearer {second['secret']}"

    def eight() -> list[int]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda _: api.get(base + "/api/v1/tokens",
                                                   timeout=120).status_code, range(8)))

    assert eight() == [200] * 8
    revoked = admin.http.delete(base + f"/api/v1/tokens/{second['id']}",
                                headers={"X-CSRFToken": admin.csrf(), "Referer": base + "/"},
                                timeout=30)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert eight() == [401] * 8


def test_a_database_restart_is_survived(deployment, admin, mariadb, capsys):
    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking():
        while not stop.is_set():
            try:
                statuses.append(admin.get("/profile").status_code)
            except Exception as exc:  # noqa: BLE001 - any transport failure is recorded
                statuses.append(f"{type(exc).__name__}")
            time.sleep(0.05)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    time.sleep(0.5)
    before = admin.get("/profile")
    outage_pages = []
    mariadb.restart(downtime=2.0, before_start=lambda: outage_pages.append(
        admin.get("/profile")))
    time.sleep(1.0)
    stop.set()
    asker.join()
    after = [admin.get("/profile").status_code for _ in range(5)]
    # A change right after the restart is not lost either.
    response = admin.post("/settings/", dict(re.findall(
        r'name="(\w+)"[^>]*value="([^"]*)"', admin.get("/settings/").text)))
    with capsys.disabled():
        print(f"\n  database restart: {len(statuses)} requests, "
              f"{statuses.count(503)} answered 503 during the outage, "
              f"{statuses.count(500)} errors 500")
    lost = [s for s in statuses if s not in (200, 503)] + \
        [s for s in after if s != 200] + ([response.status_code] if response.status_code != 302
                                          else [])
    figure("database_restart", {"requests": len(statuses) + len(after) + 1,
                                "answered_503_during_outage": statuses.count(503),
                                "errors_500": statuses.count(500), "lost": len(lost)})
    assert before.status_code == 200
    assert outage_pages and outage_pages[0].status_code == 503
    assert "database" in outage_pages[0].text
    assert 500 not in statuses and all(isinstance(s, int) for s in statuses), \
        f"{statuses}\n{deployment.tail()}"
    assert after == [200] * 5 and response.status_code == 302


@pytest.mark.browser
def test_console_in_a_browser_through_apache(deployment, admin, catalog, browser):
    make_user(admin, "viewer")
    viewer = WebClient(deployment)
    login = viewer.login("viewer", "viewer password 1")
    assert login.status_code == 302, re.findall(r'alert-\w+[^>]*>\s*([^<]+)', login.text)
    response = viewer.post("/vms/new", {"name": "seen-through-apache", "template_id": catalog,
                                        "host_id": 0, "start": "y"})
    assert response.status_code == 302, re.findall(r'alert-danger[^>]*>\s*([^<]+)', response.text)
    vm_id = response.headers["Location"].rsplit("/", 1)[1]
    context = browser.new_context(ignore_https_errors=True,
                                  viewport={"width": 1280, "height": 860})
    page = context.new_page()
    violations = []
    page.on("console", lambda m: violations.append(m.text) if m.type == "error" else None)
    try:
        page.goto(deployment.site + "/login")
        page.fill("#username", "viewer")
        page.fill("#password", "viewer password 1")
        with page.expect_navigation():
            page.click("input[type=submit]")
        page.goto(f"{deployment.site}/vms/{vm_id}")
        with page.expect_navigation():
            page.click("button:has-text('Console')")
        page.wait_for_selector("#console[data-status='connected']", timeout=15000)
        page.wait_for_function("""() => {
          const c = document.querySelector('#console-screen canvas');
          if (!c || !c.width) return false;
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let lit = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 120) lit++;
          return lit > 200;
        }""", timeout=20000)
        from tests.support.browser import ARTIFACTS
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-through-apache.png"))
        assert violations == []
    finally:
        context.close()
        assert viewer.post(f"/vms/{vm_id}/delete").status_code == 302


def test_the_documented_upgrade_keeps_the_site_working(deployment, admin):
    """deploy/README.md's upgrade block, as written (but `git pull`): packages, schema,
    Apache's site file and the units from site.conf; then Apache reloaded as systemctl
    would. Nothing changed since the install, so every file stays as it was, and the
    site and its sessions go on."""
    units = sorted((deployment.dir / "systemd").glob("loucloud-*.service"))
    before = {path: path.read_text() for path in [deployment.apache_site, *units]}
    assert len(units) == 4
    output = deployment.run_block("upgrade")
    assert "upgrade: done" in output, output
    assert f"unchanged {deployment.apache_site}" in output, output
    assert {path: path.read_text() for path in before} == before
    deployment.reload_apache()
    assert admin.get("/").status_code == 200      # the session survived the upgrade
    assert "Hosts" in admin.get("/hosts/").text
