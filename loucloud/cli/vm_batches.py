"""manage.py vms batch-create|batches|batch|batch-action|batch-expiry (issue 16): many
VMs in one action, over the same services as the batch pages and the API."""
from __future__ import annotations

from datetime import datetime

import click
from flask_babel import gettext as _

from ..services import templates as template_service
from ..services import users as user_service
from ..services.vms import batch as batch_service
from ..services import groups as group_service
from ..services.vms import batch_access, batch_actions, expiry
from .common import audited, echo_rows, fail, service
from .tasks import acting_admin, follow
from .vms import group


def _expiry(value: str | None) -> datetime | None:
    """YYYY-MM-DD [HH:MM] in UTC; "never" for none."""
    if value in (None, "", "never"):
        return None
    for form in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, form)
        except ValueError:
            continue
    fail(_("Give the expiry as YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC), not %(value)s.",
           value=repr(value)))


@group.command("batch-create")
@click.option("--template", "template_name", required=True)
@click.option("--group", "group_name", default=None,
              help="For the group's members (its managers excepted).")
@click.option("--users", "usernames", default="", help="Or these users, comma-separated.")
@click.option("--pattern", default=batch_service.DEFAULT_PATTERN, show_default=True,
              help="The VMs' names: {username} and {n} (the VM's number for its user).")
@click.option("--count", "per_user", default=1, show_default=True, help="VMs per user.")
@click.option("--expires", default=None, metavar="DATE",
              help="YYYY-MM-DD [HH:MM] UTC: the VMs are shut off and marked expired then.")
@click.option("--no-wait", is_flag=True, help="Return once its task is queued.")
@audited("vms.batch_create", target_param="pattern")
def batch_create(template_name: str, group_name: str | None, usernames: str, pattern: str,
                 per_user: int, expires: str | None, no_wait: bool) -> None:
    """One VM (or --count each) from --template for each member of --group (its
    managers excepted) or each of --users, named by --pattern, spread over the hosts by their free memory, as a task followed until it
    ends. The VMs get their owners' SSH keys; each owner sets a login password from
    the VM's page (Reset password)."""
    template = service(lambda: template_service.template_by_name(template_name))
    names = [n.strip() for n in usernames.split(",") if n.strip()]
    options = {"pattern": pattern, "per_user": per_user, "expires_at": _expiry(expires)}
    if group_name and names:
        fail(_("Give --group or --users, not both."))
    if group_name:
        group = service(lambda: group_service.group_by_name(group_name))
        batch = service(lambda: batch_access.start_group_batch(acting_admin(), group,
                                                               template, **options))
    else:
        if not names:
            fail(_("Name the users: --users ann,ben,... (or --group G)"))
        users = [service(lambda n=n: user_service.user_by_name(n)) for n in names]
        batch = service(lambda: batch_access.start_user_batch(acting_admin(), template,
                                                              users, **options))
    click.echo(_("batch %(batch)s, task %(task)s: %(count)s VMs from %(template)s",
                 batch=batch.id, task=batch.task_id, count=len(batch.planned_items),
                 template=template.name))
    if not no_wait:
        follow(batch.task_id)


@group.command("batches")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def batches(as_json: bool) -> None:
    """The latest batches, newest first."""
    rows = []
    for batch in batch_service.latest_batches():
        row = batch_service.summary(batch)
        row["states"] = ", ".join(f"{n} {s}" for s, n in sorted(row["states"].items()))
        for key in ("expires_at", "created_at"):
            row[key] = row[key].strftime("%Y-%m-%d %H:%M") if row[key] else ""
        rows.append(row)
    echo_rows(rows, as_json, ["id", "pattern", "template", "asked", "vms", "failed",
                              "states", "expires_at", "created_by", "task_state"])


@group.command("batch")
@click.argument("batch_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def batch_show(batch_id: int, as_json: bool) -> None:
    """The VMs of batch BATCH_ID and what could not be made, with the reasons."""
    batch = service(lambda: batch_service.get_batch(batch_id))
    rows = [{"owner": vm.owner.username, "name": vm.name, "host": vm.host.name,
             "state": "expired" if vm.expired_at else (vm.live_state or vm.status),
             "reason": ""} for vm in batch_service.batch_vms(batch)]
    rows += [{"owner": user, "name": name, "host": "", "state": "not made",
              "reason": reason} for user, name, reason in batch_service.failures(batch)]
    echo_rows(rows, as_json, ["owner", "name", "host", "state", "reason"])


@group.command("batch-action")
@click.argument("action", type=click.Choice(sorted(batch_actions.ACTIONS)))
@click.argument("batch_id", type=int)
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.option("--no-wait", is_flag=True, help="Return once its task is queued.")
@audited("vms.batch_action", target_param="batch_id")
def batch_action(action: str, batch_id: int, yes: bool, no_wait: bool) -> None:
    """Start, shut down, force off or delete every VM of batch BATCH_ID, as a task."""
    batch = service(lambda: batch_service.get_batch(batch_id))
    vms = batch_service.batch_vms(batch)
    if action == "delete" and not yes:
        click.confirm(_("Delete the %(count)s VMs of batch %(batch)s with their disks?",
                        count=len(vms), batch=batch_id), abort=True)
    task = service(lambda: batch_actions.start_batch_action(
        acting_admin(), vms, action, f"batch {batch_id}"))
    click.echo(_("task %(task)s: %(action)s %(count)s VMs of batch %(batch)s", task=task.id,
                 action=str(batch_actions.ACTIONS[action]).lower(), count=len(vms),
                 batch=batch_id))
    if not no_wait:
        follow(task.id)


@group.command("batch-expiry")
@click.argument("batch_id", type=int)
@click.argument("expires", metavar="DATE|never")
@audited("vms.batch_expiry", target_param="batch_id")
def batch_expiry(batch_id: int, expires: str) -> None:
    """Move the expiry of batch BATCH_ID's VMs to DATE (YYYY-MM-DD [HH:MM] UTC), or
    remove it (never); its expired VMs may start again."""
    batch = service(lambda: batch_service.get_batch(batch_id))
    click.echo(service(lambda: expiry.set_expiry(batch, _expiry(expires))))
