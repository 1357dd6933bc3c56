"""Property-based tests (Hypothesis) of every route of the URL map, with any path
arguments, query string and body, by anonymous visitors, users and the administrator;
and of the list filters (the contract of every example: tests/test_fuzz_forms.py's
docstring). A GET never writes anything; a refused POST writes nothing."""
from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.routing import AnyConverter, IntegerConverter

from tests.conftest import PASSWORD, Client
from tests.support.fuzz import (
    EXAMPLES,
    FUZZ,
    NUMBER_TRICKS,
    Poster,
    assert_same,
    check_response,
    counted,
    csrf_text,
    nasty_text,
    path_text,
    snapshot,
)
from tests.support.fuzz_web import (  # noqa: F401 (world: a fixture)
    PAGE_LIMIT,
    id_text,
    ints,
    path_segment,
    submit,
    world,
)


# -- every route, with any path arguments and query ------------------------------------
PLACEHOLDER = re.compile(r"<(?:(?P<conv>[^:>]+):)?(?P<name>\w+)>")


def _routes(app):
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint not in ("auth.login", "auth.logout")),
                  key=lambda r: (r.rule, sorted(r.methods)))


def test_fuzz_every_route(app, world):
    """Every rule of the URL map (a new route is covered by itself) with arbitrary path
    arguments, query strings and bodies, by anonymous visitors, users and the
    administrator. A GET never writes anything; a refused POST writes nothing."""
    posters = {"alice": world.poster("alice"), "bob": world.poster("bob"),
               "dave": world.poster("dave"),  # manages alice's group (issue 16)
               "admin": world.poster("admin"), "anonymous": Poster(Client(app), PASSWORD)}
    rules = _routes(app)

    @st.composite
    def requests(draw):
        rule = draw(st.sampled_from(rules))
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        method = draw(st.sampled_from(methods))
        values = {}
        for arg in rule.arguments:
            conv = rule._converters[arg]
            if isinstance(conv, IntegerConverter):
                values[arg] = draw(id_text(world))
            elif isinstance(conv, AnyConverter):
                values[arg] = draw(st.one_of(st.sampled_from(sorted(conv.items)), nasty_text()))
            else:
                values[arg] = draw(st.one_of(
                    path_text(world.symlinks),
                    st.sampled_from(["app.css", "../config.py", "..%2fconfig.py",
                                     "vendor/../app.js"])))
        url = PLACEHOLDER.sub(lambda m: quote(values[m["name"]], safe="/")
                              if (m["conv"] or "").startswith("path")
                              else path_segment(values[m["name"]]), rule.rule)
        query = draw(st.lists(st.tuples(st.sampled_from(["q", "page", "next", "owner", "state",
                                                         "host", "role", "status", "ids",
                                                         "range", "x"]),
                                        nasty_text()), max_size=3))
        if query:
            url += "?" + urlencode(query)
        body = draw(st.lists(st.tuples(st.sampled_from(["accepts", "password", "confirm",
                                                        "name", "x"]), nasty_text()), max_size=3))
        return method, url, body, rule.endpoint

    with counted("web any route, any path/query") as count:
        @settings(FUZZ, max_examples=3 * EXAMPLES)
        @given(who=st.sampled_from(sorted(posters)), request=requests(), csrf=csrf_text(),
               as_json=st.booleans())
        def run(who, request, csrf, as_json):
            method, url, body, endpoint = request
            poster = posters[who]
            headers = {"Accept": "application/json"} if as_json else None
            if method == "POST":
                submit(world, poster, url, body, count, csrf=csrf, headers=headers)
                return
            uris = world.uris()
            before = snapshot(app, uris)
            count.examples += 1
            response = poster.get(url, headers=headers or {})
            check_response(response, f"GET {url} as {who}")
            count.add(f"GET {response.status_code}")
            assert_same(before, snapshot(app, uris), f"GET {url} ({endpoint}) as {who}")

        run()


# -- list filters ----------------------------------------------------------------------
STATES = ["running", "paused", "shut off", "crashed", "missing", "host offline", "starting…"]


def _get_filters(world, poster, path, params, count, what):
    uris = world.uris()
    before = snapshot(world.app, uris)
    url = f"{path}?{urlencode(params)}"
    count.examples += 1
    response = poster.get(url)
    check_response(response, f"{what} {url}")
    assert response.status_code == 200, f"GET {url}: {response.status_code}"
    count.add(str(response.status_code))
    assert_same(before, snapshot(world.app, uris), f"GET {url}")


PAGES = st.one_of(ints(-5, 5),
                  st.integers(min_value=-(2 ** 63), max_value=PAGE_LIMIT).map(str),
                  st.sampled_from(NUMBER_TRICKS), nasty_text())


@st.composite
def _params(draw, fields: dict[str, st.SearchStrategy]) -> list[tuple[str, str]]:
    """Query parameters in any order, some missing, some repeated."""
    keys = draw(st.lists(st.sampled_from(sorted(fields)), max_size=6))
    return [(k, draw(fields[k])) for k in keys]


def test_fuzz_vm_list_filters(app, world):
    posters = {"alice": world.poster("alice"), "admin": world.poster("admin")}
    ids = st.one_of(id_text(world), st.just(""))
    fields = {"q": st.one_of(st.sampled_from(["a", "%", "_", "a1", "'", "\\"]), nasty_text()),
              "state": st.one_of(st.sampled_from(STATES), nasty_text()),
              "owner": ids, "host": ids, "page": PAGES}
    with counted("web GET /?q&state&owner&host&page") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)), params=_params(fields))
        def run(who, params):
            _get_filters(world, posters[who], "/", params, count, who)

        run()


def test_fuzz_user_list_filters(app, world):
    admin = world.poster("admin")
    fields = {"q": st.one_of(st.sampled_from(["a", "%", "_", "alice", "@", "'"]), nasty_text()),
              "role": st.one_of(st.sampled_from(["", "admin", "user"]), nasty_text()),
              "status": st.one_of(st.sampled_from(["", "active", "disabled"]), nasty_text()),
              "page": PAGES}
    with counted("web GET /users/?q&role&status&page") as count:
        @FUZZ
        @given(params=_params(fields))
        def run(params):
            _get_filters(world, admin, "/users/", params, count, "admin")

        run()
