"""Hostile load on aio servers: slowloris under ``max_pending``,
bounded refusal logging, trusted networks spelled in IPv6 on IPv4 and dual-stack listeners.
The full-size measurements are in tests/load/."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import aio_support
import pytest
from aio_support import Runner, close_writer, port_of, read_until_closed
from proxyproto_rs import aio, build_v2
from proxyproto_rs.aio._report import peer_network

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
V2 = build_v2(CLIENT, SERVICE)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readexactly(4))
    await writer.drain()
    writer.close()


async def _start(
    backlog: int = 100, **options: Any
) -> tuple[aio.ProxyServerFactory, asyncio.Server]:
    factory = aio.wrap(_echo_protocol, **options)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0, backlog=backlog)
    return factory, server


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)
        self.transport.close()


def _echo_protocol() -> asyncio.Protocol:
    return _EchoProtocol()


async def _legit(port: int, host: str = "127.0.0.1") -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    except OSError:
        return False
    try:
        writer.write(V2 + b"ping")
        return await asyncio.wait_for(read_until_closed(reader), 5) == b"ping"
    except (OSError, TimeoutError):
        return False
    finally:
        await close_writer(writer)


async def _slowloris(port: int, stop: asyncio.Event, interval: float) -> None:
    """Send the header one byte per *interval*; reconnect at the next tick when closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        try:
            for byte in V2[:-1]:
                if stop.is_set() or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(interval)
        except (OSError, RuntimeError):  # uvloop: RuntimeError writing to a closed handle
            pass
        finally:
            await close_writer(writer)
        await asyncio.sleep(interval)


def _blocking_client(port: int) -> bool:
    """A legitimate client on its own thread (its bytes leave at once, as from another
    host): the whole header and a request, then the echo."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(V2 + b"ping")
            got = b""
            while len(got) < 4 and (chunk := sock.recv(4 - len(got))):
                got += chunk
            return got == b"ping"
    except OSError:
        return False


def test_slowloris_cannot_starve_legitimate_clients(run: Runner[None]) -> None:
    """A small, fast version of tests/load/slowloris.py: 3x ``max_pending`` attackers
    trickling their header; every legitimate client is still served, the cap holds. As
    the docs advise, ``max_pending`` is above the listen backlog (the most connections
    accepted at once), so no burst of accepts can evict a client before its first read."""

    async def main() -> None:
        factory, server = await _start(backlog=10, max_pending=20, timeout=30)
        port = port_of(server)
        stop = asyncio.Event()
        attackers = []
        for _ in range(12):  # a few at a time, so the small listen queue never overflows
            attackers += [asyncio.create_task(_slowloris(port, stop, 0.05)) for _ in range(5)]
            await asyncio.sleep(0.02)
        peak = 0
        for _ in range(300):  # let the attackers fill the cap
            peak = max(peak, factory.pending)
            if factory.stats.evicted:
                break
            await asyncio.sleep(0.01)
        served = await asyncio.to_thread(lambda: sum(_blocking_client(port) for _ in range(40)))
        peak = max(peak, factory.pending)
        stop.set()
        await asyncio.gather(*attackers)
        server.close()
        await server.wait_closed()
        assert served == 40
        assert peak <= 20
        assert factory.stats.evicted > 0

    raise_limit()
    run(main())


def raise_limit() -> None:
    aio_support.raise_nofile(1024)


def test_refusal_log_is_bounded(run: Runner[None], caplog: pytest.LogCaptureFixture) -> None:
    """A garbage flood logs ``log_first`` lines per kind, then one summary per interval;
    the counters keep every refusal."""

    async def main() -> aio.ProxyServerFactory:
        factory, server = await _start(log_first=2, log_interval=2.0)
        for _ in range(25):
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            await asyncio.wait_for(read_until_closed(reader), 5)
            await close_writer(writer)
        for _ in range(400):  # the summary comes when the 2 s window ends
            if any(getattr(r, "proxy_summary", None) for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()
        return factory

    with caplog.at_level(logging.INFO, logger="proxyproto_rs.aio"):
        factory = run(main())
    assert factory.stats.rejected == {"not_proxy_protocol": 25}
    one_by_one = [r for r in caplog.records if getattr(r, "proxy_kind", None)]
    summaries = [r for r in caplog.records if getattr(r, "proxy_summary", None)]
    assert len(one_by_one) == 2
    assert len(summaries) == 1
    text = summaries[0].getMessage()
    assert "23 more connections refused" in text
    assert "not_proxy_protocol 23 (127.0.0.0/24 23)" in text
    assert summaries[0].proxy_summary == {"not_proxy_protocol": {"127.0.0.0/24": 23}}  # type: ignore[attr-defined]


def test_refusal_log_unbounded_when_asked(
    run: Runner[None], caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        server = await aio.start_server(_echo, "127.0.0.1", 0, log_first=0, log_interval=None)
        for _ in range(6):
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(b"garbage\r\n")
            await asyncio.wait_for(read_until_closed(reader), 5)
            await close_writer(writer)
        server.close()
        await server.wait_closed()

    with caplog.at_level(logging.INFO, logger="proxyproto_rs.aio"):
        run(main())
    assert len([r for r in caplog.records if getattr(r, "proxy_kind", None)]) == 6


def test_peer_network() -> None:
    assert peer_network(("192.0.2.77", 1)) == "192.0.2.0/24"
    assert peer_network(("::ffff:192.0.2.77", 1, 0, 0)) == "192.0.2.0/24"
    assert peer_network(("2001:db8:1:2:3::9", 1, 0, 0)) == "2001:db8:1:2::/64"
    assert peer_network(("fe80::1%eth0", 1, 0, 2)) == "fe80::/64"
    assert peer_network("") == "unix"
    assert peer_network(("not an ip", 1)) == "unknown"


# -- trusted networks spelled in IPv6 (item 7) -----------------------------------------


def _dual_stack_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
    except OSError:
        return False
    return True


async def _served_from_127(trusted: list[str], family: str) -> bool:
    if family == "dual":
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", 0))
        server = await aio.start_server(_echo, sock=sock, trusted=trusted)
    else:
        server = await aio.start_server(_echo, "127.0.0.1", 0, trusted=trusted)
    try:
        return await _legit(port_of(server))
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        (["::ffff:127.0.0.0/104"], True),
        (["::/0"], True),
        (["::ffff:127.0.0.1/128"], True),
        (["127.0.0.0/8"], True),
        (["::ffff:10.0.0.0/104"], False),
        (["::1/128"], False),
    ],
)
@pytest.mark.parametrize("family", ["ipv4", "dual"])
def test_trusted_networks_in_ipv6_spelling(
    run: Runner[None], trusted: list[str], expected: bool, family: str
) -> None:
    """A 127.0.0.1 client is trusted by networks written either way, whether the listener
    reports it as 127.0.0.1 (IPv4) or ::ffff:127.0.0.1 (dual-stack)."""
    if family == "dual" and not _dual_stack_available():
        pytest.skip("no dual-stack IPv6 socket on this machine")
    assert run(_served_from_127(trusted, family)) is expected


def test_summary_names_the_busiest_networks() -> None:
    from proxyproto_rs.aio._report import RefusalLog

    log = RefusalLog(first=0, interval=60.0)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("proxyproto_rs.aio")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        peers: list[Any] = [(f"10.0.{i}.1", 1) for i in range(5) for _ in range(i + 1)]
        for peer in peers:
            log.refused("timeout", peer, "slow")
        log._summarise()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    [record] = records
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "15 more connections refused" in message
    assert "timeout 15 (10.0.4.0/24 5, 10.0.3.0/24 4, 10.0.2.0/24 3, 2 more networks)" in message
    assert time.monotonic() > 0
