"""Images: disk files that already lie on the hosts. LouCloud records them and checks
them through libvirt; it never copies, changes or deletes an image file."""
from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass

from flask_babel import gettext as _, ngettext

from ..extensions import db
from ..models import INT64_MAX, VM, Image, ImageLocation, Host, Template, utcnow
from ..virt import HostUnavailable, VirtError
from ..virt.driver import ImageInfo, ImageProblem, on_each
from . import Conflict, FieldError, NotFound, ServiceError, paginate, transaction
from .hypervisors import hypervisor
from .imagecopy import delete_copies as delete_volumes
from .names import display_name, file_slug, normal
from .settings import get_settings
from .tasklist import active_for

log = logging.getLogger(__name__)

OS_TYPES = ("linux", "windows")
FIRMWARES = ("bios", "uefi")


def check_path(path: str) -> str:
    """An absolute, normalised file path: no '..', no '//', no trailing '/'."""
    path = (path or "").strip()
    if not path.startswith("/") or len(path) > 1024:
        raise FieldError(_("Enter the absolute path of the image file on the hosts, such as "
                           "/var/lib/libvirt/images/debian-12.qcow2."), "path")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise FieldError(_("The path contains control characters."), "path")
    # normpath keeps a leading '//' (POSIX allows it a meaning): refuse it explicitly.
    if posixpath.normpath(path) != path or path.startswith("//") or path.endswith("/") \
            or path == "/":
        raise FieldError(_("Write the path without '..', '.', '//' or a final '/'."), "path")
    return path


def _inspect_everywhere(path: str) -> tuple[dict[int, ImageInfo | None],
                                            list[str], list[Host]]:
    """Inspect the file on every host at once. Returns (result by host id for hosts
    that answered, names of hosts that did not, all hosts)."""
    hosts = db.session.execute(db.select(Host).order_by(Host.name)).scalars().all()
    results = on_each([hypervisor(s) for s in hosts], lambda h: h.inspect_image(path))
    found: dict[int, ImageInfo | None] = {}
    unreachable: list[str] = []
    for host in hosts:
        result = results[host.uri]
        if isinstance(result, ImageProblem):
            raise FieldError(_("On %(host)s: %(problem)s", host=host.name, problem=result), "path")
        if isinstance(result, VirtError):
            log.warning("image %s not checked on %s: %s", path, host.name, result)
            why = _("offline") if isinstance(result, HostUnavailable) else str(result)
            unreachable.append(f"{host.name} ({why})")
            continue
        found[host.id] = result
    return found, unreachable, hosts


def _locations(image: Image, found: dict[int, ImageInfo | None]) -> None:
    """Record presence per answering host; a file that differs (format or size) from
    the image's is not counted as the image."""
    by_host = {loc.host_id: loc for loc in image.locations}
    now = utcnow()
    for host_id, info in found.items():
        present = info is not None and info.format == image.format and \
            info.virtual_size == image.virtual_size
        loc = by_host.get(host_id)
        if loc is None:
            image.locations.append(ImageLocation(host_id=host_id, present=present,
                                                 checked_at=now))
        else:
            loc.present, loc.checked_at = present, now


@dataclass(frozen=True)
class Guest:
    """What LouCloud must know of the system inside an image: its OS (the clock),
    whether it takes cloud-init first-boot data and who its login user is, and its
    firmware."""
    os_type: str = "linux"
    cloud_init: bool = False
    login_user: str = ""
    firmware: str = "bios"


LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def check_guest(guest: Guest) -> Guest:
    if guest.os_type not in OS_TYPES:
        raise FieldError(_("Choose linux or windows."), "os_type")
    if guest.firmware not in FIRMWARES:
        raise FieldError(_("Choose BIOS or UEFI."), "firmware")
    login = (guest.login_user or "").strip()
    if guest.cloud_init and not LOGIN_RE.match(login):
        raise FieldError(_("Give the image's default login user (for instance debian or "
                           "ubuntu): lower-case letters, digits, '_' or '-'."), "login_user")
    if login and not LOGIN_RE.match(login):
        raise FieldError(_("Use a Linux user name: lower-case letters, digits, '_' or '-'."),
                         "login_user")
    return Guest(guest.os_type, bool(guest.cloud_init), login, guest.firmware)


@transaction
def add_image(name: str, path: str, os_type: str = "linux", *,
              guest: Guest | None = None) -> Image:
    """Record an image after finding it on the hosts. Refused when the file is on no
    host, is a directory, has a backing file or is neither qcow2 nor raw."""
    name = display_name(name, what="image")
    guest = check_guest(guest or Guest(os_type))
    path = check_path(path)
    if db.session.execute(db.select(Image.id).where(Image.name == name)).first():
        raise FieldError(_("An image with this name exists."), "name")
    found, unreachable, hosts = _inspect_everywhere(path)
    present = [info for info in found.values() if info is not None]
    if not hosts:
        raise FieldError(_("Add a host first: images are files on the hosts."), "path")
    if not present:
        where = ", ".join(s.name for s in hosts if s.id in found) or _("no host answered")
        if unreachable:
            raise FieldError(_("No file at %(path)s on any host (checked on %(where)s; not "
                               "checked on %(unreachable)s).", path=path, where=where,
                               unreachable=", ".join(unreachable)), "path")
        raise FieldError(_("No file at %(path)s on any host (checked on %(where)s).",
                           path=path, where=where), "path")
    reference = present[0]
    image = Image(name=name, path=path, os_type=guest.os_type, format=reference.format,
                  virtual_size=reference.virtual_size, cloud_init=guest.cloud_init,
                  login_user=guest.login_user, firmware=guest.firmware)
    _locations(image, found)
    db.session.add(image)
    db.session.commit()
    log.info("image %s added (%s, %s, %s bytes)", name, path, image.format,
             image.virtual_size)
    return image


@transaction
def recheck_image(image: Image) -> list[str]:
    """Look for the image's file on every host again (after adding a host or copying the
    file). Returns the names of hosts that could not be checked."""
    found, unreachable, _ = _inspect_everywhere(image.path)
    _locations(image, found)
    db.session.commit()
    return unreachable


@transaction
def update_image(image: Image, name: str, os_type: str | None = None, *,
                 guest: Guest | None = None) -> Image:
    """Rename an image or say again what is inside (VMs made before keep theirs)."""
    name = display_name(name, what="image")
    guest = check_guest(guest or Guest(os_type or image.os_type, image.cloud_init,
                                       image.login_user, image.firmware))
    if db.session.execute(db.select(Image.id).where(Image.name == name,
                                                    Image.id != image.id)).first():
        raise FieldError(_("An image with this name exists."), "name")
    image.name, image.os_type = name, guest.os_type
    image.cloud_init, image.login_user = guest.cloud_init, guest.login_user
    image.firmware = guest.firmware
    db.session.commit()
    return image


@transaction
def delete_image(image: Image, *, delete_copies: bool = False) -> list[str]:
    """Forget an image. The files on the hosts are left alone, unless ``delete_copies``
    asks to delete the copies LouCloud uploaded (and its own). Refused while templates
    use it, while VMs stand on it (their disks are overlays on its file or it is in
    their CD-ROM drive) and while it is being copied. Returns the hosts whose copy could
    not be deleted (offline)."""
    if active_for("image", image.id):
        raise Conflict(_("%(name)s is being copied to hosts; cancel that task first.",
                         name=image.name))
    names = db.session.execute(db.select(Template.name).where(
        Template.image_id == image.id).order_by(Template.name)).scalars().all()
    if names:
        raise Conflict(_("Templates use %(name)s: %(templates)s. Delete or change them "
                         "first.", name=image.name, templates=", ".join(names)))
    count = db.session.execute(
        db.select(db.func.count(VM.id)).where(VM.image_id == image.id)).scalar()
    if count:
        raise Conflict(ngettext("%(num)d VM still stands on %(name)s (their disks are "
                                "overlays on it). Delete them first.",
                                "%(num)d VMs still stand on %(name)s (their disks are "
                                "overlays on it). Delete them first.", count, name=image.name))
    inserted = db.session.execute(db.select(VM.name).where(
        VM.cdrom_image_id == image.id).order_by(VM.name)).scalars().all()
    if inserted:
        raise Conflict(_("%(name)s is in the CD-ROM drive of %(vms)s; eject it first.",
                         name=image.name, vms=", ".join(inserted)))
    left: list[str] = []
    if delete_copies and image.uploaded:
        left = delete_volumes(image)
    db.session.delete(image)
    db.session.commit()
    log.info("image %s removed from LouCloud (%s)", image.name,
             "its uploaded copies deleted" if delete_copies else "files kept on the hosts")
    return left


def hosts_with_image(image: Image) -> list[int]:
    return [loc.host_id for loc in image.locations if loc.present]


def get_image(image_id: int) -> Image:
    """The image with this id. Raises NotFound."""
    image = db.session.get(Image, image_id) if 0 < image_id <= INT64_MAX else None
    if image is None:
        raise NotFound()
    return image


def image_by_name(name: str) -> Image:
    """The image called ``name``. Raises NotFound."""
    image = db.session.execute(db.select(Image).where(Image.name == normal(name))).scalar()
    if image is None:
        raise NotFound(_("There is no image named %(name)s.", name=name))
    return image


def all_images() -> list[Image]:
    return db.session.execute(db.select(Image).order_by(Image.name)).scalars().all()


def images_page(page: int = 1, per_page: int = 50):
    """A page of the images, by name (the API's list)."""
    return paginate(db.select(Image).order_by(Image.name, Image.id), page, per_page)


def volume_name_for(name: str) -> str:
    """The volume an image published by LouCloud gets in each host's pool."""
    return f"image-{file_slug(name, 'image')}.qcow2"


def publish_file(name: str, local_path: str, hosts: list[Host], guest: Guest,
                 say=lambda _text: None) -> Image:
    """Put a local image file into LouCloud's pool on each host (through libvirt's
    volume upload: the same for remote hosts) and record it. Safe to run again: a
    volume already there is kept, an image already recorded is checked again."""
    name = display_name(name, what="image")
    existing = db.session.execute(db.select(Image).where(Image.name == name)).scalar()
    if existing is not None:
        say(_("%(name)s is recorded already (%(path)s); checking the hosts again",
              name=name, path=existing.path))
        recheck_image(existing)
        return existing
    if not hosts:
        raise FieldError(_("Add a host first: images are files on the hosts."))
    pool_name, volume = get_settings().storage_pool, volume_name_for(name)
    path = None
    for host in hosts:
        hv = hypervisor(host)
        try:
            hv.ensure_pool(pool_name)
            if hv.volume_info(pool_name, volume) is None:
                last = [-1]

                def progress(done, total, host=host, last=last):
                    percent = 100 * done // max(total, 1)
                    if percent >= last[0] + 10:
                        last[0] = percent
                        say(f"  {host.name}: {percent} %")
                path = hv.upload_file(pool_name, volume, local_path, progress).path
            else:
                path = hv.volume_info(pool_name, volume).path
                say("  " + _("%(host)s: there already", host=host.name))
        except VirtError as exc:
            raise ServiceError(_("%(name)s could not be put on %(host)s: %(error)s",
                                 name=name, host=host.name, error=exc)) from None
    return add_image(name, path, guest=guest)
