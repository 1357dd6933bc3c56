"""Helpers of the property-based tests (tests/test_fuzz_*.py): Hypothesis settings,
strategies for hostile input, snapshots of the database and of the test-driver hosts,
checks of a response, and the count of examples run per form/command (written to
test-artifacts/fuzz-counts.json). The web and CLI worlds: fuzz_web.py, fuzz_cli.py."""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from loucloud.extensions import db
from loucloud.models import Host
from loucloud.services.hypervisors import pool
from loucloud.services import FieldError
from loucloud.services.hosts import check_uri
from tests.support.artifacts import updating_json

ROOT = Path(__file__).resolve().parents[2]
COUNTS_FILE = ROOT / "test-artifacts" / "fuzz-counts.json"

# Examples per form or command; LOUCLOUD_FUZZ_EXAMPLES=500 for a long hunt.
EXAMPLES = int(os.environ.get("LOUCLOUD_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

# Every status the app answers with on purpose (errors.TITLES, plus 200 and 302; 308 is
# werkzeug's redirect to the canonical URL: '//' merged, a missing final '/').
STATUSES = {200, 302, 308, 400, 401, 403, 404, 405, 409, 413, 429, 503}
# The REST API's besides (/api/v1/): created, accepted (a task), an invalid field.
API_STATUSES = STATUSES | {201, 202, 422}
# The largest integer SQLite (and a MariaDB BIGINT) stores.
INT64_MAX = 2 ** 63 - 1


# -- strategies ------------------------------------------------------------------------
XML_TRICKS = [
    "<>&'\"", "a</name><devices>", "]]>", "<![CDATA[x]]>", "&amp;&lt;&#0;", "&e;",
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    "</title><devices><disk type='file'><source file='/etc/shadow'/></disk></devices><title>",
    "x' onmouseover='alert(1)", "<script>alert(1)</script>", "{{ 7*7 }}", "${7*7}",
    "%s%n%x", "' OR '1'='1", "a\\b", "%", "_", "?", "#", ";", "\u202eevil", "\ufeff",
]
PATH_TRICKS = [
    "../", "../../../../etc/passwd", "/etc/passwd", "/etc/shadow", "//x", "//etc/passwd",
    "relative/base.qcow2", "base.qcow2", "./base.qcow2", "/var/lib/images/../images/base.qcow2",
    "/var/lib/images/./base.qcow2", "/var/lib/images/base.qcow2/", "/var/lib/images//base.qcow2",
    "/", ".", "..", "~/x", "~root/.ssh/id_rsa", "file:///etc/passwd",
    "/var/lib/images/base.qcow2\x00.png",
    "/var/lib/images/base.qcow2\n", " /var/lib/images/base.qcow2 ", "\\\\host\\share\\x",
    "C:\\images\\x.qcow2", "/var/lib/images", "/var/lib/images/", "/var/lib/libvirt/loucloud",
    "/var/lib/images/%2e%2e/x", "/var/lib/images/..%2fx", "/dev/sda", "/proc/self/environ",
    "/" + "a" * 1100,
]
NUMBER_TRICKS = [
    "-1", "0", "-0", "1", "+5", " 5 ", "5.0", "1e9", "1e400", "NaN", "inf", "-inf", "0x10",
    "0o7", "1_000", "\u0663", "\uff11\uff12", "9" * 30, "-" + "9" * 30, "9" * 5000,
    "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
    "9223372036854775808", "18446744073709551616", "", " ", "abc", "1; DROP TABLE users",
]
SPECIAL = ["", " ", "\x00", "\t\n", "\r\n", "\x1b[2J", "\x7f", "é", "😀" * 3, "null", "None",
           "true", "[]", "{}"]


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, picked with the given weights (shrinks toward the first)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(min_value=0, max_value=len(table) - 1).flatmap(lambda i: table[i])


def long_text() -> st.SearchStrategy[str]:
    """Long strings (up to ~20 000 characters)."""
    return st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4),
                     st.integers(min_value=100, max_value=5000))


def nasty_text() -> st.SearchStrategy[str]:
    """Arbitrary unicode (control characters and NUL included), XML metacharacters,
    path tricks, number-like text, very long strings."""
    return st.one_of(
        st.text(),
        st.text(st.characters(max_codepoint=127)),
        st.sampled_from(XML_TRICKS + PATH_TRICKS + NUMBER_TRICKS + SPECIAL),
        st.builds(lambda a, b: a + b, st.sampled_from(XML_TRICKS + SPECIAL), st.text(max_size=8)),
        long_text(),
    )


def number_text(low: int = 0, high: int = 100) -> st.SearchStrategy[str]:
    """Whole numbers in and out of range, huge, negative, and non-numbers."""
    return st.one_of(
        st.integers(min_value=low, max_value=high).map(str),
        st.integers().map(str),
        st.integers(min_value=-(10 ** 40), max_value=10 ** 40).map(str),
        st.sampled_from(NUMBER_TRICKS),
        nasty_text(),
    )


def path_text(extra: list[str]) -> st.SearchStrategy[str]:
    """Path tricks, the given real paths (symlinks and such), and arbitrary text."""
    return st.one_of(st.sampled_from(PATH_TRICKS + extra),
                     st.builds(lambda a, b: a + b, st.sampled_from(extra + PATH_TRICKS),
                               st.sampled_from(["", "/", "/..", "/../etc/passwd", "/passwd",
                                                "\x00", "/./x"])),
                     nasty_text())


def name_text(alphabet: str = "A-Za-z0-9_.-", first: str = "A-Za-z0-9",
              max_len: int = 20) -> st.SearchStrategy[str]:
    """Names a form would accept (so that some examples get through)."""
    return st.from_regex(rf"[{first}][{alphabet}]{{0,{max_len - 1}}}", fullmatch=True)


# The "valid value" of a field that form_data(same=...) copies from another (a password
# confirmation); never drawn.
SAME = st.nothing()


@st.composite
def form_data(draw, valid: dict[str, st.SearchStrategy], *, same: dict[str, str] | None = None,
              hostile: dict[str, st.SearchStrategy] | None = None,
              rare: set[str] = frozenset(), extra: bool = True) -> list[tuple[str, str]]:
    """A form body as (name, value) pairs: valid values with a few fields spoiled
    (hostile value, empty, missing, duplicated), or everything hostile; sometimes an
    unknown extra field. ``same`` maps a field to another whose value it repeats; the
    fields in ``rare`` are seldom missing or repeated (a command's positional
    arguments: click refuses a wrong count before LouCloud sees anything)."""
    same, hostile = same or {}, hostile or {}
    names = list(valid)
    mode = draw(weighted((3, st.just("valid")), (5, st.just("mutate")), (2, st.just("chaos"))))
    if mode == "chaos":
        spoiled = set(names)
    elif mode == "valid":
        spoiled = set()
    else:
        spoiled = draw(st.sets(st.sampled_from(names), min_size=1,
                               max_size=min(2, len(names))))
    values: dict[str, str] = {}
    items: list[tuple[str, str]] = []
    for name in names:
        bad = hostile.get(name, nasty_text())
        if name in same and name not in spoiled:
            value = values.get(same[name], "")
        else:
            value = draw(bad if name in spoiled else valid[name])
        values[name] = value
        hows = ["one"] * 6 + ["missing", "twice"] if name in rare else \
            ["one", "missing", "twice", "twice-bad"]
        how = draw(st.sampled_from(hows)) if name in spoiled else "one"
        if how == "missing":
            continue
        items.append((name, value))
        if how == "twice":
            items.append((name, draw(bad)))
        elif how == "twice-bad":
            items.insert(0, (name, draw(bad)))  # the hostile value comes first
    if extra and draw(st.integers(0, 5)) == 5:
        items.append((draw(st.text(max_size=12)), draw(nasty_text())))
    return items


# -- snapshots -------------------------------------------------------------------------
# Written on purpose for refused attempts too: the login throttle counts failures, the
# audit log records refusals.
IGNORED_TABLES = {"login_attempts", "audit_events"}
# Bookkeeping that changes without a user-visible write: a session's last use, the
# counter a quota reservation bumps to take the owner's row lock, and the time of a VM's
# status (an action holds the VM in a transitional status before libvirt says whether it
# fits; a refusal puts the status back, with a new time). The status itself is compared.
IGNORED_COLUMNS = {"user_sessions": {"last_seen_at"}, "users": {"quota_lock"},
                   "vms": {"status_since"},
                   "api_tokens": {"last_used_at", "last_used_from"}}


def db_state(app) -> dict[str, tuple[int, str]]:
    """{table: (row count, hash of all rows)} of every table that a request could
    change (see IGNORED_*)."""
    out = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name in IGNORED_TABLES:
                continue
            skip = IGNORED_COLUMNS.get(table.name, set())
            cols = [c for c in table.columns if c.name not in skip]
            rows = sorted(repr(tuple(r)) for r in db.session.execute(db.select(*cols)).all())
            out[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        db.session.remove()
    return out


def diff(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
            if before.get(k) != after.get(k)}


def _read_host(conn):
    doms = sorted((d.UUIDString(), d.name(), d.state(0)[0],
                   hashlib.sha256(d.XMLDesc(0).encode()).hexdigest())
                  for d in conn.listAllDomains(0))
    pools, volumes = [], []
    for p in conn.listAllStoragePools(0):
        pools.append(p.name())
        if p.isActive():
            volumes.extend((p.name(), v.name(), v.info()[1]) for v in p.listAllVolumes(0))
    networks = sorted((n.name(), n.isActive(), n.autostart(),
                       hashlib.sha256(n.XMLDesc(0).encode()).hexdigest())
                      for n in conn.listAllNetworks(0))
    return {"domains": doms, "volumes": sorted(volumes), "pools": sorted(pools),
            "networks": networks}


def host_state(app, uris) -> dict[str, dict]:
    """Domains (uuid, name, state, XML hash), volumes (pool, name, capacity), pool
    names and networks (name, active, autostart, XML hash) of each host, read through the app's own connection (the test driver keeps
    its state per connection)."""
    with app.app_context():
        return {uri: pool().call(uri, _read_host, timeout=5) for uri in sorted(uris)}


def domains_and_volumes(state: dict[str, dict]) -> dict:
    return {uri: (s["domains"], s["volumes"], s["networks"]) for uri, s in state.items()}


@dataclass
class Snapshot:
    db: dict
    hosts: dict


def snapshot(app, uris) -> Snapshot:
    return Snapshot(db_state(app), host_state(app, uris))


def assert_same(before: Snapshot, after: Snapshot, what: str) -> None:
    """Nothing in the database and no domain or volume on the hosts changed between the
    two snapshots."""
    assert before.db == after.db, f"{what}: rejected, but the database changed: " \
                                  f"{diff(before.db, after.db)}"
    assert domains_and_volumes(before.hosts) == domains_and_volumes(after.hosts), \
        f"{what}: rejected, but a host changed: {before.hosts} -> {after.hosts}"


def assert_fits_columns(app, what: str) -> None:
    """Every stored string fits its column (SQLite does not check; MariaDB refuses the
    row with a DataError)."""
    with app.app_context():
        for table in db.metadata.sorted_tables:
            cols = [c for c in table.columns
                    if isinstance(c.type, sa.String) and c.type.length]
            for col in cols:
                too_long = db.session.execute(
                    db.select(col).where(db.func.length(col) > col.type.length).limit(1)).first()
                assert too_long is None, \
                    f"{what}: {table.name}.{col.name} holds {len(too_long[0])} characters, " \
                    f"more than its {col.type.length}: {too_long[0][:80]!r}..."
        db.session.remove()


def safe_uri(tmp: str):
    """A function that keeps a URI the app refuses, or one that reaches only a
    test-driver file under ``tmp`` or a socket under it; it turns any other (the real
    libvirtd of this machine, a network host, test:///dev/zero...) into one the app
    refuses, so that no example leaves this process."""
    def fix(uri: str) -> str:
        try:
            check_uri(uri)
        except FieldError:
            return uri
        parts = urlsplit(uri.strip())
        if parts.scheme == "test" and not parts.netloc and (
                parts.path == "/default" or parts.path.startswith(tmp + "/")
                or parts.path in ("/etc/passwd", "/nonexistent.xml")):
            return uri
        if parts.scheme == "qemu+unix" and not parts.netloc:
            sockets = parse_qs(parts.query).get("socket", [])
            if sockets and all(s.startswith(tmp + "/") for s in sockets):
                return uri
        return "refused+" + uri
    return fix


# -- checks ----------------------------------------------------------------------------
DANGER_FLASH = 'class="alert alert-danger alert-dismissible'


def check_response(response, what: str) -> str:
    """No 500, no traceback, a status the app uses. Returns the body."""
    body = response.get_data(as_text=True)
    assert response.status_code != 500, f"{what}: 500\n{body[:2000]}"
    api = response.request is not None and response.request.path.startswith("/api/")
    assert response.status_code in (API_STATUSES if api else STATUSES), \
        f"{what}: status {response.status_code}"
    assert "Traceback" not in body, f"{what}: traceback in the page"
    if response.status_code == 302:
        assert_on_site(response.headers["Location"], what)
    if response.status_code == 308:  # werkzeug's own redirects are absolute
        parts = urlsplit(response.headers["Location"])
        assert parts.netloc == "localhost" and parts.path.startswith("/") and \
            not parts.path.startswith("//"), f"{what}: redirect off site: {parts!r}"
    return body


def assert_on_site(location: str, what: str) -> None:
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, f"{what}: redirect off site: {location!r}"
    assert location.startswith("/") and not location.startswith("//") and \
        "\\" not in location, f"{what}: redirect off site: {location!r}"


def rejected(client, response, body: str) -> bool:
    """Was the request refused? Not a redirect, a form error, a danger flash (on the
    page the redirect leads to), or a redirect to the login page."""
    if response.is_json:  # an API answer: an error status, or done
        return response.status_code >= 400
    if response.status_code != 302:
        return True
    if "is-invalid" in body or DANGER_FLASH in body:
        return True
    location = response.headers["Location"]
    if urlsplit(location).path == "/login":
        return True
    follow = client.get(location)
    page = check_response(follow, f"GET {location} after the POST")
    return DANGER_FLASH in page or "is-invalid" in page


class Poster:
    """Posts forms for a logged-in Client with its CSRF token read once (the token lives
    as long as the session) and re-logs in when the session was ended."""

    def __init__(self, client, password: str):
        self.client = client
        self.password = password
        self.token = client.csrf()

    def relogin(self) -> None:
        if not self.client.username:  # anonymous: nothing to log in again
            return
        self.client.http = self.client.app.test_client()
        response = self.client.login(self.client.username, self.password)
        assert response.status_code in (302, 401, 429), response.status_code
        self.token = self.client.csrf()

    def post(self, url: str, items: list[tuple[str, str]], *, csrf: str | None = None,
             headers: dict | None = None):
        """``csrf``: None for the session's token, NO_TOKEN for no csrf_token field."""
        token = [] if csrf == NO_TOKEN else [("csrf_token", self.token if csrf is None else csrf)]
        return self.client.http.post(url, data=MultiDict(token + list(items)),
                                     headers=headers or {})

    def get(self, url: str, **kw):
        """The whole answer, read and closed (a static file's handle is released now, not
        whenever the collector finds it)."""
        response = self.client.http.get(url, **kw)
        response.get_data()
        response.close()
        return response

    def logged_out(self, response) -> bool:
        return response.status_code in (302, 401) and \
            urlsplit(response.headers.get("Location", "")).path == "/login"


NO_TOKEN = "\x00(no csrf_token field)\x00"


def csrf_text() -> st.SearchStrategy[str | None]:
    """None: the session's valid token (mostly); sometimes none at all (NO_TOKEN), an
    empty or a forged one."""
    return weighted((8, st.none()), (1, st.sampled_from(["", NO_TOKEN])), (1, nasty_text()))


# -- counting --------------------------------------------------------------------------
@dataclass
class Count:
    name: str
    examples: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


@contextmanager
def counted(name: str):
    """Count the examples run inside; merge the count into fuzz-counts.json at the end
    (also when the test fails)."""
    count = Count(name)
    try:
        yield count
    finally:
        record(count)


def record(count: Count) -> None:
    with updating_json(COUNTS_FILE, _render_counts) as data:
        data[count.name] = {"examples": count.examples,
                            "outcomes": dict(sorted(count.outcomes.items())),
                            "max_examples": EXAMPLES,
                            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _render_counts(data: dict) -> str:
    return json.dumps(dict(sorted(data.items())), indent=2) + "\n"


def host_uris(app, fixed=()) -> set[str]:
    """The given hosts and every test-driver host in the database (those a snapshot can
    read without touching a real machine)."""
    with app.app_context():
        uris = set(db.session.execute(db.select(Host.uri)).scalars())
        db.session.remove()
    return set(fixed) | {u for u in uris if u.startswith("test:")}
