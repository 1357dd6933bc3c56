"""Uploading images in a real browser (Chromium): the page reads the file's header and
proposes the OS, sends the file in chunks with a progress bar and the time left, goes on
after the connection drops mid-upload, and lands on the image's page with its copies to
the hosts queued. Hosts are libvirt's test driver: the copy itself is the worker's
(tests/system/test_image_copies.py)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from loucloud.extensions import db
from loucloud.models import Image, Task
from tests.conftest import PASSWORD
from tests.factories import make_server, make_user, write_test_node
from tests.support import imagefiles as files
from tests.support.browser import login, shot

pytestmark = pytest.mark.browser
CHUNK = 256 * 1024


@pytest.fixture
def admin_page(app, live_server, page, tmp_path):
    app.config["UPLOAD_CHUNK_BYTES"] = CHUNK
    with app.app_context():
        make_user("admin", is_admin=True)
        for i in (1, 2):
            make_server(f"h{i}", write_test_node(tmp_path / f"h{i}.xml"))
    login(page, live_server.url, "admin", PASSWORD)
    return page


def test_a_qcow2_goes_up_in_chunks_with_progress_and_survives_a_dropped_connection(
        app, live_server, admin_page, tmp_path):
    page = admin_page
    path = files.qcow2_filled(tmp_path / "debian-disk.qcow2", 4 * 2 ** 20)
    size = path.stat().st_size
    assert size > 8 * CHUNK
    dropped = []

    def drop_once(route):  # the network fails under the 4th chunk, once
        if "offset=%d" % (3 * CHUNK) in route.request.url and not dropped:
            dropped.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()
    page.route(re.compile(r".*/images/uploads/[0-9a-f]+/chunk.*"), drop_once)
    page.goto(f"{live_server.url}/images/upload")
    page.set_input_files("input[type=file]", str(path))
    expect(page.locator("#file-facts")).to_contain_text("qcow2")
    assert page.input_value("input[name=name]") == "debian-disk"  # from the file's name
    page.fill("input[name=sha256]", files.sha256(path))
    with page.expect_navigation(url=re.compile(r"/images/\d+$"), timeout=60000):
        page.click("#upload-start")
    assert dropped, "the connection was never cut"
    shot(page, "image-uploaded")
    text = page.inner_text("main")
    assert "h1: waiting for the worker" in text and "h2: waiting for the worker" in text
    assert files.sha256(path) in text
    with app.app_context():
        image = db.session.execute(db.select(Image)).scalar_one()
        assert (image.name, image.format, image.file_size) == ("debian-disk", "qcow2", size)
        assert db.session.execute(db.select(Task.kind)).scalars().all() == ["image.copy"]
    assert page.js_errors == [] or all("net::ERR_CONNECTION_RESET" in e
                                       for e in page.js_errors)


def test_the_page_says_runs_of_zeros_instead_of_sending_them(app, live_server, admin_page,
                                                           tmp_path):
    """A raw disk that is mostly empty: the page sends its data and says its runs of
    zeros (?zeros=N, no body); the image checks out with the file's SHA-256 and
    LouCloud's copy keeps the zeros as a hole."""
    page = admin_page
    path = files.mostly_zeros(tmp_path / "empty-disk.img", 8 * 2 ** 20)
    requests = []

    def seen(route):
        requests.append((route.request.url, len(route.request.post_data_buffer or b"")))
        route.continue_()
    page.route(re.compile(r".*/images/uploads/[0-9a-f]+/chunk.*"), seen)
    page.goto(f"{live_server.url}/images/upload")
    page.set_input_files("input[type=file]", str(path))
    expect(page.locator("#file-facts")).to_contain_text("raw")
    page.fill("input[name=sha256]", files.sha256(path))
    with page.expect_navigation(url=re.compile(r"/images/\d+$"), timeout=60000):
        page.click("#upload-start")
    said = [int(re.search(r"zeros=(\d+)", url).group(1)) for url, body in requests
            if "zeros=" in url and body == 0]
    sent = sum(body for url, body in requests if "zeros=" not in url)
    # 1.6 MiB of data sent; the rest, 6.4 MiB of zeros, said in two runs
    assert sent + sum(said) == path.stat().st_size and sent < 2 * 2 ** 20, requests
    assert len(said) == 2, requests
    assert files.sha256(path) in page.inner_text("main")
    with app.app_context():
        image = db.session.execute(db.select(Image)).scalar_one()
        assert (image.format, image.sha256) == ("raw", files.sha256(path))
        assert Path(image.path).read_bytes() == path.read_bytes()
        assert os.stat(image.path).st_blocks * 512 < 3 * 2 ** 20
    assert page.js_errors == []


def test_progress_shows_while_it_goes_and_an_iso_gets_its_os_proposed(
        app, live_server, admin_page, tmp_path):
    page = admin_page
    path = files.iso(tmp_path / "debian-11.6.0-amd64-netinst.iso", payload=6 * 2 ** 20)
    slow = []

    def slow_chunks(route):  # a slow line: each chunk takes a moment
        slow.append(1)
        page.wait_for_timeout(150)
        route.continue_()
    page.route(re.compile(r".*/chunk.*"), slow_chunks)
    page.goto(f"{live_server.url}/images/upload")
    page.set_input_files("input[type=file]", str(path))
    expect(page.locator("#file-facts")).to_contain_text("Debian 11", timeout=10000)
    facts = page.inner_text("#file-facts")
    assert "iso" in facts and "Debian 11.6.0 amd64 n" in facts
    assert page.input_value("select[name=os_type]") == "linux"
    page.click("#upload-start")
    bar = page.locator("#upload-progress .progress")
    for _ in range(600):  # the bar moves while the chunks go
        if float(bar.get_attribute("aria-valuenow") or 0) > 20:
            break
        page.wait_for_timeout(100)
    assert 20 < float(bar.get_attribute("aria-valuenow")) < 100
    status = page.inner_text("#upload-status")
    assert re.search(r"of \d+(\.\d)? MiB — .*/s, about .* left", status), status
    shot(page, "image-upload-progress")
    page.wait_for_url(re.compile(r"/images/\d+$"), timeout=60000)
    assert "(install medium)" in page.inner_text("main")
    assert len(slow) >= 6


def test_a_file_that_lies_about_its_format_is_refused_in_the_page(
        app, live_server, admin_page, tmp_path):
    page = admin_page
    path = files.raw_with_data(tmp_path / "renamed.qcow2", 2 * 2 ** 20)
    page.goto(f"{live_server.url}/images/upload")
    page.set_input_files("input[type=file]", str(path))
    page.wait_for_selector("#upload-error:not(.d-none)")
    assert "named .qcow2 but is a raw file" in page.inner_text("#upload-error")
    page.click("#upload-start")
    expect(page.locator("#upload-error")).to_contain_text("Nothing was kept", timeout=30000)
    assert "is not a qcow2 image" in page.inner_text("#upload-error")
    shot(page, "image-upload-refused")
    with app.app_context():
        assert db.session.execute(db.select(Image)).first() is None
