"""The host pool pages on libvirt's test driver, plus a socket that never answers."""
from __future__ import annotations

import json
import re
import time

from loucloud.extensions import db
from loucloud.models import Host
from loucloud.services import settings as settings_service
from tests.support.fuzz import counted
from tests.support.fuzz_cli import cli_world, run_cli  # noqa: F401 (cli_world: a fixture)
from tests.support.fuzz_web import submit, world  # noqa: F401 (world: a fixture)


def _hosts(app) -> list[Host]:
    with app.app_context():
        rows = db.session.execute(db.select(Host).order_by(Host.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def test_add_host_records_what_libvirt_reports(app, as_admin, test_host):
    response = as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    assert response.status_code == 302
    [host] = _hosts(app)
    assert (host.name, host.uri, host.cpus, host.memory_mib) == ("h1", test_host, 4, 8192)
    assert host.hypervisor == "TEST" and host.libvirt_version
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "simulated" in page and "8.0 GiB" in page


def test_unreachable_uri_is_a_form_error_and_nothing_is_saved(app, as_admin, tmp_path):
    uri = f"qemu+unix:///system?socket={tmp_path / 'none.sock'}"
    response = as_admin.post("/hosts/new", {"name": "ghost", "uri": uri})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Could not connect to" in page and "No such file or directory" in page
    assert _hosts(app) == []


def test_a_file_that_is_no_node_description_is_refused_without_its_content(app, as_admin,
                                                                         tmp_path):
    """The test driver reads test:///<path> in the app's process; libvirt's parse error
    would quote the file (/etc/shadow, the secret key...): the page says one sentence."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE-42 not for anybody\n<a>SECRET-TAG</b>\n")
    broken = tmp_path / "broken.xml"
    broken.write_text("<node><SECRET-TAG>x</wrong></node>\n")
    for path in (secret, broken, tmp_path, tmp_path / "missing.xml"):
        response = as_admin.post("/hosts/new", {"name": "x1", "uri": f"test://{path}"})
        assert response.status_code == 400, path
        page = response.get_data(as_text=True)
        assert "SECRET" not in page and "not a node description" in page, path
    assert _hosts(app) == []


def test_bad_uris_are_refused(app, as_admin):
    for uri in ("http://example.org/", "qemu:///nowhere", "qemu:///system x", "a" * 300,
                "ssh://root@h1"):
        response = as_admin.post("/hosts/new", {"name": "bad", "uri": uri})
        assert response.status_code == 400, uri
    assert _hosts(app) == []


def test_same_uri_twice_is_refused(app, as_admin, test_host):
    as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    response = as_admin.post("/hosts/new", {"name": "h1bis", "uri": test_host})
    assert "already in the pool" in response.get_data(as_text=True)
    assert len(_hosts(app)) == 1


def test_list_shows_both_hosts_with_live_figures(app, as_admin, test_host, test_host2):
    as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    as_admin.post("/hosts/new", {"name": "h2", "uri": test_host2})
    data = json.loads(as_admin.get("/hosts/status.json").get_data(as_text=True))
    assert [(h["name"], h["online"], h["cpus"], h["memory_mib"]) for h in data] == \
        [("h1", True, 4, 8192), ("h2", True, 8, 16384)]
    page = as_admin.get("/hosts/").get_data(as_text=True)
    assert page.count('data-state="online"') == 2


def test_dead_host_is_offline_within_the_bound_and_others_answer(app, as_admin, test_host,
                                                                silent_socket):
    as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    with app.app_context():
        db.session.add(Host(name="frozen", uri=silent_socket, hostname="frozen"))
        db.session.commit()
        settings_service.update_settings({"host_timeout": 1})
    start = time.monotonic()
    page = as_admin.get("/hosts/").get_data(as_text=True)
    first = time.monotonic() - start
    assert first < 1.8
    assert re.search(r'data-host="frozen".*?data-state="offline"', page, re.S)
    assert re.search(r'data-host="h1".*?data-state="online"', page, re.S)
    frozen = [s for s in _hosts(app) if s.name == "frozen"][0]
    assert frozen.offline_since is not None
    assert "since" in page
    # Later pages don't wait for the frozen host again.
    start = time.monotonic()
    as_admin.get("/hosts/")
    assert time.monotonic() - start < 0.5


def test_accepts_switch(app, as_admin, test_host):
    as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    [host] = _hosts(app)
    as_admin.post(f"/hosts/{host.id}/accepts", {"accepts": "0"})
    assert not _hosts(app)[0].accepts_vms
    as_admin.post(f"/hosts/{host.id}/accepts", {"accepts": "1"})
    assert _hosts(app)[0].accepts_vms


def test_remove_host(app, as_admin, test_host):
    as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    [host] = _hosts(app)
    response = as_admin.post(f"/hosts/{host.id}/delete")
    assert response.status_code == 302
    assert _hosts(app) == []


def test_remove_refused_while_vms_live_there(app, as_admin, user, test_host):
    from tests.test_users import _give_vm
    _give_vm(app, user)  # makes a host "h1" holding one VM
    [host] = _hosts(app)
    response = as_admin.post(f"/hosts/{host.id}/delete", follow_redirects=True)
    assert "still holds 1 LouCloud VM" in response.get_data(as_text=True)
    assert len(_hosts(app)) == 1


def test_refresh_reads_figures_again(app, as_admin, test_host):
    as_admin.post("/hosts/new", {"name": "h1", "uri": test_host})
    [host] = _hosts(app)
    with app.app_context():
        row = db.session.get(Host, host.id)
        row.cpus = 1
        db.session.commit()
    as_admin.post(f"/hosts/{host.id}/refresh")
    assert _hosts(app)[0].cpus == 4


# -- found by the fuzz tests once: libvirt's error quoted the file --------------------
def test_refused_host_uri_shows_no_file_content(app, world, tmp_path):
    admin = world.poster("admin")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE-42 not for anybody\n")
    (tmp_path / "secret-link").symlink_to(secret)
    with counted("web POST /hosts/new test:///<a file>") as count:
        for uri in [f"test://{secret}", f"test://{tmp_path}/secret-link"]:
            _, body, refused = submit(world, admin, "/hosts/new",
                                      [("name", "x1"), ("uri", uri)], count)
            assert refused and "SECRET-LINE-42" not in body, f"{uri}: the file's line is shown"


def test_cli_hosts_add_error_is_one_line_without_file_content(app, cli_world, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE-42 not for anybody\n")
    (tmp_path / "secret-link").symlink_to(secret)
    """libvirt's XML errors about a test:///<file> quote the file on more lines."""
    with counted("cli hosts add test:///<a file>") as count:
        for uri in [f"test://{secret}", f"test://{tmp_path}/secret-link", f"test://{tmp_path}"]:
            result, outcome = run_cli(cli_world, ["hosts", "add", "--", "x1", uri], count)
            assert outcome == "error" and "SECRET-LINE-42" not in result.output
