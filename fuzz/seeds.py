"""Write the named seed files of the fuzz corpus: the captured vectors and every known crash
shape (PEERS.md), so each stays in the corpus whatever minimisation keeps.

Run from the repository root: ``python3 fuzz/seeds.py``. Idempotent: it rewrites the same
files with the same bytes. Files are named after the vector or the bug; ``cargo fuzz cmin``
(fuzz/run.sh) keeps every named file and minimises only the hash-named ones libFuzzer adds.

Corpus formats (what each target reads):
  parse/       the wire bytes
  split_feed/  1 control byte (low 3 bits: number of cut bytes k; bits 3-7: options, see
               fuzz_targets/split_feed.rs), k chunk lengths, then the wire bytes
  crc32c/      4-byte seed (LE), 2-byte split point (LE), then the data
  roundtrip/   `arbitrary`-encoded structured input (seeded by fuzzing only)
"""

from __future__ import annotations

import pathlib
import struct

from proxyproto_rs._wire import SIGNATURE as SIG
from proxyproto_rs._wire import tlv, v2, with_crc

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
VECTORS = ROOT / "tests" / "vectors"

TCP4_BLOCK = bytes([203, 0, 113, 7, 10, 0, 0, 5]) + struct.pack(">HH", 51234, 443)


def shapes() -> dict[str, bytes]:
    s: dict[str, bytes] = {}
    # CVE-2019-14243 (mastercactapus/proxyprotocol#1): PROXY/TCP4 with no address bytes.
    s["cve-2019-14243-truncated-address-tcp4-len0"] = v2(0x21, 0x11, b"")
    s["cve-2019-14243-truncated-address-tcp4-len4"] = v2(0x21, 0x11, b"\x7f\x00\x00\x01")
    s["cve-2019-14243-truncated-address-tcp6-len35"] = v2(0x21, 0x21, bytes(35))
    s["cve-2019-14243-truncated-address-unix-len215"] = v2(0x21, 0x31, bytes(215))
    s["cve-2019-14243-length-says-more-than-sent"] = v2(0x21, 0x11, TCP4_BLOCK[:6], length=12)
    # CVE-2021-23351 (go-proxyproto#69): v1 read until newline with no limit.
    s["cve-2021-23351-unbounded-v1-unknown"] = b"PROXY UNKNOWN " + b"A" * 300
    s["cve-2021-23351-unbounded-v1-tcp4"] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222" + b" " * 200
    s["cve-2021-23351-v1-lf-only"] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\n" + b"x" * 100
    s["v1-unknown-107-bytes-exactly"] = b"PROXY UNKNOWN " + b"u" * 91 + b"\r\n"
    s["v1-unknown-108-bytes-too-long"] = b"PROXY UNKNOWN " + b"u" * 92 + b"\r\n"
    s["v1-tcp6-longest"] = (
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
    )
    s["v1-tcp6-ipv4-mapped"] = b"PROXY TCP6 ::ffff:1.2.3.4 ::ffff:5.6.7.8 1 2\r\n"
    s["v1-tcp6-zone-id"] = b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"
    s["v1-tcp4-leading-zero"] = b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"
    s["v1-port-plus-sign"] = b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"
    s["v1-port-leading-zero"] = b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"
    s["v1-ipv4-under-tcp6"] = b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"
    s["v1-lone-cr"] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n"
    s["v1-two-spaces"] = b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
    s["v1-with-payload"] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.0\r\n\r\n"
    # TLVs (D4): crossing the end, zero-length final, SSL under 5 bytes.
    s["tlv-crossing-the-end"] = v2(0x21, 0x11, TCP4_BLOCK + tlv(0xE1, b"\x01\x02\x03", length=200))
    s["tlv-header-cut-after-type"] = v2(0x21, 0x11, TCP4_BLOCK + b"\x04")
    s["tlv-header-cut-after-two-bytes"] = v2(0x21, 0x11, TCP4_BLOCK + b"\x04\x00")
    s["tlv-zero-length-final"] = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x01, b"h2") + tlv(0x04, b""))
    s["tlv-ssl-empty"] = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x20, b""))
    s["tlv-ssl-4-bytes"] = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x20, b"\x01\x00\x00\x00"))
    s["tlv-ssl-sub-tlv-crossing"] = v2(
        0x21, 0x11, TCP4_BLOCK + tlv(0x20, b"\x07\x00\x00\x00\x00" + tlv(0x21, b"TLS", length=9))
    )
    s["tlv-unique-id-129"] = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x05, b"u" * 129))
    s["tlv-crc32c-3-bytes"] = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x03, b"\x00\x00\x00"))
    # CRC32C first, before ALPN/AUTHORITY (HAProxy's order, rule 46; proxy-protocol's sort bug).
    crc_first = v2(
        0x21,
        0x11,
        TCP4_BLOCK + tlv(0x03, bytes(4)) + tlv(0x01, b"h2") + tlv(0x02, b"example.com"),
    )
    s["crc32c-first-valid"] = with_crc(crc_first)
    bad = bytearray(with_crc(crc_first))
    bad[31] ^= 0x01
    s["crc32c-first-wrong-value"] = bytes(bad)
    s["crc32c-twice"] = with_crc(
        v2(0x21, 0x11, TCP4_BLOCK + tlv(0x03, bytes(4)) + tlv(0x03, bytes(4)))
    )
    # AWS NLB health check (kubernetes#57250): LOCAL, family 0x11, len 84, no address block,
    # CRC32C + 74-byte NOOP, TLVs read from byte 16 (rule 44, D3).
    s["aws-nlb-local-health-check"] = with_crc(
        v2(0x20, 0x11, tlv(0x03, bytes(4)) + tlv(0x04, bytes(74)))
    )
    s["local-with-tlvs-no-address-block"] = v2(0x20, 0x00, tlv(0x05, b"") + tlv(0xEA, b"\x01vpce"))
    s["local-junk-body"] = v2(0x20, 0x11, b"\xff" * 5)
    # Prefix rejections (rules 19, 22, D1) and other families.
    s["v2-version-1"] = v2(0x11, 0x11, TCP4_BLOCK)
    s["v2-command-2"] = v2(0x22, 0x11, TCP4_BLOCK)
    s["v2-family-4"] = v2(0x21, 0x41, TCP4_BLOCK)
    s["v2-protocol-3"] = v2(0x21, 0x13, TCP4_BLOCK)
    s["v2-old-spec-version-byte-02"] = SIG + b"\x02\x11\x00\x0c" + TCP4_BLOCK
    s["v2-unspec-protocol-with-block"] = v2(0x21, 0x10, TCP4_BLOCK + tlv(0x01, b"h2"))
    s["v2-udp4"] = v2(0x21, 0x12, TCP4_BLOCK)
    unix = b"/run/s.sock".ljust(108, b"\x00") + b"\x00abstract".ljust(108, b"\x00")
    s["v2-unix-stream-abstract-dst"] = v2(0x21, 0x31, unix + tlv(0x30, b"netns"))
    s["v2-length-65535"] = v2(0x21, 0x11, b"", length=0xFFFF)
    s["v2-two-headers-back-to-back"] = v2(0x21, 0x11, TCP4_BLOCK) * 2
    s["v2-cloud-tlvs"] = v2(
        0x21,
        0x11,
        TCP4_BLOCK
        + tlv(0xEA, b"\x01vpce-08d2bf15fac5001c9")
        + tlv(0xEE, b"\x01\x78\x56\x34\x12")
        + tlv(0xE0, b"\x00\x00\x00\x00\x00\x00\x01\x02"),
    )
    # Not PROXY protocol at all.
    s["not-proxy-http"] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    s["not-proxy-tls-client-hello"] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    s["not-proxy-prx"] = b"PRX"
    return s


def write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def main() -> None:
    wire = {f"vector-{p.stem}": p.read_bytes() for p in sorted(VECTORS.glob("*.bin"))}
    wire.update(shapes())
    for name, data in wire.items():
        write(CORPUS / "parse" / name, data)
        # split_feed: whole with default options; then cut into 1-byte pieces for the first
        # 7 bytes; and cut at the v2 prefix boundaries (12, 13, 14, 16) or mid-v1-line.
        write(CORPUS / "split_feed" / name, b"\x00" + data)
        if name.startswith("vector-"):
            write(CORPUS / "split_feed" / f"{name}.bytewise", b"\x07" + b"\x01" * 7 + data)
            cuts = bytes([12, 1, 1, 2, 9])
            write(CORPUS / "split_feed" / f"{name}.cuts", b"\x05" + cuts + data)
        write(CORPUS / "crc32c" / name, b"\x00\x00\x00\x00" + struct.pack("<H", 12) + data)
    # Header split at every byte: the TLS vector cut at each offset, for split_feed.
    tls = (VECTORS / "haproxy-v2-tls-tlvs.bin").read_bytes()
    for cut in range(0, len(tls) + 1, 1):
        if cut > 17 and cut % 32:
            continue  # every byte of the 16-byte prefix, then every 32nd
        write(
            CORPUS / "split_feed" / f"header-split-at-byte-{cut:03d}",
            b"\x01" + bytes([min(cut, 255)]) + tls,
        )


if __name__ == "__main__":
    main()
