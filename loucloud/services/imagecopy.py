"""Copying an uploaded image to the hosts, as a task: LouCloud's own copy of the file
(the image store) is written to each host's storage pool through libvirt's volume upload
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

from ..extensions import db
from ..models import Host, Image, ImageLocation, Leftover, Task, User, utcnow
from ..virt import HostUnavailable, VirtError
from . import Conflict, NotAllowed, ServiceError, transaction
from . import leftovers, tasklist, tasks
from .hypervisors import hypervisor
from .settings import get_settings

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Raised in an upload's progress callback: abandon the copy (it is deleted)."""


def store_path(volume: str) -> str:
    """LouCloud's own copy of an uploaded image (the source of every host's copy)."""
    return os.path.join(current_app.config["IMAGE_STORE"], volume)


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


def _check_copyable(image: Image) -> None:
    if not image.uploaded:
        raise Conflict(f"{image.name} was added by its path on the hosts; copy the file "
                       "there and check the image again.")
    if tasklist.active_for("image", image.id):
        raise Conflict(f"{image.name} is being copied already; see its task.")
    if not os.path.exists(store_path(image.volume)):
        raise ServiceError(f"LouCloud's own copy of {image.name} "
                           f"({store_path(image.volume)}) is missing; upload it again.")


@transaction
def copy_where_missing(user: User, image: Image) -> Task:
    """Copy an uploaded image to every host that lacks it."""
    if not user.is_admin:
        raise NotAllowed("Only the administrator copies images.")
    _check_copyable(image)
    hosts = db.session.execute(db.select(Host.id)).scalars().all()
    missing = [h for h in hosts if not image.present_on(h)]
    if not missing:
        raise Conflict(f"Every host has {image.name} already.")
    return copy_image(user, image, missing)


@transaction
def copy_images_to_host(user: User, host: Host) -> list[Task]:
    """"Copy images to this host": every uploaded image it lacks, one task each."""
    if not user.is_admin:
        raise NotAllowed("Only the administrator copies images.")
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
        raise Conflict(f"{host.name} has every image LouCloud uploaded (or they are being "
                       "copied).")
    return started


def _one_copy(hv, pool_name: str, image_facts: tuple, source: str, done: dict,
              host_id: int, stop: threading.Event, timeout: float) -> str:
    """Copy to one host (a thread of its own; no database here). Returns the path."""
    volume, fmt, virtual_size = image_facts
    hv.ensure_pool(pool_name)
    if hv.volume_info(pool_name, volume) is not None:
        hv.delete_volume(pool_name, volume)  # an earlier copy that did not finish

    def progress(sent: int, _total: int) -> None:
        done[host_id] = sent
        if stop.is_set():
            raise _Stop()
    vol = hv.upload_file(pool_name, volume, source, progress, timeout=timeout)
    info = hv.volume_info(pool_name, volume)
    if info is None or info.format != fmt or info.virtual_size != virtual_size:
        hv.delete_volume(pool_name, volume)
        seen = f"{info.format}, {info.virtual_size} bytes" if info else "nothing"
        raise VirtError(f"the copy reads back as {seen}, not {fmt} of {virtual_size} bytes")
    return vol.path


@tasks.kind("image.copy", "Copy an image to hosts", attempts=4, timeout=6 * 3600,
            on_stop=lambda ctx, why: _stopped(ctx, why))
def _copy(ctx: tasks.TaskContext) -> str:
    image = db.session.get(Image, ctx.args["image_id"])
    if image is None:
        raise ServiceError("The image was deleted.")
    source = store_path(image.volume)
    if not os.path.exists(source):
        raise ServiceError(f"LouCloud's own copy of {image.name} ({source}) is missing.")
    size = os.path.getsize(source)
    wanted = set(ctx.args["host_ids"])
    locs = [loc for loc in image.locations if loc.host_id in wanted and not loc.present]
    if not locs:
        return f"Every chosen host has {image.name}."
    pool_name = get_settings().storage_pool
    facts = (image.volume, image.format, image.virtual_size)
    done: dict[int, int] = {loc.host_id: 0 for loc in locs}
    stop = threading.Event()
    for loc in locs:
        loc.copy_state, loc.copied, loc.error = "copying", 0, ""
        # A partial copy an unreachable host kept is replaced by this one (the copy
        # deletes it first): it is no leftover any more.
        leftovers.forget(loc.host_id, Leftover.VOLUME, image.volume)
    ctx.report(0.0, f"Copying to {len(locs)} host(s).", force=True)
    with ThreadPoolExecutor(max_workers=len(locs), thread_name_prefix="copy") as workers:
        futures = {workers.submit(_one_copy, hypervisor(loc.host), pool_name, facts, source,
                                  done, loc.host_id, stop, ctx.task.timeout_seconds): loc
                   for loc in locs}
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5)
                for future in finished:
                    _record(futures[future], future, size, pool_name)
                for loc in locs:
                    if loc.copy_state == "copying":
                        loc.copied = done[loc.host_id]
                left = sum(1 for loc in locs if loc.copy_state == "copying")
                ctx.report(sum(done.values()) / (size * len(locs)),
                           f"Copying to {left} of {len(locs)} host(s)." if left else
                           "Copies written.")
        except BaseException:
            stop.set()  # each copy under way stops at its next chunk and is deleted
            wait(futures)
            raise
    db.session.commit()
    return _outcome(image, locs, wanted)


def _record(loc: ImageLocation, future, size: int, pool_name: str) -> None:
    exc = future.exception()
    loc.checked_at = utcnow()
    if exc is None:
        loc.present, loc.copy_state, loc.copied, loc.error = True, "done", size, ""
        loc.path = future.result()
        log.info("image %s copied to %s", loc.image.name, loc.host.name)
        return
    loc.present, loc.copy_state = False, "failed"
    if isinstance(exc, HostUnavailable):
        loc.error = f"{loc.host.name} could not be reached: {exc}"[:500]
        # What it received of the copy is deleted as soon as it answers again (unless
        # the next attempt, which replaces it, comes first).
        leftovers.remember(loc.host, Leftover.VOLUME, loc.image.volume, pool_name,
                           loc.error)
    elif isinstance(exc, VirtError):
        loc.error = f"{loc.host.name}: {exc}"[:500]
    else:
        log.error("copy of %s to %s failed", loc.image.name, loc.host.name, exc_info=exc)
        loc.error = f"{loc.host.name}: {type(exc).__name__}: {exc}"[:500]


def _outcome(image: Image, locs: list[ImageLocation], wanted: set[int]) -> str:
    # Every chosen host that has it, also those an earlier attempt copied to.
    copied = sorted(loc.host.name for loc in image.locations
                    if loc.host_id in wanted and loc.present)
    failed = [loc for loc in locs if not loc.present]
    if not failed:
        return f"{image.name} copied to {', '.join(copied)}."
    said = "; ".join(loc.error for loc in failed)
    if any("could not be reached" in loc.error for loc in failed):
        raise tasks.TryAgain(f"Copied to {', '.join(copied) or 'no host'}; not yet: {said}.")
    raise ServiceError(f"Copied to {', '.join(copied) or 'no host'}; failed: {said}.")


def _stopped(ctx: tasks.TaskContext, why: str) -> None:
    """After a cancel, a time-out, a failure or a worker that died: copies that had not
    finished are marked, and what a dead worker left on a host is deleted."""
    image = db.session.get(Image, ctx.args.get("image_id"))
    if image is None:
        return
    pool_name = get_settings().storage_pool
    for loc in image.locations:
        if loc.host_id not in ctx.args.get("host_ids", []) or loc.present:
            continue
        if loc.copy_state in ("queued", "copying"):
            loc.copy_state = "failed"
            loc.error = {"cancelled": "The copy was cancelled.",
                         "interrupted": "The worker stopped during the copy."}.get(
                why, loc.error or "The copy stopped.")
        if why == "interrupted":
            try:
                hypervisor(loc.host).delete_volume(pool_name, image.volume)
            except VirtError as exc:
                log.warning("partial copy of %s on %s not deleted yet: %s", image.name,
                            loc.host.name, exc)
    db.session.commit()


def copies_progress(image: Image) -> list[dict]:
    """Per host: state, bytes copied, error (the image page and its JSON)."""
    total = image.file_size or 0
    return [{"host": loc.host.name, "host_id": loc.host_id, "present": loc.present,
             "state": loc.copy_state or ("found" if loc.present else "missing"),
             "copied": loc.copied, "total": total, "error": loc.error,
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
