"""Fuzz-corpus regression: every file under fuzz/corpus/ replayed through the Python API.

The corpus holds the captured HAProxy/nginx vectors, every known crash shape of PROXY
protocol parsers (PEERS.md: CVE-2019-14243, CVE-2021-23351, TLVs crossing the end, ...),
every input that ever crashed a fuzz target (named after the bug), and what the fuzzers
found that adds coverage. Whatever a file holds, the Python API must:

- raise nothing but ProxyProtocolError subclasses (``parse``: IncompleteHeaderError or
  InvalidHeaderError; ``Parser.feed``: InvalidHeaderError);
- give the same outcome from ``parse``, a ``Parser`` fed the whole buffer, a ``Parser`` fed
  one byte at a time, and (split_feed/py_parser/py_aio files) a ``Parser`` fed the chunks
  the file draws: the same error class, kind and offset, or an equal header;
- for a parsed header: ``to_bytes()`` equals the input's first ``length`` bytes, the
  header re-parses equal, and the bytes after it are the ``trailing_data``.

Formats (fuzz/seeds.py): parse/ and py_parse/ hold wire bytes (py_parse also draws options
from the last byte); split_feed/, py_parser/ and py_aio/ a control byte, cut lengths, then
the stream; crc32c/ a 6-byte prefix then data; roundtrip/ and py_build/ structured inputs
(replayed as raw bytes: any bytes must be handled). Options are decoded as the targets do.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types
from typing import Any

import proxyproto_rs as pp
import proxyproto_rs.aio
import proxyproto_rs.sync
import pytest

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())
SPLIT_FORMAT = {"split_feed", "py_parser", "py_aio"}


def _load_split_feed() -> Any:
    """fuzz/atheris/_split_feed.py, the one decoder of the split_feed format (not a package)."""
    path = CORPUS.parent / "atheris" / "_split_feed.py"
    spec = importlib.util.spec_from_file_location("_split_feed", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


split_feed = _load_split_feed()

# Named files that must stay in the corpus (seeds of known crash shapes and found crashes).
REQUIRED = {
    "parse": [
        "cve-2019-14243-truncated-address-tcp4-len0",
        "cve-2021-23351-unbounded-v1-unknown",
        "tlv-crossing-the-end",
        "tlv-zero-length-final",
        "tlv-ssl-4-bytes",
        "crc32c-first-valid",
        "aws-nlb-local-health-check",
        "local-with-tlvs-no-address-block",
        "fuzz-refused-version-kind-depends-on-length",
        "fuzz-nested-ssl-tlv-recursion-stack-overflow",
        "vector-haproxy-v2-tls-tlvs",
        "vector-nginx-v1-tcp4",
    ],
    "split_feed": ["header-split-at-byte-013", "fuzz-refused-version-kind-depends-on-length"],
}


def decode(path: pathlib.Path) -> tuple[bytes, list[int], dict[str, Any]]:
    """The stream, the chunk lengths and the parse options a corpus file stands for."""
    data = path.read_bytes()
    target = path.parent.name
    if target in SPLIT_FORMAT and data:
        _, cuts, stream, opts = split_feed.decode(data, haproxy_limits=target != "py_aio")
        return stream, list(cuts), opts
    return data, [], {}


def by_parse(data: bytes, opts: dict[str, Any]) -> tuple[Any, ...]:
    try:
        h = pp.parse(data, **opts)
    except pp.IncompleteHeaderError:
        return ("incomplete",)
    except pp.InvalidHeaderError as e:
        return ("error", type(e), e.kind, e.offset)
    raw = h.to_bytes()
    assert raw == data[: h.length], "to_bytes() is not the input prefix"
    assert pp.parse(raw, **opts) == h, "header bytes do not re-parse equal"
    return ("header", h, data[h.length :])


def by_parser(chunks: list[bytes], opts: dict[str, Any]) -> tuple[Any, ...]:
    p = pp.Parser(**opts)
    for chunk in chunks:
        try:
            p.feed(chunk)
        except pp.InvalidHeaderError as e:
            assert not p.done
            return ("error", type(e), e.kind, e.offset)
    if p.header is None:
        return ("incomplete",)
    return ("header", p.header, p.trailing_data)


def cut(stream: bytes, lengths: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for n in lengths:
        chunks.append(stream[pos : pos + n])
        pos += n
    return [*chunks, stream[pos:]]


def test_corpus_is_present_and_small() -> None:
    names = {(p.parent.name, p.name) for p in FILES}
    missing = [(t, n) for t, ns in REQUIRED.items() for n in ns if (t, n) not in names]
    assert not missing, f"named corpus files missing: {missing}"
    assert len(FILES) <= 1500
    assert all(p.stat().st_size <= 70_000 for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_corpus_file(path: pathlib.Path) -> None:
    stream, lengths, opts = decode(path)
    for options in (opts, {**opts, "max_size": 65551}):
        expected = by_parse(stream, options)
        if expected[0] == "error":
            kind, offset = expected[2], expected[3]
            assert kind, "an error without a kind"
            assert offset == -1 or 0 <= offset < len(stream), (kind, offset)
        assert by_parser([stream], options) == expected, "Parser whole != parse"
        bytewise = [stream[i : i + 1] for i in range(len(stream))]
        assert by_parser(bytewise, options) == expected, "Parser byte by byte != parse"
        if lengths:
            assert by_parser(cut(stream, lengths), options) == expected, "drawn chunks != parse"


# Inputs the fuzzers found, kept as named regression tests.


def test_fuzz_local_address_block_frames_as_bad_crc() -> None:
    """fuzz/corpus/parse/fuzz-local-address-block-frames-as-bad-crc: a LOCAL header whose
    address block happens to frame from byte 16 as a (wrong) CRC32C TLV. D3 reads after the
    address block unless a CRC32C verifies, so it parses with no TLVs; and the builder writes
    no addresses into LOCAL headers (they would be ignored)."""
    data = (CORPUS / "parse" / "fuzz-local-address-block-frames-as-bad-crc").read_bytes()
    assert pp.parse(data).tlvs == ()
    with pytest.raises(pp.BuildError, match="carry no addresses"):
        pp.build_v2(("3.0.4.170", 2), ("187.204.221.4", 0xEEFF), command=pp.Command.LOCAL)


@pytest.mark.parametrize("field", ["authority", "netns", "aws_vpce_id"])
def test_fuzz_str_surrogate_is_a_build_error(field: str) -> None:
    with pytest.raises(pp.BuildError):
        pp.build_v2(("1.2.3.4", 1), ("5.6.7.8", 2), **{field: "\ud800"})


# --- the atheris harnesses' own oracles, without atheris ------------------------------------

HARNESS_CORPORA = {
    "py_parse": ["py_parse", "parse"],
    "py_parser": ["py_parser", "split_feed"],
    "py_aio": ["py_aio", "split_feed"],
    "py_spp": ["spp"],
}
"""Harness -> corpus folders in its input format (py_build needs atheris' data provider)."""


@pytest.mark.parametrize("harness", sorted(HARNESS_CORPORA))
def test_harness_accepts_its_corpus(harness: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each harness's ``test_one`` (its assertions are the fuzzer's oracle) passes on every
    corpus input of its format: a harness that the code under test outgrew fails here, not
    only in a fuzzing run."""
    atheris_dir = CORPUS.parent / "atheris"
    common = types.ModuleType("_common")
    common.main = lambda *_args: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_common", common)
    monkeypatch.setitem(sys.modules, "_split_feed", split_feed)
    path = atheris_dir / f"{harness}.py"
    spec = importlib.util.spec_from_file_location(f"harness_{harness}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.setup(pp)
    inputs = [p for folder in HARNESS_CORPORA[harness] for p in sorted((CORPUS / folder).glob("*"))]
    assert inputs
    try:
        for case in inputs:
            try:
                module.test_one(case.read_bytes())
            except BaseException as exc:
                where = f"{harness} on {case.relative_to(CORPUS)}"
                raise AssertionError(f"{where}: {exc!r}") from exc
    finally:
        loop = getattr(module, "LOOP", None)  # py_aio's event loop
        if loop is not None:
            loop.close()
