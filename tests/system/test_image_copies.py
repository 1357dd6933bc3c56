"""Uploaded images copied to real hosts by the real worker: `manage.py worker` as its own
process, on an SQLite database file and the SQLite huey queue of an instance folder of
this module (then Redis), copying through libvirt's upload stream to the lab's two real
libvirtd hosts. Each copy is read back through libvirt's download stream on a
connection of the test's own and compared byte for byte with the uploaded file.

Faults are real: a host's libvirtd SIGKILLed in the middle of a copy, a storage pool
whose disk is full (a tiny tmpfs over the pool's directory in the host's mount
namespace), the worker SIGKILLed in the middle of a copy. Afterwards the database never
shows a copy as present that is not complete, and the pools hold no partial volume.
Waits poll the database; their timeouts are guards, not assertions on speed."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
import pytest

from loucloud import create_app
from loucloud.extensions import db
from loucloud.models import Host, Image, Task
from loucloud.services import hosts as host_service
from loucloud.services import copytasks, imagecopy
from loucloud.services import settings as settings_service
from loucloud.services import tasklist
from loucloud.services import uploads as upload_service
from loucloud.services.hypervisors import close_pool
from loucloud.services.users import the_admin
from tests.factories import make_user
from tests.support import imagefiles as files
from tests.support.redis import RedisServer

libvirt.registerErrorHandler(lambda *a: None, None)

ROOT = Path(__file__).resolve().parents[2]
MiB = 2 ** 20
BIG = 1024 * MiB          # long enough a copy to stop it in the middle
POOL = "loucloud"         # Settings.storage_pool's default
POOL_DIR = f"/var/lib/libvirt/{POOL}"
SECRET = "image-copies-system-test-secret-key-0123456789"
FINISHED = ("succeeded", "failed", "cancelled")


# -- the pieces: an app and a worker on one database, queue and instance folder --------
def _files(base: Path) -> dict:
    return {"db": base / "loucloud.sqlite", "instance": base / "instance",
            "uploads": base / "uploads", "images": base / "images"}


def make_app(base: Path, broker: str):
    """The app as `manage.py` builds it from the environment ``worker_env`` gives (the
    instance folder, and so the SQLite queue and the settings' file cache, the same)."""
    import loucloud

    f = _files(base)
    with pytest.MonkeyPatch.context() as mp:  # INSTANCE_DIR is read from the env at import
        mp.setattr(loucloud, "INSTANCE_DIR", f["instance"])
        app = create_app("default", SQLALCHEMY_DATABASE_URI=f"sqlite:///{f['db']}",
                         UPLOAD_DIR=str(f["uploads"]), IMAGE_STORE=str(f["images"]),
                         TASK_BROKER=broker, SECRET_KEY=SECRET, CACHE_TYPE="FileSystemCache",
                         CACHE_DIR=str(f["instance"] / "cache"), PASSWORD_TIME_COST=1,
                         PASSWORD_MEMORY_KIB=8192, PASSWORD_PARALLELISM=1)
    assert app.instance_path == str(f["instance"])
    return app


def worker_env(base: Path, broker: str) -> dict:
    f = _files(base)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LOUCLOUD_") and k not in ("DATABASE_URL", "CACHE_TYPE",
                                                           "CACHE_DIR")}
    env.update(DATABASE_URL=f"sqlite:///{f['db']}", LOUCLOUD_INSTANCE=str(f["instance"]),
               LOUCLOUD_UPLOAD_DIR=str(f["uploads"]), LOUCLOUD_IMAGE_STORE=str(f["images"]),
               LOUCLOUD_TASK_BROKER=broker, LOUCLOUD_CONFIG="default",
               LOUCLOUD_SECRET_KEY=SECRET, PYTHONUNBUFFERED="1")
    return env


class Worker:
    """`manage.py worker --workers 2`, its output in a log file."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None
        self._out = None

    def start(self) -> "Worker":
        self._close()
        self._mark = self.log.stat().st_size if self.log.exists() else 0
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "worker", "--workers", "2"],
                                     cwd=ROOT, env=self.env, stdout=self._out,
                                     stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close()

    def output(self, since_start: bool = True) -> str:
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(self._mark if since_start else 0)
            return f.read().decode(errors="replace")

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


@dataclass
class World:
    app: object
    base: Path
    worker: Worker
    hosts: dict[str, int]
    uris: dict[str, str]
    extra_workers: list[Worker] = field(default_factory=list)

    def env(self, broker: str = "") -> dict:
        return worker_env(self.base, broker)

    def log_tail(self) -> str:
        return "\n".join(w.output(since_start=False)[-3000:]
                         for w in [self.worker, *self.extra_workers])


@pytest.fixture(scope="module")
def world(lab, tmp_path_factory):
    base = tmp_path_factory.mktemp("image-copies")
    app = make_app(base, "")
    with app.app_context():
        db.create_all()
        make_user("admin", is_admin=True)
        hosts = {f"h{i}": host_service.add_host(f"h{i}", lab.host(i).uri).id for i in (1, 2)}
        settings_service.update_settings({"host_timeout": 5, "action_timeout": 30})
    w = World(app, base, Worker(worker_env(base, ""), base / "worker.log").start(), hosts,
              {f"h{i}": lab.host(i).uri for i in (1, 2)})
    yield w
    for worker in [w.worker, *w.extra_workers]:
        worker.stop()
    with app.app_context():  # the copies this module made go, so the lab stays clean
        volumes = [i.volume for i in db.session.execute(db.select(Image)).scalars()]
    for i in (1, 2):
        _restart_if_dead(lab, i)
        _delete_volumes(lab.host(i).uri, volumes)
    close_pool(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def healthy(world, lab):
    """Whatever a test killed comes back for the next one."""
    yield
    for i in (1, 2):
        _restart_if_dead(lab, i)
    if not world.worker.alive():
        world.worker.start()


def _restart_if_dead(lab, i: int) -> None:
    try:
        lab.libvirtd_pid(lab.host(i))
    except Exception:  # noqa: BLE001 - killed by a test: started again
        lab.start_libvirtd(lab.host(i))


# -- what a user can see: the database, the CLI, the hosts ------------------------------
def wait_until(world: World, check, seconds: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:g} s for {what}; worker log:\n"
                                 f"{world.log_tail()}")
        time.sleep(every)


def task_row(world: World, task_id: int, app=None) -> dict:
    with (app or world.app).app_context():
        task = db.session.get(Task, task_id)
        row = tasklist.as_dict(task)
        row["heartbeat_at"], row["worker"] = task.heartbeat_at, task.worker
        return row


def copies(world: World, image_id: int, app=None) -> dict[str, dict]:
    """Per host name: present, state, copied, total, error (the image page's rows)."""
    with (app or world.app).app_context():
        image = db.session.get(Image, image_id)
        rows = {row["host"]: row for row in imagecopy.copies_progress(image)}
        for loc in image.locations:
            rows[loc.host.name]["path"] = loc.path
        return rows


def finished(world: World, task_id: int, seconds: float, app=None) -> dict:
    return wait_until(world, lambda: (row := task_row(world, task_id, app))["state"]
                      in FINISHED and row, seconds, f"task {task_id} to end")


def upload(app, name: str, path: Path, hosts: list[int] | None = None,
           midway=None) -> tuple[int, int]:
    """Upload ``path`` in chunks through the upload service, as the page and the CLI do:
    begin, each chunk at its offset, finish. ``midway(task id)`` is called with half of
    the file in (the copies follow the upload: a fault "in the middle of a copy" happens
    while the file is still arriving). Returns (image id, copy task id)."""
    size = path.stat().st_size
    with app.app_context():
        admin = the_admin()
        up = upload_service.begin(admin, name, path.name, size, host_ids=hosts)
        chunk = app.config["UPLOAD_CHUNK_BYTES"]
        offset, held = 0, midway is None
        with open(path, "rb") as f:
            while offset < size:
                if not held and offset >= size // 2:
                    midway(up.task_id)
                    held = True
                f.seek(offset)
                offset = upload_service.receive(admin, up.id, offset, f.read,
                                                min(chunk, size - offset))
        image, task = upload_service.finish(admin, up.id)
        return image.id, task.id


def under_way(world: World, task_id: int) -> dict:
    """The copy task once every host's copy has some of the file (and not all of it)."""
    return wait_until(world, lambda: (r := task_row(world, task_id))["state"] == "running"
                      and 0.05 < r["progress"] <= 0.5 and r, 120,
                      "the copies to be under way", every=0.05)


def volume_of(world: World, image_id: int) -> str:
    with world.app.app_context():
        return db.session.get(Image, image_id).volume


def manage(env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_back(uri: str, volume: str) -> tuple[str, int]:
    """SHA-256 and length of a host's volume, read through libvirt's download stream
    on a connection of its own."""
    conn = libvirt.open(uri)
    try:
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        vol = pool.storageVolLookupByName(volume)
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        digest, size = hashlib.sha256(), 0
        while True:
            data = stream.recv(4 * MiB)
            if not data:
                break
            digest.update(data)
            size += len(data)
        stream.finish()
        return digest.hexdigest(), size
    finally:
        conn.close()


def image_volumes(uri: str) -> set[str]:
    """The image volumes (LouCloud names them image-...) in the host's pool, as libvirt
    lists them after a refresh (partial files included)."""
    conn = libvirt.open(uri)
    try:
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        return {v for v in pool.listVolumes() if v.startswith("image-")}
    finally:
        conn.close()


def present_volumes(world: World, host: str) -> set[str]:
    """What the database says is complete on ``host``."""
    with world.app.app_context():
        images = db.session.execute(db.select(Image)).scalars().all()
        return {i.volume for i in images if i.present_on(world.hosts[host])}


def _delete_volumes(uri: str, names: list[str]) -> None:
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return
    try:
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        for name in names:
            try:
                pool.storageVolLookupByName(name).delete(0)
            except libvirt.libvirtError:
                pass
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


def assert_identical(world: World, image_id: int, host: str, source: Path) -> None:
    row = copies(world, image_id)[host]
    assert (row["present"], row["state"], row["error"]) == (True, "done", ""), row
    assert row["copied"] == source.stat().st_size
    got = read_back(world.uris[host], volume_of(world, image_id))
    assert got == (files.sha256(source), source.stat().st_size), \
        f"{host}'s copy differs from the uploaded file"


def in_mount_ns(lab, i: int, script: str, check: bool = True) -> subprocess.CompletedProcess:
    pid = lab.libvirtd_pid(lab.host(i))
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "sh", "-c", script],
                          capture_output=True, text=True, check=check)


# -- the tests ----------------------------------------------------------------------------
def test_a_qcow2_and_an_iso_reach_both_hosts_byte_identical(world, lab):
    disk = files.qcow2_filled(world.base / "disk-1.qcow2", 128 * MiB, seed=1)
    media = files.iso(world.base / "media-1.iso", "Debian 12.5.0 amd64 n", payload=8 * MiB)
    disk_id, disk_task = upload(world.app, "Disk 1", disk)  # every host
    # The ISO through `manage.py images upload`, which waits for its copies.
    cli = manage(world.env(), "images", "upload", "Media 1", str(media), "--host", "h1",
                 "--host", "h2")
    assert cli.returncode == 0, cli.stdout + cli.stderr + world.log_tail()
    assert "Media 1 copied to h1, h2." in cli.stdout
    task = finished(world, disk_task, 180)
    assert (task["state"], task["progress"], task["error"]) == ("succeeded", 1.0, ""), task
    assert task["result"] == "Disk 1 copied to h1, h2."
    with world.app.app_context():
        media_image = db.session.execute(db.select(Image).filter_by(name="Media 1")).scalar()
        media_id, media_format = media_image.id, media_image.format
    assert media_format == "iso"
    for image_id, source in ((disk_id, disk), (media_id, media)):
        assert set(copies(world, image_id)) == {"h1", "h2"}
        for host in ("h1", "h2"):
            assert_identical(world, image_id, host, source)
    listed = manage(world.env(), "tasks", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    copy_tasks = [row for row in rows.values() if row["kind"] == "image.copy"
                  and row["target"]["name"] in ("Disk 1", "Media 1")]
    assert sorted(row["target"]["name"] for row in copy_tasks) == ["Disk 1", "Media 1"]
    for row in copy_tasks:
        assert (row["state"], row["progress"], row["attempts"]) == ("succeeded", 1.0, 1), row
    assert rows[disk_task]["result"] == "Disk 1 copied to h1, h2."
    # The test's queue and the worker's are one file of the module's instance folder.
    assert (world.base / "instance" / "tasks.sqlite").exists()
    assert "Traceback" not in world.worker.output(since_start=False)


def allocated(uri: str, volume: str) -> int:
    """The bytes a host's volume takes on its disk, as libvirt says after a refresh."""
    conn = libvirt.open(uri)
    try:
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        return pool.storageVolLookupByName(volume).info()[2]
    finally:
        conn.close()


def test_an_image_of_mostly_zeros_keeps_them_as_holes_on_each_host(world, lab):
    """Empty space is not copied: the zeros of a 96 MiB disk (written out, every one,
    in the file uploaded) stay a hole in LouCloud's copy and go to each host as holes
    of libvirt's sparse upload stream. Each copy still reads back byte for byte, and
    takes only its data's room on the host."""
    source = files.mostly_zeros(world.base / "zeros-8.img", 96 * MiB, seed=8)
    image_id, task_id = upload(world.app, "Zeros 8", source)
    task = finished(world, task_id, 180)
    assert (task["state"], task["progress"]) == ("succeeded", 1.0), task
    volume = volume_of(world, image_id)
    for host in ("h1", "h2"):
        assert_identical(world, image_id, host, source)
        # 1.6 MiB of data; a copy that wrote its zeros would take the 96 MiB.
        assert allocated(world.uris[host], volume) <= 4 * MiB
    with world.app.app_context():
        kept = db.session.get(Image, image_id).path
    assert os.stat(kept).st_blocks * 512 <= 4 * MiB


def test_a_host_killed_mid_copy_fails_after_its_retries_then_gets_it(world, lab):
    big = files.filled(world.base / "big-2.img", BIG, seed=2)
    seen: dict = {}

    def kill_h2(task_id: int) -> None:
        seen.update(under_way(world, task_id))
        lab.kill_libvirtd(lab.host(2))
    image_id, task_id = upload(world.app, "Big 2", big, midway=kill_h2)
    volume = volume_of(world, image_id)
    print(f"\n  h2's libvirtd SIGKILLed with the copies {seen['progress']:.0%} done, "
          "the upload half-way")

    seen_h2, messages = [], set()

    def ended():
        seen_h2.append(copies(world, image_id)["h2"])
        row = task_row(world, task_id)
        messages.add(row["message"])
        return row["state"] in FINISHED and row
    started = time.monotonic()
    task = wait_until(world, ended, 180, "the copy task to give up on h2", every=0.25)
    print(f"  the task ended {time.monotonic() - started:.1f} s later: {task['state']}, "
          f"{task['attempts']} attempts: {task['error']}")
    # h1 got its copy; h2 was tried again with a back-off, then the task failed, saying why
    assert_identical(world, image_id, "h1", big)
    assert task["state"] == "failed" and task["attempts"] == task["max_attempts"] == 4, task
    assert "h2 could not be reached" in task["error"] and "Copied to h1" in task["error"]
    assert any("Trying again" in m for m in messages), messages
    assert not any(row["present"] for row in seen_h2), "h2 shown present without its copy"
    h2 = copies(world, image_id)["h2"]
    assert (h2["present"], h2["state"]) == (False, "failed") and \
        h2["error"].startswith("h2 could not be reached"), h2

    lab.start_libvirtd(lab.host(2))
    left = image_volumes(world.uris["h2"]) - present_volumes(world, "h2")
    print(f"  on h2 after its restart, not (yet) counted as copies: {sorted(left)}")
    with world.app.app_context():
        admin = the_admin()
        started_tasks = [t.id for t in copytasks.copy_images_to_host(
            admin, db.session.get(Host, world.hosts["h2"]))]
    for tid in started_tasks:
        row = finished(world, tid, 180)
        assert row["state"] == "succeeded", row
    assert_identical(world, image_id, "h2", big)
    assert volume in present_volumes(world, "h2")
    assert image_volumes(world.uris["h2"]) == present_volumes(world, "h2"), \
        "a partial or extra volume is left in h2's pool"


def test_a_full_pool_fails_that_copy_clearly_and_leaves_nothing_there(world, lab):
    disk = files.qcow2_filled(world.base / "disk-3.qcow2", 16 * MiB, seed=3)
    in_mount_ns(lab, 2, f"mkdir -p {POOL_DIR} && mount -t tmpfs -o size=1m tmpfs {POOL_DIR}")
    try:
        image_id, task_id = upload(world.app, "Disk 3", disk)
        task = finished(world, task_id, 180)
        h2 = copies(world, image_id)["h2"]
        on_tmpfs = in_mount_ns(lab, 2, f"ls -A {POOL_DIR}").stdout.split()
        in_pool = image_volumes(world.uris["h2"])
    finally:
        in_mount_ns(lab, 2, f"umount {POOL_DIR}", check=False)
        image_volumes(world.uris["h2"])  # refreshed: the pool's files are seen again
    print(f"\n  full pool on h2: {h2['error']}")
    assert task["state"] == "failed" and task["attempts"] == 1, task  # not worth retrying
    assert "h2:" in task["error"] and "space" in task["error"].lower(), task
    assert (h2["present"], h2["state"]) == (False, "failed"), h2
    assert h2["error"].startswith("h2:") and "space" in h2["error"].lower(), h2
    assert on_tmpfs == [], "a partial file is left in the full pool"
    assert volume_of(world, image_id) not in in_pool
    assert_identical(world, image_id, "h1", disk)


def test_a_worker_killed_mid_copy_is_recovered_by_the_next_one(world, lab):
    big = files.filled(world.base / "big-4.img", BIG, seed=4)
    killed = world.worker.pid

    def kill_worker(task_id: int) -> None:
        under_way(world, task_id)
        world.worker.kill()
    image_id, task_id = upload(world.app, "Big 4", big, midway=kill_worker)
    volume = volume_of(world, image_id)

    row = task_row(world, task_id)
    assert row["state"] == "running" and row["worker"].endswith(f":{killed}"), row
    partial = {h: volume in image_volumes(world.uris[h]) for h in ("h1", "h2")}
    print(f"\n  worker SIGKILLed; partial volume on the hosts: {partial}")

    # Its heartbeat is fresh, but its process is gone from this machine: the next worker
    # takes the task over at once, without waiting for the heartbeat to go stale.
    assert not any(r["present"] for r in copies(world, image_id).values())
    world.worker.start()
    task = finished(world, task_id, 240)
    said = world.worker.output()
    assert "1 task(s) left by a stopped worker handled" in said, said
    assert task["state"] == "succeeded" and task["attempts"] == 2, task
    assert not task["worker"].endswith(f":{killed}")
    for host in ("h1", "h2"):
        assert_identical(world, image_id, host, big)
        assert image_volumes(world.uris[host]) == present_volumes(world, host), \
            f"a partial or extra volume is left in {host}'s pool"


def _send(app, upload_id: str, path: Path, start: int, end: int) -> None:
    """Chunks of ``path`` from ``start`` to ``end`` through the upload service."""
    with app.app_context():
        admin, chunk = the_admin(), app.config["UPLOAD_CHUNK_BYTES"]
        with open(path, "rb") as f:
            offset = start
            while offset < end:
                f.seek(offset)
                offset = upload_service.receive(admin, upload_id, offset, f.read,
                                                min(chunk, end - offset))


def test_the_copies_follow_an_upload_as_it_arrives(world, lab):
    """The copy task starts with the upload: with half of the file in, both hosts hold
    that half already (and not more); the rest follows the last chunk. A refused upload
    (the checksum given differs) deletes what the hosts had received."""
    data = files.filled(world.base / "half-6.img", 256 * MiB, seed=6)
    size = data.stat().st_size
    with world.app.app_context():
        up = upload_service.begin(the_admin(), "Half 6", data.name, size)
        up_id, task_id = up.id, up.task_id
    volume = imagecopy.volume_for("Half 6", "raw")
    _send(world.app, up_id, data, 0, size // 2)
    half = wait_until(world, lambda: (r := task_row(world, task_id))["progress"] >= 0.45
                      and r, 120, "the copies to follow the first half", every=0.1)
    assert half["state"] == "running" and "as the file arrives" in half["message"], half
    assert all(volume in image_volumes(world.uris[h]) for h in ("h1", "h2"))
    time.sleep(1)  # and they wait there: no copy runs ahead of what arrived
    assert task_row(world, task_id)["progress"] <= 0.5
    _send(world.app, up_id, data, size // 2, size)
    with world.app.app_context():
        image, task = upload_service.finish(the_admin(), up_id)
        assert task.id == task_id and image.volume == volume  # the same task goes on
        image_id = image.id
    task = finished(world, task_id, 180)
    assert task["state"] == "succeeded" and task["attempts"] == 1, task
    assert task["target"] == {"type": "image", "id": image_id, "name": "Half 6"}
    for host in ("h1", "h2"):
        assert_identical(world, image_id, host, data)

    wrong = files.filled(world.base / "wrong-6.img", 64 * MiB, seed=7)
    with world.app.app_context():
        up = upload_service.begin(the_admin(), "Wrong 6", wrong.name, wrong.stat().st_size,
                                  sha256="ab" * 32)
        up_id, task_id = up.id, up.task_id
    _send(world.app, up_id, wrong, 0, wrong.stat().st_size)
    # All of it has reached the hosts (the copies wait for the check) before it is refused.
    wait_until(world, lambda: task_row(world, task_id)["progress"] >= 0.99, 120,
               "the copies to hold the whole file", every=0.1)
    with world.app.app_context(), pytest.raises(upload_service.FieldError) as refused:
        upload_service.finish(the_admin(), up_id)
    assert "SHA-256" in str(refused.value)
    task = finished(world, task_id, 60)
    assert task["state"] == "cancelled" and "refused" in task["error"], task
    for host in ("h1", "h2"):
        assert imagecopy.volume_for("Wrong 6", "raw") not in image_volumes(world.uris[host])


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    client = server.client()
    try:
        yield server.socket, client
    finally:
        client.close()
        server.stop()


def test_the_same_pipeline_with_redis_as_the_queue(world, lab, redis_server):
    sock, client = redis_server
    broker = f"unix://{sock}"
    app = make_app(world.base, broker)
    worker = Worker(world.env(broker), world.base / "worker-redis.log").start()
    world.extra_workers.append(worker)
    try:
        ping = manage(world.env(broker), "tasks", "ping", timeout=60)
        assert ping.returncode == 0, ping.stdout + ping.stderr + world.log_tail()
        assert f":{worker.pid} answered" in ping.stdout, ping.stdout  # the Redis worker
        media = files.iso(world.base / "media-5.iso", "Debian 12.5.0 amd64 n",
                          payload=4 * MiB)
        image_id, task_id = upload(app, "Media 5", media, hosts=[world.hosts["h1"]])
        task = finished(world, task_id, 120, app)
        assert task["state"] == "succeeded" and task["worker"].endswith(f":{worker.pid}"), task
        assert_identical(world, image_id, "h1", media)
        assert set(copies(world, image_id)) == {"h1"}
        stats = client.info("commandstats")
        assert stats.get("cmdstat_lpush", {}).get("calls", 0) >= 2, stats  # queued there
    finally:
        worker.stop()
        world.extra_workers.remove(worker)
        close_pool(app)
        with app.app_context():
            db.engine.dispose()
