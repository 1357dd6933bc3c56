"""manage.py tokens create|list|revoke — users' personal API tokens (as on the Profile
page)."""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import NotFound
from ..services import tokens as token_service
from ..services import users as user_service
from .common import audited, echo_rows, fail, service
from .tasks import acting_admin

group = AppGroup("tokens", help="Users' personal API tokens (Authorization: Bearer …).")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


@group.command("create")
@click.argument("username")
@click.option("--name", default="command line", show_default=True,
              help="What the token is for (1 to 64 characters).")
@click.option("--read-only", is_flag=True, help="It may read, and change nothing.")
@click.option("--expires", "days", type=int, default=None, metavar="DAYS",
              help=f"Days until it stops working (1 to {token_service.MAX_DAYS}); "
                   "default: never.")
@audited("tokens.create", "username")
def create(username: str, name: str, read_only: bool, days: int | None) -> None:
    """Make a token for USERNAME and print it, this once. The token alone is printed on
    standard output (TOKEN=$(manage.py tokens create alice) keeps it); what it is, on
    standard error."""
    user = service(lambda: user_service.user_by_name(username))
    new = service(lambda: token_service.create_token(user, name, read_only=read_only,
                                                     expires_days=days))
    token = new.token
    expires = _("expires %(when)s", when=_when(token.expires_at)) if token.expires_at \
        else _("never expires")
    click.echo(_('Token %(id)s "%(name)s" of %(user)s: %(access)s, %(expires)s.', id=token.id,
                 name=token.name, user=username, expires=expires,
                 access=_("read-only") if token.read_only else _("read-write")), err=True)
    click.echo(new.secret)
    click.echo(_("Copy it now: it will not be shown again (LouCloud keeps only its hash)."),
               err=True)


@group.command("list")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(username: str, as_json: bool) -> None:
    """List USERNAME's tokens, newest first (revoked and expired ones too)."""
    user = service(lambda: user_service.user_by_name(username))
    echo_rows([{"id": t.id, "name": t.name, "prefix": t.prefix,
                "access": "read-only" if t.read_only else "read-write", "state": t.state(),
                "created": _when(t.created_at), "expires": _when(t.expires_at) or "never",
                "last_used": _when(t.last_used_at) or "never",
                "from": t.last_used_from or ""}
               for t in token_service.tokens_of(user)],
              as_json, ["id", "name", "prefix", "access", "state", "expires", "last_used",
                        "from"])


@group.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(1, 2 ** 63 - 1))
@audited("tokens.revoke", "token_id")
def revoke(token_id: int) -> None:
    """Revoke the token ID (see tokens list): it stops working at once."""
    admin = acting_admin()
    try:
        token = token_service.revoke_token(admin, token_id)
    except NotFound:
        fail(_("There is no token %(id)s (see manage.py tokens list USERNAME).", id=token_id))
    click.echo(_('Token %(id)s "%(name)s" of %(user)s revoked.', id=token.id, name=token.name,
                 user=token.user.username))
