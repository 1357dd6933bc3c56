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
@click.option("--cloud-init", is_flag=True, help="It takes cloud-init first-boot data.")
@click.option("--login-user", default="", help="Its default login user (debian, ubuntu...).")
@click.option("--firmware", type=click.Choice(["bios", "uefi"]), default="bios",
              show_default=True)
@audited("images.add")
def add(name: str, path: str, os_type: str, cloud_init: bool, login_user: str,
        firmware: str) -> None:
    """Record the image file PATH (already on the hosts) as NAME."""
    guest = image_service.Guest(os_type, cloud_init, login_user, firmware)
    image = service(lambda: image_service.add_image(name, path, guest=guest))
    click.echo(f"added {image.name}: {image.format}, {image.virtual_size} bytes, on "
               f"{len(image_service.hosts_with_image(image))} host(s)")


def _rows() -> list[dict]:
    return [{"id": image.id, "name": image.name, "path": image.path,
             "format": image.format, "virtual_size": image.virtual_size,
             "os_type": image.os_type, "cloud_init": image.cloud_init,
             "login_user": image.login_user, "firmware": image.firmware,
             "hosts": sorted(loc.host.name for loc in image.locations if loc.present)}
            for image in image_service.all_images()]


list_command(group, _rows, ["id", "name", "format", "virtual_size", "os_type", "path"],
             help="List images and the hosts they are on.")
delete_command(group, "delete", image_service.image_by_name, image_service.delete_image,
               "removed {name}", help="Forget the image NAME (its file stays on the hosts).")
