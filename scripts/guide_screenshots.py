#!/usr/bin/env python3
"""The user's guide's screenshots (docs/user-guide.md, docs/user-guide.zh.md), in English
and in Simplified Chinese: docs/guide/en-*.png and docs/guide/zh-*.png.

    .venv/bin/python scripts/guide_screenshots.py

One command, run again at will (after the translations change, say): it serves LouCloud
on a free port of 127.0.0.1 from a throwaway SQLite database and a simulated host
(libvirt's test driver, as the tests do), fills it with two ordinary users — alice, who
reads English, and wangfang, whose language is 简体中文 — each with SSH keys and VMs, one
running with a snapshot, then drives Debian's Chromium through Playwright and overwrites
every PNG. Nothing outside docs/guide/ and a temporary folder is touched.

Needs /usr/bin/chromium, the Python packages of requirements-test.txt (Playwright), and
a font with Chinese characters (fonts-wqy-microhei or fonts-noto-cjk), or the Chinese
pictures show empty boxes."""
from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from loucloud import create_app  # noqa: E402
from loucloud.extensions import db  # noqa: E402
from loucloud.models import VM, Host, User  # noqa: E402
from loucloud.services.hypervisors import close_pool  # noqa: E402
from tests.factories import make_user, new_public_key, write_test_node  # noqa: E402

OUT = ROOT / "docs" / "guide"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "correct horse battery"   # every account's, in this throwaway database only

# Who is photographed in each language, and what each of them owns.
PEOPLE = {
    "en": {"username": "alice", "full_name": "Alice Martin", "locale": "en",
           "accept": "en-US,en;q=0.9", "browser_locale": "en-US",
           "key": ("laptop", "alice@laptop"),
           "running": "web-1", "shut_off": "db-1", "new": "web-2",
           "snapshot": "before-upgrade"},
    "zh": {"username": "wangfang", "full_name": "王芳", "locale": "zh_CN",
           "accept": "zh-CN,zh;q=0.9", "browser_locale": "zh-CN",
           "key": ("笔记本", "wangfang@laptop"),
           "running": "实验机-1", "shut_off": "数据库", "new": "实验机-2",
           "snapshot": "before-lab2"},
}


# --- the data -------------------------------------------------------------------------

def build_app(folder: Path):
    url = f"sqlite:///{folder / 'guide.sqlite'}"
    app = create_app("test", SQLALCHEMY_DATABASE_URI=url,
                     UPLOAD_DIR=str(folder / "uploads"), IMAGE_STORE=str(folder / "images"))
    with app.app_context():
        db.create_all()
        seed(folder)
    return app


def seed(folder: Path) -> None:
    """What `manage.py init` and an administrator's first hour make (an administrator,
    a host, a NAT network, a cloud image, two templates), then the two users' keys, VMs
    and snapshot, all through LouCloud's own services."""
    from loucloud.services import hosts as host_service
    from loucloud.services import images, keys
    from loucloud.services import networks as network_service
    from loucloud.services import templates as template_service
    from loucloud.services.vms import create as vm_create
    from loucloud.services.vms import snapshots

    make_user("admin", is_admin=True)
    uri = write_test_node(folder / "lab-1.xml", cpus=16, memory_mib=65536,
                          pools={"images": "/var/lib/images"},
                          volumes={"images": [("debian-12.qcow2", 2 << 30, "qcow2")]})
    host = host_service.add_host("lab-1", uri)
    errors = [e for _, e in network_service.create_network("lab", "10.20.0.0/24", [host]) if e]
    if errors:
        raise SystemExit(f"could not make the network: {errors}")
    image = images.add_image("debian-12", "/var/lib/images/debian-12.qcow2",
                             guest=images.Guest("linux", cloud_init=True,
                                                login_user="debian"))
    on_lab = template_service.Network("network", "lab")
    small = template_service.create_template(
        "small", template_service.Sizes(1, 1024, 10), image,
        "1 vCPU, 1 GiB: a shell, a small web server", network=on_lab)
    template_service.create_template(
        "medium", template_service.Sizes(2, 2048, 20), image,
        "2 vCPUs, 2 GiB: a database, a build", network=on_lab)
    for who in PEOPLE.values():
        user = db.session.get(User, make_user(who["username"]).id)
        user.full_name = who["full_name"]
        user.locale = who["locale"]
        db.session.commit()
        keys.add_key(user, who["key"][0], new_public_key(who["key"][1]))
        running = vm_create.create_vm(user, who["running"], small, start=True,
                                      password="guide-password-1")
        snapshots.create_snapshot(running, who["snapshot"])
        stopped = vm_create.create_vm(user, who["shut_off"], small, start=False,
                                      password="guide-password-2")
        as_on_a_real_host(running, stopped)


def as_on_a_real_host(*vms) -> None:
    """What a simulated host leaves out, in the database only: the first-boot disk's
    name (a real host's VM has one: the page then says what it carried, and Rebuild
    asks for a password) and the size a snapshot took."""
    for vm in (db.session.get(VM, vm.id) for vm in vms):
        vm.seed_volume = f"{vm.domain_name}-seed.iso"
        for snap in vm.snapshots:
            snap.size_bytes = 187 << 20
    db.session.commit()


def show_as_real_hosts() -> None:
    """A simulated host's VMs have no Console buttons (nothing really runs there) and
    carry a 'simulated' badge; the guide shows the pages as on a real host. Only in this
    process, and only for pages (GET): what is done (a create, POST) is done as on a
    simulated host, which takes no first-boot disk."""
    from flask import has_request_context, request

    simulated = Host.is_demo.fget
    Host.is_demo = property(lambda self: simulated(self) and not (
        has_request_context() and request.method == "GET"))


class Server:
    def __init__(self, app):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per request
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()


# --- the pictures ---------------------------------------------------------------------

def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    if found is None:
        raise SystemExit(f"{page.url}: nothing visible matches {selector}")
    return found


def save(page, name: str, *, top: float = 0, bottom: str | float | None = None,
         left: float = 0, right: float | None = None, pad: int = 16) -> Path:
    """A picture of the page from ``top`` to the bottom of the element ``bottom`` (or
    that y), between ``left`` and ``right``; the whole width by default."""
    if isinstance(bottom, str):
        found = box(page, bottom)
        bottom = found["y"] + found["height"] + pad
    width = page.evaluate("document.documentElement.scrollWidth")
    height = page.evaluate("document.documentElement.scrollHeight")
    bottom = min(bottom if bottom is not None else VIEWPORT["height"], height)
    right = min(right if right is not None else width, width)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": left, "y": top, "width": right - left, "height": bottom - top})
    return path


def photograph(browser, base: str, lang: str) -> list[Path]:
    who = PEOPLE[lang]
    context = browser.new_context(viewport=VIEWPORT, locale=who["browser_locale"],
                                  extra_http_headers={"Accept-Language": who["accept"]})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    shots: list[Path] = []
    p = f"{lang}-"

    # The login page, in the browser's language.
    page.goto(f"{base}/login")
    card = box(page, "main .row")
    shots.append(save(page, p + "login", top=0, bottom="#languages", left=card["x"] + 300,
                      right=card["x"] + card["width"] - 300, pad=40))

    page.fill("#username", who["username"])
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")

    # The VM list.
    page.goto(f"{base}/")
    page.wait_for_selector("#vms")
    page.wait_for_timeout(500)   # the state badges settle
    shots.append(save(page, p + "vms", bottom="main"))

    # The user menu, with the languages.
    page.click("#user-menu")
    page.wait_for_selector(".dropdown-menu.show")
    menu = box(page, ".dropdown-menu.show")
    shots.append(save(page, p + "language-menu", top=0, bottom=menu["y"] + menu["height"] + 12,
                      left=menu["x"] - 380, right=VIEWPORT["width"]))
    page.keyboard.press("Escape")

    # The New VM form, a name typed in.
    page.goto(f"{base}/vms/new")
    page.fill("#name", who["new"])
    page.select_option("#template_id", label=page.locator(
        "#template_id option", has_text="small").first.inner_text())
    shots.append(save(page, p + "new-vm", bottom="main .row.g-3"))

    # Created: the login password, shown once.
    with page.expect_navigation():
        page.click("#create-vm button[type=submit]")
    page.wait_for_selector("#vm-header")
    shots.append(save(page, p + "vm-created", bottom="#vm-header"))

    # A running VM's page: its actions, what it is, how to log in; then its snapshots.
    page.goto(f"{base}/")
    with page.expect_navigation():
        page.click(f"#vms a:text-is('{who['running']}')")
    page.wait_for_selector("#vm-snapshots")
    page.wait_for_timeout(500)
    # libvirt's test driver says "test" where a real host says kvm, and has no CPU mode
    # or CPU time: write what a KVM host shows.
    page.evaluate("""() => {
      const put = (key, text) => document.querySelectorAll(`[data-live=${key}]`)
        .forEach(el => { el.textContent = text; });
      put("domain_type", "kvm"); put("cpu_mode", "host-model"); put("cpu_time_s", "41.7");
    }""")
    shots.append(save(page, p + "vm", bottom="main > .row.g-3"))
    card = box(page, "#vm-snapshots")
    shots.append(save(page, p + "snapshots", top=card["y"] - 12, bottom="#vm-snapshots-area",
                      pad=0))

    # The Profile page: the quota, the password, the SSH keys.
    page.goto(f"{base}/profile")
    shots.append(save(page, p + "profile", bottom="#ssh-keys"))

    context.close()
    if errors:
        print(f"{lang}: errors in the pages' scripts: {errors}", file=sys.stderr)
    return shots


def prepare_assets() -> None:
    """What `make assets` makes, and the tests find ready: the front-end files (when
    missing) and the message catalogues compiled afresh (the Chinese pages' words)."""
    if not (ROOT / "loucloud" / "static" / "vendor" / "bootstrap").is_dir():
        subprocess.run([str(ROOT / "scripts" / "vendor-assets.sh")], check=True)
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "compile",
                    "-d", str(ROOT / "loucloud" / "translations")], check=True)


def has_chinese_font() -> bool:
    if not shutil.which("fc-list"):
        return True   # cannot tell
    found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", choices=sorted(PEOPLE), action="append",
                        help="only this language (repeat; default: both)")
    args = parser.parse_args()
    langs = args.lang or list(PEOPLE)
    if "zh" in langs and not has_chinese_font():
        raise SystemExit("No font with Chinese characters: apt-get install "
                         "fonts-wqy-microhei (or fonts-noto-cjk), then run this again.")
    from playwright.sync_api import sync_playwright

    prepare_assets()
    OUT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="loucloud-guide-"))
    try:
        app = build_app(folder)
        show_as_real_hosts()
        try:
            with Server(app) as server, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for lang in langs:
                        for path in photograph(browser, server.url, lang):
                            print(f"{path.relative_to(ROOT)}  "
                                  f"{path.stat().st_size // 1024} KiB")
                finally:
                    browser.close()
        finally:
            close_pool(app)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
