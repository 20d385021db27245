"""proxyproto_rs.aio.wrap_datagram: one header per datagram (SPEC rule 5)."""

from __future__ import annotations

import asyncio

import aio_support
from aio_support import DatagramReplies, EchoDatagram, Runner
from proxyproto_rs import Header, Protocol, aio, build_v1, build_v2

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 53)
DGRAM = build_v2(CLIENT, SERVICE, protocol=Protocol.DGRAM)


async def _endpoints(
    factory: aio.ProxyDatagramFactory,
) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport, EchoDatagram, DatagramReplies]:
    loop = asyncio.get_running_loop()
    server_t, server_p = await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
    inner = server_p.inner  # type: ignore[attr-defined]
    assert isinstance(inner, EchoDatagram)
    address = server_t.get_extra_info("sockname")
    client_t, client_p = await loop.create_datagram_endpoint(DatagramReplies, remote_addr=address)
    return server_t, client_t, inner, client_p


async def _settle(stats: aio.DatagramStats, received: int) -> None:
    for _ in range(1000):
        if stats.received >= received:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {stats.received} datagrams arrived")


def test_datagrams_parsed_one_by_one(run: Runner[None]) -> None:
    async def main() -> None:
        factory = aio.wrap_datagram(EchoDatagram)
        server_t, client_t, inner, client = await _endpoints(factory)
        me = client_t.get_extra_info("sockname")
        aio.send_datagram(client_t, DGRAM, b"one")
        aio.send_datagram(client_t, Header.v2(CLIENT, SERVICE, protocol=Protocol.DGRAM), b"two")
        client_t.sendto(b"no header at all")
        client_t.sendto(DGRAM[:20])  # a header split over datagrams is invalid
        client_t.sendto(build_v2(CLIENT, SERVICE) + b"stream")  # a TCP header in UDP
        client_t.sendto(build_v1(CLIENT, SERVICE) + b"v1")  # v1 is TCP only
        client_t.sendto(build_v2() + b"local")  # LOCAL: the sender's own address
        await _settle(factory.stats, 7)
        assert [(d, a) for d, a, _ in inner.got] == [
            (b"one", CLIENT),
            (b"two", CLIENT),
            (b"local", me),
        ]
        assert inner.got[0][2] == Header.v2(CLIENT, SERVICE, protocol=Protocol.DGRAM)
        stats = factory.stats
        assert (stats.received, stats.delivered, stats.dropped) == (7, 3, 4)
        assert stats.dropped_by_kind["stream_header_in_datagram"] == 1
        assert sum(stats.dropped_by_kind.values()) == 4
        # Replies to the header's client address go back via the proxy (this client).
        replies = [await asyncio.wait_for(client.replies.get(), 10) for _ in range(3)]
        assert sorted(replies) == [b"pong:local", b"pong:one", b"pong:two"]
        assert inner.transport is not None
        assert inner.transport.get_extra_info("proxy_header") is None
        client_t.close()
        server_t.close()

    run(main())


def test_untrusted_datagrams(run: Runner[None]) -> None:
    async def main() -> None:
        for mode in ("reject", "direct"):
            factory = aio.wrap_datagram(EchoDatagram, trusted=["10.0.0.0/8"], untrusted=mode)
            server_t, client_t, inner, _ = await _endpoints(factory)
            me = client_t.get_extra_info("sockname")
            aio.send_datagram(client_t, DGRAM, b"spoof")
            await _settle(factory.stats, 1)
            if mode == "reject":
                assert inner.got == []
                assert factory.stats.dropped_by_kind == {"untrusted_peer": 1}
            else:
                assert inner.got == [(DGRAM + b"spoof", me, None)]
            client_t.close()
            server_t.close()

    run(main())


def test_datagram_policy(run: Runner[None]) -> None:
    async def main() -> None:
        factory = aio.wrap_datagram(
            EchoDatagram, policy=lambda peer, header: header is not None and header.source == CLIENT
        )
        server_t, client_t, inner, _ = await _endpoints(factory)
        aio.send_datagram(client_t, DGRAM, b"ok")
        other = build_v2(("192.0.2.1", 9), SERVICE, protocol=Protocol.DGRAM)
        aio.send_datagram(client_t, other, b"no")
        await _settle(factory.stats, 2)
        assert [d for d, _, _ in inner.got] == [b"ok"]
        assert factory.stats.dropped_by_kind == {"policy": 1}
        client_t.close()
        server_t.close()

    run(main())
