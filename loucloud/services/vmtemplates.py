"""Templates (flavors): the sizes users choose from. Editing one does not change the
VMs made from it (they keep their own copy of the figures)."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ..extensions import db
from ..models import VM, Image, Template
from . import Conflict, FieldError

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()+-]{0,63}$")
GIB = 1024 ** 3
LIMITS = {"vcpus": (1, 256), "memory_mib": (64, 4 * 1024 * 1024), "disk_gib": (1, 65536)}


class TemplateError(FieldError):
    """Refused: bad input or a clash; ``field`` names the form field."""


@dataclass(frozen=True)
class Sizes:
    vcpus: int
    memory_mib: int
    disk_gib: int


def min_disk_gib(image: Image) -> int:
    """The smallest whole GiB that holds the image's virtual size."""
    return max(1, -(-image.virtual_size // GIB))


def _check(name: str, sizes: Sizes, image: Image | None, exclude_id: int | None) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise TemplateError("Use 1 to 64 letters, digits, spaces or . _ ( ) + -.", "name")
    stmt = db.select(Template.id).where(Template.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Template.id != exclude_id)
    if db.session.execute(stmt).first():
        raise TemplateError("A template with this name exists.", "name")
    for field, (low, high) in LIMITS.items():
        value = getattr(sizes, field)
        if not isinstance(value, int) or not low <= value <= high:
            raise TemplateError(f"Enter a whole number from {low} to {high}.", field)
    if image is None:
        raise TemplateError("Choose an image.", "image_id")
    if sizes.disk_gib < min_disk_gib(image):
        raise TemplateError(f"The image {image.name} needs at least "
                            f"{min_disk_gib(image)} GiB.", "disk_gib")
    return name


def create_template(name: str, sizes: Sizes, image: Image | None, notes: str = "") -> Template:
    name = _check(name, sizes, image, None)
    template = Template(name=name, vcpus=sizes.vcpus, memory_mib=sizes.memory_mib,
                        disk_gib=sizes.disk_gib, image=image, notes=(notes or "").strip())
    db.session.add(template)
    db.session.commit()
    log.info("template %s created", name)
    return template


def update_template(template: Template, name: str, sizes: Sizes, image: Image | None,
                    notes: str = "") -> Template:
    """Change a template; VMs made from it keep what they were made with."""
    template.name = _check(name, sizes, image, template.id)
    template.vcpus, template.memory_mib = sizes.vcpus, sizes.memory_mib
    template.disk_gib, template.image = sizes.disk_gib, image
    template.notes = (notes or "").strip()
    db.session.commit()
    return template


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
