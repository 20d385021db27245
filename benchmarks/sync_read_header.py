"""How fast ``proxyproto_rs.sync.read_header`` takes a header off a socket, against a bare
peek + parse + recv (its floor) and reading ``Parser.needed`` bytes at a time (the
alternative docs/sync.md weighs).

Every reader takes a header that already sits in a loopback TCP socket's receive queue with a
request behind it and must leave the request in the socket. ``peek`` is ``read_header`` with
the default options, ``trusted`` with a ``trusted`` list (what gunicorn's workers and most
servers set: the peer is checked too); ``bare`` is the floor, one ``MSG_PEEK`` recv, ``parse``
and one exact ``recv`` with no deadline, no trust check and no chained-header check;
``needed`` applies a total deadline and restores the socket timeout as ``read_header`` does.
The readers are interleaved run by run; prints the best of 3 runs, in ns per header.

    python benchmarks/sync_read_header.py [N] [READER ...]
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable

import proxyproto_rs as pp
from proxyproto_rs import sync
from proxyproto_rs.options import ServerOptions

OPTIONS = ServerOptions()
TRUSTED = ServerOptions(trusted=["127.0.0.0/8"])
PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HEADERS = {
    "v1 TCP4": pp.build_v1(("203.0.113.7", 51234), ("192.0.2.1", 443)),
    "v2 IPv4": pp.build_v2(("203.0.113.7", 51234), ("192.0.2.1", 443)),
    "v2 IPv6+TLV+CRC": pp.build_v2(
        ("2001:db8::7", 51234), ("2001:db8::1", 443), tlvs=[(0x05, b"x" * 32)], crc32c=True
    ),
}


def read_needed(sock: socket.socket) -> pp.Header:
    """The alternative: recv(Parser.needed) until the parser has the header."""
    parser = OPTIONS.new_parser()
    previous = sock.gettimeout()
    deadline = time.monotonic() + 5.0
    try:
        while True:
            sock.settimeout(deadline - time.monotonic())
            chunk = sock.recv(parser.needed)
            if not chunk:
                raise EOFError
            header = parser.feed(chunk)
            if header is not None:
                return header
    finally:
        sock.settimeout(previous)


def read_peek(sock: socket.socket) -> pp.Header:
    header = sync.read_header(sock, OPTIONS)
    assert header is not None
    return header


def read_trusted(sock: socket.socket) -> pp.Header:
    header = sync.read_header(sock, TRUSTED)
    assert header is not None
    return header


def read_bare(sock: socket.socket, parse: Callable[[bytes], pp.Header] = pp.parse) -> pp.Header:
    """The floor: what any reader of a header already waiting must do."""
    header = parse(sock.recv(4096, socket.MSG_PEEK))
    sock.recv(header.length)
    return header


def main(n: int, only: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    readers: dict[str, Callable[[socket.socket], pp.Header]] = {
        "bare": read_bare,
        "peek": read_peek,
        "trusted": read_trusted,
        "needed": read_needed,
    }
    if only:
        readers = {name: readers[name] for name in only}
    with client, server:
        for name, wire in HEADERS.items():
            best = dict.fromkeys(readers, float("inf"))
            for _ in range(3):
                for label, read in readers.items():
                    total = 0.0
                    for _ in range(n):
                        client.sendall(wire + PAYLOAD)
                        while len(server.recv(4096, socket.MSG_PEEK)) < len(wire) + len(PAYLOAD):
                            pass
                        start = time.perf_counter()
                        read(server)
                        total += time.perf_counter() - start
                        assert server.recv(4096) == PAYLOAD
                    best[label] = min(best[label], total)
            for label, total in best.items():
                print(f"{name:16} {label:7} {total / n * 1e9:8.0f} ns/header")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000, sys.argv[2:])
