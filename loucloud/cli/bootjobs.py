"""manage.py bootjobs add|list|delete"""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import bootjobs as bootjob_service
from .common import audited, delete_command, list_command, service

group = AppGroup("bootjobs", help="First-boot scripts of cloud images' VMs.")


@group.command("add")
@click.argument("name")
@click.option("--file", "script", type=click.File("r"), required=True,
              help="The cloud-config YAML (runcmd, write_files, packages, bootcmd).")
@click.option("--description", default="")
@click.option("--default", "is_default", is_flag=True, help="Run it in every new VM.")
@click.option("--user-choice", is_flag=True, help="Users may add it to their VMs.")
@audited("bootjobs.add")
def add(name, script, description, is_default, user_choice) -> None:
    """Save the boot job NAME."""
    job = service(lambda: bootjob_service.create_boot_job(
        name, script.read(32768), description, is_default=is_default, user_choice=user_choice))
    click.echo(_("added %(name)s", name=job.name))


list_command(group, lambda: [
    {"id": j.id, "name": j.name, "default": j.is_default, "user_choice": j.user_choice,
     "templates": [t.name for t in j.templates], "description": j.description}
    for j in bootjob_service.all_boot_jobs()],
    ["id", "name", "default", "user_choice", "description"], help="List boot jobs.")
delete_command(group, "delete", bootjob_service.boot_job_by_name,
               bootjob_service.delete_boot_job, _l("deleted %(name)s"),
               help="Delete the boot job NAME.")
