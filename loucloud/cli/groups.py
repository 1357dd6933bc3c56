"""manage.py groups create|list|show|add-members|remove-member|delete (issue 16)"""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import ServiceError, bulk_users
from ..services import groups as group_service
from ..services.group_quota import group_usage
from .common import audited, echo_rows, fail, list_command, service

group = AppGroup("groups", help="Groups of users (classes, courses, teams).")


def _limits(max_vms, max_vcpus, max_memory_mib, max_disk_gib) -> group_service.Limits:
    return group_service.Limits(max_vms, max_vcpus, max_memory_mib, max_disk_gib)


LIMIT_OPTIONS = [
    click.option("--max-vms", type=int, default=None, help="The group's total VMs."),
    click.option("--max-vcpus", type=int, default=None, help="The group's total vCPUs."),
    click.option("--max-memory", "max_memory_mib", type=int, default=None,
                 help="The group's total memory (MiB)."),
    click.option("--max-disk", "max_disk_gib", type=int, default=None,
                 help="The group's total disk (GiB)."),
]


def limit_options(fn):
    for option in reversed(LIMIT_OPTIONS):
        fn = option(fn)
    return fn


@group.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the group is (a class, a team...).")
@limit_options
@audited("groups.create")
def create(name: str, description: str, **limits) -> None:
    """Create the group NAME; --max-* give it a total quota over all its members' VMs,
    on top of each member's own (default: none)."""
    made = service(lambda: group_service.create_group(name, description, _limits(**limits)))
    click.echo(_("created group %(name)s", name=made.name))


def _rows() -> list[dict]:
    counts = group_service.member_counts()
    rows = []
    for g in group_service.all_groups():
        usage = group_usage(g)
        members, managers = counts.get(g.id, (0, 0))
        rows.append({"id": g.id, "name": g.name, "description": g.description,
                     "members": members, "managers": managers, "vms": usage.used.vms,
                     "max_vms": g.max_vms, "vcpus": usage.used.vcpus, "max_vcpus": g.max_vcpus,
                     "memory_mib": usage.used.memory_mib, "max_memory_mib": g.max_memory_mib,
                     "disk_gib": usage.used.disk_gib, "max_disk_gib": g.max_disk_gib})
    return rows


list_command(group, _rows, ["id", "name", "members", "managers", "vms", "max_vms"],
             help="List groups with their members and what their VMs hold.")


@group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, as_json: bool) -> None:
    """The members of the group NAME."""
    found = service(lambda: group_service.group_by_name(name))
    echo_rows([{"username": m.user.username, "full_name": m.user.full_name,
                "email": m.user.email or "", "manager": m.manager}
               for m in group_service.members_of(found)], as_json,
              ["username", "full_name", "email", "manager"])


@group.command("add-members")
@click.argument("name")
@click.argument("usernames", nargs=-1)
@click.option("--manager", is_flag=True, help="Make them managers of the group: they see "
                                              "the members' VMs, start, stop and reset "
                                              "them and open their consoles.")
@click.option("--csv", "csv_file", type=click.File("r", encoding="utf-8-sig"), default=None,
              help="Create new users from this CSV file (username, full name, e-mail; one "
                   "a line; a header line allowed) and put them in the group; their "
                   "passwords are printed once. All or nothing: a wrong line creates none.")
@audited("groups.add-members")
def add_members(name: str, usernames: tuple[str, ...], manager: bool, csv_file) -> None:
    """Put existing users (USERNAMES) into the group NAME, or new ones (--csv FILE)."""
    found = service(lambda: group_service.group_by_name(name))
    if not usernames and csv_file is None:
        fail(_("give user names, or --csv FILE to create new users"))
    if usernames:
        click.echo(service(lambda: group_service.add_members(
            found, group_service.users_named(list(usernames)), manager=manager)))
    if csv_file is not None:
        text = csv_file.read(bulk_users.MAX_BYTES + 1)
        try:
            created = bulk_users.create_members(found, text, manager=manager)
        except bulk_users.LinesRefused as exc:
            click.echo(_("error: %(message)s", message=exc.head), err=True)
            for number, why in exc.lines:
                click.echo(_("line %(number)s: %(why)s", number=number, why=why), err=True)
            raise SystemExit(1) from None
        except ServiceError as exc:
            fail(str(exc))
        click.echo(_("created %(count)s users in %(group)s; their passwords, shown only "
                     "now:", count=len(created), group=found.name))
        click.echo(bulk_users.passwords_csv(created), nl=False)


@group.command("remove-member")
@click.argument("name")
@click.argument("username")
@audited("groups.remove-member")
def remove_member(name: str, username: str) -> None:
    """Take USERNAME out of the group NAME (the account and its VMs stay)."""
    found = service(lambda: group_service.group_by_name(name))
    [user] = service(lambda: group_service.users_named([username]))
    click.echo(service(lambda: group_service.remove_member(found, user.id)))


@group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@audited("groups.delete")
def delete(name: str, yes: bool) -> None:
    """Delete the group NAME: its users and their VMs stay."""
    found = service(lambda: group_service.group_by_name(name))
    if not yes and not click.confirm(_("Delete the group %(name)s? Its users and their "
                                       "VMs stay.", name=name)):
        fail(_("nothing was changed"))
    click.echo(service(lambda: group_service.delete_group(found)))
