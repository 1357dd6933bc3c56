"""manage.py templates add|list|delete"""
import click
from flask.cli import AppGroup

from ..services import images as image_service
from ..services import templates as template_service
from .common import audited, delete_command, list_command, service

group = AppGroup("templates", help="VM templates (sizes).")


@group.command("add")
@click.argument("name")
@click.option("--image", "image_name", required=True)
@click.option("--vcpus", type=int, required=True)
@click.option("--memory", "memory_mib", type=int, required=True, help="MiB")
@click.option("--disk", "disk_gib", type=int, required=True, help="GiB")
@click.option("--notes", default="")
@audited("templates.add")
def add(name, image_name, vcpus, memory_mib, disk_gib, notes) -> None:
    """Create the template NAME."""
    template = service(lambda: template_service.create_template(
        name, template_service.Sizes(vcpus, memory_mib, disk_gib),
        image_service.image_by_name(image_name), notes))
    click.echo(f"added {template.name}")


list_command(group, lambda: [
    {"id": t.id, "name": t.name, "image": t.image.name, "vcpus": t.vcpus,
     "memory_mib": t.memory_mib, "disk_gib": t.disk_gib}
    for t in template_service.all_templates()],
    ["id", "name", "image", "vcpus", "memory_mib", "disk_gib"], help="List templates.")
delete_command(group, "delete", template_service.template_by_name,
               template_service.delete_template, "deleted {name}",
               help="Delete the template NAME (refused while VMs use it).")
