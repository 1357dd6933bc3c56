"""Images in through LouCloud: a file arrives in chunks (the browser's or the CLI's) in
the staging folder, its SHA-256 computed as it comes; a dropped connection resumes from
the offset both sides know. Finished, the file is checked from its own bytes (format,
backing file, cut short), kept in LouCloud's image store, recorded as an image, and a
task copies it to the hosts (services/imagecopy.py)."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import threading

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l

from .. import imagefiles, osinfo
from ..extensions import db
from ..models import Host, Image, ImageLocation, Task, Upload, User, utcnow
from ..virt.sources import PIECE, is_zero, zeros as zero_bytes
from . import (Conflict, FieldError, NotAllowed, NotFound, ServiceError, paginate,
               transaction)
from . import said, tasks
from .copytasks import copy_image
from .imagecopy import staging_path, store_path, volume_for
from .images import Guest, check_guest
from .names import display_name

log = logging.getLogger(__name__)

MAX_SIZE = 2 ** 40           # 1 TiB
FORMAT_CHOICES = ("auto", "qcow2", "raw", "iso")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
ZERO_RUN_MAX = 2 ** 30       # zero bytes a client may say in one request (hashed here)
# An upload's state (stored as the word on the left) as a person reads it.
STATE_LABELS = {"receiving": _l("receiving"), "done": _l("done"), "refused": _l("refused")}

# The running SHA-256 of each upload this process receives, with the offset it covers;
# a chunk arriving at another process (or after a restart) rebuilds it from the file.
_hashers: dict[str, tuple[int, "hashlib._Hash"]] = {}
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _lock(upload_id: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(upload_id, threading.Lock())


def _admin(user: User) -> None:
    if not (user and user.is_admin):
        raise NotAllowed(_("Only the administrator adds images."))


def _host_ids(host_ids: list[int] | None) -> list[int]:
    hosts = db.session.execute(db.select(Host.id).order_by(Host.name)).scalars().all()
    if not hosts:
        raise FieldError(_("Add a host first: images are copied to the hosts."), "hosts")
    if not host_ids:
        return list(hosts)
    unknown = set(host_ids) - set(hosts)
    if unknown:
        raise FieldError(_("Choose hosts from the list."), "hosts")
    return [h for h in hosts if h in set(host_ids)]


@transaction
def begin(user: User, name: str, filename: str, size: int, *, fmt: str = "auto",
          sha256: str = "", guest: Guest | None = None, os_type: str = "auto",
          host_ids: list[int] | None = None) -> Upload:
    """Open an upload (or find the unfinished one of the same name, file and size, to
    resume it). Refused when the name is taken, the size is impossible or the staging
    folder has no room for the file."""
    _admin(user)
    name = display_name(name, what="image")
    filename = os.path.basename((filename or "").strip())
    if not filename or len(filename) > 255:
        raise FieldError(_("Give the file's name."), "file")
    if not isinstance(size, int) or not 0 < size <= MAX_SIZE:
        raise FieldError(_("The file must hold between 1 byte and 1 TiB."), "file")
    if fmt not in FORMAT_CHOICES:
        raise FieldError(_("Choose qcow2, raw, ISO or 'from the file'."), "format")
    sha256 = (sha256 or "").strip().lower()
    if sha256 and not SHA_RE.match(sha256):
        raise FieldError(_("A SHA-256 is 64 hexadecimal digits."), "sha256")
    if os_type not in ("auto", "linux", "windows"):
        raise FieldError(_("Choose linux, windows or 'from the file'."), "os_type")
    guest = check_guest(guest or Guest())
    hosts = _host_ids(host_ids)
    if db.session.execute(db.select(Image.id).where(Image.name == name)).first():
        raise FieldError(_("An image with this name exists."), "name")
    same = db.session.execute(db.select(Upload).where(
        Upload.name == name, Upload.state == "receiving")).scalar()
    if same is not None:
        if same.filename == filename and same.size == size and same.owner_id == user.id:
            _start_copy_task(user, same)  # the same file again: resume where it stopped
            return same
        raise FieldError(_("An upload of this name is under way."), "name")
    folder = current_app.config["UPLOAD_DIR"]
    os.makedirs(folder, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < size + 64 * 2 ** 20:
        raise ServiceError(_("The staging folder (%(folder)s) has %(free)s MiB free; the file "
                             "needs %(needed)s MiB.", folder=folder, free=free // 2**20,
                             needed=size // 2**20 + 1))
    upload = Upload(id=secrets.token_hex(16), owner_id=user.id, name=name,
                    filename=filename, size=size, format=fmt, sha256=sha256 or None,
                    os_type=os_type if os_type != "auto" else "",
                    cloud_init=guest.cloud_init, login_user=guest.login_user,
                    firmware=guest.firmware, host_ids=",".join(map(str, hosts)))
    open(staging_path(upload), "wb").close()
    db.session.add(upload)
    db.session.commit()
    log.info("upload %s of %s (%s, %d bytes) opened", upload.id, name, filename, size)
    _start_copy_task(user, upload)
    return upload


def _follower(upload: Upload) -> Task | None:
    """The upload's copy task while it is queued or running (it follows the file)."""
    task = db.session.get(Task, upload.task_id) if upload.task_id else None
    return task if task is not None and not task.finished else None


def _chosen_hosts(upload: Upload) -> list[int]:
    return [int(h) for h in upload.host_ids.split(",") if h]


def _start_copy_task(user: User, upload: Upload) -> None:
    """The copy task of an upload, which follows the file as it arrives (started
    again when an upload resumes after its task stopped)."""
    if _follower(upload) is not None:
        return
    task = tasks.start("image.copy", user, target_type="image", target_name=upload.name,
                       args={"upload_id": upload.id, "host_ids": _chosen_hosts(upload)})
    upload.task_id = task.id
    db.session.commit()


def upload_for(user: User, upload_id: str) -> Upload:
    upload = db.session.get(Upload, upload_id) if re.fullmatch(r"[0-9a-f]{32}",
                                                               upload_id or "") else None
    if upload is None or not user.is_admin:
        raise NotFound()
    return upload


def _unfinished():
    return db.select(Upload).where(Upload.state == "receiving").order_by(
        Upload.created_at, Upload.id)


def unfinished(user: User) -> list[Upload]:
    """Uploads that stopped half-way (the page offers to resume them)."""
    if not user.is_admin:
        return []
    return db.session.execute(_unfinished()).scalars().all()


def unfinished_page(user: User, page: int = 1, per_page: int = 50):
    """A page of the uploads that stopped half-way, oldest first (the API's list)."""
    _admin(user)
    return paginate(_unfinished(), page, per_page)


class OffsetMismatch(Conflict):
    """The chunk does not start where the server is; ``offset`` says where that is."""

    def __init__(self, offset: int):
        super().__init__(_("The server has %(offset)s bytes of this file; send from there.",
                           offset=offset))
        self.offset = offset


def _hasher_at(upload: Upload, offset: int):
    """The SHA-256 of the upload's first ``offset`` bytes: this process's running sum,
    brought forward over the chunks other processes took (only those are read)."""
    held = _hashers.get(upload.id)
    if held and held[0] == offset:
        return held[1]
    start, digest = (held[0], held[1].copy()) if held and held[0] < offset else \
        (0, hashlib.sha256())
    with open(staging_path(upload), "rb") as f:
        f.seek(start)
        left = offset - start
        while left:
            block = f.read(min(PIECE, left))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest


@transaction
def receive(user: User, upload_id: str, offset: int, read, length: int, *,
            zeros: bool = False) -> int:
    """Write ``length`` bytes read from ``read(n)`` at ``offset``. Returns the new
    offset. A chunk that stops short (a dropped connection) keeps nothing: the client
    sends it again from the offset the server answers. With ``zeros`` the chunk is
    ``length`` zero bytes the client found in its file and did not send (nothing is
    read; up to ZERO_RUN_MAX at once). Zeros, sent or not, stay a hole of the staged
    file, which the copies send to the hosts as a hole (virt/storage.py)."""
    upload = upload_for(user, upload_id)
    if upload.state != "receiving":
        raise Conflict(_state_refusal(upload))
    read, limit = (zero_bytes, ZERO_RUN_MAX) if zeros else \
        (read, current_app.config["UPLOAD_CHUNK_BYTES"])
    if not 0 < length <= limit or offset + length > upload.size:
        raise FieldError(_("Say runs of 1 byte to %(limit)s bytes of zeros within the file.",
                           limit=limit) if zeros else
                         _("Send chunks of 1 byte to %(limit)s bytes within the file.",
                           limit=limit))
    with _lock(upload.id):
        db.session.refresh(upload)
        if offset != upload.received:
            raise OffsetMismatch(upload.received)
        digest = _hasher_at(upload, offset).copy()
        got = 0
        with open(staging_path(upload), "r+b") as f:
            f.truncate(offset)
            f.seek(offset)
            while got < length:
                try:
                    block = read(min(PIECE, length - got))
                except OSError:  # the connection broke under the read (mod_wsgi's error)
                    break
                if not block:
                    break
                if zeros or is_zero(block):
                    f.seek(len(block), os.SEEK_CUR)  # zeros stay a hole of the file
                else:
                    f.write(block)
                digest.update(block)
                got += len(block)
            f.truncate()  # the file ends where the chunk does (also after a hole)
        if got < length:
            raise Conflict(_("The chunk stopped after %(got)s of %(length)s bytes; the server "
                             "has %(offset)s bytes. Send again from there.", got=got,
                             length=length, offset=offset))
        changed = db.session.execute(db.update(Upload).where(
            Upload.id == upload.id, Upload.received == offset).values(
            received=offset + got, updated_at=utcnow())).rowcount
        db.session.commit()
        if not changed:
            raise OffsetMismatch(db.session.get(Upload, upload.id).received)
        _hashers[upload.id] = (offset + got, digest)
        return offset + got


def _state_refusal(upload: Upload) -> str:
    """Why an upload that is no longer receiving takes nothing more."""
    return _("This upload is %(state)s.",
             state=STATE_LABELS.get(upload.state, upload.state))


def _forget(upload_id: str) -> None:
    _hashers.pop(upload_id, None)
    with _guard:
        _locks.pop(upload_id, None)


def _refuse(upload: Upload, message, field: str | None = None):
    try:
        os.unlink(staging_path(upload))
    except FileNotFoundError:
        pass
    _forget(upload.id)
    upload.state, upload.error = "refused", said.store(message, 500)
    db.session.commit()
    log.warning("upload %s of %s refused: %s", upload.id, upload.name, message)
    # Committed: the refusal is kept (transaction() rolls nothing back that matters).
    raise FieldError(_("%(reason)s Nothing was kept.", reason=message), field)


@transaction
def finish(user: User, upload_id: str) -> tuple[Image, Task]:
    """Check the whole file, record the image and start copying it to the hosts."""
    upload = upload_for(user, upload_id)
    if upload.state != "receiving":
        raise Conflict(_state_refusal(upload))
    if upload.received != upload.size:
        raise Conflict(_("%(received)s of %(size)s bytes have arrived; send the rest first.",
                         received=upload.received, size=upload.size))
    path = staging_path(upload)
    if not os.path.exists(path) or os.path.getsize(path) != upload.size:
        _refuse(upload, _l("The staged file is missing or has another size."))
    sha = _hasher_at(upload, upload.size).hexdigest()
    if upload.sha256 and sha != upload.sha256:
        _refuse(upload, _l("The file's SHA-256 is %(sha)s, not the %(given)s you gave.",
                           sha=sha, given=upload.sha256), "sha256")
    try:
        facts = imagefiles.inspect(path, upload.format, upload.filename)
    except imagefiles.ImageFileProblem as exc:
        _refuse(upload, str(exc), "file")
    if db.session.execute(db.select(Image.id).where(Image.name == upload.name)).first():
        _refuse(upload, _l("An image with this name was added meanwhile."), "name")
    os_type = upload.os_type or _proposed(facts, upload.filename).os_type
    volume = volume_for(upload.name, facts.format)
    os.makedirs(current_app.config["IMAGE_STORE"], exist_ok=True)
    kept = store_path(volume)
    shutil.move(path, kept)
    _forget(upload.id)
    image = Image(name=upload.name, path=kept, os_type=os_type, format=facts.format,
                  virtual_size=facts.virtual_size, cloud_init=upload.cloud_init,
                  login_user=upload.login_user, firmware=upload.firmware, volume=volume,
                  file_size=facts.file_size, sha256=sha)
    host_ids = _chosen_hosts(upload)
    for host_id in host_ids:
        image.locations.append(ImageLocation(host_id=host_id, present=False,
                                             copy_state="queued"))
    db.session.add(image)
    upload.state, upload.image_id = "done", None
    db.session.flush()
    upload.image_id = image.id
    db.session.commit()
    log.info("image %s uploaded (%s, %d bytes, sha256 %s)", image.name, image.format,
             facts.file_size, sha)
    task = _follower(upload)
    if task is not None:  # it follows the file: hand it the image
        task.target_id = image.id
        db.session.commit()
        return image, task
    return image, copy_image(user, image, host_ids)


def _proposed(facts: imagefiles.FileFacts, filename: str) -> osinfo.OsGuess:
    guess = osinfo.guess_from_volume_id(facts.volume_id) if facts.volume_id else None
    return guess or osinfo.guess_from_name(filename) or osinfo.OsGuess("", "linux")


@transaction
def abandon(user: User, upload_id: str) -> None:
    """Stop an upload and delete what arrived."""
    upload = upload_for(user, upload_id)
    if upload.state != "receiving":
        raise Conflict(_state_refusal(upload))
    try:
        os.unlink(staging_path(upload))
    except FileNotFoundError:
        pass
    _forget(upload.id)
    db.session.delete(upload)
    db.session.commit()


def inspect_head(head: bytes, filename: str) -> dict:
    """What the first bytes of a file tell, before it is sent (the page fills in the
    format and proposes the OS type)."""
    found = imagefiles.sniff(head)
    volume_id = imagefiles.iso_volume_id(head) if found == "iso" else ""
    guess = (osinfo.guess_from_volume_id(volume_id) if volume_id else None) or \
        osinfo.guess_from_name(filename)
    named = imagefiles.expected_from_name(filename)
    problem = ""
    if found not in imagefiles.FORMATS:
        problem = _("The file is %(what)s.", what=found)
    elif named and named != found:
        problem = _("The file is named %(extension)s but is a %(format)s file.",
                    extension=os.path.splitext(filename)[1], format=found)
    return {"format": found if found in imagefiles.FORMATS else None,
            "volume_id": volume_id, "os_name": guess.name if guess else "",
            "os_type": guess.os_type if guess else "", "problem": problem}


def as_dict(upload: Upload) -> dict:
    return {"id": upload.id, "name": upload.name, "filename": upload.filename,
            "size": upload.size, "offset": upload.received, "state": upload.state,
            "error": said.render(upload.error), "image_id": upload.image_id,
            "chunk_bytes": current_app.config["UPLOAD_CHUNK_BYTES"],
            "zero_run_bytes": ZERO_RUN_MAX}
