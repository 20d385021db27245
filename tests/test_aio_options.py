"""ServerOptions through every aio entry point and both integrations: ``options=`` plus
keyword arguments, the three-argument policy (with the listener's address), two-argument
policies still accepted, and ``haproxy_limits`` reachable everywhere."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import aio_support
import pytest
from aio_support import Recorder, Runner, close_writer, port_of, read_until_closed
from proxyproto_rs import Header, Protocol, ProxyProtocolError, aio, build_v2
from proxyproto_rs.options import ServerOptions

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
V2 = build_v2(CLIENT, SERVICE)
LONG_AUTHORITY = build_v2(CLIENT, SERVICE, authority="a" * 300)
"""Valid, but over HAProxy's 255-byte AUTHORITY cap (``haproxy_limits``)."""


async def _served(port: int, data: bytes) -> bool:
    """Send *data* and report whether the server kept the connection (echoed ``ping``)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    writer.write(data + b"ping")
    got = await asyncio.wait_for(read_until_closed(reader), 10)
    await close_writer(writer)
    return got == b"ping"


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readexactly(4))
    await writer.drain()
    writer.close()


def test_wrap_takes_options_and_kwargs_override_them() -> None:
    opts = ServerOptions(trusted=["10.0.0.0/8"], timeout=3)
    assert aio.wrap(Recorder, opts).options is opts
    assert aio.wrap(Recorder, options=opts).options is opts
    both = aio.wrap(Recorder, opts, timeout=7, haproxy_limits=True).options
    assert both == opts.replace(timeout=7, haproxy_limits=True)
    assert aio.wrap(Recorder).options == ServerOptions()
    with pytest.raises(TypeError, match="bogus"):
        aio.wrap(Recorder, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_size"):
        aio.wrap(Recorder, max_size=15)


def test_policy_gets_the_listening_address(run: Runner[None]) -> None:
    """One options object, two listeners: the policy tells them apart by ``sockname``."""
    seen: list[tuple[Any, Any, Any]] = []
    ports: list[int] = []

    def policy(peer: Any, header: Header | None, sockname: Any) -> bool:
        seen.append((peer, header, sockname))
        return bool(sockname[1] == ports[0])

    async def main() -> None:
        opts = ServerOptions(policy=policy)
        first = await aio.start_server(_echo, "127.0.0.1", 0, options=opts)
        second = await aio.start_server(_echo, "127.0.0.1", 0, options=opts)
        ports.extend([port_of(first), port_of(second)])
        assert await _served(ports[0], V2)
        assert not await _served(ports[1], V2)
        assert [s for _, _, s in seen] == [("127.0.0.1", ports[0]), ("127.0.0.1", ports[1])]
        assert all(p[0] == "127.0.0.1" and h is not None and h.source == CLIENT for p, h, _ in seen)
        for server in (first, second):
            server.close()
            await server.wait_closed()

    run(main())


def test_two_argument_policy_still_works(run: Runner[None]) -> None:
    calls: list[tuple[Any, Header | None]] = []

    def old_policy(peer: Any, header: Header | None) -> bool:
        calls.append((peer, header))
        return header is not None and header.source == CLIENT

    async def main() -> None:
        server = await aio.start_server(_echo, "127.0.0.1", 0, policy=old_policy)
        port = port_of(server)
        assert await _served(port, V2)
        assert not await _served(port, build_v2(("192.0.2.9", 1), SERVICE))
        assert len(calls) == 2
        server.close()
        await server.wait_closed()

    run(main())


def test_start_server_splits_server_options_from_create_server_kwargs(run: Runner[None]) -> None:
    async def main() -> None:
        server = await aio.start_server(
            _echo, "127.0.0.1", 0, options=ServerOptions(timeout=3), backlog=5, max_size=64
        )
        assert await _served(port_of(server), V2)
        assert not await _served(port_of(server), LONG_AUTHORITY)  # over max_size=64
        server.close()
        await server.wait_closed()
        with pytest.raises(TypeError):
            await aio.start_server(_echo, "127.0.0.1", 0, not_an_option=1)

    run(main())


def test_haproxy_limits_in_stream_servers(run: Runner[None]) -> None:
    async def main() -> None:
        relaxed = await aio.start_server(_echo, "127.0.0.1", 0)
        strict = await aio.start_server(
            _echo, "127.0.0.1", 0, options=ServerOptions(haproxy_limits=True)
        )
        assert await _served(port_of(relaxed), LONG_AUTHORITY)
        assert not await _served(port_of(strict), LONG_AUTHORITY)
        assert await _served(port_of(strict), V2)
        for server in (relaxed, strict):
            server.close()
            await server.wait_closed()

    run(main())


def test_unix_server_takes_options(run: Runner[None]) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "s")
            server = await aio.start_unix_server(
                _echo, path, options=ServerOptions(trusted=["10.0.0.0/8"]), trusted=["unix"]
            )
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(V2 + b"ping")
            assert await asyncio.wait_for(read_until_closed(reader), 10) == b"ping"
            await close_writer(writer)
            server.close()
            await server.wait_closed()

    run(main())


def test_read_header_takes_options(run: Runner[None]) -> None:
    async def read(data: bytes, **kwargs: Any) -> Header:
        reader = asyncio.StreamReader()
        reader.feed_data(data + b"rest")
        return await aio.read_header(reader, **kwargs)

    async def main() -> None:
        assert (await read(LONG_AUTHORITY)).authority == "a" * 300
        with pytest.raises(ProxyProtocolError):
            await read(LONG_AUTHORITY, options=ServerOptions(haproxy_limits=True))
        with pytest.raises(ProxyProtocolError):
            await read(LONG_AUTHORITY, haproxy_limits=True)
        with pytest.raises(ProxyProtocolError):
            await read(LONG_AUTHORITY, options=ServerOptions(), max_size=64)
        with pytest.raises(TimeoutError):
            await aio.read_header(asyncio.StreamReader(), options=ServerOptions(timeout=0.05))

    run(main())


class _Inner(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)


def test_datagram_options_policy_and_haproxy_limits(run: Runner[None]) -> None:
    seen: list[Any] = []

    def policy(peer: Any, header: Header | None, sockname: Any) -> bool:
        seen.append(sockname)
        return True

    dgram = build_v2(CLIENT, SERVICE, protocol=Protocol.DGRAM)
    long_dgram = build_v2(CLIENT, SERVICE, protocol=Protocol.DGRAM, authority="a" * 300)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        factory = aio.wrap_datagram(
            _Inner, options=ServerOptions(policy=policy), haproxy_limits=True
        )
        assert factory.options.haproxy_limits
        server_t, server_p = await loop.create_datagram_endpoint(
            factory, local_addr=("127.0.0.1", 0)
        )
        address = server_t.get_extra_info("sockname")
        client_t, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=address
        )
        aio.send_datagram(client_t, long_dgram, b"long")
        aio.send_datagram(client_t, dgram, b"ok")
        for _ in range(1000):
            if factory.stats.received >= 2:
                break
            await asyncio.sleep(0.005)
        assert server_p.inner.got == [b"ok"]  # type: ignore[attr-defined]
        assert factory.stats.dropped == 1
        assert seen == [address]
        client_t.close()
        server_t.close()

    run(main())


def test_datagram_refuses_v1_unless_asked() -> None:
    assert not aio.wrap_datagram(_Inner).options.allow_v1
    assert aio.wrap_datagram(_Inner, allow_v1=True).options.allow_v1
    given = ServerOptions(allow_v1=False, timeout=2)
    assert aio.wrap_datagram(_Inner, options=given).options is given


def test_uvicorn_hook_takes_options() -> None:
    pytest.importorskip("uvicorn")
    from proxyproto_rs.integrations.uvicorn import http_protocol

    opts = ServerOptions(trusted=["10.0.0.0/8"])
    hook = http_protocol("h11", opts, haproxy_limits=True)
    assert hook.options == opts.replace(haproxy_limits=True)
    assert http_protocol(options=opts).options is opts
    with pytest.raises(ValueError, match="max_size"):
        http_protocol(max_size=1)
    with pytest.raises(TypeError, match="nope"):
        http_protocol(nope=1)  # type: ignore[call-arg]


def test_hypercorn_serve_checks_options_before_binding(run: Runner[None]) -> None:
    pytest.importorskip("hypercorn")
    from hypercorn.config import Config
    from proxyproto_rs.integrations.hypercorn import serve

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    async def main() -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        with pytest.raises(TypeError, match="nope"):
            await serve(app, config, nope=1)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="max_size"):
            await serve(app, config, options=ServerOptions(), max_size=1)
        import ssl

        with pytest.raises(ValueError, match="certfile"):
            await serve(app, config, ssl=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))

    run(main())
