"""The two ends of the RFB (VNC) handshake that the console proxy speaks itself.

Every VM's VNC server has a password (libvirt's ``passwd``), replaced with a new random
one, valid for a few seconds, each time LouCloud opens a console. The proxy answers the
server's VNC authentication challenge with it (RFB 3.8, security type 2: the challenge
encrypted with DES, the password's bits reversed as VNC does), then greets the browser
as a server offering security type None: the browser has already passed LouCloud's
checks (token, origin, session) and never sees a password. After both handshakes the
proxy relays the bytes as before (ClientInit, ServerInit and the session itself).

The VNC password scheme is weak cryptography (DES, 8 characters); here it only has to
keep out whoever reaches a host's VNC port without LouCloud, with a password nobody
knows that expires seconds after it was set. DES comes from ``cryptography``."""
from __future__ import annotations

import socket
import struct
from typing import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

VERSION = b"RFB 003.008\n"
NONE, VNC_AUTH = 1, 2


class HandshakeFailed(Exception):
    """The VNC server or the browser did not complete the handshake; says why."""


def vnc_response(password: str, challenge: bytes) -> bytes:
    """The answer to a VNC authentication challenge (16 bytes): DES in ECB mode, keyed
    with the password (8 bytes, zero padded) with each byte's bits reversed."""
    raw = password.encode("latin-1")[:8].ljust(8, b"\0")
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in raw)
    # Triple DES with one key three times is single DES.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = sock.recv(n - len(data))
        if not part:
            raise HandshakeFailed("the VNC server closed the connection")
        data += part
    return data


def _reason(read: Callable[[int], bytes]) -> str:
    length = struct.unpack(">I", read(4))[0]
    return read(min(length, 4096)).decode("utf-8", "replace")


def authenticate(sock: socket.socket, password: str) -> None:
    """As a client, up to a successful SecurityResult: the server is then waiting for
    ClientInit. Raises HandshakeFailed."""
    def read(n: int) -> bytes:
        return _recv_exact(sock, n)
    greeting = read(12)
    if not greeting.startswith(b"RFB 003."):
        raise HandshakeFailed(f"not a VNC server (it said {greeting!r})")
    sock.sendall(VERSION)
    count = read(1)[0]
    if count == 0:
        raise HandshakeFailed(f"the VNC server refused: {_reason(read)}")
    types = read(count)
    if VNC_AUTH not in types:
        raise HandshakeFailed(f"the VNC server does not ask for a password "
                              f"(security types {list(types)})")
    sock.sendall(bytes([VNC_AUTH]))
    sock.sendall(vnc_response(password, read(16)))
    if struct.unpack(">I", read(4))[0] != 0:
        raise HandshakeFailed(f"the VNC server refused the password: {_reason(read)}")


def greet(read: Callable[[int], bytes], write: Callable[[bytes], None]) -> None:
    """As a server to the browser: version 3.8, security type None, SecurityResult OK.
    The browser then sends ClientInit, which goes on to the VM's server."""
    write(VERSION)
    version = read(12)
    if version != VERSION:
        raise HandshakeFailed(f"the browser asked for {version!r}, not RFB 3.8")
    write(bytes([1, NONE]))
    if read(1) != bytes([NONE]):
        raise HandshakeFailed("the browser chose another security type")
    write(struct.pack(">I", 0))
