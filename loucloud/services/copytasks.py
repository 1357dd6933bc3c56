"""The task that copies images to hosts ("image.copy"), and what starts it.

An upload's task starts when the upload begins and follows the file as it arrives: each
chosen host's copy streams the bytes received so far through libvirt's volume upload and
waits for the next ones, so the copies end soon after the last chunk instead of starting
then. The volume is named from the file's first bytes, as the finished upload names it.
A copy counts only after the upload was checked whole (checksum, format, header) and the
host reads it back as that format and size; a refused or abandoned upload deletes its
copies. When the file cannot be followed (a format LouCloud will refuse, a worker that
picks the task up late) the task copies from the image store once the upload is done,
as it does for an image copied later ("copy where missing", a host added)."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import imagefiles
from ..extensions import db
from ..models import Host, Image, ImageLocation, Task, Upload, User
from ..virt.sources import Arrival, GrowingFile
from . import Conflict, NotAllowed, ServiceError, transaction
from . import tasklist, tasks
from .hypervisors import hypervisor
from .imagecopy import (Stop, copy_one, copy_stored, outcome, progress_of, record,
                        start_copies, staging_path, stopped, store_path, volume_for)
from .settings import get_settings

log = logging.getLogger(__name__)

POLL = 0.25          # seconds between two looks at the upload
IDLE_LIMIT = 300     # an upload silent this long is no longer followed


@tasks.kind("image.copy", _l("Copy an image to hosts"), attempts=4, timeout=6 * 3600,
            on_stop=stopped)
def _copy(ctx: tasks.TaskContext) -> str:
    """An image LouCloud holds, or an upload: followed while it arrives, else copied
    from the image store once it is done."""
    if "upload_id" in ctx.args and "image_id" not in ctx.args:
        upload = db.session.get(Upload, ctx.args["upload_id"])
        if upload is not None and upload.state == "receiving":
            result = _follow(ctx, upload)
            if result is not None:
                return result
            upload = _wait_for_end(ctx, ctx.args["upload_id"])
        if upload is None or upload.state != "done" or upload.image_id is None:
            raise _ended(upload)
        image = db.session.get(Image, upload.image_id)
    else:
        image = db.session.get(Image, ctx.args["image_id"])
    if image is None:
        raise ServiceError(_l("The image was deleted."))
    return copy_stored(ctx, image, set(ctx.args["host_ids"]))


def _fresh(upload_id: str) -> Upload | None:
    """The upload as the web processes left it (a new transaction: no old snapshot)."""
    db.session.commit()
    return db.session.get(Upload, upload_id)


def _ended(upload: Upload | None) -> tasks.Cancelled:
    from .uploads import STATE_LABELS  # (uploads imports this module)
    if upload is None:
        return tasks.Cancelled(_l("The upload was abandoned; nothing of it was kept."))
    return tasks.Cancelled(_l("The upload was %(state)s: %(error)s Nothing of it was kept on "
                              "the hosts.", state=STATE_LABELS.get(upload.state, upload.state),
                              error=upload.error))


def _wait_for_end(ctx: tasks.TaskContext, upload_id: str) -> Upload | None:
    while True:
        upload = _fresh(upload_id)
        if upload is None or upload.state != "receiving":
            return upload
        ctx.report(0.0, _l("Waiting for the upload (%(received)s of %(size)s bytes).",
                           received=upload.received, size=upload.size))
        time.sleep(POLL)


def _volume_name(ctx: tasks.TaskContext, upload: Upload) -> str | None:
    """Once the first bytes are in: the volume the finished upload will be, or None when
    the file will be refused (nothing to copy) or the upload ended meanwhile."""
    head_end = min(upload.size, imagefiles.HEAD_BYTES)
    while upload.received < head_end:
        ctx.report(0.0, _l("Waiting for the first bytes of the file."))
        time.sleep(POLL)
        upload = _fresh(upload.id)
        if upload is None or upload.state != "receiving":
            return None
    try:
        with open(staging_path(upload), "rb") as f:
            head = f.read(head_end)
        fmt = imagefiles.accepted_format(head, upload.format, upload.filename)
    except (OSError, imagefiles.ImageFileProblem):
        return None
    return volume_for(upload.name, fmt)


def _follow(ctx: tasks.TaskContext, upload: Upload) -> str | None:
    """Copy the upload to its hosts as it arrives. None: it cannot be followed."""
    upload_id, size = upload.id, upload.size
    volume = _volume_name(ctx, upload)
    try:
        fd = os.open(staging_path(upload), os.O_RDONLY) if volume else None
    except FileNotFoundError:  # finished (moved to the image store) meanwhile
        fd = None
    if fd is None:
        return None
    ctx.task.args = json.dumps({**ctx.args, "volume": volume})  # for a worker that dies
    hosts = db.session.execute(db.select(Host).where(Host.id.in_(ctx.args["host_ids"]))
                               .order_by(Host.name)).scalars().all()
    arrival, stop, checked = Arrival(size), threading.Event(), threading.Event()
    found: dict[str, tuple] = {}

    def facts() -> tuple[str, int]:
        while not checked.wait(1.0):
            if stop.is_set():
                raise Stop()
        return found["facts"]
    done = {h.id: 0 for h in hosts}
    workers = ThreadPoolExecutor(max_workers=max(len(hosts), 1), thread_name_prefix="copy")
    futures = {workers.submit(copy_one, hypervisor(h), get_settings().storage_pool, volume,
                              size, GrowingFile(fd, arrival).read, facts, done, h.id, stop,
                              ctx.task.timeout_seconds): h.id for h in hosts}
    try:
        return _watch(ctx, upload_id, volume, arrival, futures, done,
                      lambda image: (found.update(facts=(image.format, image.virtual_size)),
                                     checked.set()))
    except BaseException:
        stop.set()  # each copy stops at its next chunk (or wait) and deletes its volume
        arrival.stop()
        wait(futures)
        raise
    finally:
        workers.shutdown(wait=True)
        os.close(fd)


def _watch(ctx, upload_id: str, volume: str, arrival: Arrival, futures: dict, done: dict,
           on_checked) -> str:
    """The task's loop while the copies run: moves the arrival forward, hands the
    copies the checked facts when the upload is done, records each copy."""
    size, image, locs, ended = arrival.size, None, {}, []
    pending, last_bytes, quiet_since = set(futures), -1, time.monotonic()
    while pending or image is None:
        if pending:
            finished, pending = wait(pending, timeout=POLL)
            ended.extend(finished)
        else:
            time.sleep(POLL)
        if image is None:
            upload = _fresh(upload_id)
            if upload is None or upload.state != "receiving" and upload.state != "done":
                raise _ended(upload)
            if upload.state == "done":
                image = db.session.get(Image, upload.image_id)
                if image is None or image.volume != volume:
                    raise ServiceError(_l("The upload became %(became)s, not %(volume)s; copy "
                                          "the image again.", volume=volume,
                                          became=image.volume if image else _l("nothing")))
                arrival.advance(size)
                locs = {loc.host_id: loc for loc in image.locations if loc.host_id in done}
                start_copies(list(locs.values()))
                on_checked(image)
            else:
                if upload.received != last_bytes:
                    last_bytes, quiet_since = upload.received, time.monotonic()
                elif time.monotonic() - quiet_since > IDLE_LIMIT:
                    raise tasks.Cancelled(
                        _l("No byte of the upload arrived for %(minutes)s minutes; its copies "
                           "start when it is finished.", minutes=IDLE_LIMIT // 60))
                arrival.advance(upload.received)
        if image is not None:
            for future in ended:
                record(locs[futures[future]], future, size)
            ended = []
            ctx.report(*progress_of(list(locs.values()), done, size))
        else:
            ctx.report(sum(done.values()) / (size * max(len(done), 1)),
                       _l("Copying to %(count)s host(s) as the file arrives (%(arrived)s of "
                          "%(size)s MiB in).", count=len(done),
                          arrived=arrival.available // 2**20, size=size // 2**20))
    db.session.commit()
    return outcome(image, list(locs.values()), set(done))


def copy_image(user: User, image: Image, host_ids: list[int]) -> Task:
    """Start the task that copies ``image`` to these hosts."""
    hosts = db.session.execute(db.select(Host).where(Host.id.in_(host_ids))
                               .order_by(Host.name)).scalars().all()
    by_host = {loc.host_id: loc for loc in image.locations}
    for host in hosts:
        loc = by_host.get(host.id)
        if loc is None:
            image.locations.append(ImageLocation(host_id=host.id, present=False,
                                                 copy_state="queued"))
        elif not loc.present:
            loc.copy_state, loc.copied, loc.error = "queued", 0, ""
    db.session.commit()
    return tasks.start("image.copy", user, target_type="image", target_id=image.id,
                       target_name=image.name,
                       args={"image_id": image.id, "host_ids": [h.id for h in hosts]})


def check_copyable(image: Image) -> None:
    if not image.uploaded:
        raise Conflict(_("%(name)s was added by its path on the hosts; copy the file there "
                         "and check the image again.", name=image.name))
    if tasklist.active_for("image", image.id):
        raise Conflict(_("%(name)s is being copied already; see its task.", name=image.name))
    if not os.path.exists(store_path(image.volume)):
        raise ServiceError(_("LouCloud's own copy of %(name)s (%(path)s) is missing; upload "
                             "it again.", name=image.name, path=store_path(image.volume)))


@transaction
def copy_where_missing(user: User, image: Image) -> Task:
    """Copy an uploaded image to every host that lacks it."""
    if not user.is_admin:
        raise NotAllowed(_("Only the administrator copies images."))
    check_copyable(image)
    hosts = db.session.execute(db.select(Host.id)).scalars().all()
    missing = [h for h in hosts if not image.present_on(h)]
    if not missing:
        raise Conflict(_("Every host has %(name)s already.", name=image.name))
    return copy_image(user, image, missing)


@transaction
def copy_images_to_host(user: User, host: Host) -> list[Task]:
    """"Copy images to this host": every uploaded image it lacks, one task each."""
    if not user.is_admin:
        raise NotAllowed(_("Only the administrator copies images."))
    images = db.session.execute(db.select(Image).where(Image.volume.is_not(None))
                                .order_by(Image.name)).scalars().all()
    started = []
    for image in images:
        if image.present_on(host.id) or tasklist.active_for("image", image.id):
            continue
        if not os.path.exists(store_path(image.volume)):
            continue
        started.append(copy_image(user, image, [host.id]))
    if not started:
        raise Conflict(_("%(host)s has every image LouCloud uploaded (or they are being "
                         "copied).", host=host.name))
    return started


