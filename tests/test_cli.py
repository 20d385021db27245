"""The ``proxyproto`` command, driven as a user would: the installed console script (and
``python -m proxyproto_rs``) in a subprocess, real sockets on 127.0.0.1 only.

Every subprocess and socket call has a timeout; servers started here are stopped in
``finally`` blocks. The interop test at the end runs ``check`` against real HAProxy and
nginx receivers (skipped locally when a binary is missing, failed under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import proxyproto_rs as pp
import pytest
from proxyproto_rs import _wire as wire
from proxyproto_rs import aio
from servers_support import free_ports, missing, process, read_until_close

TIMEOUT = 30.0
"""Seconds any one command may run."""
SOCK_TIMEOUT = 5.0

_SCRIPT = Path(sys.executable).with_name("proxyproto")
PROXYPROTO = [str(_SCRIPT)] if _SCRIPT.exists() else [shutil.which("proxyproto") or "proxyproto"]
PYTHON_M = [sys.executable, "-m", "proxyproto_rs"]

V2_HEADER = pp.build_v2(
    ("203.0.113.7", 51234),
    ("10.0.0.5", 443),
    crc32c=True,
    aws_vpce_id="vpce-08d2bf15fac5001c9",
)


def run(
    *args: str, stdin: bytes | None = None, cmd: Sequence[str] = PROXYPROTO
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*cmd, *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def text(proc: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    return proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def assert_no_traceback(proc: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stdout


# --------------------------------------------------------------------------- help, usage


def test_console_script_is_installed() -> None:
    assert shutil.which(PROXYPROTO[0]) or Path(PROXYPROTO[0]).exists()


@pytest.mark.parametrize("cmd", [PROXYPROTO, PYTHON_M], ids=["script", "python-m"])
@pytest.mark.parametrize(
    "sub", ["", "decode", "encode", "scan", "inspect", "relay", "check"], ids=lambda s: s or "main"
)
def test_help_teaches_with_examples(cmd: list[str], sub: str) -> None:
    proc = run(*([sub] if sub else []), "--help", cmd=cmd)
    out, _ = text(proc)
    assert proc.returncode == 0
    assert out.startswith("usage: proxyproto")
    assert "examples:" in out or "commands:" in out
    assert "exit status" in out.lower()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["bogus"], "invalid choice"),
        (["decode", "zz"], "not valid hex"),
        (["decode", "--max-size", "5", "00"], "16..65551"),
        (["encode", "--source", "1.2.3.4"], "HOST:PORT"),
        (["encode", "--source", "::1:5", "--destination", "[::1]:6"], "[::1]:5"),
        (["encode", "--source", "example.com:5", "--destination", "1.2.3.4:6"], "IP address"),
        (["encode", "--source", "1.2.3.4:70000", "--destination", "1.2.3.4:6"], "65535"),
        (["encode", "--source", "1.2.3.4:1"], "both --source and --destination"),
        (["encode", "--source", "1.2.3.4:1", "--destination", "[::1]:2"], "different families"),
        (["encode", "--v1", "--alpn", "h2"], "need v2"),
        (["encode", "--v1", "--v2"], "not allowed with"),
        (["encode", "--tlv", "0x1FF=00"], "not a byte"),
        (["encode", "--tlv", "0xE1=zz"], "not valid hex"),
        (["encode", "--unique-id", "x" * 129], "cannot build"),
        (["scan"], "required"),
        (["inspect"], "--listen"),
        (["inspect", "--listen", "127.0.0.1:99999"], "over 65535"),
        (["inspect", "--listen", "127.0.0.1:0", "--count", "0"], "at least 1"),
        (["relay", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--version", "3"], "3"),
        (
            [
                "relay",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:1",
                "--version",
                "1",
                "--aws-vpce-id",
                "x",
            ],
            "need --version 2",
        ),
        (["check", "--target", "nohost"], "HOST:PORT"),
        (["check", "--target", "127.0.0.1:1", "--versions", "3"], "--versions"),
        (["check", "--target", "127.0.0.1:1", "--expect", "("], "regular expression"),
    ],
)
def test_bad_arguments_one_line_exit_2(argv: list[str], fragment: str) -> None:
    proc = run(*argv)
    _, err = text(proc)
    assert proc.returncode == 2, err
    assert_no_traceback(proc)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("proxyproto"), err
    assert fragment in lines[0], err
    assert proc.stdout == b""


def test_no_command_prints_help_and_exits_2() -> None:
    proc = run()
    assert proc.returncode == 2
    assert b"commands:" in proc.stderr


def test_io_errors_exit_3() -> None:
    proc = run("scan", "/nonexistent/capture.pcap")
    assert proc.returncode == 3
    assert b"cannot read" in proc.stderr
    proc = run("decode", "--file", "/nonexistent/header.bin")
    assert proc.returncode == 3
    assert_no_traceback(proc)


# --------------------------------------------------------------------------- decode


def test_decode_hex_argument_text() -> None:
    proc = run("decode", V2_HEADER.hex())
    out, _ = text(proc)
    assert proc.returncode == 0
    assert "source       203.0.113.7:51234" in out
    assert "destination  10.0.0.5:443" in out
    assert "vpce_id=vpce-08d2bf15fac5001c9" in out
    assert "CRC32C" in out


def test_decode_accepts_hex_with_separators_and_v1_text() -> None:
    spaced = " ".join(f"{b:02x}" for b in V2_HEADER)
    assert run("decode", "0x" + V2_HEADER.hex()).returncode == 0
    assert run("decode", spaced).returncode == 0
    proc = run("decode", r"PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n")
    assert proc.returncode == 0
    assert b"[2001:db8::1]:51234" in proc.stdout


@pytest.mark.parametrize("form", ["raw", "hex"])
def test_decode_stdin_autodetects_raw_and_hex(form: str) -> None:
    data = V2_HEADER + b"GET / HTTP/1.0\r\n\r\n"
    stdin = data if form == "raw" else data.hex().encode() + b"\n"
    proc = run("decode", "--json", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["ok"] is True
    assert obj["header"]["source"] == {"host": "203.0.113.7", "port": 51234}
    assert obj["header"]["aws_vpce_id"] == "vpce-08d2bf15fac5001c9"
    assert obj["payload_length"] == 18


def test_decode_file(tmp_path: Path) -> None:
    f = tmp_path / "h.bin"
    f.write_bytes(V2_HEADER + V2_HEADER)  # two stacked headers, as AWS may forward
    proc = run("decode", "--file", str(f))
    out, _ = text(proc)
    assert proc.returncode == 0
    assert "another PROXY header" in out


def test_decode_bad_header_says_kind_offset_and_shows_bytes() -> None:
    bad = b"PROXY TCP4 192.0.2.010 198.51.100.20 40000 80\r\n"
    proc = run("decode", bad.hex())
    _, err = text(proc)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert "v1_address" in err
    assert "offset: 20" in err  # "010": the second zero shows the leading zero
    assert "^^" in err
    assert "|PROXY TCP4 192.0|" in err  # the hexdump's text column


def test_decode_bad_header_json() -> None:
    proc = run("decode", "--json", "474554202f")
    assert proc.returncode == 1
    obj = json.loads(proc.stdout)
    assert obj == {
        "ok": False,
        "error": {
            "kind": "not_proxy_protocol",
            "offset": 0,
            "message": obj["error"]["message"],
            "type": "InvalidHeaderError",
        },
        "input_length": 5,
    }


def test_decode_incomplete_and_checksum_options() -> None:
    proc = run("decode", V2_HEADER[:20].hex())
    assert proc.returncode == 1
    assert b"incomplete" in proc.stderr
    broken = bytearray(V2_HEADER)
    broken[-1] ^= 0xFF  # last byte of the AWS TLV: the CRC no longer matches
    proc = run("decode", bytes(broken).hex())
    assert proc.returncode == 1
    assert b"checksum_mismatch" in proc.stderr
    assert run("decode", "--no-verify-checksum", bytes(broken).hex()).returncode == 0
    big = pp.build_v2(("1.2.3.4", 1), ("1.2.3.4", 2), tlvs=[(0xE1, bytes(5000))])
    proc = run("decode", "--file", "-", stdin=big)
    assert proc.returncode == 1
    assert b"HeaderTooLargeError" in proc.stderr
    assert run("decode", "--max-size", "65551", "--file", "-", stdin=big).returncode == 0


# --------------------------------------------------------------------------- encode


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (
            ["--source", "203.0.113.7:51234", "--destination", "10.0.0.5:443"],
            {"version": 2, "command": "PROXY", "family": "INET", "protocol": "STREAM"},
        ),
        (
            ["--v1", "--source", "203.0.113.7:51234", "--destination", "10.0.0.5:443"],
            {"version": 1, "family": "INET"},
        ),
        (
            ["--v1", "--source", "[2001:db8::1]:51234", "--destination", "[2001:db8::5]:443"],
            {"version": 1, "family": "INET6", "source": {"host": "2001:db8::1", "port": 51234}},
        ),
        (["--v1"], {"version": 1, "family": "UNSPEC", "source": None}),
        (["--local", "--crc32c"], {"version": 2, "command": "LOCAL", "family": "UNSPEC"}),
        (
            ["--source", "/run/client.sock", "--destination", "@server"],
            {
                "family": "UNIX",
                "source": {"path": "/run/client.sock"},
                "destination": {"abstract": "server"},
            },
        ),
        (
            ["--source", "[::1]:5", "--destination", "[::1]:6", "--dgram"],
            {"family": "INET6", "protocol": "DGRAM"},
        ),
        (
            [
                "--source",
                "203.0.113.7:51234",
                "--destination",
                "10.0.0.5:443",
                "--authority",
                "example.com",
                "--alpn",
                "h2",
                "--unique-id",
                "abc",
                "--aws-vpce-id",
                "vpce-1",
                "--netns",
                "blue",
                "--tlv",
                "0xE1=cafe",
                "--tlv",
                "240=00",
                "--crc32c",
            ],
            {
                "authority": "example.com",
                "alpn": "h2",
                "unique_id": "616263",
                "aws_vpce_id": "vpce-1",
                "netns": "blue",
            },
        ),
    ],
)
def test_encode_decode_round_trip(argv: list[str], expect: dict[str, Any]) -> None:
    enc = run("encode", *argv)  # stdout is a pipe: raw bytes
    assert enc.returncode == 0, enc.stderr
    header = pp.parse(enc.stdout)
    assert header.length == len(enc.stdout)
    dec = run("decode", "--json", stdin=enc.stdout, cmd=PYTHON_M)
    assert dec.returncode == 0, dec.stderr
    got = json.loads(dec.stdout)["header"]
    for key, value in expect.items():
        assert got[key] == value, (key, got)
    assert bytes.fromhex(got["hex"]) == enc.stdout
    if "--tlv" in argv:
        assert [t["type"] for t in got["tlvs"]] == [0x03, 0x01, 0x02, 0x05, 0x30, 0xEA, 0xE1, 0xF0]


def test_encode_hex_and_raw_switches() -> None:
    args = ["encode", "--source", "1.2.3.4:5", "--destination", "5.6.7.8:9"]
    raw = run(*args).stdout
    hexed = run(*args, "--hex").stdout
    assert hexed.strip() == raw.hex().encode()
    assert run(*args, "--raw").stdout == raw
    assert raw == pp.build_v2(("1.2.3.4", 5), ("5.6.7.8", 9))


# --------------------------------------------------------------------------- scan


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(payload),
            1,
            0,
            64,
            proto,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + payload
    )


def _ipv6(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), proto, 64)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + payload
    )


def _tcp(sport: int, dport: int, seq: int, payload: bytes, flags: int = 0x18) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _ether(ip: bytes, v6: bool = False) -> bytes:
    return b"\x02" * 6 + b"\x04" * 6 + (b"\x86\xdd" if v6 else b"\x08\x00") + ip


def _capture_packets() -> tuple[list[bytes], dict[int, pp.Header]]:
    """Packets of a small capture and, by packet number, the header that starts in it."""
    v2 = V2_HEADER
    v1 = pp.build_v1(("2001:db8::7", 40000), ("2001:db8::5", 443))
    udp = pp.build_v2(("203.0.113.9", 5353), ("10.0.0.5", 53), protocol=pp.Protocol.DGRAM)
    http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    packets = [
        _ether(_ipv4("127.0.0.1", "127.0.0.2", 6, _tcp(40000, 443, 999, b"", flags=0x02))),
        # the v2 header split over two segments, then a retransmission of the second
        _ether(_ipv4("127.0.0.1", "127.0.0.2", 6, _tcp(40000, 443, 1000, v2[:9]))),
        _ether(_ipv4("127.0.0.1", "127.0.0.2", 6, _tcp(40000, 443, 1009, v2[9:] + http))),
        _ether(_ipv4("127.0.0.1", "127.0.0.2", 6, _tcp(40000, 443, 1009, v2[9:] + http))),
        _ether(_ipv6("::1", "::1", 6, _tcp(40001, 80, 5, v1 + http)), v6=True),
        _ether(_ipv4("127.0.0.1", "127.0.0.3", 17, _udp(5353, 53, udp + b"dns?"))),
        _ether(_ipv4("127.0.0.1", "127.0.0.3", 17, _udp(5353, 53, b"no header here"))),
    ]
    return packets, {2: pp.parse(v2), 5: pp.parse(v1), 6: pp.parse(udp)}


def _pcap(packets: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, p in enumerate(packets):
        out += struct.pack("<IIII", 1700000000 + i, 0, len(p), len(p)) + p
    return out


def _pcapng(packets: list[bytes]) -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        size = 12 + len(body)
        return struct.pack("<II", kind, size) + body + struct.pack("<I", size)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 65535))
    for p in packets:
        out += block(6, struct.pack("<IIIII", 0, 0, 0, len(p), len(p)) + p)
    return out


def test_scan_raw_file_finds_every_header_with_offsets(tmp_path: Path) -> None:
    h1 = pp.build_v1(("192.0.2.1", 1), ("192.0.2.2", 2))
    h2 = V2_HEADER
    h3 = pp.build_v2()
    blob = b"junk" + h1 + b"PROXY nope\r\n" + h2 + b"\r\n\r\n\x00more" + h3 + b"tail"
    f = tmp_path / "dump.bin"
    f.write_bytes(blob)
    proc = run("scan", "--json", str(f))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["offset"] for r in rows] == [blob.find(h1), blob.find(h2), blob.find(h3)]
    assert rows[1]["header"]["aws_vpce_id"] == "vpce-08d2bf15fac5001c9"
    text_proc = run("scan", str(f))
    assert text_proc.stdout.count(b"\n") == 3
    assert b"3 header(s) found" in text_proc.stderr
    invalid = run("scan", "--invalid", "--json", str(f))
    kinds = [json.loads(line).get("error", {}).get("kind") for line in invalid.stdout.splitlines()]
    assert "v1_protocol" in kinds


def test_scan_nothing_found_exit_1_and_progress(tmp_path: Path) -> None:
    f = tmp_path / "plain.bin"
    f.write_bytes(b"GET / HTTP/1.1\r\n" * 1000)
    proc = run("scan", "--progress", str(f))
    assert proc.returncode == 1
    assert b"scan: 100.0%" in proc.stderr
    quiet = run("scan", str(f))  # stderr is not a terminal: no progress unless asked
    assert b"scan:" not in quiet.stderr


def _on_terminal(argv: list[str], *, stdout_too: bool) -> tuple[int, bytes]:
    """Run *argv* with stderr (and stdout, if asked) on a pseudo-terminal: the exit status
    and what the terminal received."""
    master, slave = os.openpty()
    try:
        proc = subprocess.run(
            argv,
            stdout=slave if stdout_too else subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
            check=False,
        )
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not data:
                break
            seen += data
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return proc.returncode, seen


def test_scan_progress_on_a_terminal(tmp_path: Path) -> None:
    """A large file shows \r-updated progress when stderr is a terminal, without flags."""
    f = tmp_path / "big.bin"
    chunk = b"\0" * (1 << 20)
    with f.open("wb") as out:
        for _ in range(17):  # over the 16 MiB threshold
            out.write(chunk)
        out.write(V2_HEADER)
    code, seen = _on_terminal([*PROXYPROTO, "scan", str(f)], stdout_too=False)
    assert code == 0
    assert b"\rscan: 100.0%" in seen
    assert b"1 header(s)" in seen


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_scan_capture_reports_packet_and_flow(tmp_path: Path, kind: str) -> None:
    packets, expected = _capture_packets()
    f = tmp_path / f"capture.{kind}"
    f.write_bytes(_pcap(packets) if kind == "pcap" else _pcapng(packets))
    proc = run("scan", "--json", str(f))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["packet"] for r in rows] == sorted(expected)
    data = f.read_bytes()
    for row in rows:
        header = expected[row["packet"]]
        assert row["header"]["hex"] == header.to_bytes().hex()
        # the offset points at the header's first byte in the file
        assert data[row["offset"] : row["offset"] + 5] == header.to_bytes()[:5]
    assert rows[0]["flow"] == "127.0.0.1:40000 > 127.0.0.2:443"
    assert rows[0]["transport"] == "tcp"
    assert rows[1]["flow"] == "[::1]:40001 > [::1]:80"
    assert rows[2]["transport"] == "udp"
    human = run("scan", str(f))
    assert b"#2" in human.stdout
    assert f"({kind})".encode() in human.stderr


def test_scan_damaged_capture_reports_what_it_found(tmp_path: Path) -> None:
    packets, _ = _capture_packets()
    data = _pcap(packets)
    f = tmp_path / "cut.pcap"
    f.write_bytes(data[: len(data) - 30])  # the last packet is cut short
    proc = run("scan", str(f))
    assert_no_traceback(proc)
    assert b"truncated" in proc.stderr
    assert proc.stdout.count(b"\n") == 3  # the three headers before the cut
    assert proc.returncode == 0


def test_interrupt_exits_130_without_traceback() -> None:
    with proxyproto_server("inspect", "--listen", "127.0.0.1:0") as (proc, _):
        proc.popen.send_signal(signal.SIGINT)
        code, _, err = proc.finish()
    assert code == 130
    assert "Traceback" not in err
    assert "interrupted" in err


def test_output_fits_pipes_broken_pipe_is_quiet(tmp_path: Path) -> None:
    f = tmp_path / "many.bin"
    f.write_bytes(pp.build_v1(("192.0.2.1", 1), ("192.0.2.2", 2)) * 20000)
    proc = subprocess.Popen(
        [*PROXYPROTO, "scan", "--json", str(f)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert json.loads(first)["offset"] == 0
        proc.stdout.close()  # like `| head -1`
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert b"Traceback" not in err, err
    assert b"BrokenPipe" not in err
    assert proc.returncode == 0


# --------------------------------------------------------------------------- servers

_LISTEN_RE = re.compile(r"listening on (\S+?)(?:,|$)")


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default action.

    A shell starts background commands with SIGINT ignored, and an ignored signal stays
    ignored across exec, so a suite run from such a job would give the command no way to
    see the Ctrl-C that test_interrupt_exits_130_without_traceback sends.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Proc:
    """A long-running ``proxyproto`` subprocess whose stderr is read line by line."""

    def __init__(self, argv: list[str]) -> None:
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        self.err_lines: list[str] = []

    def wait_listening(self) -> tuple[str, int]:
        """The address from the ``listening on ...`` line (port 0 resolved)."""
        assert self.popen.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(self.popen.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + SOCK_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if not sel.select(deadline - time.monotonic()):
                    break
                line = self.popen.stderr.readline().decode()
                if not line:
                    break
                self.err_lines.append(line)
                m = _LISTEN_RE.search(line)
                if m:
                    host, _, port = m[1].rpartition(":")
                    return host.strip("[]"), int(port)
        finally:
            sel.close()
        self.stop()
        raise AssertionError(f"no 'listening on' line; stderr: {self.err_lines}")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.popen.communicate(timeout=TIMEOUT)
        return self.popen.returncode, out.decode(), "".join(self.err_lines) + err.decode()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(SOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(SOCK_TIMEOUT)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def proxyproto_server(*args: str) -> Iterator[tuple[Proc, tuple[str, int]]]:
    proc = Proc([*PROXYPROTO, *args])
    try:
        yield proc, proc.wait_listening()
    finally:
        proc.stop()


def http_get(
    addr: tuple[str, int], payload: bytes = b"GET / HTTP/1.0\r\n\r\n"
) -> tuple[tuple[str, int], bytes]:
    """Connect, send *payload*, half-close, read until EOF: (our own address, the reply)."""
    with socket.create_connection(addr, timeout=SOCK_TIMEOUT) as s:
        s.settimeout(SOCK_TIMEOUT)
        me = s.getsockname()[:2]
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return me, read_until_close(s)


def test_inspect_prints_header_and_errors() -> None:
    with proxyproto_server("inspect", "--listen", "127.0.0.1:0", "--count", "3") as (proc, addr):
        _, reply = http_get(addr, V2_HEADER + b"GET / HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 200 OK")
        body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert body["header"]["aws_vpce_id"] == "vpce-08d2bf15fac5001c9"
        http_get(addr, b"GET / HTTP/1.0\r\n\r\n")  # no header at all
        http_get(addr, b"PROXY TCP4 1.2.3.4")  # EOF in the middle
        code, out, err = proc.finish()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3
    assert lines[0]["header"]["source"] == {"host": "203.0.113.7", "port": 51234}
    assert lines[0]["peer"].startswith("127.0.0.1:")
    assert lines[1]["error"]["kind"] == "not_proxy_protocol"
    assert lines[1]["error"]["offset"] == 0
    assert bytes.fromhex(lines[1]["received_hex"]).startswith(b"GET")
    assert lines[2]["error"]["kind"] == "eof"


def test_inspect_header_timeout() -> None:
    with proxyproto_server(
        "inspect", "--listen", "127.0.0.1:0", "--count", "1", "--timeout", "0.3"
    ) as (proc, addr):
        with socket.create_connection(addr, timeout=SOCK_TIMEOUT) as s:
            s.sendall(b"PROXY ")
            s.settimeout(SOCK_TIMEOUT)
            assert s.recv(10) == b""  # closed by inspect after the timeout
        code, out, _ = proc.finish()
    assert code == 0
    assert json.loads(out)["error"]["kind"] == "timeout"


@pytest.mark.parametrize("version", ["1", "2"])
def test_relay_in_front_of_inspect_shows_the_real_client(version: str) -> None:
    with proxyproto_server("inspect", "--listen", "127.0.0.1:0", "--count", "1") as (insp, up):
        extra = ["--aws-vpce-id", "vpce-0123", "--tlv", "0xE1=cafe"] if version == "2" else []
        with proxyproto_server(
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            f"{up[0]}:{up[1]}",
            "--version",
            version,
            "--count",
            "1",
            *extra,
        ) as (relay, front):
            me, reply = http_get(front)
            relay_code, _, relay_err = relay.finish()
        code, out, err = insp.finish()
    assert relay_code == 0, relay_err
    assert code == 0, err
    record = json.loads(out)
    header = record["header"]
    assert header["version"] == int(version)
    assert header["source"] == {"host": me[0], "port": me[1]}
    assert header["destination"] == {"host": front[0], "port": front[1]}
    if version == "2":
        assert header["aws_vpce_id"] == "vpce-0123"
        assert header["tlvs"][-1] == {"type": 0xE1, "name": "CUSTOM", "length": 2, "hex": "cafe"}
    # the reply went back through the relay to the client
    assert reply.startswith(b"HTTP/1.0 200 OK")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["header"] == header
    assert "sent v" in relay_err


def test_relay_upstream_down_closes_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again: nothing listens there
    with proxyproto_server(
        "relay", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{dead}", "--count", "1"
    ) as (relay, front):
        _, reply = http_get(front)
        code, _, err = relay.finish()
    assert reply == b""
    assert code == 0
    assert "upstream failed" in err


# --------------------------------------------------------------------------- check


class AioServer:
    """Our own receiver: proxyproto_rs.aio.start_server in a thread, answering HTTP."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(SOCK_TIMEOUT)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SOCK_TIMEOUT):
                await reader.readuntil(b"\r\n\r\n")
            peer = writer.get_extra_info("peername")
            writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + repr(peer).encode())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            server = await aio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self.stop_event = asyncio.Event()
            self.ready.set()
            async with server:
                await self.stop_event.wait()

        self.loop.run_until_complete(main())
        self.loop.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(SOCK_TIMEOUT)


class LaxReceiver:
    """A deliberately sloppy receiver, like many hand-written ones: for v1 it reads up to LF
    and takes the line if it starts with "PROXY"; for v2 it checks the first 4 bytes of the
    signature and skips the length; then answers anything."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(SOCK_TIMEOUT)
            try:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 70000:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                if data.startswith(b"\r\n\r\n"):
                    pass  # "v2": accepted whatever follows
                elif not data.upper().startswith(b"PROXY"):
                    return
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nlax")
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(SOCK_TIMEOUT)


def _check_json(*args: str) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    proc = run("check", "--json", "--timeout", "1", *args)
    assert_no_traceback(proc)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    summaries = [r for r in rows if r["type"] == "summary"]
    assert len(summaries) == 1, proc.stderr
    return proc.returncode, [r for r in rows if r["type"] == "case"], summaries[0]


def test_check_our_aio_server_has_no_findings() -> None:
    server = AioServer()
    try:
        code, cases, summary = _check_json("--target", f"127.0.0.1:{server.port}")
    finally:
        server.close()
    # Every built-in case exactly as expected; corpus cases (classified by parse(), which
    # the aio server uses too) may at most warn, so a new corpus file cannot break this.
    # A second header after the first is the aio server's own decision (its tests cover it);
    # check_reports_a_second_header_passed_through covers how check reports it.
    bad = [
        c
        for c in cases
        if c["verdict"] != "ok"
        and not c["name"].startswith("corpus:")
        and not c["name"].endswith("-second-header")
    ]
    assert bad == []
    assert summary["findings"] == 0
    assert code == 0
    names = {c["name"] for c in cases}
    assert {"v2-bad-crc32c", "v1-108-bytes", "no-header", "v2-local-aws-health-check"} <= names
    assert len(cases) >= 60


def test_check_lax_receiver_has_findings() -> None:
    lax = LaxReceiver()
    try:
        code, _, summary = _check_json("--target", f"127.0.0.1:{lax.port}", "--no-corpus")
        text_proc = run(
            "check", "--target", f"127.0.0.1:{lax.port}", "--no-corpus", "--timeout", "1"
        )
    finally:
        lax.close()
    assert code == 1
    assert summary["findings"] > 0
    assert {"v1-ip-leading-zero", "v2-command-2", "v1-lowercase-proxy"} <= set(
        summary["invalid_accepted"]
    )
    assert text_proc.returncode == 1
    assert b"FAIL  v1-ip-leading-zero" in text_proc.stdout
    assert b"invalid header accepted" in text_proc.stdout


def test_check_takes_cases_from_a_corpus_directory(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus" / "parse"
    corpus.mkdir(parents=True)
    (corpus / "good").write_bytes(V2_HEADER + b"payload")
    (corpus / "bad-family").write_bytes(V2_HEADER[:13] + b"\x41" + V2_HEADER[14:])
    (corpus / "unfinished").write_bytes(V2_HEADER[:20])  # skipped: a receiver would wait
    server = AioServer()
    try:
        code, cases, _ = _check_json(
            "--target", f"127.0.0.1:{server.port}", "--corpus", str(tmp_path / "corpus"),
            "--only", "corpus:",
        )  # fmt: skip
    finally:
        server.close()
    assert code == 0
    got = {c["name"]: (c["expect"], c["verdict"]) for c in cases}
    assert got == {
        "corpus:parse/good": ("accepted", "ok"),
        "corpus:parse/bad-family": ("refused", "ok"),
    }
    assert run("check", "--target", "127.0.0.1:1", "--corpus", "/nonexistent").returncode == 2


def test_check_unreachable_target_exit_3() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run("check", "--target", f"127.0.0.1:{port}", "--timeout", "1")
    assert proc.returncode == 3
    assert b"cannot connect" in proc.stderr
    assert_no_traceback(proc)


def test_check_baseline_refused_exit_3() -> None:
    """When even a plain valid header + probe gets no matching answer, the probe, --expect
    or the target is wrong: check says so instead of reporting noise."""
    lax = LaxReceiver()
    try:
        proc = run(
            "check",
            "--target",
            f"127.0.0.1:{lax.port}",
            "--expect",
            "^HTTP/1.1 200",
            "--timeout",
            "1",
        )
    finally:
        lax.close()
    assert proc.returncode == 3
    assert b"wrong --probe/--expect" in proc.stderr


# --------------------------------------------------------------------------- interop

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in _SBIN if (Path(d) / name).is_file()), None
    )
    if found is None:
        missing(f"{name} binary not found")
    assert found is not None
    return found


def _record(name: str, cases: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Print what check found (visible with -s / -rP) for the report."""
    print(
        f"\n== proxyproto check vs {name}: {summary['findings']} finding(s),"
        f" {summary['warnings']} warning(s)"
    )
    for c in cases:
        if c["verdict"] != "ok":
            print(f"  {c['verdict']:<8} {c['name']:<34} expected {c['expect']}, got {c['outcome']}")


@pytest.mark.interop
def test_check_against_haproxy(tmp_path: Path) -> None:
    haproxy = _binary("haproxy")
    port = free_ports(1)[0]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "global\n    maxconn 256\n    nbthread 1\n"
        "defaults\n    mode http\n    timeout connect 3s\n    timeout client 5s\n"
        "    timeout server 5s\n"
        f"frontend fe\n    bind 127.0.0.1:{port} accept-proxy\n"
        '    http-request return status 200 content-type text/plain lf-string "%[src]\\n"\n'
    )
    with process([haproxy, "-db", "-f", str(cfg)], [port], tmp_path, "haproxy"):
        code, cases, summary = _check_json("--target", f"127.0.0.1:{port}", "--no-corpus")
    _record("HAProxy accept-proxy", cases, summary)
    assert code in (0, 1)
    assert summary["cases"] == len(cases)
    verdicts = {c["name"]: c["verdict"] for c in cases}
    # What every receiver gets right, HAProxy included.
    for name in ("v2-tcp4", "v1-tcp4", "v2-bad-crc32c", "no-header", "v2-command-2"):
        assert verdicts[name] == "ok", name


@pytest.mark.interop
def test_check_against_nginx(tmp_path: Path) -> None:
    nginx = _binary("nginx")
    port = free_ports(1)[0]
    (tmp_path / "logs").mkdir()
    temp = "\n".join(
        f"    {k}_temp_path {tmp_path / k};"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "daemon off;\nmaster_process off;\n"
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log off;\n{temp}\n"
        f"    server {{\n        listen 127.0.0.1:{port} proxy_protocol;\n"
        '        location / { return 200 "$proxy_protocol_addr\\n"; }\n    }\n}\n'
    )
    argv = [nginx, "-p", f"{tmp_path}/", "-e", str(tmp_path / "error.log"), "-c", str(conf)]
    with process(argv, [port], tmp_path, "nginx"):
        code, cases, summary = _check_json("--target", f"127.0.0.1:{port}", "--no-corpus")
    _record("nginx listen proxy_protocol", cases, summary)
    assert code in (0, 1)
    verdicts = {c["name"]: c["verdict"] for c in cases}
    for name in ("v2-tcp4", "v1-tcp4", "no-header", "v2-bad-signature"):
        assert verdicts[name] == "ok", name


# --------------------------------------------------------------------------- hostile input

_HOSTILE_PATH = b"/tmp/\x1b[2J\x1b]52;c;aGk=\x07\rX\nsource       6.6.6.6:1\xc2\x9b\xe2\x80\xae\xff"
"""A UNIX path carrying ESC [2J, OSC 52 (clipboard write), BEL, CR, a newline forging a
``source`` line, a C1 control (U+009B), U+202E and a byte that is not UTF-8."""
_HOSTILE_VPCE = b"\x01vpce-\x1b[31m\x9b\x07"
_HOSTILE_HEADER = wire.v2(
    0x21,
    0x31,
    wire.unix_block(_HOSTILE_PATH, b"\x00abs\x1b[2J\xe2\x80\xae")
    + wire.tlv(0xEA, _HOSTILE_VPCE)
    + wire.tlv(0xE1, b"\x1b[31mred\n"),
)


def _assert_terminal_safe(out: bytes) -> None:
    """No control character but the newlines ending lines, no C1 control, no bidi override."""
    text_out = out.decode("utf-8")  # strict: the output itself is valid UTF-8
    for ch in text_out:
        assert ch == "\n" or ch.isprintable(), f"{ch!r} printed raw in {text_out!r}"


def test_decode_text_escapes_every_attacker_controlled_field() -> None:
    """Paths, abstract names, vpce id and text TLVs escaped visibly, even
    with a strict UTF-8 stdout; the forged newline cannot make a second ``source`` line."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run(
        [*PROXYPROTO, "decode", _HOSTILE_HEADER.hex()],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    _assert_terminal_safe(proc.stdout)
    out = proc.stdout.decode()
    assert [line for line in out.splitlines() if line.startswith("source")] == [
        r"source       /tmp/\x1b[2J\x1b]52;c;aGk=\x07\rX\nsource       6.6.6.6:1\u009b\u202e\xff"
    ]
    assert r"@abs\x1b[2J\u202e" in out


def test_text_escaping_is_unambiguous() -> None:
    """A literal backslash is doubled, so ``\\x1b`` typed by the peer never reads as ESC."""
    header = wire.v2(0x21, 0x31, wire.unix_block(b"/a\\x1b", b"/b\x1b"))
    out = run("decode", header.hex()).stdout.decode()
    assert r"source       /a\\x1b" in out
    assert r"destination  /b\x1b" in out


def test_scan_text_escapes_and_json_stays_lossless(tmp_path: Path) -> None:
    f = tmp_path / "hostile.bin"
    f.write_bytes(b"junk" + _HOSTILE_HEADER + b"tail")
    proc = run("scan", str(f))
    assert proc.returncode == 0, proc.stderr
    _assert_terminal_safe(proc.stdout)
    assert proc.stdout.count(b"\n") == 1
    rows = [json.loads(line) for line in run("scan", "--json", str(f)).stdout.splitlines()]
    header = rows[0]["header"]
    assert header["source"] == {"path": _HOSTILE_PATH.decode("utf-8", "surrogateescape")}
    assert header["hex"] == _HOSTILE_HEADER.hex()


def test_check_names_from_a_corpus_are_escaped(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "evil\x1b[2J\x07").write_bytes(V2_HEADER)
    lax = LaxReceiver()
    try:
        proc = run(
            "check", "--target", f"127.0.0.1:{lax.port}", "--corpus", str(corpus),
            "--only", "corpus:", "--timeout", "1", "--verbose",
        )  # fmt: skip
    finally:
        lax.close()
    assert proc.returncode == 0, proc.stderr
    _assert_terminal_safe(proc.stdout)
    assert rb"corpus:evil\x1b[2J\x07" in proc.stdout


# --------------------------------------------------------------------------- stdin as "-"


def test_decode_dash_reads_stdin() -> None:
    """``-`` means stdin, for the text and the JSON output."""
    proc = run("decode", "-", stdin=V2_HEADER)
    assert proc.returncode == 0, proc.stderr
    assert b"source       203.0.113.7:51234" in proc.stdout
    proc = run("decode", "--json", "-", stdin=V2_HEADER.hex().encode())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["header"]["source"]["port"] == 51234


def test_scan_dash_reads_stdin() -> None:
    blob = b"junk" + V2_HEADER + b"more" + pp.build_v1(("192.0.2.1", 1), ("192.0.2.2", 2))
    proc = run("scan", "--json", "-", stdin=blob)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["offset"] for r in rows] == [4, 4 + len(V2_HEADER) + 4]
    packets, expected = _capture_packets()
    proc = run("scan", "--json", "-", stdin=_pcap(packets))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["packet"] for line in proc.stdout.splitlines()] == sorted(expected)


# --------------------------------------------------------------------------- encode messages


def test_encode_ipv4_mapped_source_without_port_suggests_a_valid_form() -> None:
    """An IPv4-mapped source without a port gets a valid suggestion, never ``[::ffff]:1.2.3.4``."""
    proc = run("encode", "--source", "::ffff:1.2.3.4", "--destination", "[::1]:2")
    _, err = text(proc)
    assert proc.returncode == 2
    assert "[::ffff]" not in err
    assert "[::ffff:1.2.3.4]:PORT" in err


def test_encode_tlv_type_without_prefix_says_how_to_write_it() -> None:
    proc = run("encode", "--tlv", "E1=0102")
    _, err = text(proc)
    assert proc.returncode == 2
    assert "0xE1" in err, err
    assert "hex" in err


# --------------------------------------------------------------------------- chained proxies


def test_inspect_reports_a_second_header_right_after_the_first() -> None:
    """Two proxies in a row, each adding a header: the second header is reported."""
    inner = pp.build_v1(("198.51.100.9", 4000), ("10.0.0.5", 443))
    with proxyproto_server("inspect", "--listen", "127.0.0.1:0", "--count", "2") as (proc, addr):
        _, reply = http_get(addr, V2_HEADER + inner + b"GET / HTTP/1.0\r\n\r\n")
        http_get(addr, V2_HEADER + b"GET / HTTP/1.0\r\n\r\n")
        code, out, err = proc.finish()
    assert code == 0, err
    stacked, single = (json.loads(line) for line in out.splitlines())
    assert stacked["second_header"]["header"]["source"] == {"host": "198.51.100.9", "port": 4000}
    assert stacked["findings"] == ["second_header"]
    assert "second_header" not in single
    assert "findings" not in single
    # the HTTP request after both headers is still answered
    assert reply.startswith(b"HTTP/1.0 200 OK")


class StrictReceiver(LaxReceiver):
    """A receiver that parses one header strictly and refuses a second one after it."""

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(SOCK_TIMEOUT)
            parser = pp.Parser()
            try:
                while parser.header is None:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    parser.feed(chunk)
                rest = parser.trailing_data
                while pp.detect(rest) is None:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                if pp.detect(rest) in (1, 2):
                    return
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nstrict")
            except (OSError, pp.ProxyProtocolError):
                pass


@pytest.mark.parametrize(("receiver", "passed"), [(LaxReceiver, True), (StrictReceiver, False)])
def test_check_reports_a_second_header_passed_through(receiver: type, passed: bool) -> None:
    target = receiver()
    argv = ["--target", f"127.0.0.1:{target.port}", "--no-corpus", "--only", "second-header"]
    try:
        _, cases, summary = _check_json(*argv)
        human = run("check", *argv, "--timeout", "1")
    finally:
        target.close()
    assert [c["name"] for c in cases] == ["v2-second-header", "v1-second-header"]
    assert summary["second_header_passed"] is passed
    assert {c["verdict"] for c in cases} == ({"warning"} if passed else {"ok"})
    said = b"a second PROXY header right after the first reaches the application"
    assert (said in human.stdout) is passed


# --------------------------------------------------------------------------- scan as a stream


def _udp_capture_head() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _udp_record(i: int, payload: bytes) -> bytes:
    p = _ether(_ipv4("192.0.2.1", "192.0.2.2", 17, _udp(1000 + i % 50000, 53, payload)))
    return struct.pack("<IIII", 1700000000 + i, 0, len(p), len(p)) + p


def test_scan_capture_prints_results_as_they_are_found() -> None:
    """A result is printed while the capture is still being written."""
    proc = subprocess.Popen(
        [*PROXYPROTO, "scan", "--json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(_udp_capture_head() + _udp_record(1, V2_HEADER + b"dns?"))
        proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(SOCK_TIMEOUT)
        sel.close()
        assert ready, "no result while the capture is still open"
        row = json.loads(proc.stdout.readline())
        assert row["packet"] == 1
        assert row["transport"] == "udp"
        proc.stdin.close()
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def _peak_rss_kib(argv: list[str]) -> int:
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return usage.ru_maxrss


def test_scan_capture_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Memory bounded by the largest datagram, not the whole capture."""
    header = pp.build_v2(("203.0.113.9", 5353), ("10.0.0.5", 53), protocol=pp.Protocol.DGRAM)
    records = [_udp_record(i, header + b"q" * 40) for i in range(512)]
    small, large = tmp_path / "small.pcap", tmp_path / "large.pcap"
    small.write_bytes(_udp_capture_head() + b"".join(records))
    with large.open("wb") as f:
        f.write(_udp_capture_head())
        for _ in range(160):  # 81,920 datagrams, about 8 MiB
            f.write(b"".join(records))
    base = _peak_rss_kib([*PROXYPROTO, "scan", str(small)])
    grown = _peak_rss_kib([*PROXYPROTO, "scan", str(large)])
    assert grown - base < 8 * 1024, f"{base} KiB for 512 datagrams, {grown} KiB for 81,920"


def _terminal_lines(raw: bytes) -> list[str]:
    """What a terminal shows: ``\\r`` returns to column 0 and overwrites, ``ESC [K`` erases
    to the end of the line."""
    lines = []
    for line in raw.decode(errors="replace").split("\n"):
        cells: list[str] = []
        col = 0
        i = 0
        while i < len(line):
            if line[i] == "\r":
                col, i = 0, i + 1
            elif line.startswith("\x1b[K", i):
                del cells[col:]
                i += 3
            else:
                cells[col : col + 1] = [line[i]]
                col, i = col + 1, i + 1
        lines.append("".join(cells))
    return lines


def test_scan_progress_is_cleared_before_a_result_line(tmp_path: Path) -> None:
    """Progress and results on one terminal do not mix on a line."""
    f = tmp_path / "big.bin"
    with f.open("wb") as out:
        for _ in range(8):
            out.write(b"\0" * (1 << 20))
        out.write(V2_HEADER)
        out.write(b"\0" * (1 << 20))
    code, seen = _on_terminal([*PROXYPROTO, "scan", "--progress", str(f)], stdout_too=True)
    assert code == 0
    results = [line for line in _terminal_lines(seen) if "v2 PROXY" in line]
    assert len(results) == 1, seen
    assert "scan:" not in results[0], seen


def _stream_offsets(data: bytes, cuts: list[int], max_size: int = 4096) -> list[int]:
    """Offsets ``scan`` reports when *data* arrives in pieces cut at *cuts*."""
    from proxyproto_rs.cli.scan import _Options, _Stream

    stream = _Stream(_Options(verify=True, max_size=max_size, invalid=False))
    buf, base, found = b"", 0, []
    for end in [*cuts, len(data)]:
        buf = buf[stream.done - base :] + data[base + len(buf) : end]
        base = stream.done
        final = end == len(data)
        found += [at for at, _, _ in stream.advance(memoryview(buf), base, final=final)]
    return found


def test_scan_stream_in_pieces_finds_what_scan_finds_whole() -> None:
    """A header is reported exactly once whatever the cuts, even when an unfinished candidate
    comes before it or it straddles a cut; and never before it is final."""
    import random

    rng = random.Random(15)
    pieces = [
        V2_HEADER,
        pp.build_v1(("192.0.2.1", 1), ("192.0.2.2", 2)),
        b"PROXY TCP4 1.2.3.4 ",  # unfinished v1 candidate
        pp.V2_SIGNATURE + b"\x21\x11\x00",  # unfinished v2 candidate
        wire.v2(0x21, 0x11, b"", length=200) + b"x" * 150,  # its length covers what follows
        b"\x00" * 300,
        b"GET / HTTP/1.1\r\n",
    ]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12)))
        whole = [at for at, _ in pp.scan(data, max_size=256)]
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data), rng.randrange(0, 6))))
        assert _stream_offsets(data, cuts, max_size=256) == whole, (data, cuts)


def _tcp_capture(flows: list[tuple[int, list[tuple[int, bytes]]]]) -> bytes:
    """A pcap of TCP segments: per entry (source port, [(flags, payload)...]), interleaved."""
    seqs = {port: 1000 for port, _ in flows}
    packets = []
    for step in range(max(len(segs) for _, segs in flows)):
        for port, segs in flows:
            if step < len(segs):
                flags, payload = segs[step]
                packets.append(
                    _ether(
                        _ipv4(
                            "127.0.0.1", "127.0.0.2", 6, _tcp(port, 80, seqs[port], payload, flags)
                        )
                    )
                )
                seqs[port] += len(payload) + (1 if flags & 0x02 else 0)
    return _pcap(packets)


def test_scan_tcp_flow_headers_deep_in_the_stream_and_after_a_fin(tmp_path: Path) -> None:
    """A header far into a flow, split over segments, is found once and located in the
    file; a header at the start of a flow is reported as soon as it is complete."""
    body = b"x" * 5000
    h2 = V2_HEADER
    f = tmp_path / "tcp.pcap"
    f.write_bytes(
        _tcp_capture(
            [
                (40000, [(0x02, b""), (0x18, body[:3000]), (0x18, body[3000:] + h2[:7]),
                         (0x18, h2[7:] + b"tail"), (0x11, b"")]),
                (40001, [(0x02, b""), (0x18, h2), (0x19, b"")]),
            ]
        )
    )  # fmt: skip
    rows = [json.loads(line) for line in run("scan", "--json", str(f)).stdout.splitlines()]
    assert [(r["flow"].split(" > ")[0], r["stream_offset"]) for r in rows] == [
        ("127.0.0.1:40001", 0),
        ("127.0.0.1:40000", 5000),
    ]
    data = f.read_bytes()
    for row in rows:
        assert data[row["offset"] : row["offset"] + 7] == h2[:7]


def test_scan_tcp_retransmission_after_fin_and_port_reuse(tmp_path: Path) -> None:
    """Bytes retransmitted after a FIN are not reported again; a SYN on the same ports
    starts a new stream, whose header is reported too."""
    h2 = V2_HEADER

    def seg(seq: int, payload: bytes, flags: int = 0x18) -> bytes:
        return _ether(_ipv4("127.0.0.1", "127.0.0.2", 6, _tcp(40000, 80, seq, payload, flags)))

    f = tmp_path / "reuse.pcap"
    f.write_bytes(
        _pcap(
            [
                seg(99, b"", 0x02),
                seg(100, h2),
                seg(100 + len(h2), b"", 0x11),  # FIN
                seg(100, h2),  # a late retransmission
                seg(5000, b"", 0x02),  # the ports reused for a new connection
                seg(5001, b"PROXY TCP4 1.2.3.4 " + h2),  # held: a candidate comes first
                seg(7000, b"", 0x02),  # reused again without a FIN: that stream is over
                seg(7001, h2 + b"GET / HTTP/1.1\r\n"),
            ]
        )
    )
    rows = [json.loads(line) for line in run("scan", "--json", str(f)).stdout.splitlines()]
    assert [(r["packet"], r["stream_offset"]) for r in rows] == [(2, 0), (6, 19), (8, 0)]


def test_text_output_on_an_ascii_terminal_never_raises() -> None:
    """A printable character the stream cannot encode is written as ``\\uHHHH``, distinct
    from ``\\xHH`` (a byte that is not UTF-8)."""
    header = wire.v2(0x21, 0x31, wire.unix_block("/tmp/é".encode(), b"/tmp/\xe9"))
    proc = subprocess.run(
        [*PROXYPROTO, "decode", header.hex()],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "ascii:strict"},
        stdin=subprocess.DEVNULL,
    )
    assert_no_traceback(proc)
    assert proc.returncode == 0
    assert rb"source       /tmp/\u00e9" in proc.stdout
    assert rb"destination  /tmp/\xe9" in proc.stdout


def test_scan_dash_on_a_terminal_is_a_usage_error() -> None:
    master, slave = os.openpty()
    try:
        proc = subprocess.run(
            [*PROXYPROTO, "scan", "-"],
            stdin=slave,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 2
    assert b"stdin is a terminal" in proc.stderr
