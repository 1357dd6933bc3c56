"""Uploading images through LouCloud (the JSON doors the page's script uses, and the
CLI): chunks at known offsets, resume after a dropped connection, the SHA-256 computed
while receiving, and the file checked from its own bytes. Real files: qcow2 from
qemu-img, ISO 9660 from pycdlib. The copy to hosts is tests/test_tasks.py's and the
system tests' (libvirt's test driver has no volume upload)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from loucloud.extensions import db
from loucloud.models import Image, Task, Upload
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from loucloud.services import uploads as upload_service
from tests.factories import make_server, write_test_node
from tests.support import imagefiles as files

CHUNK = 256 * 1024


@pytest.fixture
def hosts(app, tmp_path):
    with app.app_context():
        ids = [make_server(f"h{i}", write_test_node(tmp_path / f"h{i}.xml")).id
               for i in (1, 2)]
    app.config["UPLOAD_CHUNK_BYTES"] = CHUNK
    return ids


def _headers(client, **extra):
    return {"X-CSRFToken": client.csrf(), "Accept": "application/json", **extra}


def begin(client, name, path: Path, **fields):
    body = {"name": name, "filename": path.name, "size": path.stat().st_size, **fields}
    return client.http.post("/images/uploads", data=json.dumps(body),
                            headers=_headers(client, **{"Content-Type": "application/json"}))


def put(client, upload_id, offset, data: bytes, *, claimed: int | None = None):
    """One chunk; ``claimed`` > len(data) is a connection that drops mid-chunk."""
    return client.http.post(f"/images/uploads/{upload_id}/chunk?offset={offset}",
                           input_stream=io.BytesIO(data),
                           environ_overrides={"CONTENT_LENGTH": str(claimed or len(data))},
                           headers=_headers(client, **{
                               "Content-Type": "application/octet-stream"}))


def send_all(client, upload_id, path: Path, start: int = 0) -> int:
    data = path.read_bytes()
    offset = start
    while offset < len(data):
        r = put(client, upload_id, offset, data[offset:offset + CHUNK])
        assert r.status_code == 200, r.get_json()
        offset = r.get_json()["offset"]
    return offset


def finish(client, upload_id):
    return client.http.post(f"/images/uploads/{upload_id}/finish", headers=_headers(client))


def upload(client, name, path, **fields):
    r = begin(client, name, path, **fields)
    assert r.status_code == 201, r.get_json()
    send_all(client, r.get_json()["id"], path)
    return finish(client, r.get_json()["id"])


def _leftovers(app) -> tuple[list, list, list]:
    return (sorted(os.listdir(app.config["UPLOAD_DIR"])),
            sorted(os.listdir(app.config["IMAGE_STORE"]))
            if os.path.isdir(app.config["IMAGE_STORE"]) else [],
            _images(app))


def _images(app):
    with app.app_context():
        return [i.name for i in db.session.execute(db.select(Image)).scalars()]


def test_chunked_upload_records_a_qcow2_and_queues_its_copy(app, as_admin, hosts, tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 8 * 2 ** 20)
    r = upload(as_admin, "Debian disk", path, hosts=hosts)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["format"] == "qcow2" and body["sha256"] == files.sha256(path)
    assert body["task"]["kind"] == "image.copy" and body["task"]["state"] == "queued"
    with app.app_context():
        image = db.session.get(Image, body["image_id"])
        assert (image.format, image.virtual_size, image.file_size) == \
            ("qcow2", 8 * 2 ** 20, path.stat().st_size)
        assert sorted(loc.copy_state for loc in image.locations) == ["queued", "queued"]
        assert not any(loc.present for loc in image.locations)  # not usable before copied
        kept = Path(app.config["IMAGE_STORE"]) / image.volume
    assert kept.read_bytes() == path.read_bytes()
    assert os.listdir(app.config["UPLOAD_DIR"]) == []  # the staging file moved, not copied
    page = as_admin.get(f"/images/{body['image_id']}").get_data(as_text=True)
    assert "h1: waiting for the worker" in page and files.sha256(path) in page


def test_a_chunk_at_the_wrong_offset_is_told_where_the_server_is(app, as_admin, hosts,
                                                                   tmp_path):
    path = files.raw_with_data(tmp_path / "disk.img", 4 * 2 ** 20)
    up = begin(as_admin, "d", path).get_json()
    data = path.read_bytes()
    assert put(as_admin, up["id"], 0, data[:CHUNK]).get_json() == {"offset": CHUNK}
    again = put(as_admin, up["id"], 0, data[:CHUNK])  # sent twice: the server is past it
    assert again.status_code == 409 and again.get_json()["offset"] == CHUNK
    ahead = put(as_admin, up["id"], 3 * CHUNK, data[3 * CHUNK:4 * CHUNK])
    assert ahead.status_code == 409 and ahead.get_json()["offset"] == CHUNK


def test_a_dropped_connection_resumes_from_the_offset_and_the_checksum_holds(
        app, as_admin, hosts, tmp_path):
    path = files.raw_with_data(tmp_path / "disk.img", 6 * 2 ** 20)
    data = path.read_bytes()
    up = begin(as_admin, "resumed", path, sha256=files.sha256(path)).get_json()
    for offset in (0, CHUNK):
        assert put(as_admin, up["id"], offset, data[offset:offset + CHUNK]).status_code == 200
    cut = put(as_admin, up["id"], 2 * CHUNK, data[2 * CHUNK:2 * CHUNK + 1000], claimed=CHUNK)
    assert cut.status_code >= 400  # the connection dropped after 1000 bytes of the chunk
    status = as_admin.get(f"/images/uploads/{up['id']}", headers={"Accept": "application/json"})
    assert status.get_json()["offset"] == 2 * CHUNK  # what arrived whole, and no more
    # The page reloaded and the same file chosen again: the same upload, at its offset.
    again = begin(as_admin, "resumed", path, sha256=files.sha256(path)).get_json()
    assert (again["id"], again["offset"]) == (up["id"], 2 * CHUNK)
    upload_service._hashers.clear()  # the rest goes to another web process
    send_all(as_admin, up["id"], path, 2 * CHUNK)
    r = finish(as_admin, up["id"])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["sha256"] == files.sha256(path)


def _allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def test_runs_of_zeros_are_said_not_sent_and_stay_a_hole(app, as_admin, hosts, tmp_path):
    """A disk image is mostly empty space. The page says a run of whole MiBs of zeros
    (?zeros=N, no body) instead of sending it, and zeros that are sent as bytes are
    noticed too; both count in the SHA-256, and the staged file and LouCloud's own copy
    keep them as a hole (which the copies to the hosts keep: the system tests)."""
    mib = 2 ** 20
    path = files.mostly_zeros(tmp_path / "empty.img", 24 * mib)
    data = path.read_bytes()
    assert _allocated(path) >= 24 * mib  # every zero written on this side
    up = begin(as_admin, "mostly empty", path, sha256=files.sha256(path)).get_json()
    assert up["zero_run_bytes"] == upload_service.ZERO_RUN_MAX
    staged = os.path.join(app.config["UPLOAD_DIR"], f"{up['id']}.part")

    def zeros(offset, run, body=b""):
        return as_admin.http.post(
            f"/images/uploads/{up['id']}/chunk?offset={offset}&zeros={run}",
            input_stream=io.BytesIO(body), headers=_headers(as_admin),
            environ_overrides={"CONTENT_LENGTH": str(len(body))})
    offset = 0
    while offset < mib:  # the first MiB is data: sent
        offset = put(as_admin, up["id"], offset, data[offset:offset + CHUNK]).get_json()["offset"]
    # Refused: a run at another offset (told where the server is), a run with a body,
    # one past the end of the file, one that is not a number.
    ahead = zeros(2 * mib, mib)
    assert ahead.status_code == 409 and ahead.get_json()["offset"] == mib
    with_body = zeros(mib, 4, b"\0\0\0\0")
    assert with_body.status_code == 400 and "no body" in with_body.get_json()["error"]
    past = zeros(mib, 24 * mib)
    assert past.status_code == 400 and "zeros" in past.get_json()["error"]
    assert zeros(mib, "lots").status_code == 400
    # MiBs 1 to 11 are zeros: said in one request, longer than a chunk may be.
    run = zeros(mib, 11 * mib)
    assert run.status_code == 200 and run.get_json() == {"offset": 12 * mib}
    assert os.path.getsize(staged) == 12 * mib and _allocated(staged) <= 2 * mib
    # The rest is sent byte for byte, its zeros too: the server finds them.
    assert send_all(as_admin, up["id"], path, 12 * mib) == 24 * mib
    r = finish(as_admin, up["id"])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["sha256"] == files.sha256(path)  # the zeros said count in it
    with app.app_context():
        kept = db.session.get(Image, r.get_json()["image_id"]).path
    assert Path(kept).read_bytes() == data
    assert _allocated(kept) <= 3 * mib  # its 1.6 MiB of data, not 24


@pytest.mark.parametrize("case", ["wrong checksum", "truncated qcow2", "renamed file",
                                  "backing file", "cut ISO", "archive"])
def test_a_bad_file_is_refused_with_a_reason_and_nothing_is_kept(app, as_admin, hosts,
                                                                 tmp_path, case):
    good = files.qcow2(tmp_path / "good.qcow2", 8 * 2 ** 20)
    fields = {}
    if case == "wrong checksum":
        path, fields, said = good, {"sha256": "ab" * 32}, "SHA-256 is"
    elif case == "truncated qcow2":
        path, said = files.truncated(good, tmp_path / "cut.qcow2", 0.4), "cut short"
    elif case == "renamed file":
        path = files.raw_with_data(tmp_path / "notreally.qcow2", 2 * 2 ** 20)
        said = "is named .qcow2 but is not a qcow2 image"
    elif case == "backing file":
        path, said = files.qcow2_with_backing(tmp_path / "child.qcow2", good), "backing file"
    elif case == "cut ISO":
        path = files.truncated(files.iso(tmp_path / "full.iso", payload=600_000),
                               tmp_path / "cut.iso", 0.5)
        said = "The ISO is cut short"
    else:
        path = tmp_path / "disk.img.gz"
        path.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(5000))
        said = "gzip archive"
    r = upload(as_admin, "bad", path, **fields)
    assert r.status_code == 400
    assert said in r.get_json()["error"] and "Nothing was kept" in r.get_json()["error"]
    assert _leftovers(app) == ([], [], [])
    with app.app_context():
        assert db.session.execute(db.select(Upload.state)).scalar() == "refused"
        # The copy task that followed the upload ends with the refusal, having made
        # no image and left nothing.
        (task,) = db.session.execute(db.select(Task)).scalars().all()
        task_service.execute(task.id)
        assert (task.state, task.target_id) == ("cancelled", None)
        error = tasklist.says(task.error)
        assert "refused" in error and said in error
    assert _leftovers(app) == ([], [], [])


def test_an_iso_is_install_media_with_its_os_proposed(app, as_admin, hosts, tmp_path):
    path = files.iso(tmp_path / "debian-11.6.0-amd64-netinst.iso")
    head = path.read_bytes()[:34816]
    told = as_admin.http.post(f"/images/inspect?filename={path.name}", data=head,
                              headers=_headers(as_admin, **{
                                  "Content-Type": "application/octet-stream"})).get_json()
    assert told == {"format": "iso", "volume_id": "Debian 11.6.0 amd64 n",
                    "os_name": "Debian 11", "os_type": "linux", "problem": ""}
    windows = files.iso(tmp_path / "win.iso", volume_id="CCCOMA_X64FRE_EN-US_DV9")
    r = upload(as_admin, "Windows 10", windows)  # os_type left to the file
    assert r.status_code == 200 and r.get_json()["os_type"] == "windows"
    with app.app_context():
        image = db.session.get(Image, r.get_json()["image_id"])
        assert (image.format, image.is_iso, image.virtual_size) == \
            ("iso", True, windows.stat().st_size)


def test_only_the_administrator_uploads(app, as_user, hosts, tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 2 ** 20)
    r = begin(as_user, "mine", path)
    assert r.status_code in (403, 404)
    assert as_user.get("/images/upload").status_code in (403, 404)
    assert _images(app) == []


def test_a_taken_name_and_an_impossible_size_are_refused(app, as_admin, hosts, tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 2 ** 20)
    assert upload(as_admin, "taken", path).status_code == 200
    r = begin(as_admin, "taken", path)
    assert r.status_code == 400 and r.get_json()["fields"] == {
        "name": "An image with this name exists."}
    r = begin(as_admin, "huge", path, size=2 ** 41)
    assert r.status_code == 400 and "1 TiB" in r.get_json()["error"]


def test_abandon_deletes_what_arrived(app, as_admin, hosts, tmp_path):
    path = files.qcow2(tmp_path / "disk.qcow2", 4 * 2 ** 20)
    up = begin(as_admin, "gone", path).get_json()
    put(as_admin, up["id"], 0, path.read_bytes()[:CHUNK])
    assert os.listdir(app.config["UPLOAD_DIR"]) == [f"{up['id']}.part"]
    page = as_admin.get("/images/upload").get_data(as_text=True)
    assert "gone (disk.qcow2): 256.0 KiB of" in page  # stopped half-way: listed
    r = as_admin.post(f"/images/uploads/{up['id']}/abandon", follow_redirects=True)
    assert "Upload abandoned; what had arrived is deleted." in r.get_data(as_text=True)
    assert os.listdir(app.config["UPLOAD_DIR"]) == []
    assert as_admin.get(f"/images/uploads/{up['id']}",
                        headers={"Accept": "application/json"}).status_code == 404


def test_cli_upload_checks_keeps_and_queues(app, admin, hosts, tmp_path):
    path = files.qcow2(tmp_path / "cli.qcow2", 3 * 2 ** 20)
    runner = CliRunner()
    with app.app_context():
        result = runner.invoke(app.cli, ["images", "upload", "from-cli", str(path),
                                         "--sha256", files.sha256(path), "--no-wait"],
                               catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "qcow2" in result.output and "copying to the hosts (task" in result.output
    assert "sent 100 %" in result.output
    with app.app_context():
        result = runner.invoke(app.cli, ["images", "upload", "other", str(path),
                                         "--sha256", "00" * 32, "--no-wait"])
    assert result.exit_code == 1 and "SHA-256 is" in result.output
    assert _images(app) == ["from-cli"]


def test_chunks_spread_over_processes_keep_the_checksum_right(app, as_admin, hosts, tmp_path):
    """A process that took chunk 1 only, then chunk 4: it reads chunks 2 and 3 from the
    file (not the whole file again) and the SHA-256 still matches."""
    path = files.raw_with_data(tmp_path / "disk.img", 4 * CHUNK)
    data = path.read_bytes()
    up = begin(as_admin, "spread", path, sha256=files.sha256(path)).get_json()
    put(as_admin, up["id"], 0, data[:CHUNK])
    this_process = (upload_service._hashers[up["id"]][0],
                    upload_service._hashers[up["id"]][1].copy())
    for offset in (CHUNK, 2 * CHUNK):  # taken by "another process"
        put(as_admin, up["id"], offset, data[offset:offset + CHUNK])
    upload_service._hashers[up["id"]] = this_process
    put(as_admin, up["id"], 3 * CHUNK, data[3 * CHUNK:])
    r = finish(as_admin, up["id"])
    assert r.status_code == 200 and r.get_json()["sha256"] == files.sha256(path)


def test_a_read_error_mid_chunk_keeps_nothing_of_it(app, admin, hosts, tmp_path):
    path = files.raw_with_data(tmp_path / "disk.img", 2 * CHUNK)
    data = path.read_bytes()
    with app.app_context():
        up = upload_service.begin(admin, "broken", path.name, len(data))
        stream = io.BytesIO(data[:1000])

        def read(n):  # what mod_wsgi does when the client's link times out
            if stream.tell() >= 1000:
                raise OSError("request data read error: timeout")
            return stream.read(n)
        with pytest.raises(upload_service.Conflict, match="has 0 bytes"):
            upload_service.receive(admin, up.id, 0, read, CHUNK)
        assert upload_service.receive(admin, up.id, 0, io.BytesIO(data).read, CHUNK) == CHUNK
