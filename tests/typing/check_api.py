"""Type-checked usage of the whole public API (not collected by pytest: no ``test_`` prefix).

``mypy --strict tests/typing/check_api.py`` must pass: every call below is how a user
would write it, and ``assert_type`` pins what the stubs promise. It also runs (``python
tests/typing/check_api.py``), so the stubs cannot promise what the module does not do.
"""

from __future__ import annotations

import pickle
import socket
from collections.abc import Iterator, Sequence
from typing import Literal, assert_type

import proxyproto_rs as pp
from proxyproto_rs import (
    MAX_V1_SIZE,
    MAX_V2_SIZE,
    SPP_MAGIC,
    SPP_SIZE,
    V2_SIGNATURE,
    BuildError,
    ChecksumError,
    Command,
    Family,
    Header,
    HeaderTooLargeError,
    IncompleteHeaderError,
    InvalidHeaderError,
    Parser,
    PeerRefusedError,
    Protocol,
    ProxyProtocolError,
    SppHeader,
    SslInfo,
    Tlv,
    build_spp,
    build_v1,
    build_v2,
    crc32c,
    detect,
    find_signature,
    parse,
    parse_spp,
    scan,
    sync,
)
from proxyproto_rs.options import ServerOptions

Address = tuple[str, int] | str | bytes

# --- constants -----------------------------------------------------------------------------
assert_type(pp.__version__, str)
assert_type(MAX_V1_SIZE, int)
assert_type(MAX_V2_SIZE, int)
assert_type(V2_SIGNATURE, bytes)

# --- parse and the Header ------------------------------------------------------------------
line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n"
h = parse(line)
assert_type(h, Header)
assert_type(parse(bytearray(line)), Header)
assert_type(parse(memoryview(line)), Header)
assert_type(
    parse(
        line,
        allow_v1=True,
        allow_v2=False,
        verify_checksum=True,
        max_size=4096,
        haproxy_limits=False,
    ),
    Header,
)
assert_type(h.version, Literal[1, 2])
assert_type(h.command, Command)
assert_type(h.family, Family)
assert_type(h.protocol, Protocol)
assert_type(h.source, Address | None)
assert_type(h.destination, Address | None)
assert_type(h.length, int)
assert_type(h.tlvs, tuple[Tlv, ...])
tlvs: Sequence[Tlv] = h.tlvs
assert_type(h.alpn, bytes | None)
assert_type(h.authority, str | None)
assert_type(h.crc32c, int | None)
assert_type(h.unique_id, bytes | None)
assert_type(h.ssl, SslInfo | None)
assert_type(h.netns, str | None)
assert_type(h.aws_vpce_id, str | None)
assert_type(h.azure_link_id, int | None)
assert_type(h.gcp_psc_connection_id, int | None)
assert_type(h.to_bytes(), bytes)
assert_type(bytes(h), bytes)
assert_type(h == h, bool)
assert_type(hash(h), int)
payload = line[h.length :]
assert payload == b"GET / HTTP/1.1\r\n"

if isinstance(h.source, tuple):
    host, port = h.source
    assert_type(host, str)
    assert_type(port, int)
elif isinstance(h.source, str):
    assert_type(h.source, str)
elif isinstance(h.source, bytes):
    assert_type(h.source, bytes)
else:
    assert_type(h.source, None)

# The typed INET endpoint: no isinstance needed to unpack (host, port).
assert_type(h.source_inet, tuple[str, int] | None)
assert_type(h.destination_inet, tuple[str, int] | None)
if h.source_inet is not None:
    client_host, client_port = h.source_inet
    assert_type(client_host, str)
    assert_type(client_port, int)
    assert (client_host, client_port) == ("192.0.2.1", 56324)
assert h.destination_inet == h.destination

again: Header = pickle.loads(pickle.dumps(h))
assert again == h

# --- Tlv -----------------------------------------------------------------------------------
t = Tlv(0x01, b"h2")
assert_type(t, Tlv)
assert_type(Tlv(0x02, bytearray(b"x")), Tlv)
assert_type(t.type, int)
assert_type(t.value, bytes)
assert_type(t[0], int)
assert_type(t[1], bytes)
assert_type(len(t), int)
kind, value = t
assert_type(kind, int | bytes)
for part in t:
    assert_type(part, int | bytes)

# --- SslInfo -------------------------------------------------------------------------------
tls = build_v2(
    ("192.0.2.1", 56324),
    ("198.51.100.2", 443),
    tlvs=[(0x20, b"\x07\x00\x00\x00\x00" + b"\x21\x00\x07TLSv1.3")],
)
ssl = parse(tls).ssl
assert ssl is not None
assert_type(ssl, SslInfo)
assert_type(ssl.client, int)
assert_type(ssl.verify, int)
assert_type(ssl.client_ssl, bool)
assert_type(ssl.client_cert_conn, bool)
assert_type(ssl.client_cert_sess, bool)
assert_type(ssl.client_cert_verified, bool)
assert_type(ssl.version, str | None)
assert_type(ssl.cn, str | None)
assert_type(ssl.cipher, str | None)
assert_type(ssl.sig_alg, str | None)
assert_type(ssl.key_alg, str | None)
assert_type(ssl.group, str | None)
assert_type(ssl.sig_scheme, str | None)
assert_type(ssl.client_cert, bytes | None)
assert_type(ssl.tlvs, tuple[Tlv, ...])

# --- Parser --------------------------------------------------------------------------------
p = Parser()
assert_type(p, Parser)
assert_type(
    Parser(allow_v1=True, allow_v2=True, verify_checksum=True, max_size=4096, haproxy_limits=False),
    Parser,
)
assert_type(p.feed(b"PROXY "), Header | None)
assert_type(p.feed(bytearray(b"UNKNOWN\r\n")), Header | None)
assert_type(p.feed(memoryview(b"rest")), Header | None)
assert_type(p.needed, int)
assert_type(p.header, Header | None)
assert_type(p.trailing_data, bytes)
assert_type(p.done, bool)
assert_type(p.buffered, int)
assert p.trailing_data == b"rest"

# --- builders ------------------------------------------------------------------------------
assert_type(build_v1(), bytes)
assert_type(build_v1(None, None), bytes)
assert_type(build_v1(("192.0.2.1", 1), ("192.0.2.2", 2)), bytes)
assert_type(build_v1(("::1", 1, 0, 0), ("::1", 2, 0, 0)), bytes)
assert_type(build_v2(), bytes)
assert_type(
    build_v2(
        ("2001:db8::1", 1),
        ("2001:db8::2", 2),
        command=Command.PROXY,
        protocol=Protocol.DGRAM,
        tlvs=[Tlv(0xE0, b"\x00" * 8), (0x04, b""), (0xE1, bytearray(b"x"))],
        crc32c=True,
        alpn=b"h2",
        authority="example.com",
        unique_id=b"id",
        netns="blue",
        aws_vpce_id="vpce-1",
    ),
    bytes,
)
assert_type(build_v2("/run/client.sock", "/run/server.sock"), bytes)
assert_type(build_v2(b"\x00abstract", b"\x00other"), bytes)
assert_type(Header.v1(("192.0.2.1", 1), ("192.0.2.2", 2)), Header)
assert_type(Header.v1(), Header)
assert_type(Header.v2(("192.0.2.1", 1), ("192.0.2.2", 2), crc32c=True), Header)
assert_type(Header.v2(command=Command.LOCAL), Header)
assert_type(Header.local(), Header)
assert_type(Header.local(tlvs=[(0x05, b"id")], crc32c=True), Header)

# --- helpers -------------------------------------------------------------------------------
assert_type(crc32c(b"123456789"), int)
assert_type(crc32c(b"56789", crc32c(b"1234")), int)
assert_type(crc32c(memoryview(b"x")), int)
assert_type(detect(b"PROXY"), Literal[0, 1, 2] | None)
assert_type(find_signature(b"..PROXY .."), int)
assert_type(find_signature(bytearray(b"..PROXY .."), 1), int)
found = scan(b"junk" + tls, verify_checksum=True, max_size=4096)
assert_type(found, Iterator[tuple[int, Header]])
for offset, header in found:
    assert_type(offset, int)
    assert_type(header, Header)

# --- Cloudflare's Simple Proxy Protocol ---------------------------------------------------
spp_wire = build_spp(("203.0.113.7", 40001), ("198.51.100.1", 53))
assert_type(spp_wire, bytes)
assert_type(SPP_MAGIC, bytes)
assert_type(SPP_SIZE, int)
spp_header = parse_spp(spp_wire + b"payload")
assert_type(spp_header, SppHeader)
assert_type(spp_header.client, tuple[str, int])
assert_type(spp_header.proxy, tuple[str, int])
assert_type(spp_header.length, Literal[38])
assert_type(spp_header.to_bytes(), bytes)
assert spp_header == SppHeader(("203.0.113.7", 40001), ("198.51.100.1", 53))
assert_type(detect(spp_wire, spp=True), Literal[0, 1, 2, "spp"] | None)
assert detect(spp_wire, spp=True) == "spp"
for _offset, any_header in scan(spp_wire, spp=True):
    assert_type(any_header, Header | SppHeader)

# --- the blocking API ----------------------------------------------------------------------
datagram = sync.parse_datagram(spp_wire + b"q", ("127.0.0.1", 9), ServerOptions(spp=True))
assert_type(datagram, sync.Datagram)
assert_type(datagram.payload, bytes)
assert_type(datagram.header, Header | SppHeader | None)
assert datagram.client == ("203.0.113.7", 40001)
with (
    socket.create_server(("127.0.0.1", 0)) as listener,
    socket.create_connection(listener.getsockname()) as client_sock,
):
    client_sock.sendall(build_v2(("192.0.2.1", 1), ("192.0.2.2", 2)))
    conn, _peer = listener.accept()
    with conn:
        read = sync.read_header(conn, timeout=5.0, trusted=["127.0.0.0/8"])
        assert_type(read, Header | None)
        assert sync.client_address(conn, read) == ("192.0.2.1", 1)
        assert sync.server_address(conn, read) == ("192.0.2.2", 2)
refused: PeerRefusedError = PeerRefusedError("no", kind="untrusted_peer")
assert_type(refused.kind, str)

# --- enums ---------------------------------------------------------------------------------
assert_type(Command.LOCAL, Literal[Command.LOCAL])
assert_type(Family(2), Family)
assert_type(int(Protocol.STREAM), int)

# --- errors --------------------------------------------------------------------------------
try:
    parse(b"GET / HTTP/1.1\r\n")
except HeaderTooLargeError as e:
    assert_type(e, HeaderTooLargeError)
except ChecksumError as e:
    assert_type(e.offset, int)
except InvalidHeaderError as e:
    assert_type(e.kind, str)
    assert_type(e.offset, int)
except IncompleteHeaderError:
    pass

try:
    build_v1(("192.0.2.1", 70000), ("192.0.2.2", 2))
except BuildError as e:
    assert_type(e, BuildError)
    assert_type(e.kind, str)

err: ProxyProtocolError = ChecksumError("x", kind="checksum_mismatch", offset=31)
value_error: ValueError = err
assert value_error is err

print("check_api: ok")
