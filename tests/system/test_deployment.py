"""Production set-up, for real: Apache + mod_wsgi with deploy/apache-wsgi.conf (HTTPS),
MariaDB, the console proxy behind Apache on the same origin, two real libvirtd hosts."""
from __future__ import annotations

import re
import ssl
import threading
import time

import pytest
import requests
from websockets.sync.client import connect

from tests.support import rfb
from tests.support.deployment import Deployment, WebClient, unavailable_reason
from tests.support.figures import figure


@pytest.fixture(scope="module")
def deployment(mariadb):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    site = Deployment(mariadb.create_database("loucloud_deploy")).prepare()
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
    assert 500 not in statuses and all(isinstance(s, int) for s in statuses)
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
