"""Which unit tests judge which mutants in `make mutants` (mutmut; docs/reliability.md,
"Mutation testing"), which mutants are in scope, and which survivors are explained.

Loaded by mutmut's pytest runs only (``pytest_add_cli_args`` in pyproject.toml), never by
`make test`. mutmut itself runs, for a mutant, the tests that called the mutated
function; this plugin narrows that to the tests written about the mutant's module (a
mutant of the login throttle is judged by the login tests, not by every page that happens
to log somebody in first) and puts the focused ``test_rules_*`` files first, so that a
killed mutant usually dies in its first test (mutmut runs pytest with ``-x``) and a
survivor costs seconds, not minutes.

Outside a mutant's run (mutmut's stats, clean and forced-fail runs) the union of the
files below is kept. Never run: tests/system and tests/browser (the host lab, a browser),
the fuzz tests (random examples, no stable verdict), tests/test_layering.py (it measures
source files; mutmut's copies are far longer), tests/test_access.py (168 cells with a VM
each: minutes per surviving mutant; test_rules_access.py asks the same questions of the
VM routes) and the MariaDB variants, but for the one named below.
"""
from __future__ import annotations

import fnmatch
import os

import pytest

# The mutants `make mutants` runs (scripts/mutants.py): mutmut names them
# <module>.x_<function>__mutmut_<n>. Whole modules, but in create.py only the quota
# reservation and the name check, and in __init__.py only register_extensions (CSRF).
SCOPE = (
    "loucloud.services.access.*",
    "loucloud.services.console.*",
    "loucloud.services.vms.create.x__reserve__mutmut_*",
    "loucloud.services.vms.create.x_check_name__mutmut_*",
    "loucloud.security.*",
    "loucloud.services.auth.*",
    "loucloud.x_register_extensions__mutmut_*",
)

# Module of the mutated code -> the tests that judge it, most focused first: a file, or
# file::test-name (globs). Kept tight: a mutant that survives runs every one of them.
TESTS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "loucloud.services.access": (
        "tests/test_rules_access.py", "tests/test_vms_list.py", "tests/test_vms_actions.py"),
    "loucloud.services.console": (
        "tests/test_rules_tokens.py", "tests/test_console_tokens.py",
        "tests/test_console_routes.py"),
    "loucloud.services.vms.create": (
        "tests/test_rules_quota.py", "tests/test_vms_create.py",
        # On MariaDB the quota lock is a row lock, and a broken one lets creates race.
        "tests/test_vms_create.py::test_twenty_concurrent_creates_never_exceed_the_quota"
        "[[]mariadb[]]"),
    "loucloud.security": (
        "tests/test_rules_redirects.py", "tests/test_rules_headers.py"),
    "loucloud.services.auth": (
        "tests/test_rules_throttle.py", "tests/test_rules_sessions.py", "tests/test_auth.py",
        "tests/test_rules_tokens.py::test_logging_out_*"),
    "loucloud": (  # create_app's register_extensions: CSRF, the login manager
        "tests/test_rules_setup.py", "tests/test_auth.py"),
}
NEVER = ("*mariadb*", "*mysql*")


def _module_of(mutant: str) -> str | None:
    """'loucloud.services.auth.x_authenticate__mutmut_3' -> 'loucloud.services.auth'."""
    if "__mutmut_" not in mutant:
        return None
    return mutant.partition("__mutmut_")[0].rpartition(".")[0]


def _rank(nodeid: str, patterns) -> int | None:
    """The place of the first pattern naming this test (one naming the test itself
    before one naming its file), or None."""
    for i, pattern in enumerate(patterns):
        if "::" in pattern and fnmatch.fnmatch(nodeid, pattern):
            return i
    if any(fnmatch.fnmatch(nodeid, p) for p in NEVER):
        return None  # unless named itself, above
    path = nodeid.split("::", 1)[0]
    for i, pattern in enumerate(patterns):
        if "::" not in pattern and fnmatch.fnmatch(path, pattern):
            return i
    return None


def _patterns() -> tuple[str, ...]:
    module = _module_of(os.environ.get("MUTANT_UNDER_TEST", ""))
    if module is not None:
        return TESTS_BY_MODULE.get(module, ())
    seen: dict[str, None] = {}
    for patterns in TESTS_BY_MODULE.values():
        seen.update(dict.fromkeys(patterns))
    return tuple(seen)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    patterns = _patterns()
    keep, drop = [], []
    for index, item in enumerate(items):
        rank = _rank(item.nodeid, patterns)
        if rank is None:
            drop.append(item)
        else:
            keep.append((rank, index, item))
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = [item for _rank_, _index, item in sorted(keep, key=lambda k: k[:2])]


# Mutants that survive because no behaviour can tell them from the code: (function,
# the mutated line as scripts/mutants.py prints it, why). docs/reliability.md says more.
EXPLAINED: tuple[tuple[str, str, str], ...] = (
    ('loucloud.security.is_safe_next',
     'if target.startswith("//") or target.startswith("/\\\\") or "\\\\" in target: -> if target.startswith("//") or target.startswith("XX/\\\\XX") or "\\\\" in target:',
     'Redundant check: a target starting with "/\\\\" also contains "\\\\", which the same line refuses.'),
    ('loucloud.security.is_safe_next',
     'parts = urlsplit(target) -> parts = urlsplit(None)',
     'The last check (no scheme, no host) never refuses what the checks before it let through: a target that starts with one "/" has neither; urlsplit(None) has neither too.'),
    ('loucloud.security.is_safe_next',
     'return not parts.scheme and not parts.netloc -> return not parts.scheme or not parts.netloc',
     'Same: after the checks before it, scheme and host are always empty, so "and" and "or" agree.'),
    ('loucloud.services.access.vm_for',
     'vm = db.session.get(VM, vm_id) if 0 < vm_id <= INT64_MAX else None -> vm = db.session.get(VM, vm_id) if 0 < vm_id < INT64_MAX else None',
     'Only a VM with id 2^63-1 would tell them apart; ids are given out from 1 upwards and never get there.'),
    ('loucloud.services.access.vm_for',
     'vm = db.session.get(VM, vm_id) if 0 < vm_id <= INT64_MAX else None -> vm = db.session.get(VM, vm_id) if 0 <= vm_id <= INT64_MAX else None',
     'No VM has id 0 (ids start at 1 on SQLite and MariaDB): looking it up finds nothing, as skipping it does.'),
    ('loucloud.services.auth._record_attempt',
     'LoginAttempt.at < utcnow() - timedelta(days=1))) -> LoginAttempt.at <= utcnow() - timedelta(days=1)))',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice).'),
    ('loucloud.services.auth._retry_after',
     'if last_ok is not None and last_ok > since: -> if last_ok is not None and last_ok >= since:',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice).'),
    ('loucloud.services.auth._retry_after',
     'LoginAttempt.at > since) -> LoginAttempt.at >= since)',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice).'),
    ('loucloud.services.auth._retry_after',
     'return max(1, int((oldest_counted + window - utcnow()).total_seconds())) -> return max(2, int((oldest_counted + window - utcnow()).total_seconds()))',
     'A wait of 1 or 2 seconds is said the same way ("1 minute"), and nothing else reads the number.'),
    ('loucloud.services.auth.authenticate',
     'address = (address or "?")[:45] -> address = (address or "?")[:46]',
     'No client address a WSGI server reports is longer than 45 characters (the longest IPv6 text form).'),
    ('loucloud.services.auth.authenticate',
     'ok = False -> ok = None',
     'None and False are both "not ok" here, and the attempt row gets the column default False for None: still counted as a failure.'),
    ('loucloud.services.auth.authenticate',
     'name = (username or "").strip().lower()[:64] -> name = (username or "XXXX").strip().lower()[:64]',
     'Unreachable: the login form requires a user name, so authenticate never gets None.'),
    ('loucloud.services.auth.authenticate',
     'ok = False -> ok = None',
     "Same as above: a disabled account's attempt is still recorded as a failure (None becomes the default False)."),
    ('loucloud.services.auth.authenticate',
     'name = (username or "").strip().lower()[:64] -> name = (username or "").strip().lower()[:65]',
     'Unreachable: the login form refuses names longer than 64 characters before authenticate.'),
    ('loucloud.services.auth.authenticate',
     'address = (address or "?")[:45] -> address = (address or "XX?XX")[:45]',
     'The placeholder only groups clients without an address for the throttle; any constant groups them alike, and it is shown nowhere.'),
    ('loucloud.services.auth.end_sessions_of',
     'return db.session.execute(stmt).rowcount or 0 -> return db.session.execute(stmt).rowcount or 1',
     'No caller uses the number of sessions ended.'),
    ('loucloud.services.auth.end_sessions_of',
     'return db.session.execute(stmt).rowcount or 0 -> return db.session.execute(stmt).rowcount and 0',
     'No caller uses the number of sessions ended.'),
    ('loucloud.services.auth.load_session',
     'if now - row.last_seen_at > idle or not user.active: -> if now - row.last_seen_at >= idle or not user.active:',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice).'),
    ('loucloud.services.auth.load_session',
     'if now - row.last_seen_at > TOUCH_INTERVAL: -> if now - row.last_seen_at >= TOUCH_INTERVAL:',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice). (It only decides whether last_seen_at is written now or on the next request.)'),
    ('loucloud.services.auth.load_session',
     'if not key or len(key) > 100: -> if not key or len(key) >= 100:',
     'Session keys are 43 characters; a key of 100 or 101 characters matches no session either way (the bound only spares hashing huge input).'),
    ('loucloud.services.auth.load_session',
     'if not key or len(key) > 100: -> if not key or len(key) > 101:',
     'Session keys are 43 characters; a key of 100 or 101 characters matches no session either way (the bound only spares hashing huge input).'),
    ('loucloud.services.auth.start_session',
     'address=(address or "")[:45], -> address=(address or "XXXX")[:45],',
     "The session's address is stored for the record but shown and used nowhere; the WSGI servers LouCloud runs under always give one."),
    ('loucloud.services.auth.start_session',
     'address=(address or "")[:45], -> address=(address or "")[:46],',
     'No client address is longer than 45 characters.'),
    ('loucloud.services.auth.start_session',
     'user_agent=(user_agent or "")[:255])) -> user_agent=(user_agent or "XXXX")[:255]))',
     'The session\'s user agent is stored but shown and used nowhere ("" or "XXXX" for a client that sends none).'),
    ('loucloud.services.auth.start_session',
     'key = secrets.token_urlsafe(32) -> key = secrets.token_urlsafe(None)',
     'token_urlsafe(None) is token_urlsafe(32): the default is 32 bytes.'),
    ('loucloud.services.auth.start_session',
     'key = secrets.token_urlsafe(32) -> key = secrets.token_urlsafe(33)',
     'A 33-byte key (44 characters) is as random and works the same.'),
    ('loucloud.services.auth.LoginThrottled.__init__',
     'self.retry_after = retry_after -> self.retry_after = None',
     'Nothing reads retry_after: no Retry-After header is sent, the message says the wait.'),
    ('loucloud.services.console.consume',
     'if row.expires_at <= now: -> if row.expires_at < now:',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice).'),
    ('loucloud.services.console.consume',
     '.values(used_at=now).execution_options(synchronize_session=False)).rowcount -> .values(used_at=now).execution_options(synchronize_session=None)).rowcount',
     'synchronize_session only decides whether SQLAlchemy also updates the row object read before the UPDATE; consume never reads its used_at again.'),
    ('loucloud.services.console.consume',
     'ConsoleToken.expires_at > now) -> )',
     'Redundant: the check just before refuses a token expired at the same "now", and nothing changes expires_at once a token is issued (a revoked token is deleted, which the id clause catches).'),
    ('loucloud.services.console.consume',
     'ConsoleToken.expires_at > now) -> ConsoleToken.expires_at >= now)',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice).'),
    ('loucloud.services.console.issue_token',
     'db.or_(ConsoleToken.used_at.is_not(None), ConsoleToken.expires_at < now))) -> db.or_(ConsoleToken.used_at.is_not(None), ConsoleToken.expires_at <= now)))',
     'The two differ only when the two times are equal to the microsecond, which no request can arrange (or notice). (A token that expires exactly now is swept now or at the next issue.)'),
    ('loucloud.services.console.issue_token',
     'token = secrets.token_urlsafe(32) -> token = secrets.token_urlsafe(None)',
     'token_urlsafe(None) is token_urlsafe(32): the default is 32 bytes.'),
    ('loucloud.services.vms.create._reserve',
     'db.session.execute(db.update(User).where(User.id == owner_id) -> db.session.execute(db.update(User).where(None)',
     'On SQLite any write locks the whole database, so this lock still makes creates wait. On MariaDB it locks no row at all: the 20-thread create test on MariaDB, which runs for these mutants, then sees the quota exceeded (it did in every try here), but it needs the threads to race, so a run may miss it.'),
    ('loucloud.services.vms.create._reserve',
     'if db.session.execute(db.select(VM.id).where(VM.owner_id == owner_id, -> if db.session.execute(db.select(VM.id).where(None,',
     'A broken duplicate-name pre-check is caught by the database: the unique constraint (owner, name) makes the INSERT fail and the IntegrityError branch gives the same refusal on the same field.'),
    ('loucloud.services.vms.create._reserve',
     'VM.name == name)).first(): -> None)).first():',
     'A broken duplicate-name pre-check is caught by the database: the unique constraint (owner, name) makes the INSERT fail and the IntegrityError branch gives the same refusal on the same field.'),
    ('loucloud.services.vms.create._reserve',
     'if db.session.execute(db.select(VM.id).where(VM.owner_id == owner_id, -> if db.session.execute(db.select(None).where(VM.owner_id == owner_id,',
     'A broken duplicate-name pre-check is caught by the database: the unique constraint (owner, name) makes the INSERT fail and the IntegrityError branch gives the same refusal on the same field.'),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") -> raise FieldError(f"You already have a VM named {name}.", None)',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") -> raise FieldError(f"You already have a VM named {name}.", )',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") -> raise FieldError(f"You already have a VM named {name}.", "XXnameXX")',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     'db.session.execute(db.update(User).where(User.id == owner_id) -> db.session.execute(db.update(User).where(User.id != owner_id)',
     "The quota lock only has to make concurrent creates of one owner wait for each other. SQLite locks the whole database for any write, whatever rows it matches; on MariaDB an UPDATE of every other user's row still makes the owner's creates queue (InnoDB locks the index ranges it scans; the 20-thread create test passes with it on both databases). What the counter is set to, nobody reads."),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") -> raise FieldError(f"You already have a VM named {name}.", "NAME")',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     '.values(quota_lock=User.quota_lock + 1)) -> .values(quota_lock=User.quota_lock - 1))',
     "The quota lock only has to make concurrent creates of one owner wait for each other. SQLite locks the whole database for any write, whatever rows it matches; on MariaDB an UPDATE of every other user's row still makes the owner's creates queue (InnoDB locks the index ranges it scans; the 20-thread create test passes with it on both databases). What the counter is set to, nobody reads."),
    ('loucloud.services.vms.create._reserve',
     'volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow()) -> volume_name=f"lc-{uuid}.qcow2", status=None, status_since=utcnow())',
     'Same value: the column\'s default (status "creating", status_since now) fills in what is left out or None.'),
    ('loucloud.services.vms.create._reserve',
     'volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow()) -> volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=None)',
     'Same value: the column\'s default (status "creating", status_since now) fills in what is left out or None.'),
    ('loucloud.services.vms.create._reserve',
     '.values(quota_lock=User.quota_lock + 1)) -> .values(quota_lock=User.quota_lock + 2))',
     "The quota lock only has to make concurrent creates of one owner wait for each other. SQLite locks the whole database for any write, whatever rows it matches; on MariaDB an UPDATE of every other user's row still makes the owner's creates queue (InnoDB locks the index ranges it scans; the 20-thread create test passes with it on both databases). What the counter is set to, nobody reads."),
    ('loucloud.services.vms.create._reserve',
     'volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow()) -> volume_name=f"lc-{uuid}.qcow2", status_since=utcnow())',
     'Same value: the column\'s default (status "creating", status_since now) fills in what is left out or None.'),
    ('loucloud.services.vms.create._reserve',
     'volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow()) -> volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, )',
     'Same value: the column\'s default (status "creating", status_since now) fills in what is left out or None.'),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") from None -> raise FieldError(None, "name") from None',
     'Unreachable while the pre-check stands: creates of one owner queue on the quota lock, so the pre-check always sees an earlier VM of that name and the INSERT never meets the unique constraint.'),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") from None -> raise FieldError(f"You already have a VM named {name}.", None) from None',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") from None -> raise FieldError("name") from None',
     'Unreachable while the pre-check stands: creates of one owner queue on the quota lock, so the pre-check always sees an earlier VM of that name and the INSERT never meets the unique constraint.'),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") from None -> raise FieldError(f"You already have a VM named {name}.", ) from None',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") from None -> raise FieldError(f"You already have a VM named {name}.", "XXnameXX") from None',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.services.vms.create._reserve',
     'raise FieldError(f"You already have a VM named {name}.", "name") from None -> raise FieldError(f"You already have a VM named {name}.", "NAME") from None',
     "The field only places the message: the one page that creates VMs shows a refusal without a known field next to Name anyway (show_error's default), and the command line prints the message alone."),
    ('loucloud.register_extensions',
     'login_manager.login_view = "auth.login" -> login_manager.login_view = None',
     'login_view is never read: the unauthorized handler registered right after it answers every anonymous request itself.'),
    ('loucloud.register_extensions',
     'login_manager.login_view = "auth.login" -> login_manager.login_view = "XXauth.loginXX"',
     'login_view is never read: the unauthorized handler registered right after it answers every anonymous request itself.'),
    ('loucloud.register_extensions',
     'login_manager.login_view = "auth.login" -> login_manager.login_view = "AUTH.LOGIN"',
     'login_view is never read: the unauthorized handler registered right after it answers every anonymous request itself.'),
    ('loucloud.register_extensions',
     'login_manager.login_message_category = "info" -> login_manager.login_message_category = None',
     'The page shows any category it does not know as "info" (base.html), so None, "XXinfoXX" and "INFO" look alike.'),
    ('loucloud.register_extensions',
     'login_manager.login_message_category = "info" -> login_manager.login_message_category = "XXinfoXX"',
     'The page shows any category it does not know as "info" (base.html), so None, "XXinfoXX" and "INFO" look alike.'),
    ('loucloud.register_extensions',
     'login_manager.login_message_category = "info" -> login_manager.login_message_category = "INFO"',
     'The page shows any category it does not know as "info" (base.html), so None, "XXinfoXX" and "INFO" look alike.'),
)
