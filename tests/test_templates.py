"""Templates (flavors): the sizes users choose from, checked against their image, and
never reaching back into the VMs already made from them."""
from __future__ import annotations

import re

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Template
from loucloud.services import images, hosts
from tests.conftest import BASE_IMAGE
from tests.factories import make_vm


def _catalog(app, uri) -> dict[str, int]:
    """A host and its two images (base: qcow2, 1 GiB; raw: 2 GiB). Returns image ids."""
    with app.app_context():
        hosts.add_host("h1", uri)
        return {"base": images.add_image("base", BASE_IMAGE, "linux").id,
                "raw": images.add_image("raw", "/var/lib/images/base.raw", "linux").id}


def _templates(app) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(db.select(Template).order_by(Template.id)).scalars()
        return [(t.name, t.image.name, t.vcpus, t.memory_mib, t.disk_gib) for t in rows]


def _template_id(app, name) -> int:
    with app.app_context():
        return db.session.execute(db.select(Template.id).where(Template.name == name)).scalar()


def _form(image_id, name="small", vcpus=1, memory_mib=512, disk_gib=1, notes=""):
    return {"name": name, "image_id": image_id, "vcpus": vcpus, "memory_mib": memory_mib,
            "disk_gib": disk_gib, "notes": notes}


def _errors(response) -> list[str]:
    return re.findall(r'<div class="invalid-feedback">([^<]*)</div>',
                      response.get_data(as_text=True))


# -- create ---------------------------------------------------------------------------
def test_create_template(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    response = as_admin.post("/templates/new", _form(ids["base"], vcpus=2, memory_mib=2048,
                                                     disk_gib=1, notes="for tests"))
    assert response.status_code == 302
    assert _templates(app) == [("small", "base", 2, 2048, 1)]
    page = as_admin.get("/templates/").get_data(as_text=True)
    assert re.search(r'data-template="small">.*?for tests.*?base.*?2.0 GiB.*?1 GiB', page, re.S)


def test_disk_must_hold_the_qcow2_image(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    response = as_admin.post("/templates/new", _form(ids["base"], disk_gib=0))
    assert response.status_code == 400 and _errors(response)
    assert _templates(app) == []


def test_disk_must_hold_the_raw_image(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    response = as_admin.post("/templates/new", _form(ids["raw"], disk_gib=1))
    assert response.status_code == 400
    assert _errors(response) == ["The image raw needs at least 2 GiB."]
    assert _templates(app) == []
    assert as_admin.post("/templates/new", _form(ids["raw"], disk_gib=2)).status_code == 302
    assert _templates(app) == [("small", "raw", 1, 512, 2)]


def test_image_choices_tell_the_minimum_disk(app, as_admin, test_host):
    _catalog(app, test_host)
    page = as_admin.get("/templates/new").get_data(as_text=True)
    assert "base (qcow2, min 1 GiB)" in page and "raw (raw, min 2 GiB)" in page


@pytest.mark.parametrize("field, value", [
    ("vcpus", 0), ("vcpus", 257), ("vcpus", -1), ("vcpus", "two"), ("vcpus", "1.5"),
    ("vcpus", ""), ("memory_mib", 63), ("memory_mib", 4 * 1024 * 1024 + 1),
    ("memory_mib", "512MiB"), ("memory_mib", "1e3"), ("disk_gib", 65537),
    ("disk_gib", "ten"), ("disk_gib", "99999999999999999999999"),
])
def test_limits_are_form_errors_and_nothing_is_saved(app, as_admin, test_host, field, value):
    ids = _catalog(app, test_host)
    data = _form(ids["base"])
    data[field] = value
    response = as_admin.post("/templates/new", data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(rf'id="{field}"[^>]*is-invalid|is-invalid[^>]*id="{field}"', page), \
        f"no error shown on {field}"
    assert _templates(app) == []


def test_limits_at_the_edges_are_accepted(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    assert as_admin.post("/templates/new", _form(ids["base"], "tiny", 1, 64, 1)) \
        .status_code == 302
    assert as_admin.post("/templates/new", _form(ids["base"], "huge", 256, 4 * 1024 * 1024,
                                                 65536)).status_code == 302
    assert [t[0] for t in _templates(app)] == ["tiny", "huge"]


@pytest.mark.parametrize("image_id", [0, 999, "x"])
def test_unknown_image_is_refused(app, as_admin, test_host, image_id):
    _catalog(app, test_host)
    response = as_admin.post("/templates/new", _form(image_id))
    assert response.status_code == 400
    assert _templates(app) == []


def test_duplicate_name_is_refused(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    as_admin.post("/templates/new", _form(ids["base"]))
    response = as_admin.post("/templates/new", _form(ids["raw"], disk_gib=4))
    assert response.status_code == 400
    assert _errors(response) == ["A template with this name exists."]
    assert _templates(app) == [("small", "base", 1, 512, 1)]


def test_bad_name_is_refused(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    for name in ("<script>", " ", "-lead", "x" * 65):
        response = as_admin.post("/templates/new", _form(ids["base"], name=name))
        assert response.status_code == 400, name
    assert _templates(app) == []


def test_new_template_page_sends_to_add_image_when_there_is_none(app, as_admin, test_host):
    with app.app_context():
        hosts.add_host("h1", test_host)
    response = as_admin.get("/templates/new")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/images/new")
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Add an image first: a template is made from one." in page
    response = as_admin.post("/templates/new", _form(1))
    assert response.status_code == 302 and _templates(app) == []


# -- edit -----------------------------------------------------------------------------
def test_edit_template(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    as_admin.post("/templates/new", _form(ids["base"]))
    tid = _template_id(app, "small")
    response = as_admin.post(f"/templates/{tid}/edit",
                             _form(ids["raw"], "medium", 4, 4096, 20))
    assert response.status_code == 302
    assert _templates(app) == [("medium", "raw", 4, 4096, 20)]


def test_edit_checks_like_create(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    as_admin.post("/templates/new", _form(ids["base"]))
    as_admin.post("/templates/new", _form(ids["base"], "other"))
    tid = _template_id(app, "small")
    response = as_admin.post(f"/templates/{tid}/edit", _form(ids["raw"], disk_gib=1))
    assert _errors(response) == ["The image raw needs at least 2 GiB."]
    response = as_admin.post(f"/templates/{tid}/edit", _form(ids["base"], "other"))
    assert _errors(response) == ["A template with this name exists."]
    response = as_admin.post(f"/templates/{tid}/edit", _form(ids["base"], vcpus=257))
    assert response.status_code == 400
    # Saving under its own name is fine.
    assert as_admin.post(f"/templates/{tid}/edit", _form(ids["base"], vcpus=3)) \
        .status_code == 302
    assert _templates(app) == [("small", "base", 3, 512, 1), ("other", "base", 1, 512, 1)]


def test_edit_does_not_change_existing_vms(app, as_admin, user, test_host):
    ids = _catalog(app, test_host)
    as_admin.post("/templates/new", _form(ids["base"], vcpus=1, memory_mib=512, disk_gib=2))
    tid = _template_id(app, "small")
    with app.app_context():
        vm = make_vm(user.id, "vm1", tid, start=False)
    response = as_admin.post(f"/templates/{tid}/edit", _form(ids["base"], "small", 4, 4096, 10))
    assert response.status_code == 302
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Existing VMs keep their sizes." in page
    assert _templates(app) == [("small", "base", 4, 4096, 10)]
    with app.app_context():
        row = db.session.get(VM, vm.id)
        assert (row.template_id, row.vcpus, row.memory_mib, row.disk_gib) == (tid, 1, 512, 2)


# -- delete ---------------------------------------------------------------------------
def test_delete_refused_while_a_vm_uses_it(app, as_admin, user, test_host):
    ids = _catalog(app, test_host)
    as_admin.post("/templates/new", _form(ids["base"], disk_gib=2))
    tid = _template_id(app, "small")
    with app.app_context():
        make_vm(user.id, "vm1", tid, start=False)
    response = as_admin.post(f"/templates/{tid}/delete", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "1 VM uses small. Delete them first." in page
    assert re.search(r'data-template="small">.*?<td class="text-end">1</td>', page, re.S)
    assert [t[0] for t in _templates(app)] == ["small"]


def test_delete_template(app, as_admin, test_host):
    ids = _catalog(app, test_host)
    as_admin.post("/templates/new", _form(ids["base"]))
    as_admin.post("/templates/new", _form(ids["base"], "kept"))
    tid = _template_id(app, "small")
    response = as_admin.post(f"/templates/{tid}/delete", follow_redirects=True)
    assert "Template small deleted." in response.get_data(as_text=True)
    assert [t[0] for t in _templates(app)] == ["kept"]
    assert as_admin.get(f"/templates/{tid}/edit").status_code == 404


def test_templates_pages_are_for_administrators(app, as_user, test_host):
    ids = _catalog(app, test_host)
    assert as_user.get("/templates/").status_code in (302, 403)
    assert as_user.post("/templates/new", _form(ids["base"])).status_code in (302, 403)
    assert _templates(app) == []
