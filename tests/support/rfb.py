"""Just enough of the RFB (VNC) protocol, spoken over a websocket, to prove that a real
screen answered: version, security 'None', init, one framebuffer update."""
from __future__ import annotations

import struct


class WSStream:
    """Bytes from websocket messages, read in exact amounts."""

    def __init__(self, ws, timeout: float = 10):
        self.ws, self.timeout, self.buf = ws, timeout, b""

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            msg = self.ws.recv(timeout=self.timeout)
            self.buf += msg if isinstance(msg, bytes) else msg.encode()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def handshake(ws) -> dict:
    """Run the RFB handshake up to the first FramebufferUpdate. Returns what was seen."""
    s = WSStream(ws)
    greeting = s.read(12)
    assert greeting.startswith(b"RFB 003."), greeting
    ws.send(b"RFB 003.008\n")
    count = s.read(1)[0]
    assert count, "the server refused: " + s.read(struct.unpack(">I", s.read(4))[0]).decode()
    types = s.read(count)
    assert 1 in types, f"no 'None' security type in {list(types)}"
    ws.send(b"\x01")
    assert struct.unpack(">I", s.read(4))[0] == 0, "security handshake failed"
    ws.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", s.read(4))
    s.read(16)  # pixel format
    name = s.read(struct.unpack(">I", s.read(4))[0]).decode(errors="replace")
    ws.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # full update request
    while True:
        kind = s.read(1)[0]
        if kind == 0:  # FramebufferUpdate
            s.read(1)
            rects = struct.unpack(">H", s.read(2))[0]
            return {"greeting": greeting, "width": width, "height": height, "name": name,
                    "rectangles": rects}
        if kind == 2:  # Bell
            continue
        if kind == 1:  # SetColourMapEntries
            s.read(3)
            s.read(6 * struct.unpack(">H", s.read(2))[0])
            continue
        raise AssertionError(f"unexpected RFB message {kind}")
