"""The REST API's images, uploads, tasks, templates and boot jobs, on libvirt's test
driver and real files (qcow2 from qemu-img): an upload in chunks resumed after a dropped
one, a wrong checksum refused with nothing kept, images added by path, edited, checked
and deleted, a task listed, cancelled and tried again, templates and boot jobs made by
the administrator and used by a user to create a VM."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from loucloud.extensions import db
from loucloud.models import VM, BootJob, Image, Task, Template, Upload
from loucloud.services import hosts as host_service
from loucloud.services import tasklist
from loucloud.services import uploads as upload_service
from tests.support import imagefiles as files
from tests.support.api import ApiClient, make_token

PROBLEM = "application/problem+json"
CHUNK = 256 * 1024
UPLOADS = "/api/v1/images/uploads"


@pytest.fixture
def hosts(app, test_host, test_host2, admin, user, other_user):
    """Two hosts (each with base.qcow2 and base.raw in its pool), small chunks."""
    with app.app_context():
        ids = [host_service.add_host("h1", test_host).id,
               host_service.add_host("h2", test_host2).id]
    app.config["UPLOAD_CHUNK_BYTES"] = CHUNK
    return ids


@pytest.fixture
def boss(app, hosts):
    return ApiClient(app, make_token(app, "admin"))


@pytest.fixture
def alice(app, hosts):
    return ApiClient(app, make_token(app, "alice"))


def chunk(client, upload_id, offset, data: bytes, *, claimed: int | None = None):
    """One chunk as raw bytes; ``claimed`` > len(data) is a connection that drops
    mid-chunk (the body stops before its Content-Length)."""
    return client.post(f"{UPLOADS}/{upload_id}/chunk?offset={offset}",
                       input_stream=io.BytesIO(data),
                       environ_overrides={"CONTENT_LENGTH": str(claimed or len(data))},
                       headers={"Content-Type": "application/octet-stream"})


def begin(client, name, path: Path, **fields):
    return client.post(UPLOADS, json={"name": name, "filename": path.name,
                                      "size": path.stat().st_size, **fields})


def leftovers(app) -> tuple[list, list, list]:
    """The staging folder, LouCloud's image store and the images recorded."""
    def files_in(folder: str) -> list[str]:
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    with app.app_context():
        images = sorted(db.session.execute(db.select(Image.name)).scalars())
    return files_in(app.config["UPLOAD_DIR"]), files_in(app.config["IMAGE_STORE"]), images


# -- uploads ----------------------------------------------------------------------------
def test_an_upload_in_chunks_resumes_after_a_dropped_one_and_keeps_its_sha256(
        app, boss, hosts, tmp_path):
    path = files.qcow2_filled(tmp_path / "disk.qcow2", 2 * 2 ** 20)   # 8 chunks and more
    data, sha = path.read_bytes(), files.sha256(path)
    assert len(data) > 4 * CHUNK
    r = begin(boss, "Debian disk", path, sha256=sha.upper(), cloud_init=True,
              login_user="debian", hosts=hosts)
    assert r.status_code == 201, r.json
    up = r.json
    assert r.headers["Location"].endswith(f"{UPLOADS}/{up['id']}")
    assert (up["offset"], up["state"], up["chunk_bytes"]) == (0, "receiving", CHUNK)
    for offset in (0, CHUNK):
        r = chunk(boss, up["id"], offset, data[offset:offset + CHUNK])
        assert r.status_code == 200 and r.json == {"offset": offset + CHUNK}
    # the connection drops after 1000 bytes of the third chunk: nothing of it is kept
    cut = chunk(boss, up["id"], 2 * CHUNK, data[2 * CHUNK:2 * CHUNK + 1000], claimed=CHUNK)
    assert cut.status_code == 409 and cut.mimetype == PROBLEM, cut.get_data(as_text=True)
    assert boss.get(f"{UPLOADS}/{up['id']}").json["offset"] == 2 * CHUNK
    # a chunk sent twice, or ahead: 409 with where the server is
    again = chunk(boss, up["id"], CHUNK, data[CHUNK:2 * CHUNK])
    assert again.status_code == 409 and again.mimetype == PROBLEM
    assert again.json["offset"] == 2 * CHUNK
    # too large a chunk: 413, and nothing written
    big = chunk(boss, up["id"], 2 * CHUNK, data[2 * CHUNK:3 * CHUNK + 1])
    assert big.status_code == 413 and big.mimetype == PROBLEM
    # the client starts again (the same name, file and size): the same upload, resumed
    listed = boss.get(UPLOADS).json
    assert [u["id"] for u in listed["items"]] == [up["id"]] and listed["total"] == 1
    resumed = begin(boss, "Debian disk", path, sha256=sha)
    assert resumed.status_code == 201
    assert (resumed.json["id"], resumed.json["offset"]) == (up["id"], 2 * CHUNK)
    upload_service._hashers.clear()    # the rest goes to another web process
    offset = resumed.json["offset"]
    while offset < len(data):
        r = chunk(boss, up["id"], offset, data[offset:offset + CHUNK])
        assert r.status_code == 200, r.json
        offset = r.json["offset"]
    r = boss.post(f"{UPLOADS}/{up['id']}/finish")
    assert r.status_code == 202, r.json
    image, task = r.json["image"], r.json["task"]
    assert r.headers["Location"].endswith(f"/api/v1/tasks/{task['id']}")
    assert (image["sha256"], image["format"], image["uploaded"]) == (sha, "qcow2", True)
    assert (image["cloud_init"], image["login_user"]) == (True, "debian")
    assert (task["kind"], task["state"]) == ("image.copy", "queued")
    # the task's URL answers, and the image's page shows its copy per host, not yet there
    assert boss.get(r.headers["Location"]).json["target"] == {
        "type": "image", "id": image["id"], "name": "Debian disk"}
    got = boss.get(f"/api/v1/images/{image['id']}").json
    assert [(c["host"], c["state"], c["present"]) for c in got["copies"]] == [
        ("h1", "queued", False), ("h2", "queued", False)]
    assert [t["id"] for t in got["tasks"]] == [task["id"]] and got["hosts"] == []
    with app.app_context():
        kept = Path(app.config["IMAGE_STORE"]) / db.session.get(Image, image["id"]).volume
    assert kept.read_bytes() == data and files.sha256(kept) == sha
    assert os.listdir(app.config["UPLOAD_DIR"]) == []
    assert boss.get(UPLOADS).json["total"] == 0
    # finished: no more chunks, no second finish
    assert chunk(boss, up["id"], 0, data[:10]).status_code == 409
    assert boss.post(f"{UPLOADS}/{up['id']}/finish").status_code == 409


def test_a_run_of_zeros_is_said_with_no_body_and_counts_in_the_sha256(app, boss, tmp_path):
    mib = 2 ** 20
    path = files.mostly_zeros(tmp_path / "empty.img", 6 * mib)
    data, sha = path.read_bytes(), files.sha256(path)
    up = begin(boss, "empty", path, sha256=sha).json
    assert up["zero_run_bytes"] == upload_service.ZERO_RUN_MAX
    offset = 0
    while offset < mib:
        offset = chunk(boss, up["id"], offset, data[offset:offset + CHUNK]).json["offset"]
    with_body = boss.post(f"{UPLOADS}/{up['id']}/chunk?offset={mib}&zeros=4",
                          data=b"\0\0\0\0", content_type="application/octet-stream")
    assert with_body.status_code == 422 and with_body.mimetype == PROBLEM
    past = boss.post(f"{UPLOADS}/{up['id']}/chunk?offset={mib}&zeros={6 * mib}")
    assert past.status_code == 422 and past.mimetype == PROBLEM
    elsewhere = boss.post(f"{UPLOADS}/{up['id']}/chunk?offset={2 * mib}&zeros={mib}")
    assert elsewhere.status_code == 409 and elsewhere.json["offset"] == mib
    said = boss.post(f"{UPLOADS}/{up['id']}/chunk?offset={mib}&zeros={2 * mib}")
    assert said.status_code == 200 and said.json == {"offset": 3 * mib}
    offset = 3 * mib
    while offset < len(data):
        offset = chunk(boss, up["id"], offset, data[offset:offset + CHUNK]).json["offset"]
    r = boss.post(f"{UPLOADS}/{up['id']}/finish")
    assert r.status_code == 202, r.json
    assert r.json["image"]["sha256"] == sha


def test_a_wrong_sha256_is_refused_and_nothing_is_kept(app, boss, tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 2 * 2 ** 20)
    up = begin(boss, "wrong", path, sha256="ab" * 32).json
    data = path.read_bytes()
    for offset in range(0, len(data), CHUNK):
        assert chunk(boss, up["id"], offset, data[offset:offset + CHUNK]).status_code == 200
    r = boss.post(f"{UPLOADS}/{up['id']}/finish")
    assert r.status_code == 422 and r.mimetype == PROBLEM
    assert "sha256" in r.json["errors"] and "Nothing was kept" in r.json["detail"]
    assert leftovers(app) == ([], [], [])
    with app.app_context():
        assert db.session.execute(db.select(Upload.state)).scalar() == "refused"
    assert boss.get(f"{UPLOADS}/{up['id']}").json["state"] == "refused"


def test_an_upload_abandoned_deletes_what_arrived(app, boss, tmp_path):
    path = files.raw_with_data(tmp_path / "disk.img", 4 * CHUNK)
    up = begin(boss, "gone", path).json
    assert chunk(boss, up["id"], 0, path.read_bytes()[:CHUNK]).status_code == 200
    assert os.listdir(app.config["UPLOAD_DIR"]) == [f"{up['id']}.part"]
    r = boss.post(f"{UPLOADS}/{up['id']}/abandon")
    assert r.status_code == 200 and "deleted" in r.json["message"]
    assert leftovers(app) == ([], [], [])
    assert boss.get(f"{UPLOADS}/{up['id']}").status_code == 404


def test_a_bad_upload_is_refused_by_field(app, boss, tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 2 ** 20)
    r = begin(boss, "", path, size=0, format="vhd", sha256="xyz", hosts=[0])
    assert r.status_code == 422 and r.mimetype == PROBLEM
    assert set(r.json["errors"]) == {"name", "size", "format", "sha256", "hosts.0"}
    r = begin(boss, "h", path, hosts=[999])                # the service's own check
    assert r.status_code == 422 and r.json["errors"] == {"hosts": "Choose hosts from the list."}
    up = begin(boss, "x", path).json
    r = boss.post(f"{UPLOADS}/{up['id']}/chunk?offset=-1", data=b"abc",
                  content_type="application/octet-stream")
    assert r.status_code == 422 and "offset" in r.json["errors"]
    assert boss.get(f"{UPLOADS}/not-an-upload").status_code == 404


def test_the_inspector_tells_a_files_format(app, boss, tmp_path):
    path = files.iso(tmp_path / "debian-11.6.0-amd64-netinst.iso")
    r = boss.post(f"{UPLOADS}/inspect?filename={path.name}", data=path.read_bytes()[:34816],
                  content_type="application/octet-stream")
    assert r.status_code == 200
    assert r.json == {"format": "iso", "volume_id": "Debian 11.6.0 amd64 n",
                      "os_name": "Debian 11", "os_type": "linux", "problem": ""}


def test_the_openapi_document_says_a_chunk_is_raw_bytes(app):
    doc = app.test_client().get("/api/v1/openapi.json").json
    body = doc["paths"][f"{UPLOADS}/{{upload_id}}/chunk"]["post"]["requestBody"]
    assert body["content"] == {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}


# -- images -----------------------------------------------------------------------------
def test_images_are_the_administrators(app, alice, boss):
    added = boss.post("/api/v1/images", json={"name": "base",
                                              "path": "/var/lib/images/base.qcow2"})
    for r in (alice.get("/api/v1/images"), alice.get(added.headers["Location"]),
              alice.post("/api/v1/images", json={"name": "mine", "path": "/x"}),
              alice.delete(added.headers["Location"]), alice.get(UPLOADS),
              alice.post(UPLOADS, json={"name": "mine"})):
        assert r.status_code == 403 and r.mimetype == PROBLEM
        assert "administrator" in r.json["detail"]
    assert leftovers(app)[2] == ["base"]


def test_an_image_added_by_path_edited_checked_and_deleted(app, boss):
    r = boss.post("/api/v1/images", json={"name": "raw disk",
                                          "path": "/var/lib/images/base.raw"})
    assert r.status_code == 201, r.json
    url = r.headers["Location"]
    assert url.endswith(f"/api/v1/images/{r.json['id']}")
    assert (r.json["format"], r.json["virtual_size"], r.json["uploaded"]) == \
        ("raw", 2 << 30, False)
    assert r.json["hosts"] == ["h1", "h2"]
    assert [(c["host"], c["state"]) for c in r.json["copies"]] == [("h1", "found"),
                                                                   ("h2", "found")]
    missing = boss.post("/api/v1/images", json={"name": "nope",
                                                "path": "/var/lib/images/none.qcow2"})
    assert missing.status_code == 422 and "path" in missing.json["errors"]
    taken = boss.post("/api/v1/images", json={"name": "raw disk",
                                              "path": "/var/lib/images/base.qcow2"})
    assert taken.status_code == 422 and "name" in taken.json["errors"]
    r = boss.patch(url, json={"os_type": "windows", "firmware": "uefi"})
    assert r.status_code == 200, r.json
    assert (r.json["name"], r.json["os_type"], r.json["firmware"]) == \
        ("raw disk", "windows", "uefi")
    bad = boss.patch(url, json={"cloud_init": True})    # a cloud image needs its login user
    assert bad.status_code == 422 and "login_user" in bad.json["errors"]
    r = boss.post(url + "/recheck")
    assert r.status_code == 200 and r.json["unreachable"] == []
    assert boss.post(url + "/copy").status_code == 409  # added by path: nothing to copy
    listed = boss.get("/api/v1/images").json
    assert [i["name"] for i in listed["items"]] == ["raw disk"] and listed["total"] == 1
    r = boss.delete(url + "?delete_copies=true")        # not uploaded: files untouched
    assert r.status_code == 200 and "untouched" in r.json["message"]
    assert boss.get(url).status_code == 404 and leftovers(app)[2] == []


def test_an_uploaded_image_waits_for_its_copy_then_goes_with_its_copies(app, boss,
                                                                         tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 2 ** 20)
    up = begin(boss, "small", path).json
    data = path.read_bytes()
    for offset in range(0, len(data), CHUNK):
        chunk(boss, up["id"], offset, data[offset:offset + CHUNK])
    done = boss.post(f"{UPLOADS}/{up['id']}/finish").json
    url = f"/api/v1/images/{done['image']['id']}"
    r = boss.delete(url)                 # its copy is under way
    assert r.status_code == 409 and "being copied" in r.json["detail"]
    assert boss.post(url + "/copy").status_code == 409
    assert boss.post(f"/api/v1/tasks/{done['task']['id']}/cancel").status_code == 200
    r = boss.post(url + "/copy")         # again, to the hosts that lack it
    assert r.status_code == 202, r.json
    assert r.headers["Location"].endswith(f"/api/v1/tasks/{r.json['id']}")
    assert r.json["kind"] == "image.copy"
    boss.post(f"/api/v1/tasks/{r.json['id']}/cancel")
    assert leftovers(app)[1] != []
    r = boss.delete(url + "?delete_copies=1")
    assert r.status_code == 200 and "with the copies LouCloud uploaded" in r.json["message"]
    assert leftovers(app) == ([], [], [])


# -- tasks ------------------------------------------------------------------------------
def test_a_task_listed_cancelled_and_tried_again(app, alice, boss):
    with app.app_context():
        from loucloud.models import User
        alices = tasklist.ping(db.session.execute(
            db.select(User).filter_by(username="alice")).scalar_one()).id
        admins = tasklist.ping(db.session.execute(
            db.select(User).filter_by(username="admin")).scalar_one()).id
    mine = alice.get("/api/v1/tasks").json
    assert [t["id"] for t in mine["items"]] == [alices] and mine["total"] == 1
    everyone = boss.get("/api/v1/tasks?state=queued").json
    assert [t["id"] for t in everyone["items"]] == [admins, alices]
    assert alice.get(f"/api/v1/tasks/{admins}").status_code == 404
    task = alice.get(f"/api/v1/tasks/{alices}").json
    assert (task["kind"], task["state"], task["owner"]) == ("ping", "queued", "alice")
    assert task["progress"] == 0 and task["remaining_seconds"] is None
    assert alice.post(f"/api/v1/tasks/{alices}/retry").status_code == 409   # not ended
    assert alice.post(f"/api/v1/tasks/{admins}/cancel").status_code == 404  # not hers
    r = alice.post(f"/api/v1/tasks/{alices}/cancel")
    assert r.status_code == 200 and r.json["task"]["state"] == "cancelled"
    assert r.json["message"] == f"Task {alices} cancelled."
    again = alice.post(f"/api/v1/tasks/{alices}/cancel")
    assert again.status_code == 409 and again.mimetype == PROBLEM
    assert alice.get("/api/v1/tasks?state=active").json["total"] == 0
    assert alice.get("/api/v1/tasks?state=cancelled").json["total"] == 1
    assert alice.get("/api/v1/tasks?state=lost").status_code == 422
    r = alice.post(f"/api/v1/tasks/{alices}/retry")
    assert r.status_code == 202, r.json
    new = r.json["id"]
    assert r.headers["Location"].endswith(f"/api/v1/tasks/{new}") and new != alices
    with app.app_context():      # the worker runs it
        from loucloud.services import tasks as task_service
        task_service.execute(new)
    done = alice.get(r.headers["Location"]).json
    assert (done["state"], done["progress"]) == ("succeeded", 1)
    assert "answered" in done["result"] and done["finished_at"].endswith("Z")
    with app.app_context():
        assert db.session.get(Task, new).owner.username == "alice"


def test_tasks_page_with_a_next_link(app, boss):
    with app.app_context():
        from loucloud.models import User
        admin = db.session.execute(db.select(User).filter_by(username="admin")).scalar_one()
        ids = [tasklist.ping(admin).id for _ in range(3)]
    first = boss.get("/api/v1/tasks?limit=2").json
    assert [t["id"] for t in first["items"]] == ids[:0:-1] and first["pages"] == 2
    assert [t["id"] for t in boss.get(first["next"]).json["items"]] == ids[:1]


# -- templates and boot jobs ------------------------------------------------------------
def test_templates_and_boot_jobs_made_by_the_administrator_and_used_by_a_user(
        app, alice, boss):
    image = boss.post("/api/v1/images", json={
        "name": "cloud", "path": "/var/lib/images/base.raw", "cloud_init": True,
        "login_user": "debian"}).json
    jobs = {}
    for name, extra in (("motd", {}), ("htop", {"user_choice": True,
                                                "description": "The htop package"})):
        r = boss.post("/api/v1/boot-jobs", json={"name": name, "script": "packages: [htop]"
                                                 if name == "htop" else "runcmd: [[ls]]",
                                                 **extra})
        assert r.status_code == 201, r.json
        assert r.headers["Location"].endswith(f"/api/v1/boot-jobs/{r.json['id']}")
        jobs[name] = r.json["id"]
    bad = boss.post("/api/v1/boot-jobs", json={"name": "bad", "script": "rm: -rf"})
    assert bad.status_code == 422 and "script" in bad.json["errors"]
    r = boss.post("/api/v1/templates", json={
        "name": "cloud small", "image_id": image["id"], "vcpus": 1, "memory_mib": 512,
        "disk_gib": 1, "boot_job_ids": [jobs["motd"]]})
    assert r.status_code == 422 and "disk_gib" in r.json["errors"]   # the image is 2 GiB
    r = boss.post("/api/v1/templates", json={
        "name": "cloud small", "image_id": image["id"], "vcpus": 1, "memory_mib": 512,
        "disk_gib": 2, "boot_job_ids": [jobs["motd"]], "notes": "for tests"})
    assert r.status_code == 201, r.json
    template_url = r.headers["Location"]
    assert (r.json["boot_job_ids"], r.json["vms"], r.json["notes"]) == \
        ([jobs["motd"]], 0, "for tests")
    r = boss.patch(template_url, json={"vcpus": 2, "nic_kind": "none"})
    assert r.status_code == 200 and (r.json["vcpus"], r.json["nic_kind"]) == (2, "none")
    assert r.json["boot_job_ids"] == [jobs["motd"]]     # what was not sent stays
    # alice sees the template as the new VM page shows it, and only the offered job
    seen = alice.get(template_url).json
    assert seen == {"id": seen["id"], "name": "cloud small", "vcpus": 2, "memory_mib": 512,
                    "disk_gib": 2, "image": "cloud", "cloud_init": True,
                    "install_media": False}
    assert [t["name"] for t in alice.get("/api/v1/templates").json["items"]] == \
        ["cloud small"]
    offered = alice.get("/api/v1/boot-jobs").json["items"]
    assert offered == [{"id": jobs["htop"], "name": "htop",
                        "description": "The htop package"}]
    assert alice.get(f"/api/v1/boot-jobs/{jobs['motd']}").status_code == 404
    for r in (alice.post("/api/v1/templates", json={"name": "mine"}),
              alice.patch(template_url, json={"vcpus": 64}), alice.delete(template_url),
              alice.post("/api/v1/boot-jobs", json={}),
              alice.delete(f"/api/v1/boot-jobs/{jobs['htop']}")):
        assert r.status_code == 403 and r.mimetype == PROBLEM
    # alice makes a VM of it with the job offered to her (a job not offered is refused;
    # libvirt's test driver boots nothing, so no seed carries them: test_vms_guest.py)
    refused = alice.post("/api/v1/vms", json={"name": "box", "template_id": seen["id"],
                                              "boot_job_ids": [jobs["motd"]]})
    assert refused.status_code == 422 and "boot_jobs" in refused.json["errors"]
    r = alice.post("/api/v1/vms", json={"name": "box", "template_id": seen["id"],
                                        "boot_job_ids": [jobs["htop"]]})
    assert r.status_code == 201, r.json
    assert r.json["state"] == "running" and r.json["password"]
    with app.app_context():
        vm = db.session.get(VM, r.json["id"])
        assert (vm.template_id, vm.vcpus, vm.memory_mib) == (seen["id"], 2, 512)
    # the template and the image stay while the VM stands on them
    assert boss.delete(template_url).status_code == 409
    assert boss.delete(f"/api/v1/images/{image['id']}").status_code == 409
    assert boss.get(template_url).json["vms"] == 1
    r = boss.patch(f"/api/v1/boot-jobs/{jobs['htop']}", json={"user_choice": False})
    assert r.status_code == 200 and r.json["user_choice"] is False
    assert r.json["script"] == "packages: [htop]\n"
    assert alice.get("/api/v1/boot-jobs").json["total"] == 0
    assert alice.delete(f"/api/v1/vms/{vm.id}").status_code == 200
    assert boss.delete(template_url).status_code == 200
    assert boss.delete(f"/api/v1/boot-jobs/{jobs['motd']}").status_code == 200
    with app.app_context():
        assert db.session.execute(db.select(Template)).first() is None
        assert db.session.execute(db.select(BootJob.name)).scalars().all() == ["htop"]
    assert alice.get(template_url).status_code == 404
