"""Interop with a real nginx started on loopback (Debian package, see conftest.py).

Sender side: stream ``proxy_protocol on;`` in front of the capture server. Released nginx OSS
only sends v1 there (a ``proxy_protocol_version 2`` directive exists only as a draft pull
request, nginx/nginx#1204), so v1 is what is tested.
Receiver side: ``listen ... proxy_protocol`` in http, answering the ``$proxy_protocol_*``
variables, must report the addresses in the headers we build (v1 and v2).
"""

from __future__ import annotations

import proxyproto_rs as pp
import pytest
from proxyproto_rs import Command, Family, Protocol

pytestmark = pytest.mark.interop

HTTP_GET = b"GET / HTTP/1.0\r\nHost: interop\r\n\r\n"
SEEN = (
    "src=$proxy_protocol_addr:$proxy_protocol_port"
    " dst=$proxy_protocol_server_addr:$proxy_protocol_server_port"
)


@pytest.fixture(scope="module")
def nginx(start_nginx, capture, ipv6_loopback, peers):
    """One nginx: stream listeners that prepend a v1 header towards the capture server, and
    an http listener that expects a header and echoes the addresses it read."""
    ports = {"stream": peers.free_port(), "http": peers.free_port()}
    listen6 = ""
    if ipv6_loopback:
        ports["stream-6"] = peers.free_port("::1")
        listen6 = f"        listen [::1]:{ports['stream-6']};\n"
    body = f"""
stream {{
    server {{
        listen 127.0.0.1:{ports["stream"]};
{listen6}        proxy_pass 127.0.0.1:{capture.port};
        proxy_protocol on;
        proxy_connect_timeout 3s;
        proxy_timeout 5s;
    }}
}}
http {{
    access_log off;
{{temp_paths}}
    server {{
        listen 127.0.0.1:{ports["http"]} proxy_protocol;
        client_header_timeout 3s;
        default_type text/plain;
        location / {{
            return 200 "{SEEN}";
        }}
    }}
}}
"""
    start_nginx(body, list(ports.values()))
    return ports


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", Family.INET), ("::1", Family.INET6)], ids=["ipv4", "ipv6"]
)
def test_nginx_stream_proxy_protocol_v1(nginx, capture, peers, ipv6_loopback, host, family):
    """stream ``proxy_protocol on;`` sends a v1 line (rules 8-14) with the client's real
    address and the listener's address; the payload follows untouched (rule 2)."""
    if host == "::1" and not ipv6_loopback:
        pytest.skip("::1 is not available here")
    port = nginx["stream" if host == "127.0.0.1" else "stream-6"]
    sent = peers.payload(f"nginx-v1-{host}")
    ex = peers.exchange(host, port, sent)
    assert ex.reply == b"ACK"
    captured = capture.wait_for(sent).data
    wire = peers.split_header(captured, sent)
    assert wire.startswith(b"PROXY TCP4 " if family is Family.INET else b"PROXY TCP6 ")
    header = pp.parse(captured)
    assert header.length == len(wire)
    assert header.to_bytes() == wire
    assert captured[header.length :] == sent
    parser = pp.Parser()
    for i in range(len(captured)):
        parser.feed(captured[i : i + 1])
    assert parser.header == header
    assert parser.trailing_data == sent
    assert header.version == 1
    assert header.command is Command.PROXY
    assert header.family is family
    assert header.protocol is Protocol.STREAM
    assert header.source == ex.sockname
    assert header.destination == ex.peername == (host, port)
    peers.save_vector(f"nginx-v1-tcp{4 if family is Family.INET else 6}.bin", wire)


V4_SRC, V4_DST = ("127.1.2.3", 56324), ("127.4.5.6", 443)
V6_SRC, V6_DST = ("2001:db8::1", 56324), ("2001:db8:0:1::2", 65535)
# Carried inside headers only: nginx never connects to them.

BUILT = {
    "v1-tcp4": lambda: pp.build_v1(V4_SRC, V4_DST),
    "v1-tcp6": lambda: pp.build_v1(V6_SRC, V6_DST),
    "v2-ipv4": lambda: pp.build_v2(V4_SRC, V4_DST),
    "v2-ipv6": lambda: pp.build_v2(V6_SRC, V6_DST),
    "v2-ipv4-tlvs-crc": lambda: pp.build_v2(
        V4_SRC, V4_DST, crc32c=True, alpn=b"h2", authority="built.interop.test", unique_id=b"u4"
    ),
    "v2-ipv6-tlvs-crc": lambda: pp.build_v2(
        V6_SRC, V6_DST, crc32c=True, authority="six.interop.test", tlvs=[(0xE5, b"custom")]
    ),
}


def body_of(reply: bytes) -> str:
    head, sep, body = reply.partition(b"\r\n\r\n")
    assert sep, reply
    assert head.split(b"\r\n")[0].startswith(b"HTTP/1.1 200"), head
    return body.decode()


@pytest.mark.parametrize("case", list(BUILT))
def test_nginx_listen_proxy_protocol_reports_what_we_built(nginx, peers, case):
    """``listen ... proxy_protocol`` takes our v1 (rules 8-12) and v2 headers (rules
    18-31, TLVs skipped as rule 30 allows) and reports exactly our addresses (rule 21)."""
    header = BUILT[case]()
    parsed = pp.parse(header)
    assert parsed.to_bytes() == header
    ex = peers.exchange("127.0.0.1", nginx["http"], header + HTTP_GET)
    (src_host, src_port), (dst_host, dst_port) = parsed.source, parsed.destination
    assert body_of(ex.reply) == f"src={src_host}:{src_port} dst={dst_host}:{dst_port}"


@pytest.mark.parametrize("case", ["v2-local", "v1-unknown"])
def test_nginx_listen_proxy_protocol_local(nginx, peers, case):
    """LOCAL (rule 20) and ``PROXY UNKNOWN`` (rule 17) are accepted; nginx then has no
    proxied address, so its variables stay empty (it uses the real connection)."""
    header = pp.build_v2() if case == "v2-local" else pp.build_v1()
    assert pp.parse(header).source is None
    ex = peers.exchange("127.0.0.1", nginx["http"], header + HTTP_GET)
    assert body_of(ex.reply) == "src=: dst=:"
