"""Access rules for views, safe redirects, and the security headers of every response."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, request
from flask_login import current_user, login_required


def admin_required(view):
    """Only the administrator; anyone else logged in gets 403, anonymous users the login
    page."""
    @login_required
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)
    return wrapped


def is_safe_next(target: str | None) -> bool:
    """True when ``target`` is a path on this site (no scheme, no host, no '//' or '\\'
    tricks that browsers read as another host)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return False
    if target.startswith("//") or target.startswith("/\\") or "\\" in target:
        return False
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def console_url() -> str:
    """The websocket URL of the console proxy, as the page must use it: absolute in
    development (the proxy's own port), a path when it is on the same origin."""
    url = current_app.config.get("CONSOLE_URL") or ""
    if url:
        return url
    host = request.host.rsplit(":", 1)[0] if request.host else "localhost"
    scheme = "wss" if request.is_secure else "ws"
    return f"{scheme}://{host}:{current_app.config['CONSOLE_PROXY_PORT']}/websockify"


def console_origin() -> str:
    """The console proxy's origin for CSP connect-src ('' when it is this site)."""
    url = console_url()
    if url.startswith(("ws://", "wss://")):
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    return ""


def _csp(inline_styles: bool = False) -> str:
    connect = " ".join(filter(None, ["'self'", console_origin()]))
    styles = "'self' 'unsafe-inline'" if inline_styles else "'self'"
    return (f"default-src 'self'; script-src 'self'; style-src {styles}; "
            "img-src 'self' data: blob:; font-src 'self'; "
            f"connect-src {connect}; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'self'")


def allow_inline_styles(response):
    """The text console's page: xterm.js lays the terminal out with style elements it
    makes at run time. Scripts stay 'self' only, so this lets no code in."""
    response.headers["Content-Security-Policy"] = _csp(inline_styles=True)
    return response


def register(app) -> None:
    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _csp())
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if current_user.is_authenticated:
            headers.setdefault("Cache-Control", "no-store")
        return response
