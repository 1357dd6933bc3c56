"""A minimal RFB (VNC) client for measurements, over a plain TCP socket or a websocket:
handshake (security None), raw encoding only, full framebuffer updates read to the end."""
from __future__ import annotations

import socket
import struct
import time

from loucloud.console.rfb import vnc_response


class TCPStream:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.received = 0

    def _more(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the VNC server closed the connection")
        self.buf += chunk
        self.received += len(chunk)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def skip(self, n: int) -> None:
        while n > 0:
            if not self.buf:
                self._more()
            take = min(n, len(self.buf))
            del self.buf[:take]
            n -= take


class WSStream(TCPStream):
    """RFB bytes carried in websocket binary messages (websockets' sync client)."""

    def __init__(self, ws, timeout: float = 30):
        self.ws, self.timeout = ws, timeout
        self.buf = bytearray()
        self.received = 0

    def _more(self) -> None:
        msg = self.ws.recv(timeout=self.timeout)
        data = msg if isinstance(msg, (bytes, bytearray)) else msg.encode()
        self.buf += data
        self.received += len(data)

    def send(self, data: bytes) -> None:
        self.ws.send(data)

    def close(self) -> None:
        self.ws.close()


class RFB:
    def __init__(self, stream: TCPStream):
        self.s = stream
        self.width = self.height = self.bpp = 0

    def handshake(self, password: str | None = None) -> None:
        """Security None (through LouCloud's proxy), or VNC authentication with
        ``password`` (straight to the VM's VNC server, which asks for one)."""
        s = self.s
        if not s.read(12).startswith(b"RFB 003."):
            raise ConnectionError("not an RFB server")
        s.send(b"RFB 003.008\n")
        count = s.read(1)[0]
        if not count:
            reason = s.read(struct.unpack(">I", s.read(4))[0])
            raise ConnectionError(f"refused: {reason!r}")
        types = s.read(count)
        if password is not None and 2 in types:
            s.send(b"\x02")
            s.send(vnc_response(password, s.read(16)))
        elif 1 in types:
            s.send(b"\x01")
        else:
            raise ConnectionError(f"no usable security type in {list(types)}")
        if struct.unpack(">I", s.read(4))[0] != 0:
            raise ConnectionError("security handshake failed")
        s.send(b"\x01")  # ClientInit: shared
        self.width, self.height = struct.unpack(">HH", s.read(4))
        self.bpp = s.read(16)[0]
        s.read(struct.unpack(">I", s.read(4))[0])  # the desktop's name
        s.send(struct.pack(">BBHi", 2, 0, 1, 0))  # SetEncodings: raw only

    def request(self, incremental: bool = False) -> None:
        self.s.send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))

    def read_update(self, on_header=None) -> int:
        """Read server messages up to and including one whole FramebufferUpdate.
        ``on_header()`` is called as soon as its header is in. Returns the bytes of
        pixels it carried."""
        s = self.s
        while True:
            kind = s.read(1)[0]
            if kind == 0:
                s.read(1)
                rects = struct.unpack(">H", s.read(2))[0]
                if on_header is not None:
                    on_header()
                pixels = 0
                for _ in range(rects):
                    _x, _y, w, h, enc = struct.unpack(">HHHHi", s.read(12))
                    if enc != 0:
                        raise ConnectionError(f"unexpected encoding {enc}")
                    size = w * h * self.bpp // 8
                    s.skip(size)
                    pixels += size
                return pixels
            if kind == 1:  # SetColourMapEntries
                s.read(3)
                s.skip(6 * struct.unpack(">H", s.read(2))[0])
            elif kind == 2:  # Bell
                continue
            elif kind == 3:  # ServerCutText
                s.read(3)
                s.skip(struct.unpack(">I", s.read(4))[0])
            else:
                raise ConnectionError(f"unexpected RFB message {kind}")

    def stream(self, seconds: float) -> tuple[int, float, int]:
        """Full, non-incremental updates, continuously, for ``seconds``: the next request
        is sent as soon as an update's header arrives, so a request is always waiting
        while pixels flow. Returns (bytes received, seconds, updates)."""
        start = self.s.received
        began = time.perf_counter()
        updates = 0
        more = True

        def next_request():
            nonlocal more
            more = time.perf_counter() - began < seconds
            if more:
                self.request(incremental=False)

        self.request(incremental=False)
        while more:
            self.read_update(on_header=next_request)
            updates += 1
        return self.s.received - start, time.perf_counter() - began, updates


def tcp(host: str, port: int, timeout: float = 30) -> RFB:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return RFB(TCPStream(sock))
