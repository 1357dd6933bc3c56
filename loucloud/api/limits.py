"""Rate limits on the API (Flask-Limiter): per token and per address, counted in the
storage every process shares — RATELIMIT_STORAGE_URI, the task broker's Redis in a
deployment (mod_wsgi runs several processes), memory:// for the one process of the
embedded default. An exceeded limit is 429 with Retry-After."""
from __future__ import annotations

import hashlib

from flask import Flask, current_app, request
from flask_limiter import Limiter



def _address() -> str:
    return "address:" + (request.remote_addr or "")


def _token() -> str:
    """The token sent (by its hash: no secret in the storage), else the address: a
    cookie's requests count against the address alone."""
    header = request.headers.get("Authorization") or ""
    if header[:7].lower() == "bearer ":
        return "token:" + hashlib.sha256(header[7:].strip().encode("utf-8", "replace")
                                         ).hexdigest()[:32]
    return _address()


def init_app(app: Flask) -> None:
    app.config.setdefault("API_RATE_LIMIT_TOKEN", "600 per minute")
    app.config.setdefault("API_RATE_LIMIT_ADDRESS", "1200 per minute")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        broker = app.config.get("TASK_BROKER") or ""
        app.config["RATELIMIT_STORAGE_URI"] = broker if broker.startswith(
            ("redis://", "rediss://")) else "memory://"
    limiter = Limiter(key_func=_address, app=app, strategy="moving-window")
    for bp in (b for name, b in app.blueprints.items()
               if name.startswith("api_") and name != "api_docs"):
        # shared: one count per token (per address) over every route of the API
        limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT_TOKEN"],
                             scope="api-token", key_func=_token,
                             override_defaults=False)(bp)
        limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT_ADDRESS"],
                             scope="api-address", key_func=_address,
                             override_defaults=False)(bp)
