"""A VM's last error and an upload's refusal, in each reader's language (issue 16,
"Chinese and English"): written by one person's action (here an English reader's) or by
the worker, they are stored as messages with their values (services/said.py) and read in
the reader's language: the VM page, the VM list, the VM's JSON and the API; the upload's
JSON. Rows written before (plain text) read as they were. Real parts: libvirt's test
driver, the web client."""
from __future__ import annotations

import json

from loucloud.extensions import db
from loucloud.models import VM, Host, Upload
from tests.factories import cut_off_host
from tests.support.vms import catalog, create, vms  # noqa: F401 (catalog: a fixture)
from tests.test_uploads import begin, finish, hosts, send_all  # noqa: F401 (hosts: a fixture)
from tests.support import imagefiles as files

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en"}


def _shown(client, vm_id: int, headers: dict) -> list[str]:
    """The VM's error as its page, the list, its JSON and the API show it."""
    detail = client.get(f"/vms/{vm_id}", headers=headers)
    listed = client.get("/", headers=headers)
    own = client.get(f"/vms/{vm_id}.json", headers=headers)
    api = client.get(f"/api/v1/vms/{vm_id}", headers=headers)
    assert [r.status_code for r in (detail, listed, own, api)] == [200] * 4
    return [detail.get_data(as_text=True), listed.get_data(as_text=True),
            json.loads(own.get_data(as_text=True))["error"], api.get_json()["error"]]


def test_a_delete_left_unfinished_in_english_reads_in_chinese(app, as_user, catalog,
                                                             tmp_path):
    create(as_user, "stranded", catalog.id)
    [vm] = vms(app)
    uri = cut_off_host(app, vm.host_id, tmp_path)
    response = as_user.post(f"/vms/{vm.id}/delete",
                            headers={"Accept": "application/json", **EN})
    assert response.status_code == 503
    with app.app_context():
        row = db.session.get(VM, vm.id)
        # stored as the message and its values, not as the English of the one who acted
        assert json.loads(row.last_error)["said"] == "Delete did not finish: %(error)s"
        db.session.get(Host, vm.host_id).uri = uri
        db.session.commit()

    for shown in _shown(as_user, vm.id, ZH):
        assert "删除未完成：" in shown and "Delete did not finish" not in shown
    for shown in _shown(as_user, vm.id, EN):
        assert "Delete did not finish: " in shown and "删除未完成" not in shown

    # An older row (plain English) reads as it was written, in either language.
    with app.app_context():
        db.session.get(VM, vm.id).last_error = "Delete did not finish: host gone"
        db.session.commit()
    for shown in _shown(as_user, vm.id, ZH):
        assert "Delete did not finish: host gone" in shown


def test_an_upload_refused_in_english_reads_in_chinese(app, as_admin, hosts, tmp_path):
    path = files.qcow2(tmp_path / "good.qcow2", 8 * 2 ** 20)
    begun = begin(as_admin, "bad", path, sha256="ab" * 32)
    assert begun.status_code == 201, begun.get_json()
    upload_id = begun.get_json()["id"]
    send_all(as_admin, upload_id, path)
    refused = finish(as_admin, upload_id)
    assert refused.status_code == 400 and "SHA-256 is" in refused.get_json()["error"]
    with app.app_context():
        stored = db.session.get(Upload, upload_id).error
    assert json.loads(stored)["said"] == \
        "The file's SHA-256 is %(sha)s, not the %(given)s you gave."

    zh = as_admin.get(f"/images/uploads/{upload_id}",
                      headers={"Accept": "application/json", **ZH}).get_json()["error"]
    en = as_admin.get(f"/images/uploads/{upload_id}",
                      headers={"Accept": "application/json", **EN}).get_json()["error"]
    assert zh.startswith("该文件的 SHA-256 是") and "ab" * 32 in zh
    assert en.startswith("The file's SHA-256 is") and "ab" * 32 in en
