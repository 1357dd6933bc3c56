"""manage.py images add|list|delete"""
import click
from flask.cli import AppGroup

from ..services import images as image_service
from .common import audited, delete_command, list_command, service

group = AppGroup("images", help="Disk images on the hosts.")


@group.command("add")
@click.argument("name")
@click.argument("path")
@click.option("--os", "os_type", type=click.Choice(["linux", "windows"]), default="linux",
              show_default=True)
@audited("images.add")
def add(name: str, path: str, os_type: str) -> None:
    """Record the image file PATH (already on the hosts) as NAME."""
    image = service(lambda: image_service.add_image(name, path, os_type))
    click.echo(f"added {image.name}: {image.format}, {image.virtual_size} bytes, on "
               f"{len(image_service.hosts_with_image(image))} host(s)")


def _rows() -> list[dict]:
    return [{"id": image.id, "name": image.name, "path": image.path,
             "format": image.format, "virtual_size": image.virtual_size,
             "os_type": image.os_type,
             "hosts": sorted(loc.host.name for loc in image.locations if loc.present)}
            for image in image_service.all_images()]


list_command(group, _rows, ["id", "name", "format", "virtual_size", "os_type", "path"],
             help="List images and the hosts they are on.")
delete_command(group, "delete", image_service.image_by_name, image_service.delete_image,
               "removed {name}", help="Forget the image NAME (its file stays on the hosts).")
