"""Interop with a real HAProxy started on loopback (Debian package, see conftest.py).

Sender side: HAProxy's ``send-proxy``, ``send-proxy-v2`` and ``proxy-v2-options`` headers,
captured by a plain socket server, must parse to the addresses the client really used.
Receiver side: headers built by ``build_v1``/``build_v2`` must be accepted by HAProxy's
``accept-proxy``, which reports the addresses we sent; a wrong CRC32C is refused by both.
"""

from __future__ import annotations

import ssl as ssl_mod
import subprocess

import proxyproto_rs as pp
import pytest
from proxyproto_rs import ChecksumError, Command, Family, Protocol
from proxyproto_rs._wire import crc32c_reference

pytestmark = pytest.mark.interop

V2_OPTIONS = (
    "crc32c",
    "unique-id",
    "ssl",
    "cert-cn",
    "ssl-cipher",
    "cert-sig",
    "cert-key",
    "authority",
)
"""Every ``proxy-v2-options`` value the issue asks for (HAProxy >= 2.2 knows them all)."""

UNIQUE_ID_FORMAT = "uid-%ci-%cp"
"""Frontend ``unique-id-format``: the expected UNIQUE_ID TLV is computable from the client."""

SEEN_FORMAT = (
    "src=%[src] sport=%[src_port] dst=%[dst] dport=%[dst_port]"
    " auth=%[fc_pp_authority] uid=%[fc_pp_unique_id]"
)
"""What the accept-proxy frontend answers: the addresses and TLVs HAProxy took from us."""

HTTP_GET = b"GET / HTTP/1.0\r\nHost: interop\r\n\r\n"


def tlv_spans(header: bytes) -> list[tuple[int, int, int]]:
    """(type, value offset, value length) of each top-level TLV of a v2 PROXY header,
    walked by hand so that tests do not depend on the parser under test."""
    addr_len = {0x1: 12, 0x2: 36, 0x3: 216}.get(header[13] >> 4, 0)
    end = 16 + int.from_bytes(header[14:16], "big")
    pos, spans = 16 + addr_len, []
    while pos < end:
        length = int.from_bytes(header[pos + 1 : pos + 3], "big")
        spans.append((header[pos], pos + 3, length))
        pos += 3 + length
    assert pos == end, "TLVs do not frame the header exactly"
    return spans


def with_crc_zeroed(header: bytes) -> bytes:
    out = bytearray(header)
    for typ, off, length in tlv_spans(header):
        if typ == 0x03:
            out[off : off + length] = bytes(length)
    return bytes(out)


def check_relayed(peers, captured: bytes, sent: bytes):
    """Common assertions on a header HAProxy/nginx put in front of *sent*: parse() and the
    streaming Parser agree, to_bytes() is the wire, the payload is untouched (rules 2, 42)."""
    wire = peers.split_header(captured, sent)
    header = pp.parse(captured)
    assert header.length == len(wire)
    assert header.to_bytes() == wire
    assert bytes(header) == wire
    assert captured[header.length :] == sent
    parser = pp.Parser()
    for i in range(len(captured)):  # one byte at a time: same header, payload kept
        got = parser.feed(captured[i : i + 1])
        assert (got is None) == (i < len(wire) - 1)
    assert parser.header == header
    assert parser.trailing_data == sent
    return header, wire


# --------------------------------------------------------------------------- senders


@pytest.fixture(scope="module")
def sender(start_haproxy, capture, pki, ipv6_loopback, peers, tmp_path_factory):
    """One HAProxy with a frontend per kind of header, all relaying to the capture server.
    The v1 and unix frontends also listen on UNIX sockets (``ports["v1-unix"]`` etc.)."""
    sockets = tmp_path_factory.mktemp("sock")
    ports: dict[str, int | str] = {
        "v1": peers.free_port(),
        "v2": peers.free_port(),
        "tls": peers.free_port(),
    }
    v6_binds = {"v1": "", "v2": ""}
    if ipv6_loopback:
        for kind in v6_binds:
            ports[kind + "-6"] = peers.free_port("::1")
            v6_binds[kind] = f"    bind [::1]:{ports[kind + '-6']}\n"
    to = f"127.0.0.1:{capture.port}"
    tls_bind = f"ssl crt {pki.server_pem} ca-file {pki.ca_crt} verify optional alpn h2,http/1.1"
    body = f"""
frontend fe_v1
    mode tcp
    bind 127.0.0.1:{ports["v1"]}
    bind unix@{sockets / "v1.sock"}
{v6_binds["v1"]}    default_backend be_v1
backend be_v1
    mode tcp
    server capture {to} send-proxy

frontend fe_v2
    mode tcp
    bind 127.0.0.1:{ports["v2"]}
{v6_binds["v2"]}    default_backend be_v2
backend be_v2
    mode tcp
    server capture {to} send-proxy-v2

frontend fe_tls
    mode tcp
    bind 127.0.0.1:{ports["tls"]} {tls_bind}
    unique-id-format {UNIQUE_ID_FORMAT}
    default_backend be_tls
backend be_tls
    mode tcp
    server capture {to} send-proxy-v2 proxy-v2-options {",".join(V2_OPTIONS)}

frontend fe_unix
    mode tcp
    bind unix@{sockets / "v2.sock"}
    default_backend be_unix
backend be_unix
    mode tcp
    server capture {to} send-proxy-v2 proxy-v2-options crc32c,unique-id,authority
"""
    start_haproxy(body, [p for p in ports.values() if isinstance(p, int)])
    ports["v1-unix"] = str(sockets / "v1.sock")
    ports["v2-unix"] = str(sockets / "v2.sock")
    return ports


def test_installed_haproxy_knows_every_proxy_v2_option(haproxy_bin, haproxy_version, tmp_path):
    """Documents the installed HAProxy: ``haproxy -vv`` shows OpenSSL (needed by the ssl
    options) and ``haproxy -c`` accepts each proxy-v2-options value (rules 32-38)."""
    vv = subprocess.run([haproxy_bin, "-vv"], capture_output=True, text=True, timeout=10).stdout
    assert "USE_OPENSSL=1" in vv or "+OPENSSL" in vv, vv

    def accepted(opt: str) -> tuple[bool, str]:
        cfg = tmp_path / "check.cfg"
        cfg.write_text(  # -c parses and checks, it binds and connects nothing
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
            "    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:9\n"
            "    default_backend be\nbackend be\n"
            f"    server s 127.0.0.1:9 send-proxy-v2 proxy-v2-options {opt}\n"
        )
        r = subprocess.run(
            [haproxy_bin, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=10
        )
        return r.returncode == 0, r.stdout + r.stderr

    assert not accepted("no-such-option")[0]  # the probe can tell a refusal
    refused = [(opt, out) for opt in V2_OPTIONS for ok, out in [accepted(opt)] if not ok]
    assert not refused, f"HAProxy {haproxy_version} refuses: {refused}"


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", Family.INET), ("::1", Family.INET6)], ids=["ipv4", "ipv6"]
)
def test_haproxy_send_proxy_v1(sender, capture, peers, ipv6_loopback, host, family):
    """``send-proxy`` writes a v1 line (rules 8-14) carrying the client's real address
    and port and the frontend's address as destination."""
    if host == "::1" and not ipv6_loopback:
        pytest.skip("::1 is not available here")
    port = sender["v1" if host == "127.0.0.1" else "v1-6"]
    sent = peers.payload(f"haproxy-v1-{host}")
    ex = peers.exchange(host, port, sent)
    assert ex.reply == b"ACK"
    header, wire = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert wire.startswith(b"PROXY TCP4 " if family is Family.INET else b"PROXY TCP6 ")
    assert wire.endswith(b"\r\n")
    assert len(wire) <= pp.MAX_V1_SIZE
    assert header.version == 1
    assert header.command is Command.PROXY
    assert header.family is family
    assert header.protocol is Protocol.STREAM
    assert header.source == ex.sockname
    assert header.destination == ex.peername == (host, port)
    assert header.tlvs == ()
    peers.save_vector(f"haproxy-v1-tcp{4 if family is Family.INET else 6}.bin", wire)


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", Family.INET), ("::1", Family.INET6)], ids=["ipv4", "ipv6"]
)
def test_haproxy_send_proxy_v2(sender, capture, peers, ipv6_loopback, host, family):
    """``send-proxy-v2`` writes a binary PROXY/STREAM header (rules 18-27, 29) with the
    client's real address: 28 bytes for IPv4, 52 for IPv6, no TLVs without options."""
    if host == "::1" and not ipv6_loopback:
        pytest.skip("::1 is not available here")
    port = sender["v2" if host == "127.0.0.1" else "v2-6"]
    sent = peers.payload(f"haproxy-v2-{host}")
    ex = peers.exchange(host, port, sent)
    assert ex.reply == b"ACK"
    header, wire = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert wire[:12] == pp.V2_SIGNATURE
    assert wire[12] == 0x21  # version 2, PROXY (rule 19)
    assert wire[13] == (0x11 if family is Family.INET else 0x21)  # rule 23
    assert len(wire) == (28 if family is Family.INET else 52)
    assert header.version == 2
    assert header.command is Command.PROXY
    assert header.family is family
    assert header.protocol is Protocol.STREAM
    assert header.source == ex.sockname
    assert header.destination == ex.peername == (host, port)
    assert header.tlvs == ()
    assert header.crc32c is None
    peers.save_vector(f"haproxy-v2-tcp{4 if family is Family.INET else 6}.bin", wire)


@pytest.mark.parametrize("tls_max", ["TLSv1_3", "TLSv1_2"])
def test_haproxy_send_proxy_v2_tls_tlvs(sender, capture, peers, pki, tls_max):
    """``proxy-v2-options crc32c,unique-id,ssl,cert-cn,ssl-cipher,cert-sig,cert-key,
    authority`` behind a TLS frontend, client with certificate, SNI and ALPN: every TLV is
    what the client really negotiated (rules 32-38), the CRC32C verifies over the whole
    header as received (rule 34) although HAProxy writes it first (rule 46)."""
    port = sender["tls"]
    sent = peers.payload(f"haproxy-v2-tls-{tls_max}")
    ctx = pki.client_context()
    ctx.maximum_version = getattr(ssl_mod.TLSVersion, tls_max)
    ex = peers.exchange("127.0.0.1", port, sent, tls=ctx, server_hostname=peers.sni)
    assert ex.reply == b"ACK"
    assert ex.tls_version == tls_max.replace("_", ".")
    header, wire = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert header.version == 2
    assert header.command is Command.PROXY
    assert header.family is Family.INET
    assert header.source == ex.sockname
    assert header.destination == ex.peername == ("127.0.0.1", port)

    # Rule 34/46: CRC32C first, value big-endian, checked here against a reference CRC.
    spans = tlv_spans(wire)
    assert spans[0][0] == 0x03
    assert header.tlvs[0].type == 0x03
    assert [t.type for t in header.tlvs] == [t for t, _, _ in spans]
    expected_crc = crc32c_reference(with_crc_zeroed(wire))
    assert header.crc32c == expected_crc
    assert pp.crc32c(with_crc_zeroed(wire)) == expected_crc

    assert header.authority == peers.sni  # rule 33: AUTHORITY = SNI
    assert header.alpn == b"http/1.1"  # rule 32: the negotiated protocol
    client_ip, client_port = ex.sockname
    assert header.unique_id == f"uid-{client_ip}-{client_port}".encode()  # rule 36

    ssl = header.ssl  # rules 37-38
    assert ssl is not None
    assert ssl.client_ssl
    assert ssl.client_cert_conn
    assert ssl.verify == 0
    assert ssl.client_cert_verified
    assert ssl.version == ex.tls_version
    assert ssl.cipher == ex.cipher
    assert ssl.cn == peers.client_cn
    assert ssl.sig_alg == "RSA-SHA256"  # of the frontend certificate
    assert ssl.key_alg == "RSA2048"
    assert {t.type for t in ssl.tlvs} >= {0x21, 0x22, 0x23, 0x24, 0x25}
    if tls_max == "TLSv1_3":
        peers.save_vector("haproxy-v2-tls-tlvs.bin", wire)


def test_haproxy_tls_without_client_cert_is_not_verified(sender, capture, peers, pki):
    """Without a client certificate HAProxy still sends ``verify == 0``: only the CERT_*
    bits tell the difference, so ``client_cert_verified`` must be False (rule 37)."""
    ctx = ssl_mod.create_default_context(cafile=str(pki.ca_crt))
    sent = peers.payload("haproxy-v2-tls-nocert")
    ex = peers.exchange("127.0.0.1", sender["tls"], sent, tls=ctx, server_hostname=peers.sni)
    assert ex.reply == b"ACK"
    header, _ = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert header.source == ex.sockname
    ssl = header.ssl
    assert ssl is not None
    assert ssl.client_ssl
    assert not ssl.client_cert_conn
    assert not ssl.client_cert_sess
    assert ssl.verify == 0
    assert not ssl.client_cert_verified
    assert ssl.cn is None
    assert header.alpn is None


def test_haproxy_unix_client_v1_is_unknown(sender, capture, peers):
    """A client on a UNIX socket has no INET address: ``send-proxy`` writes the short
    ``PROXY UNKNOWN\\r\\n`` (rules 9, 17, 46), which we take with no addresses (D5)."""
    sent = peers.payload("haproxy-v1-unix")
    ex = peers.exchange(sender["v1-unix"], 0, sent)
    assert ex.reply == b"ACK"
    header, wire = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert wire == b"PROXY UNKNOWN\r\n"
    assert header.version == 1
    assert header.family is Family.UNSPEC
    assert header.protocol is Protocol.UNSPEC
    assert header.source is None
    assert header.destination is None
    peers.save_vector("haproxy-v1-unknown-unix.bin", wire)


def test_haproxy_unix_client_v2_is_local_with_tlvs(sender, capture, peers):
    """From a UNIX socket client, ``send-proxy-v2`` with crc32c,unique-id,authority writes
    LOCAL + UNSPEC (rules 20, 24, 46) whose length covers TLVs right after the 16 bytes: a
    CRC32C we verify and an empty UNIQUE_ID (no unique-id-format) - D3, rules 26, 34, 44."""
    sent = peers.payload("haproxy-v2-unix")
    ex = peers.exchange(sender["v2-unix"], 0, sent)
    assert ex.reply == b"ACK"
    header, wire = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert wire[12:14] == b"\x20\x00"  # v2 LOCAL, UNSPEC/UNSPEC
    assert header.version == 2
    assert header.command is Command.LOCAL
    assert header.family is Family.UNSPEC
    assert header.source is None
    assert header.destination is None
    assert [t.type for t in header.tlvs] == [t for t, _, _ in tlv_spans(wire)]
    assert header.tlvs[0].type == 0x03
    assert header.crc32c == crc32c_reference(with_crc_zeroed(wire))
    assert header.unique_id in (None, b"")
    peers.save_vector("haproxy-v2-local-unix.bin", wire)


def test_haproxy_health_check_sends_local(start_haproxy, peers):
    """``check check-send-proxy`` health checks open their own connection with a v2 LOCAL
    header (rules 17, 20): family UNSPEC, length honoured (rule 26), here with a CRC32C
    that covers it and verifies (rules 34, 44, D3)."""
    checked = peers.capture_server()
    try:
        port = peers.free_port()
        check = "send-proxy-v2 proxy-v2-options crc32c check check-send-proxy inter 200ms"
        body = f"""
frontend fe_unused
    mode tcp
    bind 127.0.0.1:{port}
    default_backend be_checked
backend be_checked
    mode tcp
    server capture 127.0.0.1:{checked.port} {check}
"""
        daemon = start_haproxy(body, [port])
        try:
            wire = checked.wait_for(pp.V2_SIGNATURE + b"\x20").data
        finally:
            daemon.stop()
    finally:
        checked.close()
    header = pp.parse(wire)
    assert header.length == len(wire)
    assert header.to_bytes() == wire
    assert header.command is Command.LOCAL
    assert header.family is Family.UNSPEC
    assert header.source is None
    assert header.crc32c == crc32c_reference(with_crc_zeroed(wire))
    peers.save_vector("haproxy-v2-local-check.bin", wire)


# --------------------------------------------------------------------------- receivers


@pytest.fixture(scope="module")
def receiver(start_haproxy, capture, peers):
    """HAProxy ``accept-proxy`` listeners: ``http`` answers what it took from the header;
    ``chain-v1``/``chain-v2`` relay to the capture server with HAProxy's own header."""
    ports = {
        "http": peers.free_port(),
        "chain-v1": peers.free_port(),
        "chain-v2": peers.free_port(),
    }
    body = f"""
frontend fe_http
    mode http
    bind 127.0.0.1:{ports["http"]} accept-proxy
    http-request return status 200 content-type text/plain lf-string "{SEEN_FORMAT}"

frontend fe_chain_v1
    mode tcp
    bind 127.0.0.1:{ports["chain-v1"]} accept-proxy
    default_backend be_chain_v1
backend be_chain_v1
    mode tcp
    server capture 127.0.0.1:{capture.port} send-proxy

frontend fe_chain_v2
    mode tcp
    bind 127.0.0.1:{ports["chain-v2"]} accept-proxy
    default_backend be_chain_v2
backend be_chain_v2
    mode tcp
    server capture 127.0.0.1:{capture.port} send-proxy-v2 proxy-v2-options crc32c,authority
"""
    start_haproxy(body, list(ports.values()))
    return ports


def body_of(reply: bytes) -> str:
    head, sep, body = reply.partition(b"\r\n\r\n")
    assert sep, reply
    status = head.split(b"\r\n")[0]
    assert status.startswith(b"HTTP/1.")
    assert b" 200 " in status
    return body.decode()


V4_SRC, V4_DST = ("127.1.2.3", 56324), ("127.4.5.6", 443)
V6_SRC, V6_DST = ("2001:db8::1", 56324), ("2001:db8:0:1::2", 65535)
# Addresses carried inside headers only (HAProxy never connects to them): loopback range for
# IPv4 and the documentation prefix 2001:db8::/32 for IPv6.

BUILT = {
    "v1-tcp4": lambda: pp.build_v1(V4_SRC, V4_DST),
    "v1-tcp6": lambda: pp.build_v1(V6_SRC, V6_DST),
    "v2-ipv4": lambda: pp.build_v2(V4_SRC, V4_DST),
    "v2-ipv6": lambda: pp.build_v2(V6_SRC, V6_DST),
    "v2-ipv4-tlvs-crc": lambda: pp.build_v2(
        V4_SRC,
        V4_DST,
        crc32c=True,
        alpn=b"h2",
        authority="built.interop.test",
        unique_id=b"built-uid-4",
        tlvs=[(0x04, b"\x00" * 5), (0xE5, b"custom")],
    ),
    "v2-ipv6-tlvs-crc": lambda: pp.build_v2(
        V6_SRC, V6_DST, crc32c=True, authority="six.interop.test", unique_id=b"built-uid-6"
    ),
}


MAPPED_SRC, MAPPED_DST = ("::ffff:127.1.2.3", 1), ("::ffff:127.4.5.6", 65535)
CHAINED = {
    "v1-mapped": lambda: pp.build_v1(MAPPED_SRC, MAPPED_DST),
    "v2-mapped": lambda: pp.build_v2(MAPPED_SRC, MAPPED_DST, authority="mapped.interop.test"),
}


def expected_seen(src, dst, auth="", uid="") -> str:
    """The fetches of an absent TLV render empty in an lf-string."""
    return f"src={src[0]} sport={src[1]} dst={dst[0]} dport={dst[1]} auth={auth} uid={uid}"


@pytest.mark.parametrize("case", list(BUILT))
def test_haproxy_accept_proxy_reports_what_we_built(receiver, peers, case):
    """HAProxy ``accept-proxy`` takes our v1 (rules 8-12) and v2 (rules 18-31) headers,
    TLVs and CRC32C included (rule 34), and reports exactly the addresses we sent (rule 21)
    and the AUTHORITY/UNIQUE_ID TLVs (rules 33, 36)."""
    header = BUILT[case]()
    parsed = pp.parse(header)
    assert parsed.to_bytes() == header
    ex = peers.exchange("127.0.0.1", receiver["http"], header + HTTP_GET)
    assert body_of(ex.reply) == expected_seen(
        parsed.source,
        parsed.destination,
        parsed.authority or "",
        (parsed.unique_id or b"").decode(),
    )


@pytest.mark.parametrize(
    "case",
    ["v2-local", "v2-local-crc", "v1-unknown"],
)
def test_haproxy_accept_proxy_local_uses_real_addresses(receiver, peers, case):
    """A LOCAL v2 header (rule 20, with a CRC32C too: rule 44) and the v1 ``PROXY
    UNKNOWN`` short form (rules 17, 45) are accepted and HAProxy reports the real socket
    addresses of the connection."""
    header = {
        "v2-local": lambda: pp.build_v2(),
        "v2-local-crc": lambda: pp.build_v2(crc32c=True),
        "v1-unknown": lambda: pp.build_v1(),
    }[case]()
    parsed = pp.parse(header)
    assert parsed.source is None
    assert parsed.destination is None
    if case.startswith("v2"):
        assert parsed.command is Command.LOCAL
    else:
        assert header == b"PROXY UNKNOWN\r\n"
    ex = peers.exchange("127.0.0.1", receiver["http"], header + HTTP_GET)
    assert body_of(ex.reply) == expected_seen(ex.sockname, ex.peername)


@pytest.mark.parametrize("relay", [1, 2], ids=["to-v1", "to-v2"])
@pytest.mark.parametrize(
    "case", ["v1-tcp4", "v1-tcp6", "v1-mapped", "v2-ipv4-tlvs-crc", "v2-mapped"]
)
def test_haproxy_chain_relays_what_we_built(receiver, capture, peers, case, relay):
    """Our header into ``accept-proxy``, HAProxy's own ``send-proxy``/``send-proxy-v2``
    out: the relayed header carries our addresses (rule 21), IPv4-mapped IPv6 ones kept as
    ``::ffff:a.b.c.d`` text (D6, D8), and for v2 our AUTHORITY (rule 33) under a fresh
    CRC32C that we verify (rule 34)."""
    built = pp.parse(CHAINED.get(case, BUILT.get(case, lambda: b""))())
    sent = peers.payload(f"chain-{case}-{relay}")
    ex = peers.exchange("127.0.0.1", receiver[f"chain-v{relay}"], built.to_bytes() + sent)
    assert ex.reply == b"ACK"
    relayed, wire = check_relayed(peers, capture.wait_for(sent).data, sent)
    assert relayed.version == relay
    assert relayed.family is built.family
    assert relayed.source == built.source
    assert relayed.destination == built.destination
    if relay == 2:
        assert relayed.authority == built.authority
        assert relayed.crc32c == crc32c_reference(with_crc_zeroed(wire))
    if case.endswith("mapped"):
        assert relayed.source == (MAPPED_SRC[0], MAPPED_SRC[1])
        if relay == 1:
            assert wire.startswith(b"PROXY TCP6 ::ffff:127.1.2.3 ::ffff:127.4.5.6 ")


def test_bad_crc32c_refused_by_haproxy_and_by_us(receiver, peers):
    """A v2 header whose CRC32C value has one bit flipped is invalid (rule 34): HAProxy
    closes the connection without a response, and parse() raises ChecksumError. The same
    header with the right CRC is answered, so the refusal is the checksum's doing."""
    good = pp.build_v2(V4_SRC, V4_DST, crc32c=True, authority="crc.interop.test")
    (crc_off,) = [off for typ, off, length in tlv_spans(good) if typ == 0x03 and length == 4]
    bad = bytearray(good)
    bad[crc_off + 3] ^= 0x01
    bad = bytes(bad)
    assert bad != good

    # Us.
    assert pp.parse(good).crc32c == crc32c_reference(with_crc_zeroed(good))
    with pytest.raises(ChecksumError) as info:
        pp.parse(bad)
    assert info.value.kind
    relaxed = pp.parse(bad, verify_checksum=False)
    assert relaxed.source == V4_SRC
    assert relaxed.to_bytes() == bad
    with pytest.raises(ChecksumError):
        pp.Parser().feed(bad + HTTP_GET)

    # HAProxy.
    ok = peers.exchange("127.0.0.1", receiver["http"], good + HTTP_GET)
    assert body_of(ok.reply) == expected_seen(V4_SRC, V4_DST, "crc.interop.test")
    refused = peers.exchange("127.0.0.1", receiver["http"], bad + HTTP_GET)
    assert refused.reply == b""
