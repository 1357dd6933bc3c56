"""Templates (flavors): the sizes users choose from. Editing one does not change the
VMs made from it (they keep their own copy of the figures)."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ..extensions import db
from ..models import INT64_MAX, VM, BootJob, Image, Template
from . import Conflict, FieldError, NotFound, paginate, transaction

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()+-]{0,63}$")
GIB = 1024 ** 3
LIMITS = {"vcpus": (1, 256), "memory_mib": (64, 4 * 1024 * 1024), "disk_gib": (1, 65536)}


@dataclass(frozen=True)
class Sizes:
    vcpus: int
    memory_mib: int
    disk_gib: int


def min_disk_gib(image: Image) -> int:
    """The smallest whole GiB that holds the image's virtual size."""
    return max(1, -(-image.virtual_size // GIB))


def _image(image: Image | int | None) -> Image | None:
    """The image itself, given it or its id (a form's choice, which may have gone)."""
    if isinstance(image, int) and not isinstance(image, bool):
        return db.session.get(Image, image) if 0 < image <= INT64_MAX else None
    return image


NOTES_MAX = 2000


def _check_notes(notes: str | None) -> str:
    notes = (notes or "").strip()
    if len(notes) > NOTES_MAX:
        raise FieldError(f"Keep the notes under {NOTES_MAX} characters.", "notes")
    return notes


def _check(name: str, sizes: Sizes, image: Image | None, exclude_id: int | None) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldError("Use 1 to 64 letters, digits, spaces or . _ ( ) + -.", "name")
    stmt = db.select(Template.id).where(Template.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Template.id != exclude_id)
    if db.session.execute(stmt).first():
        raise FieldError("A template with this name exists.", "name")
    for field, (low, high) in LIMITS.items():
        value = getattr(sizes, field)
        if not isinstance(value, int) or not low <= value <= high:
            raise FieldError(f"Enter a whole number from {low} to {high}.", field)
    if image is None:
        raise FieldError("Choose an image.", "image_id")
    if sizes.disk_gib < min_disk_gib(image):
        raise FieldError(f"The image {image.name} needs at least "
                            f"{min_disk_gib(image)} GiB.", "disk_gib")
    return name


@dataclass(frozen=True)
class Network:
    """Where a template's VMs put their NIC: ``kind`` "network" (a libvirt network by
    name; empty: Settings' network), "bridge" (a host bridge by name) or "none"."""
    kind: str = "network"
    name: str = ""


NIC_KINDS = ("network", "bridge", "none")
NET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BRIDGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


def _check_network(network: Network | None) -> Network:
    network = network or Network()
    name = (network.name or "").strip()
    if network.kind not in NIC_KINDS:
        raise FieldError("Choose a network, a host bridge or no network card.", "nic_kind")
    if network.kind == "bridge" and not BRIDGE_RE.match(name):
        raise FieldError("Give the host bridge's name (at most 15 letters, digits, '.', "
                         "'_' or '-'), such as br0.", "network")
    if network.kind == "network" and name and not NET_NAME_RE.match(name):
        raise FieldError("Use a libvirt network's name, or leave it empty for Settings' "
                         "network.", "network")
    return Network(network.kind, name if network.kind != "none" else "")


def _jobs(ids) -> list[BootJob]:
    jobs = []
    for job_id in ids or ():
        job = db.session.get(BootJob, job_id) if isinstance(job_id, int) and \
            0 < job_id <= INT64_MAX else None
        if job is None:
            raise FieldError("Choose among the boot jobs listed.", "boot_jobs")
        jobs.append(job)
    return jobs


@transaction
def create_template(name: str, sizes: Sizes, image: Image | int | None,
                    notes: str = "", *, network: Network | None = None,
                    boot_job_ids=()) -> Template:
    """A new template on ``image`` (the image or its id)."""
    image = _image(image)
    name = _check(name, sizes, image, None)
    network = _check_network(network)
    template = Template(name=name, vcpus=sizes.vcpus, memory_mib=sizes.memory_mib,
                        disk_gib=sizes.disk_gib, image=image, notes=_check_notes(notes),
                        nic_kind=network.kind, network=network.name or None,
                        boot_jobs=_jobs(boot_job_ids))
    db.session.add(template)
    db.session.commit()
    log.info("template %s created", name)
    return template


@transaction
def update_template(template: Template, name: str, sizes: Sizes, image: Image | int | None,
                    notes: str = "", *, network: Network | None = None,
                    boot_job_ids=None) -> Template:
    """Change a template; VMs made from it keep what they were made with."""
    image = _image(image)
    template.name = _check(name, sizes, image, template.id)
    if network is not None:
        network = _check_network(network)
        template.nic_kind, template.network = network.kind, network.name or None
    if boot_job_ids is not None:
        template.boot_jobs = _jobs(boot_job_ids)
    template.vcpus, template.memory_mib = sizes.vcpus, sizes.memory_mib
    template.disk_gib, template.image = sizes.disk_gib, image
    template.notes = _check_notes(notes)
    db.session.commit()
    return template


@transaction
def delete_template(template: Template) -> None:
    """Delete a template; refused while VMs were made from it."""
    count = db.session.execute(
        db.select(db.func.count(VM.id)).where(VM.template_id == template.id)).scalar()
    if count:
        raise Conflict(f"{count} VM{'s' if count > 1 else ''} use{'s' if count == 1 else ''} "
                       f"{template.name}. Delete them first.")
    db.session.delete(template)
    db.session.commit()
    log.info("template %s deleted", template.name)


def get_template(template_id: int) -> Template:
    """The template with this id. Raises NotFound."""
    template = db.session.get(Template, template_id) if 0 < template_id <= INT64_MAX \
        else None
    if template is None:
        raise NotFound()
    return template


def template_by_name(name: str) -> Template:
    """The template called ``name``. Raises NotFound."""
    template = db.session.execute(db.select(Template).where(Template.name == name)).scalar()
    if template is None:
        raise NotFound(f"There is no template named {name}.")
    return template


def all_templates() -> list[Template]:
    return db.session.execute(db.select(Template).order_by(Template.name)).scalars().all()


def templates_page(page: int = 1, per_page: int = 50):
    """A page of the templates, by name (the API's list; every user chooses from all of
    them, as on the new VM page)."""
    return paginate(db.select(Template).order_by(Template.name, Template.id), page,
                    per_page)


def vm_counts() -> dict[int, int]:
    """How many VMs were made from each template, by template id."""
    return dict(db.session.execute(db.select(VM.template_id, db.func.count(VM.id))
                                   .group_by(VM.template_id)).all())
