"""Templates (flavors): the sizes users choose from. Editing one does not change the
VMs made from it (they keep their own copy of the figures)."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from flask_babel import gettext as _, ngettext

from ..extensions import db
from ..models import INT64_MAX, VM, BootJob, Group, GroupMember, Image, Template, User, \
    template_groups
from . import Conflict, FieldError, NotFound, paginate, transaction
from .names import display_name

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
        raise FieldError(_("Keep the notes under %(max)s characters.", max=NOTES_MAX), "notes")
    return notes


def _check(name: str, sizes: Sizes, image: Image | None, exclude_id: int | None) -> str:
    name = display_name(name, what="template")
    stmt = db.select(Template.id).where(Template.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Template.id != exclude_id)
    if db.session.execute(stmt).first():
        raise FieldError(_("A template with this name exists."), "name")
    for field, (low, high) in LIMITS.items():
        value = getattr(sizes, field)
        if not isinstance(value, int) or not low <= value <= high:
            raise FieldError(_("Enter a whole number from %(low)s to %(high)s.", low=low,
                               high=high), field)
    if image is None:
        raise FieldError(_("Choose an image."), "image_id")
    if sizes.disk_gib < min_disk_gib(image):
        raise FieldError(_("The image %(name)s needs at least %(size)s GiB.",
                           name=image.name, size=min_disk_gib(image)), "disk_gib")
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
        raise FieldError(_("Choose a network, a host bridge or no network card."), "nic_kind")
    if network.kind == "bridge" and not BRIDGE_RE.match(name):
        raise FieldError(_("Give the host bridge's name (at most 15 letters, digits, '.', "
                           "'_' or '-'), such as br0."), "network")
    if network.kind == "network" and name and not NET_NAME_RE.match(name):
        raise FieldError(_("Use a libvirt network's name, or leave it empty for Settings' "
                           "network."), "network")
    return Network(network.kind, name if network.kind != "none" else "")


def _jobs(ids) -> list[BootJob]:
    jobs = []
    for job_id in ids or ():
        job = db.session.get(BootJob, job_id) if isinstance(job_id, int) and \
            0 < job_id <= INT64_MAX else None
        if job is None:
            raise FieldError(_("Choose among the boot jobs listed."), "boot_jobs")
        jobs.append(job)
    return jobs


@dataclass(frozen=True)
class Visibility:
    """Who may make VMs of a template (issue 16): everybody (``public``), or the
    members of the groups ``group_ids`` (and the administrator)."""
    public: bool = True
    group_ids: tuple[int, ...] = ()


def _visibility(visibility: Visibility | None) -> tuple[bool, list[Group]]:
    visibility = visibility or Visibility()
    if visibility.public:
        if visibility.group_ids:
            raise FieldError(_("A public template is offered to everybody: make it "
                               "restricted to offer it to some groups only."), "group_ids")
        return True, []
    groups = []
    for group_id in dict.fromkeys(visibility.group_ids or ()):
        group = db.session.get(Group, group_id) if isinstance(group_id, int) and \
            not isinstance(group_id, bool) and 0 < group_id <= INT64_MAX else None
        if group is None:
            raise FieldError(_("Choose among the groups listed."), "group_ids")
        groups.append(group)
    if not groups:
        raise FieldError(_("Choose the groups it is offered to, or make it public."),
                         "group_ids")
    return False, groups


@transaction
def create_template(name: str, sizes: Sizes, image: Image | int | None,
                    notes: str = "", *, network: Network | None = None,
                    boot_job_ids=(), visibility: Visibility | None = None) -> Template:
    """A new template on ``image`` (the image or its id); public unless ``visibility``
    says otherwise."""
    image = _image(image)
    name = _check(name, sizes, image, None)
    network = _check_network(network)
    public, groups = _visibility(visibility)
    template = Template(name=name, vcpus=sizes.vcpus, memory_mib=sizes.memory_mib,
                        disk_gib=sizes.disk_gib, image=image, notes=_check_notes(notes),
                        nic_kind=network.kind, network=network.name or None,
                        boot_jobs=_jobs(boot_job_ids), public=public, groups=groups)
    db.session.add(template)
    db.session.commit()
    log.info("template %s created", name)
    return template


@transaction
def update_template(template: Template, name: str, sizes: Sizes, image: Image | int | None,
                    notes: str = "", *, network: Network | None = None,
                    boot_job_ids=None, visibility: Visibility | None = None) -> Template:
    """Change a template; VMs made from it keep what they were made with (and their
    owners keep them when the template stops being offered to them)."""
    image = _image(image)
    template.name = _check(name, sizes, image, template.id)
    if visibility is not None:
        template.public, template.groups = _visibility(visibility)
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
        raise Conflict(ngettext("%(num)d VM uses %(name)s. Delete them first.",
                                "%(num)d VMs use %(name)s. Delete them first.", count,
                                name=template.name))
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
        raise NotFound(_("There is no template named %(name)s.", name=name))
    return template


def all_templates() -> list[Template]:
    return db.session.execute(db.select(Template).order_by(Template.name)).scalars().all()


def _of_his_groups(user: User):
    """A subquery: the templates restricted to a group ``user`` is a member of."""
    return (db.select(template_groups.c.template_id)
            .join(GroupMember, GroupMember.group_id == template_groups.c.group_id)
            .where(GroupMember.user_id == user.id))


def _offered(user: User, stmt):
    """``stmt`` (a select over Template) narrowed to what ``user`` may make VMs of:
    every template for the administrator; the public ones and those of his groups for
    anybody else."""
    if user.is_admin:
        return stmt
    return stmt.where(db.or_(Template.public.is_(True), Template.id.in_(_of_his_groups(user))))


def may_use_template(user: User, template: Template) -> bool:
    """Whether ``user`` may see ``template`` and make VMs of it."""
    return db.session.execute(_offered(user, db.select(Template.id)).where(
        Template.id == template.id)).first() is not None


def templates_for(user: User) -> list[Template]:
    """The templates offered to ``user`` (the new VM page's choices), by name."""
    return db.session.execute(_offered(user, db.select(Template)).order_by(
        Template.name)).scalars().all()


def template_for(user: User, template_id: int) -> Template:
    """The template with this id if it is offered to ``user``. Raises NotFound, the same
    for one restricted to groups he is not in as for one that does not exist."""
    template = get_template(template_id)
    if not may_use_template(user, template):
        raise NotFound()
    return template


def templates_page(page: int = 1, per_page: int = 50, viewer: User | None = None):
    """A page of the templates, by name (the API's list): those offered to ``viewer``
    (None: all of them)."""
    stmt = db.select(Template).order_by(Template.name, Template.id)
    return paginate(_offered(viewer, stmt) if viewer is not None else stmt, page, per_page)


def vm_counts() -> dict[int, int]:
    """How many VMs were made from each template, by template id."""
    return dict(db.session.execute(db.select(VM.template_id, db.func.count(VM.id))
                                   .group_by(VM.template_id)).all())
