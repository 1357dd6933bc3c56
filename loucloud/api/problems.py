"""RFC 9457 problem details: the one shape of every error answered under /api/."""
from __future__ import annotations

from flask import g, jsonify, request
from werkzeug.http import HTTP_STATUS_CODES

MEDIA_TYPE = "application/problem+json"


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def flatten(messages, prefix: str = "") -> dict[str, str]:
    """webargs' nested messages ({"json": {"name": ["Missing…"]}}) as field: message."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if prefix == "" and key in ("json", "query", "form", "view_args", "headers",
                                        "files", "cookies"):
                out.update(flatten(value, ""))
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
                out.update(flatten(value, name))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            out[prefix or "body"] = " ".join(messages)
        else:
            for i, item in enumerate(messages):
                out.update(flatten(item, f"{prefix}[{i}]" if prefix else f"[{i}]"))
    else:
        out[prefix or "body"] = str(messages)
    return out


def problem(status: int, detail: str | None = None, *, errors: dict[str, str] | None = None,
            title: str | None = None):
    body = {"type": "about:blank", "title": title or HTTP_STATUS_CODES.get(status, "Error"),
            "status": status, "instance": request.path}
    if errors:
        body["errors"] = errors
        if not detail:
            detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
    if detail:
        body["detail"] = detail
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    if status == 401:
        sent = (request.headers.get("Authorization") or "")[:7].lower() == "bearer "
        response.headers["WWW-Authenticate"] = 'Bearer realm="LouCloud"' + (
            ', error="invalid_token"' if sent else "")
    g.error_message = detail or body["title"]
    return response
