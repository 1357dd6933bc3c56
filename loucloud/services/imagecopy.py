"""Copying an uploaded image to the hosts (the task itself is services/copytasks.py):
LouCloud's own copy of the file (the image store), or the upload as it arrives, is written to each host's storage pool through libvirt's volume upload
stream (no SSH, no shared file system; the same for remote hosts), to every chosen host
at once, with progress per host. A host's copy counts only once libvirt has all of it
and reads back the same format and size; until then it is not offered for VMs. A host
out of reach is tried again with a back-off; a copy that fails leaves no volume."""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from flask import current_app
from flask_babel import lazy_gettext as _l

from ..extensions import db
from ..models import Host, Image, ImageLocation, Leftover, Upload, utcnow
from ..virt import HostUnavailable, VirtError
from ..virt.sources import GrowingFile
from . import ServiceError, leftovers, said, tasks
from .names import file_slug
from .hypervisors import hypervisor
from .settings import get_settings

log = logging.getLogger(__name__)

ERROR_LIMIT = 500   # ImageLocation.error: a copy's error, stored as its message (said.py)


class Stop(Exception):
    """Raised in an upload's progress callback: abandon the copy (it is deleted)."""


def store_path(volume: str) -> str:
    """LouCloud's own copy of an uploaded image (the source of every host's copy)."""
    return os.path.join(current_app.config["IMAGE_STORE"], volume)


def staging_path(upload: Upload) -> str:
    """Where an upload's bytes arrive."""
    return os.path.join(current_app.config["UPLOAD_DIR"], f"{upload.id}.part")


def volume_for(name: str, fmt: str) -> str:
    """The volume (and image store file) name of an uploaded image."""
    return f"image-{file_slug(name, 'image')}.{ {'qcow2': 'qcow2', 'iso': 'iso'}.get(fmt, 'img') }"


def copy_one(hv, pool_name: str, volume: str, size: int, read, facts, done: dict,
              host_id: int, stop: threading.Event, timeout: float) -> str:
    """Copy to one host (a thread of its own; no database here): ``size`` bytes from
    ``read(n)``, which may wait for them (a file still arriving). ``facts()`` gives the
    format and virtual size the copy must read back as (it waits for the upload's check
    when the file was still arriving). Returns the path."""
    hv.ensure_pool(pool_name)
    if hv.volume_info(pool_name, volume) is not None:
        hv.delete_volume(pool_name, volume)  # an earlier copy that did not finish

    def progress(sent: int, _total: int) -> None:
        done[host_id] = sent
        if stop.is_set():
            raise Stop()
    vol = hv.upload_stream(pool_name, volume, size, read, progress, timeout=timeout)
    try:
        fmt, virtual_size = facts()
        info = hv.volume_info(pool_name, volume)
    except BaseException:
        hv.delete_volume(pool_name, volume)
        raise
    if info is None or info.format != fmt or info.virtual_size != virtual_size:
        hv.delete_volume(pool_name, volume)
        seen = f"{info.format}, {info.virtual_size} bytes" if info else "nothing"
        raise VirtError(f"the copy reads back as {seen}, not {fmt} of {virtual_size} bytes")
    return vol.path


def copy_stored(ctx: tasks.TaskContext, image: Image, wanted: set[int]) -> str:
    source = store_path(image.volume)
    if not os.path.exists(source):
        raise ServiceError(_l("LouCloud's own copy of %(name)s (%(path)s) is missing.",
                              name=image.name, path=source))
    size = os.path.getsize(source)
    locs = [loc for loc in image.locations if loc.host_id in wanted and not loc.present]
    if not locs:
        return _l("Every chosen host has %(name)s.", name=image.name)
    facts = (image.format, image.virtual_size)
    done: dict[int, int] = {loc.host_id: 0 for loc in locs}
    stop = threading.Event()
    start_copies(locs)
    ctx.report(0.0, _l("Copying to %(count)s host(s).", count=len(locs)), force=True)
    fd = os.open(source, os.O_RDONLY)
    with ThreadPoolExecutor(max_workers=len(locs), thread_name_prefix="copy") as workers:
        futures = {workers.submit(copy_one, hypervisor(loc.host), get_settings().storage_pool,
                                  image.volume, size, GrowingFile.whole(fd, size).read,
                                  lambda: facts, done, loc.host_id, stop,
                                  ctx.task.timeout_seconds): loc
                   for loc in locs}
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5)
                for future in finished:
                    record(futures[future], future, size)
                ctx.report(*progress_of(locs, done, size))
        except BaseException:
            stop.set()  # each copy under way stops at its next chunk and is deleted
            wait(futures)
            raise
        finally:
            os.close(fd)
    db.session.commit()
    return outcome(image, locs, wanted)


def start_copies(locs: list[ImageLocation]) -> None:
    for loc in locs:
        loc.copy_state, loc.copied, loc.error = "copying", 0, ""
        # A partial copy an unreachable host kept is replaced by this one (the copy
        # deletes it first): it is no leftover any more.
        leftovers.forget(loc.host_id, Leftover.VOLUME, loc.image.volume)


def progress_of(locs: list[ImageLocation], done: dict, size: int) -> tuple[float, str]:
    for loc in locs:
        if loc.copy_state == "copying":
            loc.copied = done[loc.host_id]
    left = sum(1 for loc in locs if loc.copy_state == "copying")
    return (sum(done.values()) / (size * len(locs)),
            _l("Copying to %(left)s of %(count)s host(s).", left=left, count=len(locs))
            if left else _l("Copies written."))


def record(loc: ImageLocation, future, size: int) -> None:
    exc = future.exception()
    loc.checked_at = utcnow()
    # Whether the host was out of reach (a copy tried again later): noted on the row
    # itself for outcome(), since its error is said in the reader's language.
    loc.unreachable = isinstance(exc, HostUnavailable)
    if exc is None:
        loc.present, loc.copy_state, loc.copied, loc.error = True, "done", size, ""
        loc.path = future.result()
        log.info("image %s copied to %s", loc.image.name, loc.host.name)
        return
    loc.present, loc.copy_state = False, "failed"
    if isinstance(exc, HostUnavailable):
        loc.error = said.store(_l("%(host)s could not be reached: %(error)s",
                                  host=loc.host.name, error=said.of(exc)), ERROR_LIMIT)
        # What it received of the copy is deleted as soon as it answers again (unless
        # the next attempt, which replaces it, comes first).
        leftovers.remember(loc.host, Leftover.VOLUME, loc.image.volume,
                           get_settings().storage_pool, said.render(loc.error))
    elif isinstance(exc, VirtError):
        loc.error = f"{loc.host.name}: {exc}"[:ERROR_LIMIT]
    else:
        log.error("copy of %s to %s failed", loc.image.name, loc.host.name, exc_info=exc)
        loc.error = f"{loc.host.name}: {type(exc).__name__}: {exc}"[:ERROR_LIMIT]


def outcome(image: Image, locs: list[ImageLocation], wanted: set[int]):
    """The task's result (a lazy message); raises when a copy failed."""
    # Every chosen host that has it, also those an earlier attempt copied to.
    copied = sorted(loc.host.name for loc in image.locations
                    if loc.host_id in wanted and loc.present)
    failed = [loc for loc in locs if not loc.present]
    if not failed:
        return _l("%(name)s copied to %(hosts)s.", name=image.name, hosts=", ".join(copied))
    errors = said.Joined([said.Stored(loc.error) for loc in failed], "; ")
    hosts = ", ".join(copied) or _l("no host")
    if any(getattr(loc, "unreachable", False) for loc in failed):
        raise tasks.TryAgain(_l("Copied to %(hosts)s; not yet: %(errors)s.", hosts=hosts,
                                errors=errors))
    raise ServiceError(_l("Copied to %(hosts)s; failed: %(errors)s.", hosts=hosts,
                          errors=errors))


def stopped(ctx: tasks.TaskContext, why: str) -> None:
    """After a cancel, a time-out, a failure or a worker that died: copies that had not
    finished are marked, and what a dead worker left on a host is deleted."""
    pool_name = get_settings().storage_pool
    image = _image_of(ctx.args)
    if image is None:  # an upload followed as it arrived: its volume on each host
        if why == "interrupted" and ctx.args.get("volume"):
            for host in db.session.execute(db.select(Host).where(
                    Host.id.in_(ctx.args.get("host_ids", [])))).scalars():
                try:
                    hypervisor(host).delete_volume(pool_name, ctx.args["volume"])
                except VirtError as exc:
                    log.warning("partial copy %s on %s not deleted yet: %s",
                                ctx.args["volume"], host.name, exc)
        return
    for loc in image.locations:
        if loc.host_id not in ctx.args.get("host_ids", []) or loc.present:
            continue
        if loc.copy_state in ("queued", "copying"):
            loc.copy_state = "failed"
            ended = {"cancelled": _l("The copy was cancelled."),
                     "interrupted": _l("The worker stopped during the copy.")}
            loc.error = said.store(ended.get(why, loc.error or _l("The copy stopped.")),
                                   ERROR_LIMIT)
        if why == "interrupted":
            try:
                hypervisor(loc.host).delete_volume(pool_name, image.volume)
            except VirtError as exc:
                log.warning("partial copy of %s on %s not deleted yet: %s", image.name,
                            loc.host.name, exc)
    db.session.commit()


def _image_of(args: dict) -> Image | None:
    if args.get("image_id"):
        return db.session.get(Image, args["image_id"])
    upload = db.session.get(Upload, args["upload_id"]) if args.get("upload_id") else None
    return db.session.get(Image, upload.image_id) if upload and upload.image_id else None


def copies_progress(image: Image) -> list[dict]:
    """Per host: state, bytes copied, error (the image page and its JSON)."""
    total = image.file_size or 0
    return [{"host": loc.host.name, "host_id": loc.host_id, "present": loc.present,
             "state": loc.copy_state or ("found" if loc.present else "missing"),
             "copied": loc.copied, "total": total, "error": said.render(loc.error),
             "checked_at": loc.checked_at.isoformat() + "Z" if loc.checked_at else None}
            for loc in sorted(image.locations, key=lambda loc: loc.host.name)]


def delete_copies(image: Image) -> list[str]:
    """Delete the volumes LouCloud uploaded for ``image`` and its own copy. Returns the
    names of hosts where a copy could not be deleted (offline)."""
    pool_name = get_settings().storage_pool
    left = []
    for loc in image.locations:
        if loc.copy_state is None:
            continue
        try:
            hypervisor(loc.host).delete_volume(pool_name, image.volume)
        except VirtError as exc:
            log.warning("copy of %s on %s not deleted: %s", image.name, loc.host.name, exc)
            left.append(loc.host.name)
    try:
        os.unlink(store_path(image.volume))
    except FileNotFoundError:
        pass
    return left
