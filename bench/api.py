"""15. The REST API: GET /api/v1/vms at 4000 VMs (50 per page) against the HTML list
page in the same run, with the libvirt calls per host of each; and what a token's
authentication costs per request against the session cookie."""
from __future__ import annotations

import time

from .common import Section, median, ms, ratio
from .counting import per_host

API_LIST = "/api/v1/vms?limit=50"
PAGE = "/"
TOTAL, LAYOUT = 4000, 4


def _world(ctx):
    world = ctx.list_world
    if world is None:
        from .vmlist import ListWorld
        world = ctx.list_world = ListWorld(ctx)
    if world.layout != LAYOUT or sum(world.population.counts.get(h.index, 0)
                                     for h in world.lab.hosts[:LAYOUT]) != TOTAL:
        world.load(LAYOUT, TOTAL)
    return world


def _token(app, username: str) -> str:
    from loucloud.extensions import db
    from loucloud.models import User
    from loucloud.services import tokens

    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
        secret = tokens.create_token(user, "bench").secret
        db.session.remove()
    return secret


def _timed_get(client, path: str, **kw) -> float:
    start = time.perf_counter()
    response = client.get(path, **kw)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.get_data()[:200]}")
    return seconds


def run(ctx) -> list[Section]:
    world = _world(ctx)
    app = world.app
    app.config.update(API_RATE_LIMIT_TOKEN="1000000 per minute",
                      API_RATE_LIMIT_ADDRESS="1000000 per minute")
    secret = _token(app, "admin")
    bearer = {"Authorization": f"Bearer {secret}"}
    api = app.test_client()
    runs = ctx.runs(15)

    def api_get(path=API_LIST):
        return _timed_get(api, path, headers=bearer)

    # warm-up, then the page and the API interleaved, each asking libvirt
    for _ in range(2):
        world.forget(); world.page(PAGE)
        world.forget(); api_get()
    pages, apis = [], []
    for r in range(runs):
        order = (("page", "api") if r % 2 else ("api", "page"))
        for which in order:
            world.forget()
            if which == "page":
                pages.append(world.page(PAGE)[0])
            else:
                apis.append(api_get())
    with ctx.counter.counting() as seen:
        world.forget()
        world.page(PAGE)
    page_calls = per_host(seen, world.uris())
    with ctx.counter.counting() as seen:
        world.forget()
        api_get()
    api_calls = per_host(seen, world.uris())
    items = api.get(API_LIST, headers=bearer).json
    page, api_list = median(pages), median(apis)
    table = Section(f"15. REST API: GET {API_LIST} against the VM list page (admin, "
                    f"{LAYOUT} hosts, {TOTAL} VMs)",
                    ["request", "median", "÷ the page", "libvirt calls per host", "items"])
    table.add(f"GET {PAGE} (page, session cookie)", ms(page), "1.00",
              " / ".join(map(str, page_calls)), 50)
    table.add(f"GET {API_LIST} (token)", ms(api_list), ratio(api_list, page),
              " / ".join(map(str, api_calls)), f"{len(items['items'])} of {items['total']}")
    table.target(f"GET /api/v1/vms at {TOTAL} VMs ≤ 1.2 × the HTML list page",
                 f"{ratio(api_list, page)} × ({ms(api_list)} / {ms(page)})",
                 api_list <= 1.2 * page)
    table.target("libvirt calls per host the same as the page's",
                 f"API {api_calls}, page {page_calls}", api_calls == page_calls)
    table.notes.append(
        f"median of {runs} requests each through the WSGI app, the two interleaved after 2 "
        "warm-up rounds, each asking libvirt (the shared cache of host states expired "
        "first, outside the time); calls counted on one more request of each.")

    # token authentication against the session cookie, on one small read
    n = ctx.runs(200) if not ctx.quick else 60
    cookie = world.admin
    path = "/api/v1/tokens"
    for _ in range(10):
        _timed_get(api, path, headers=bearer)
        _timed_get(cookie.http, path)
    tokens, cookies = [], []
    for r in range(n):
        if r % 2:
            tokens.append(_timed_get(api, path, headers=bearer))
            cookies.append(_timed_get(cookie.http, path))
        else:
            cookies.append(_timed_get(cookie.http, path))
            tokens.append(_timed_get(api, path, headers=bearer))
    tok, coo = median(tokens), median(cookies)
    auth = Section("15b. Token authentication per request against the session cookie",
                   ["authentication", f"GET {path} (median)", "difference"])
    auth.add("session cookie", ms(coo), "")
    auth.add("Authorization: Bearer (token)", ms(tok), f"{(tok - coo) * 1000:+.2f} ms")
    auth.notes.append(
        f"median of {n} requests each, interleaved, after 10 warm-up pairs; the same route "
        "and answer, so the difference is the authentication: the cookie's session row "
        "against the token's (one indexed read by SHA-256 each; 'last used' written at "
        "most once a minute).")
    return [table, auth]
