"""Rate limits on the API (Flask-Limiter): per token and per address, over fixed windows
of a minute, counted on the shared cache so that several processes count together
(mod_wsgi runs two; several servers may share one Redis): its Redis when CACHE_TYPE is
RedisCache, else files in the cache's folder (ratestore.py); RATELIMIT_STORAGE_URI
overrides. An exceeded limit answers 429 with Retry-After."""
from __future__ import annotations

import hashlib
import os

from flask import Flask, current_app, request
from flask_limiter import Limiter

from . import ratestore



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


def shared_storage(config) -> str:
    """Where the counters go: the shared cache's own store."""
    kind = str(config.get("CACHE_TYPE") or "")
    if kind.endswith("RedisCache") and config.get("CACHE_REDIS_URL"):
        url = config["CACHE_REDIS_URL"]
        # redis-py's socket URL (unix://path) is redis+unix://path to the limits library
        return "redis+unix://" + url[len("unix://"):] if url.startswith("unix://") else url
    if kind.endswith("FileSystemCache") and config.get("CACHE_DIR"):
        return f"{ratestore.SCHEME}://{os.path.join(config['CACHE_DIR'], 'ratelimits')}"
    return "memory://"   # SimpleCache: one process (the tests)


def init_app(app: Flask) -> None:
    app.config.setdefault("API_RATE_LIMIT_TOKEN", "600 per minute")
    app.config.setdefault("API_RATE_LIMIT_ADDRESS", "1200 per minute")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = shared_storage(app.config)
    limiter = Limiter(key_func=_address, app=app, strategy="fixed-window")
    for bp in (b for name, b in app.blueprints.items()
               if name.startswith("api_") and name != "api_docs"):
        # shared: one count per token (per address) over every route of the API
        limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT_TOKEN"],
                             scope="api-token", key_func=_token,
                             override_defaults=False)(bp)
        limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT_ADDRESS"],
                             scope="api-address", key_func=_address,
                             override_defaults=False)(bp)
