"""aiohttp, Tornado and gunicorn (sync, gthread, uvicorn workers) from PyPI, each served
through its proxyproto_rs integration, behind a real HAProxy on loopback, plus the refusals.

Every server runs as a subprocess with two listeners: ``reject`` (trusted 127.0.0.1/32, the
rest refused) and ``direct`` (untrusted peers served without a header); HAProxy sends v1 from
one frontend and v2 with CRC32C and unique-id TLVs from another to ``reject``. The app under
test (tests/server_apps/) answers with what the framework told it. Servers and HAProxy start
once per server kind and are killed at teardown. A missing package or HAProxy skips locally
and fails under CI=true.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import proxyproto_rs as pp
import pytest
from servers_support import (
    BODY_SHA256,
    CLIENT_HOST,
    GET_CLOSE,
    HEADER_TIMEOUT,
    TIMEOUT,
    TRUSTED,
    Front,
    exchange,
    free_ports,
    haproxy_in_front,
    need_module,
    process,
    python_app,
    requests,
    response_json,
)

SERVERS = ["aiohttp", "tornado", "gunicorn-sync", "gunicorn-gthread", "gunicorn-uvicorn"]
KEEPS_ALIVE = {"aiohttp", "tornado", "gunicorn-gthread", "gunicorn-uvicorn"}
"""Servers that keep a connection open between requests (gunicorn's sync worker closes)."""


@dataclass(frozen=True)
class Served:
    kind: str
    reject: int
    direct: int
    front: Front
    log: Path
    """Everything the ``reject`` server wrote (its refusals are logged there)."""


def _gunicorn(kind: str, ports: list[int], workdir: Path, stack: ExitStack) -> Path:
    """Two gunicorn masters: ``reject`` configured from the command line (gunicorn's
    ``--proxy-allow-from`` and the environment), ``direct`` from a config file."""
    need_module("gunicorn")
    worker = kind.split("-", 1)[1]
    if worker == "uvicorn":
        need_module("uvicorn")
    classes = {
        "sync": "SyncProxyWorker",
        "gthread": "ThreadProxyWorker",
        "uvicorn": "UvicornProxyWorker",
    }
    app = "gunicorn_apps:asgi" if worker == "uvicorn" else "gunicorn_apps:wsgi"
    common = [
        sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "1", "--threads", "2",
        "--graceful-timeout", "1", "--keep-alive", "5",
        "--pythonpath", str(Path(__file__).resolve().parent / "server_apps"),
    ]  # fmt: skip
    reject_dir = workdir / "reject"
    direct_dir = workdir / "direct"
    reject_dir.mkdir()
    direct_dir.mkdir()
    (direct_dir / "gunicorn.conf.py").write_text(
        "from proxyproto_rs.integrations.gunicorn import proxy_worker\n"
        f"worker_class = proxy_worker({worker!r}, trusted=[{TRUSTED!r}], untrusted='direct',"
        f" timeout={HEADER_TIMEOUT})\n"
    )
    log: Path = stack.enter_context(
        process(
            [
                *common,
                "-k", f"proxyproto_rs.integrations.gunicorn.{classes[worker]}",
                "--proxy-allow-from", TRUSTED.split("/")[0],
                "-b", f"127.0.0.1:{ports[0]}", app,
            ],
            ports[:1],
            reject_dir,
            "gunicorn",
            {"PROXYPROTO_TIMEOUT": str(HEADER_TIMEOUT)},
        )
    )  # fmt: skip
    stack.enter_context(
        process(
            [*common, "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{ports[1]}", app],
            ports[1:],
            direct_dir,
            "gunicorn",
        )
    )
    return log


@pytest.fixture(scope="module", params=SERVERS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    kind: str = request.param
    workdir = tmp_path_factory.mktemp(kind)
    ports = free_ports(2)
    env = {"PROXYPROTO_TEST_TIMEOUT": str(HEADER_TIMEOUT)}
    with ExitStack() as stack:
        if kind.startswith("gunicorn"):
            log = _gunicorn(kind, ports, workdir, stack)
        else:
            need_module(kind)
            log = stack.enter_context(
                python_app(f"{kind}_app.py", [str(p) for p in ports], ports, workdir, env)
            )
        front = stack.enter_context(haproxy_in_front(ports[0], workdir))
        yield Served(kind, ports[0], ports[1], front, log)


@pytest.mark.interop
@pytest.mark.parametrize("version", [1, 2])
def test_behind_haproxy_the_app_sees_the_real_client(served: Served, version: int) -> None:
    """Two requests on one kept-alive client connection, the second a binary POST."""
    port = served.front.v1 if version == 1 else served.front.v2
    for _ in range(2):  # two client connections, each with its own address
        me, answers = requests(port)
        for seen in answers:
            assert seen["client"] == [CLIENT_HOST, me[1]]
            assert seen["version"] == version
            assert seen["proxy_peer"][0] == "127.0.0.1"  # HAProxy, the socket peer
            if version == 2:
                assert seen["unique_id"] == f"{CLIENT_HOST}:{me[1]}"
                assert seen["crc32c"] is True
                assert {0x03, 0x05} <= set(seen["tlvs"])
            else:
                assert seen["tlvs"] == []
        assert answers[-1]["body_sha256"] == BODY_SHA256
        if served.kind in KEEPS_ALIVE:  # one backend connection carried both requests
            assert answers[0]["proxy_peer"] == answers[1]["proxy_peer"]


def test_header_with_pipelined_requests(served: Served) -> None:
    """Our own v2 header (as an AWS NLB sends it) and two requests in the same segment."""
    header = pp.build_v2(
        ("203.0.113.7", 51234), ("10.0.0.5", 443), aws_vpce_id="vpce-0abc", crc32c=True
    )
    first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" if served.kind in KEEPS_ALIVE else b""
    reply, _ = exchange(served.reject, header + first + GET_CLOSE, source="127.0.0.1")
    bodies = reply.split(b"HTTP/1.1 200")[1:]
    assert len(bodies) == (2 if first else 1), reply
    for body in bodies:
        seen = response_json(b"HTTP/1.1 200" + body)
        assert seen["client"] == ["203.0.113.7", 51234]
        assert seen["tlvs"] == [0x03, 0xEA]


@pytest.mark.parametrize("version", [1, 2])
def test_an_ipv6_client(served: Served, version: int) -> None:
    """An IPv6 client behind an IPv4 balancer link: the app sees its canonical text."""
    build = pp.build_v1 if version == 1 else pp.build_v2
    header = build(("2001:db8:0:0:0:0:0:7", 4711), ("2001:db8::1", 443))
    reply, _ = exchange(served.reject, header + GET_CLOSE, source="127.0.0.1")
    assert response_json(reply)["client"] == ["2001:db8::7", 4711]


@pytest.mark.parametrize("header", [pp.build_v2(), b"PROXY UNKNOWN\r\n"], ids=["local", "unknown"])
def test_a_header_without_addresses_is_served_with_the_socket_address(
    served: Served, header: bytes
) -> None:
    """A health check's LOCAL header, a v1 UNKNOWN: the app sees the real socket peer."""
    reply, _ = exchange(served.reject, header + GET_CLOSE, source="127.0.0.1")
    seen = response_json(reply)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["version"] == (2 if header.startswith(b"\r") else 1)


def test_a_client_without_a_header_is_refused(served: Served) -> None:
    reply, _ = exchange(served.reject, GET_CLOSE, source="127.0.0.1")
    assert reply == b""
    # ...and the operator can tell why, from the server's own log
    deadline = time.monotonic() + TIMEOUT
    while "refused: not a PROXY protocol header" not in served.log.read_text():
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.05)
    assert "[not_proxy_protocol]" in served.log.read_text()


def test_a_bad_checksum_is_refused(served: Served) -> None:
    bad = bytearray(pp.build_v2(("192.0.2.1", 1), ("192.0.2.2", 2), crc32c=True))
    bad[-1] ^= 1
    reply, _ = exchange(served.reject, bytes(bad) + GET_CLOSE, source="127.0.0.1")
    assert reply == b""


def test_an_untrusted_peer_is_refused_even_with_a_header(served: Served) -> None:
    forged = pp.build_v1(("198.51.100.1", 1), ("127.0.0.1", served.reject))
    reply, _ = exchange(served.reject, forged + GET_CLOSE, source=CLIENT_HOST)
    assert reply == b""


def test_an_untrusted_peer_is_served_directly_when_configured(served: Served) -> None:
    reply, _ = exchange(served.direct, GET_CLOSE, source=CLIENT_HOST)
    seen = response_json(reply)
    assert seen["client"][0] == CLIENT_HOST
    assert seen["version"] is None
    # ...while a trusted peer on the same listener must still send its header
    header = pp.build_v1(("203.0.113.9", 4242), ("127.0.0.1", served.direct))
    reply, _ = exchange(served.direct, header + GET_CLOSE, source="127.0.0.1")
    assert response_json(reply)["client"] == ["203.0.113.9", 4242]
    assert exchange(served.direct, GET_CLOSE, source="127.0.0.1")[0] == b""


def test_a_slow_header_is_cut_at_the_timeout(served: Served) -> None:
    reply, elapsed = exchange(served.reject, b"PROXY TCP4 192.0.2.1 ", source="127.0.0.1")
    assert reply == b""
    assert HEADER_TIMEOUT * 0.8 <= elapsed < HEADER_TIMEOUT + 3
