"""Boot jobs: the administrator's named first-boot scripts (cloud-init runcmd,
write_files, packages, bootcmd). Defaults go to every VM whose image takes cloud-init;
templates attach more; users may add those marked as their choice at create."""
from __future__ import annotations

import logging
import re

from flask_babel import gettext as _

from ..extensions import db
from ..models import INT64_MAX, BootJob, Template, User
from . import FieldError, NotFound, paginate, transaction
from .cloudinit import parse_boot_job

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()+-]{0,63}$")


def _check(name: str, description: str, script: str, exclude_id: int | None) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldError(_("Use 1 to 64 letters, digits, spaces or . _ ( ) + -."), "name")
    if len((description or "").strip()) > 255:
        raise FieldError(_("Keep the description under 255 characters."), "description")
    stmt = db.select(BootJob.id).where(BootJob.name == name)
    if exclude_id is not None:
        stmt = stmt.where(BootJob.id != exclude_id)
    if db.session.execute(stmt).first():
        raise FieldError(_("A boot job with this name exists."), "name")
    parse_boot_job(script)
    return name


@transaction
def create_boot_job(name: str, script: str, description: str = "", *,
                    is_default: bool = False, user_choice: bool = False) -> BootJob:
    name = _check(name, description, script, None)
    job = BootJob(name=name, script=script.strip() + "\n",
                  description=(description or "").strip(), is_default=bool(is_default),
                  user_choice=bool(user_choice))
    db.session.add(job)
    db.session.commit()
    log.info("boot job %s created", name)
    return job


@transaction
def update_boot_job(job: BootJob, name: str, script: str, description: str = "", *,
                    is_default: bool = False, user_choice: bool = False) -> BootJob:
    job.name = _check(name, description, script, job.id)
    job.script, job.description = script.strip() + "\n", (description or "").strip()
    job.is_default, job.user_choice = bool(is_default), bool(user_choice)
    db.session.commit()
    return job


@transaction
def delete_boot_job(job: BootJob) -> None:
    """Delete a boot job (templates lose it; VMs made with it keep what ran)."""
    db.session.delete(job)
    db.session.commit()


def get_boot_job(job_id: int) -> BootJob:
    job = db.session.get(BootJob, job_id) if 0 < job_id <= INT64_MAX else None
    if job is None:
        raise NotFound()
    return job


def boot_job_for(user: User, job_id: int) -> BootJob:
    """The boot job as ``user`` may see it: any for the administrator, only one offered
    to users for a user (NotFound otherwise, as for one that does not exist)."""
    job = get_boot_job(job_id)
    if not user.is_admin and not job.user_choice:
        raise NotFound()
    return job


def boot_job_by_name(name: str) -> BootJob:
    job = db.session.execute(db.select(BootJob).where(BootJob.name == name)).scalar()
    if job is None:
        raise NotFound(_("There is no boot job named %(name)s.", name=name))
    return job


def all_boot_jobs() -> list[BootJob]:
    return db.session.execute(db.select(BootJob).order_by(BootJob.name)).scalars().all()


def boot_jobs_page(*, offered_only: bool, page: int = 1, per_page: int = 50):
    """A page of the boot jobs, by name (the API's list): only those users may add to
    their VMs when ``offered_only`` (what a user sees on the new VM page)."""
    stmt = db.select(BootJob).order_by(BootJob.name, BootJob.id)
    if offered_only:
        stmt = stmt.where(BootJob.user_choice.is_(True))
    return paginate(stmt, page, per_page)


def user_choices() -> list[BootJob]:
    """The boot jobs a user may add to a VM of his."""
    return [j for j in all_boot_jobs() if j.user_choice]


def jobs_for(template: Template, chosen_ids: list[int] | None = None) -> list[BootJob]:
    """What a new VM of ``template`` runs at first boot: the defaults, the template's,
    and the user's choices among those offered to users (others are refused)."""
    jobs = {j.id: j for j in all_boot_jobs() if j.is_default}
    jobs.update({j.id: j for j in template.boot_jobs})
    offered = {j.id: j for j in user_choices()}
    for job_id in chosen_ids or []:
        if job_id not in offered:
            raise FieldError(_("Choose among the boot jobs offered."), "boot_jobs")
        jobs[job_id] = offered[job_id]
    return sorted(jobs.values(), key=lambda j: j.name)
