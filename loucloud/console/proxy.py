"""The console proxy: websockify's request handler in a threaded server of ours.

Why not websockify's own server: it forks a process per connection (our libvirt
connections and their threads do not survive a fork well) and it checks the Origin only
after the token plugin has used the token up. Here every connection is a thread, and the
order is: the handshake is a websocket one, the Origin is our site's, the session cookie
belongs to a logged-in user, and only then the token is consumed and the VM's VNC
address read from libvirt, with a fresh password for its VNC server that the proxy
answers the server's challenge with (console/rfb.py): the browser is offered no
authentication and never sees a password, and nobody reaches the screen around LouCloud. Any refusal is a plain HTTP 403 before the 101, so not one
RFB byte reaches the browser. The query string (the token) is never logged."""
from __future__ import annotations

import copy
import logging
import re
import select
import socket
import socketserver
import sys
import time
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from itsdangerous import BadSignature
from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy

from ..extensions import db
from ..services import auth as auth_service
from ..services.console import ConsoleRefused, consume, consume_serial
from . import rfb

log = logging.getLogger("loucloud.console")
PATH = "/websockify"
SERIAL_PATH = "/websockify/serial"   # the text console: the VM's serial line
HANDSHAKE_SECONDS = 10
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s'\"]+")


def normalise_origin(url: str) -> str:
    """scheme://host[:port], lower case, without the scheme's default port."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return ""
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins(app: Flask) -> frozenset[str]:
    """The site's own origin (SITE_URL) and any listed in CONSOLE_ALLOWED_ORIGINS; a
    loopback site also answers to the other loopback name."""
    origins = {normalise_origin(app.config["SITE_URL"])}
    extra = app.config.get("CONSOLE_ALLOWED_ORIGINS") or ""
    origins.update(normalise_origin(o) for o in extra.split(","))
    for origin in list(origins):
        for a, b in (("//127.0.0.1", "//localhost"), ("//localhost", "//127.0.0.1")):
            if a in origin:
                origins.add(origin.replace(a, b))
    origins.discard("")
    return frozenset(origins)


class RedactTokens(logging.Filter):
    """Last line of defence: no log record leaves with a token in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _TOKEN_IN_TEXT.sub(r"\1<redacted>", text)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


class Gate:
    """Decides whether a handshake may go through, and to which VNC server."""

    def __init__(self, app: Flask):
        self.app = app
        self.origins = allowed_origins(app)
        self.cookie_name = app.config["SESSION_COOKIE_NAME"]

    def _session_user(self, cookie_header: str | None) -> int | None:
        if not cookie_header:
            return None
        try:
            morsel = SimpleCookie(cookie_header).get(self.cookie_name)
        except CookieError:
            return None
        if morsel is None:
            return None
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        try:
            data = serializer.loads(morsel.value)
        except BadSignature:
            return None
        user = auth_service.load_session(data.get("_user_id"))
        return user.id if user is not None else None

    def target(self, origin: str | None, cookie_header: str | None,
               token: str, serial: bool = False):
        """The VM's screen (services.console.Screen: VNC address and password), or its
        serial line (a SerialBridge) for the text console. Raises ConsoleRefused."""
        if normalise_origin(origin or "") not in self.origins:
            raise ConsoleRefused.because(f"origin {origin!r} is not this site")
        with self.app.app_context():
            try:
                user_id = self._session_user(cookie_header)
                return consume_serial(token, user_id) if serial else consume(token, user_id)
            finally:
                db.session.remove()


class ConsoleRequestHandler(ProxyRequestHandler):
    server_version = "LouCloud-console"
    sys_version = ""

    def validate_connection(self) -> None:
        parts = urlsplit(self.path)
        # Nothing logged from here on may carry the token.
        self.path = parts.path or "/"
        self.requestline = f"{self.command} {self.path} {self.request_version}"
        if self.path not in (PATH, SERIAL_PATH):
            self._refuse(404, "unknown path")
        if self.headers.get("Upgrade", "").lower() != "websocket" or \
                not self.headers.get("Sec-WebSocket-Key"):
            self._refuse(400, "not a websocket handshake")
        token = (parse_qs(parts.query).get("token") or [""])[0]
        serial = self.path == SERIAL_PATH
        try:
            target = self.server.gate.target(self.headers.get("Origin"),
                                             self.headers.get("Cookie"), token, serial)
        except ConsoleRefused as exc:
            self._refuse(403, str(exc))
        if serial:
            self.server.serial = target
            log.info("text console opened from %s", self.client_address[0])
            return
        self.server.target_host, self.server.target_port = target.host, target.port
        self.server.vnc_password = target.password
        log.info("console of %s:%s opened from %s", target.host, target.port,
                 self.client_address[0])

    def new_websocket_client(self) -> None:
        bridge = getattr(self.server, "serial", None)
        if bridge is not None:
            try:
                self.do_proxy(bridge.socket)
            finally:
                bridge.close()
                bridge.socket.close()
            return
        if self.server.vnc_password is None:  # a simulated host: nothing to answer
            super().new_websocket_client()
            return
        try:
            target = socket.create_connection(
                (self.server.target_host, self.server.target_port), timeout=HANDSHAKE_SECONDS)
        except OSError as exc:
            log.warning("VNC server %s:%s unreachable: %s", self.server.target_host,
                        self.server.target_port, exc)
            raise self.CClose(1011, "The VM's screen could not be reached.") from None
        try:
            try:
                rfb.authenticate(target, self.server.vnc_password)
                self._inbox = b""
                rfb.greet(self._read_browser, lambda data: self._send_browser(data))
            except (rfb.HandshakeFailed, OSError) as exc:
                log.warning("console of %s:%s: %s", self.server.target_host,
                            self.server.target_port, exc)
                raise self.CClose(1011, "The VM's screen did not open.") from None
            target.settimeout(None)
            target.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
            self.request.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
            if self._inbox:
                target.sendall(self._inbox)
            self.do_proxy(target)
        finally:
            target.close()

    def _read_browser(self, n: int) -> bytes:
        """``n`` bytes of the browser's websocket messages (the handshake's)."""
        deadline = time.monotonic() + HANDSHAKE_SECONDS
        while len(self._inbox) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.request], [], [], left)[0]:
                raise rfb.HandshakeFailed("the browser did not answer the handshake")
            bufs, closed = self.recv_frames()
            self._inbox += b"".join(bufs)
            if closed:
                raise rfb.HandshakeFailed("the browser closed during the handshake")
        data, self._inbox = self._inbox[:n], self._inbox[n:]
        return data

    def _send_browser(self, data: bytes) -> None:
        pending = self.send_frames([data])
        while pending:
            select.select([], [self.request], [], HANDSHAKE_SECONDS)
            pending = self.send_frames()

    def _refuse(self, code: int, why: str) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        raise WebSocketProxy.EClose(f"console refused: {why}")

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's name)
        log.info("%s %s", self.client_address[0],
                 _TOKEN_IN_TEXT.sub(r"\1<redacted>", format % args))


class ConsoleProxyServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """One thread per connection; carries the attributes websockify's handler reads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Flask, heartbeat: int = 30):
        self.gate = Gate(app)
        self.logger = log
        self.only_upgrade = True   # no web server: never --web
        self.file_only = True
        self.web_auth = False
        self.verbose = False
        self.daemon = False
        self.record = ""           # never record frames (they hold keystrokes)
        self.run_once = False
        self.traffic = False
        self.handler_id = 0
        self.host_token = False
        self.token_plugin = None   # the Gate does the token's work
        self.auth_plugin = None
        self.heartbeat = heartbeat
        self.target_host = self.target_port = None
        self.serial = None
        self.vnc_password = None
        self.unix_target = self.unix_listen = None
        self.ssl_target = False
        self.wrap_cmd = None
        self.ws_connection = False
        super().__init__(address, ConsoleRequestHandler)

    def finish_request(self, request, client_address) -> None:
        # The handler writes its target onto the server object: each connection gets
        # its own copy, or concurrent consoles could reach each other's VMs.
        self.handler_id += 1
        self.RequestHandlerClass(request, client_address, copy.copy(self))

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (WebSocketProxy.EClose, ConnectionError)):
            log.info("%s: %s", client_address[0], exc)
        else:
            log.warning("%s: console connection failed: %s", client_address[0],
                        type(exc).__name__)


def make_server(app: Flask, host: str, port: int, heartbeat: int = 30) -> ConsoleProxyServer:
    """The proxy bound to host:port (loopback by default: Apache or the browser in
    development reach it there)."""
    for handler in logging.getLogger().handlers + logging.getLogger("loucloud").handlers:
        handler.addFilter(RedactTokens())
    logging.getLogger("websocket.type").addFilter(RedactTokens())
    return ConsoleProxyServer((host, port), app, heartbeat)
