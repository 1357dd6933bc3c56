"""The images pages and services on libvirt's test driver: an image is a file that
already lies on the hosts; LouCloud finds it, records it and never touches it."""
from __future__ import annotations

import re

import pytest
from hypothesis import example, given

from loucloud.extensions import db
from loucloud.models import Image, Host, Template
from loucloud.services import templates as template_service
from loucloud.services.hypervisors import pool
from loucloud.services import FieldError
from loucloud.services.images import check_path
from loucloud.virt import xml
from tests.conftest import BASE_IMAGE
from tests.factories import make_server, make_vm, write_test_node
from tests.support.fuzz import FUZZ, counted, host_state, path_text
from tests.support.fuzz_web import submit, world  # noqa: F401 (world: a fixture)

GIB = 1024 ** 3


def _images(app) -> list[Image]:
    with app.app_context():
        rows = db.session.execute(db.select(Image).order_by(Image.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def _presence(page: str, image: str) -> dict[str, str]:
    """Host name -> data-present ('yes', 'no', 'unknown') in the image's row of the list."""
    row = re.search(rf'<tr data-image="{re.escape(image)}">(.*?)</tr>', page, re.S)
    assert row, f"no row for {image}"
    return dict(re.findall(r'data-host="([^"]+)" data-present="([^"]+)"', row.group(1)))


def _on_host(app, uri, fn, *args):
    """Run ``fn(conn, *args)`` on the app's own connection to the host: the test driver
    keeps its state per connection, so a second connection would see another host."""
    with app.app_context():
        return pool().call(uri, fn, *args, timeout=5)


def _add_host(client, name, uri):
    assert client.post("/hosts/new", {"name": name, "uri": uri}).status_code == 302


def _add_image(client, path=BASE_IMAGE, name="base", os_type="linux"):
    return client.post("/images/new", {"name": name, "path": path, "os_type": os_type})


def _make_volume(conn, volume_xml):
    conn.storagePoolLookupByName("images").createXML(volume_xml, 0)


# -- add ------------------------------------------------------------------------------
def test_add_image_records_format_size_and_presence(app, as_admin, test_host, test_host2):
    _add_host(as_admin, "h1", test_host)
    _add_host(as_admin, "h2", test_host2)
    response = _add_image(as_admin)
    assert response.status_code == 302
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Image base added: qcow2, found on 2 hosts." in page
    [image] = _images(app)
    assert (image.name, image.path, image.format, image.virtual_size, image.os_type) == \
        ("base", BASE_IMAGE, "qcow2", GIB, "linux")
    listing = as_admin.get("/images/").get_data(as_text=True)
    assert _presence(listing, "base") == {"h1": "yes", "h2": "yes"}
    assert "1.0 GiB" in listing


def test_raw_image_on_one_host_only(app, as_admin, test_host, tmp_path):
    bare = write_test_node(tmp_path / "bare.xml", pools={"images": "/var/lib/images"})
    _add_host(as_admin, "h1", test_host)
    _add_host(as_admin, "h2", bare)
    assert _add_image(as_admin, "/var/lib/images/base.raw", "raw").status_code == 302
    [image] = _images(app)
    assert (image.format, image.virtual_size) == ("raw", 2 * GIB)
    listing = as_admin.get("/images/").get_data(as_text=True)
    assert _presence(listing, "raw") == {"h1": "yes", "h2": "no"}


def test_windows_image_records_its_os_type(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    assert _add_image(as_admin, name="win", os_type="windows").status_code == 302
    [image] = _images(app)
    assert image.os_type == "windows"
    assert re.search(r'data-image="win">.*?<td>windows</td>',
                     as_admin.get("/images/").get_data(as_text=True), re.S)


def test_path_on_no_host_is_a_form_error_and_nothing_is_saved(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    response = _add_image(as_admin, "/var/lib/images/missing.qcow2")
    assert response.status_code == 400
    assert "No file at /var/lib/images/missing.qcow2 on any host (checked on h1)" in \
        response.get_data(as_text=True)
    response = _add_image(as_admin, "/srv/nowhere/base.qcow2")
    assert response.status_code == 400
    assert "No file at /srv/nowhere/base.qcow2 on any host" in response.get_data(as_text=True)
    assert _images(app) == []


def _pools(conn) -> dict[str, bool]:
    return {p.name(): bool(p.isActive()) for p in conn.listAllStoragePools(0)}


def test_looking_for_a_file_leaves_the_host_pools_as_they_were(app, as_admin, test_host):
    """A directory no pool covers gets a transient pool for the look only; a pool that
    covers it but was stopped is stopped again: found, missing or refused alike."""
    _add_host(as_admin, "h1", test_host)
    _on_host(app, test_host, lambda c: c.storagePoolLookupByName("images").destroy())
    before = _on_host(app, test_host, _pools)
    assert before["images"] is False
    assert _add_image(as_admin, "/srv/nowhere/base.qcow2").status_code == 400
    assert _add_image(as_admin, "/var/lib/images/missing.qcow2").status_code == 400
    assert _add_image(as_admin).status_code == 302
    assert _on_host(app, test_host, _pools) == before
    assert [i.format for i in _images(app)] == ["qcow2"]


def test_no_host_at_all_is_a_form_error(app, as_admin):
    response = _add_image(as_admin)
    assert response.status_code == 400
    assert "Add a host first" in response.get_data(as_text=True)
    assert _images(app) == []


def test_duplicate_name_is_refused(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    response = _add_image(as_admin, "/var/lib/images/base.raw", "base")
    assert response.status_code == 400
    assert "An image with this name exists." in response.get_data(as_text=True)
    assert [i.path for i in _images(app)] == [BASE_IMAGE]


@pytest.mark.parametrize("path", [
    "../var/lib/images/base.qcow2",
    "/var/lib/images/../../../etc/shadow",
    "var/lib/images/base.qcow2",
    "base.qcow2",
    "/var/lib/images/../images/base.qcow2",
    "/var/lib/images/./base.qcow2",
    "/var/lib//images/base.qcow2",
    "//var/lib/images/base.qcow2",
    "/var/lib/images/",
    "/",
    "/var/lib/images/base\x00.qcow2",
    "/var/lib/images/ba\nse.qcow2",
    "/var/lib/images/base\x1b[2J.qcow2",
    "/var/lib/images/base\x7f.qcow2",
    "/" + "a" * 1024,
    "",
], ids=lambda p: repr(p)[:40])
def test_path_tricks_are_refused_before_any_host_is_asked(app, as_admin, test_host, path):
    with app.app_context():
        make_server("h1", test_host)  # recorded, never contacted yet
    response = _add_image(as_admin, path)
    assert response.status_code == 400
    assert 'class="invalid-feedback"' in response.get_data(as_text=True)
    assert _images(app) == []
    with app.app_context():
        assert pool().state(test_host).online is None, "a host was asked"


def test_the_path_check_itself():
    assert check_path("  /var/lib/images/base.qcow2 ") == BASE_IMAGE
    for bad in ("/var/lib/images/../images/base.qcow2", "/a/b/", "rel/x", "/a\tb",
                "/" + "a" * 1024):
        with pytest.raises(FieldError):
            check_path(bad)


def test_image_with_a_backing_file_is_refused(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _on_host(app, test_host, _make_volume, xml.build_overlay_volume(
        "layered.qcow2", GIB, BASE_IMAGE, "qcow2"))
    response = _add_image(as_admin, "/var/lib/images/layered.qcow2", "layered")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "On h1: /var/lib/images/layered.qcow2 has a backing file" in page
    assert BASE_IMAGE in page
    assert _images(app) == []


def test_a_directory_is_refused(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _on_host(app, test_host, _make_volume,
             "<volume type='dir'><name>sub</name><capacity unit='bytes'>0</capacity>"
             "<target><format type='dir'/></target></volume>")
    response = _add_image(as_admin, "/var/lib/images/sub", "sub")
    assert response.status_code == 400
    assert "On h1: /var/lib/images/sub is a directory" in response.get_data(as_text=True)
    assert _images(app) == []


def test_a_file_neither_qcow2_nor_raw_is_refused(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _on_host(app, test_host, _make_volume,
             "<volume><name>disk.vmdk</name><capacity unit='bytes'>1048576</capacity>"
             "<target><format type='vmdk'/></target></volume>")
    response = _add_image(as_admin, "/var/lib/images/disk.vmdk", "vmdk")
    assert response.status_code == 400
    assert "is a vmdk file" in response.get_data(as_text=True)
    assert _images(app) == []


def test_offline_host_does_not_stop_the_add(app, as_admin, test_host, tmp_path):
    _add_host(as_admin, "h1", test_host)
    with app.app_context():
        db.session.add(Host(name="ghost", hostname="ghost",
                              uri=f"qemu+unix:///system?socket={tmp_path / 'none.sock'}"))
        db.session.commit()
    response = _add_image(as_admin)
    assert response.status_code == 302
    [image] = _images(app)
    assert (image.format, image.virtual_size) == ("qcow2", GIB)
    listing = as_admin.get("/images/").get_data(as_text=True)
    assert _presence(listing, "base") == {"ghost": "unknown", "h1": "yes"}
    detail = as_admin.get(f"/images/{image.id}").get_data(as_text=True)
    assert "ghost: not checked" in detail and "h1: present" in detail


def test_recheck_after_adding_a_host_marks_it_present(app, as_admin, test_host, test_host2):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    [image] = _images(app)
    _add_host(as_admin, "h2", test_host2)
    assert _presence(as_admin.get("/images/").get_data(as_text=True), "base") == \
        {"h1": "yes", "h2": "unknown"}
    response = as_admin.post(f"/images/{image.id}/recheck", follow_redirects=True)
    assert "Presence on the hosts checked again." in response.get_data(as_text=True)
    assert _presence(as_admin.get("/images/").get_data(as_text=True), "base") == \
        {"h1": "yes", "h2": "yes"}


def test_recheck_marks_a_file_of_another_size_absent(app, as_admin, test_host, tmp_path):
    other = write_test_node(tmp_path / "other.xml", pools={"images": "/var/lib/images"},
                            volumes={"images": [("base.qcow2", 3 * GIB, "qcow2")]})
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    [image] = _images(app)
    _add_host(as_admin, "h2", other)
    as_admin.post(f"/images/{image.id}/recheck")
    assert _presence(as_admin.get("/images/").get_data(as_text=True), "base") == \
        {"h1": "yes", "h2": "no"}


# -- edit and delete ------------------------------------------------------------------
def test_rename_and_change_os_type(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    [image] = _images(app)
    response = as_admin.post(f"/images/{image.id}/edit",
                             {"name": "Debian 12 (base)", "os_type": "windows"})
    assert response.status_code == 302
    [image] = _images(app)
    assert (image.name, image.os_type, image.path) == ("Debian 12 (base)", "windows",
                                                        BASE_IMAGE)


def test_rename_to_a_taken_or_bad_name_is_refused(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    _add_image(as_admin, "/var/lib/images/base.raw", "raw")
    image = _images(app)[0]
    response = as_admin.post(f"/images/{image.id}/edit", {"name": "raw", "os_type": "linux"})
    assert response.status_code == 400
    assert "An image with this name exists." in response.get_data(as_text=True)
    response = as_admin.post(f"/images/{image.id}/edit",
                             {"name": "<b>x</b>", "os_type": "linux"})
    assert response.status_code == 400
    response = as_admin.post(f"/images/{image.id}/edit", {"name": "ok", "os_type": "beos"})
    assert response.status_code == 400
    assert sorted((i.name, i.os_type) for i in _images(app)) == \
        [("base", "linux"), ("raw", "linux")]


def test_delete_refused_while_a_template_uses_it(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    [image] = _images(app)
    with app.app_context():
        template_service.create_template("small", template_service.Sizes(1, 512, 2),
                                    db.session.get(Image, image.id))
    response = as_admin.post(f"/images/{image.id}/delete", follow_redirects=True)
    assert "Templates use base: small. Delete or change them first." in \
        response.get_data(as_text=True)
    assert [i.id for i in _images(app)] == [image.id]


def test_delete_forgets_the_image_but_keeps_the_file(app, as_admin, test_host):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    [image] = _images(app)
    response = as_admin.post(f"/images/{image.id}/delete", follow_redirects=True)
    assert "its file on the hosts is untouched" in response.get_data(as_text=True)
    assert _images(app) == []
    assert "base.qcow2" in _on_host(
        app, test_host, lambda c: c.storagePoolLookupByName("images").listVolumes())
    assert as_admin.get(f"/images/{image.id}").status_code == 404


def test_images_pages_are_for_administrators(app, as_user, test_host):
    assert as_user.get("/images/").status_code in (302, 403)
    response = _add_image(as_user)
    assert response.status_code in (302, 403)
    assert _images(app) == []


def test_delete_refused_while_a_vm_uses_it(app, as_admin, user, test_host):
    _add_host(as_admin, "h1", test_host)
    _add_image(as_admin)
    _add_image(as_admin, "/var/lib/images/base.raw", "raw")
    base, raw = _images(app)
    with app.app_context():
        template = template_service.create_template("small", template_service.Sizes(1, 512, 2),
                                               db.session.get(Image, base.id))
        template_id = template.id
        make_vm(user.id, "vm1", template_id, start=False)
        # The template moves to another image; vm1 still stands on base.
        template_service.update_template(db.session.get(Template, template_id), "small",
                                    template_service.Sizes(1, 512, 2),
                                    db.session.get(Image, raw.id))
    response = as_admin.post(f"/images/{base.id}/delete", follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == f"/images/{base.id}"  # refused: back on its page
    assert "1 VM still stands on base" in response.get_data(as_text=True)
    assert [i.name for i in _images(app)] == ["base", "raw"]


def test_all_hosts_offline_is_a_form_error(app, as_admin, tmp_path):
    with app.app_context():
        db.session.add(Host(name="ghost", hostname="ghost",
                              uri=f"qemu+unix:///system?socket={tmp_path / 'none.sock'}"))
        db.session.commit()
    response = _add_image(as_admin)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "No file at /var/lib/images/base.qcow2 on any host (checked on no host answered" \
        in page and "not checked on ghost (offline)" in page
    assert _images(app) == []


# -- found by the fuzz tests once: a refused path left a pool behind -------------------
def test_refused_image_path_leaves_no_pool_on_the_hosts(app, world):
    admin = world.poster("admin")
    with counted("web POST /images/new host pools") as count:
        @FUZZ
        @given(path=path_text(world.symlinks))
        @example(path="/nonexistent/x.qcow2")
        def run(path):
            uris = world.uris()
            before = host_state(app, uris)
            _, _, refused = submit(world, admin, "/images/new",
                                   [("name", "probe"), ("path", path), ("os_type", "linux")],
                                   count)
            if refused:
                after = host_state(app, uris)
                assert {u: s["pools"] for u, s in before.items()} == \
                    {u: s["pools"] for u, s in after.items()}, f"{path!r}: a pool was left"

        run()
