"""manage.py images add|list|delete"""
import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import hosts as host_service
from ..services import images as image_service
from .common import audited, fail, list_command, service

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
    click.echo(_("added %(name)s: %(format)s, %(size)s bytes, on %(count)s host(s)",
                 name=image.name, format=image.format, size=image.virtual_size,
                 count=len(image_service.hosts_with_image(image))))


@group.command("build")
@click.argument("name")
@click.option("--host", "host_names", multiple=True,
              help="Put it on this host (repeat; default: the local host, else all).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Where built images are kept [LOUCLOUD_IMAGE_CACHE, default "
                   "/var/cache/loucloud/images].")
@audited("images.build")
def build(name: str, host_names: tuple[str, ...], cache_dir: str | None) -> None:
    """Build a small Debian cloud image (cloud-init, guest agent, SSH, serial getty)
    from Debian's packages, put it on the hosts' storage pool and record it as NAME.
    Safe to run again: the build is cached, what exists is kept."""
    from pathlib import Path

    from .. import imagebuild

    try:
        local = imagebuild.build(Path(cache_dir) if cache_dir else None, say=click.echo)
    except imagebuild.BuildError as exc:
        fail(str(exc))
    if host_names:
        hosts = [service(lambda n=n: host_service.host_by_name(n)) for n in host_names]
    else:
        all_hosts = host_service.all_hosts()
        local_uri = current_app.config["LOCAL_HOST_URI"]
        hosts = [h for h in all_hosts if h.uri == local_uri] or all_hosts
    click.echo(_("putting %(name)s on %(hosts)s", name=name,
                 hosts=", ".join(h.name for h in hosts) or _("no host")))
    guest = image_service.Guest("linux", True, "debian", "bios")
    image = service(lambda: image_service.publish_file(name, str(local), hosts, guest,
                                                       say=click.echo))
    gib = f"{image.virtual_size / 1024 ** 3:.1f}"
    click.echo(_("%(name)s: %(format)s, %(size)s GiB, on %(count)s host(s); cloud-init, "
                 "login user %(user)s", name=image.name, format=image.format, size=gib,
                 count=len(image_service.hosts_with_image(image)), user=image.login_user))


@group.command("upload")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--sha256", default="", help="Refuse the file unless its SHA-256 is this.")
@click.option("--format", "fmt", type=click.Choice(["auto", "qcow2", "raw", "iso"]),
              default="auto", show_default=True, help="auto: from the file's header.")
@click.option("--os", "os_type", type=click.Choice(["auto", "linux", "windows"]),
              default="auto", show_default=True, help="auto: from the file (an ISO's "
                                                      "volume id) or its name.")
@click.option("--cloud-init", is_flag=True, help="It takes cloud-init first-boot data.")
@click.option("--login-user", default="", help="Its default login user (debian, ubuntu...).")
@click.option("--firmware", type=click.Choice(["bios", "uefi"]), default="bios",
              show_default=True)
@click.option("--host", "host_names", multiple=True, help="Copy it to this host (repeat; "
                                                          "default: every host).")
@click.option("--no-wait", is_flag=True, help="Return once the copy to the hosts is queued.")
@audited("images.upload")
def upload(name: str, file: str, sha256: str, fmt: str, os_type: str, cloud_init: bool,
           login_user: str, firmware: str, host_names: tuple[str, ...], no_wait: bool) -> None:
    """Upload FILE (qcow2, raw or ISO) as the image NAME: checked, kept by LouCloud and
    copied to the hosts through libvirt by the worker; waits for the copies and prints
    their progress (--no-wait: returns at once)."""
    import os

    from ..services import uploads as upload_service
    from .tasks import acting_admin, follow

    admin = acting_admin()
    hosts = [service(lambda n=n: host_service.host_by_name(n)).id for n in host_names]
    guest = image_service.Guest("linux", cloud_init, login_user, firmware)
    size = os.path.getsize(file)
    up = service(lambda: upload_service.begin(
        admin, name, os.path.basename(file), size, fmt=fmt, sha256=sha256, guest=guest,
        os_type=os_type, host_ids=hosts))
    chunk = current_app.config["UPLOAD_CHUNK_BYTES"]
    offset, shown = up.received, -1
    if offset:
        click.echo(_("resuming at %(offset)s of %(size)s bytes", offset=offset, size=size))
    with open(file, "rb") as f:
        while offset < size:
            f.seek(offset)
            length = min(chunk, size - offset)
            offset = service(lambda: upload_service.receive(admin, up.id, offset, f.read,
                                                            length))
            percent = 100 * offset // size
            if percent >= shown + 10 or offset == size:
                shown = percent
                click.echo("  " + _("sent %(percent)s %% (%(offset)s of %(size)s bytes)",
                                    percent=percent, offset=offset, size=size))
    image, task = service(lambda: upload_service.finish(admin, up.id))
    click.echo(_("%(name)s: %(format)s, %(size)s bytes, os %(os)s, sha256 %(sha256)s; "
                 "copying to the hosts (task %(task)s)", name=image.name, format=image.format,
                 size=image.virtual_size, os=image.os_type, sha256=image.sha256,
                 task=task.id))
    if not no_wait:
        follow(task.id)


def _rows() -> list[dict]:
    return [{"id": image.id, "name": image.name, "path": image.path,
             "format": image.format, "virtual_size": image.virtual_size,
             "os_type": image.os_type, "cloud_init": image.cloud_init,
             "login_user": image.login_user, "firmware": image.firmware,
             "sha256": image.sha256, "uploaded": image.uploaded,
             "hosts": sorted(loc.host.name for loc in image.locations if loc.present)}
            for image in image_service.all_images()]


list_command(group, _rows, ["id", "name", "format", "virtual_size", "os_type", "path"],
             help="List images and the hosts they are on.")
@group.command("delete")
@click.argument("name")
@click.option("--delete-copies", is_flag=True,
              help="Also delete the copies LouCloud uploaded to the hosts (and its own).")
@audited("images.delete")
def delete(name: str, delete_copies: bool) -> None:
    """Forget the image NAME (its files stay on the hosts unless --delete-copies)."""
    image = service(lambda: image_service.image_by_name(name))
    left = service(lambda: image_service.delete_image(image, delete_copies=delete_copies))
    done = _("removed %(name)s and its uploaded copies", name=name) if delete_copies \
        else _("removed %(name)s", name=name)
    if left:
        done = _("%(done)s; not deleted on %(hosts)s (offline)", done=done,
                 hosts=", ".join(left))
    click.echo(done)
