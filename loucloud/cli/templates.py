"""manage.py templates add|list|delete"""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import bootjobs as bootjob_service
from ..services import groups as group_service
from ..services import images as image_service
from ..services import templates as template_service
from ..services.names import normal
from .common import audited, delete_command, list_command, service

group = AppGroup("templates", help="VM templates (sizes).")


@group.command("add")
@click.argument("name")
@click.option("--image", "image_name", required=True)
@click.option("--vcpus", type=int, required=True)
@click.option("--memory", "memory_mib", type=int, required=True, help="MiB")
@click.option("--disk", "disk_gib", type=int, required=True, help="GiB")
@click.option("--notes", default="")
@click.option("--network", default="", help="libvirt network of its VMs (default: "
                                            "Settings' network).")
@click.option("--bridge", default="", help="A host bridge instead of a network.")
@click.option("--no-nic", is_flag=True, help="Its VMs get no network card.")
@click.option("--boot-job", "boot_jobs", multiple=True, help="A boot job its VMs run "
                                                              "(repeat).")
@click.option("--group", "groups", multiple=True, help="Offer it only to the members of "
                                                       "this group (repeat; default: "
                                                       "everybody).")
@audited("templates.add")
def add(name, image_name, vcpus, memory_mib, disk_gib, notes, network, bridge, no_nic,
        boot_jobs, groups) -> None:
    """Create the template NAME."""
    nic = template_service.Network("none") if no_nic else (
        template_service.Network("bridge", bridge) if bridge
        else template_service.Network("network", network))
    template = service(lambda: template_service.create_template(
        name, template_service.Sizes(vcpus, memory_mib, disk_gib),
        image_service.image_by_name(image_name), notes, network=nic,
        boot_job_ids=[bootjob_service.boot_job_by_name(j).id for j in boot_jobs],
        visibility=template_service.Visibility(
            not groups, tuple(group_service.group_by_name(g).id for g in groups))))
    click.echo(_("added %(name)s", name=template.name))


list_command(group, lambda: [
    {"id": t.id, "name": t.name, "image": t.image.name, "vcpus": t.vcpus,
     "memory_mib": t.memory_mib, "disk_gib": t.disk_gib, "nic": t.nic_kind,
     "network": t.network, "boot_jobs": [j.name for j in t.boot_jobs],
     "offered_to": "everybody" if t.public else
     (",".join(g.name for g in t.groups) or "nobody")}
    for t in template_service.all_templates()],
    ["id", "name", "image", "vcpus", "memory_mib", "disk_gib", "offered_to"],
    help="List templates.")
# Looked up in the stored (normalised) form: a full-width ＶＭ１ finds VM1.
delete_command(group, "delete", lambda name: template_service.template_by_name(normal(name)),
               template_service.delete_template, _l("deleted %(name)s"),
               help="Delete the template NAME (refused while VMs use it).")
