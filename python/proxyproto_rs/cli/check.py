"""``proxyproto check``: conformance-check someone else's PROXY receiver.

Every case of the battery (``_cases``) goes to the target on its own connection, followed by
``--probe``; the first answer (or its absence) decides "accepted" or "refused", and the
verdict weighs that against what the spec asks. A valid baseline header is tried first so a
wrong probe or target is reported as such instead of as findings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from proxyproto_rs._core import build_v1, build_v2
from proxyproto_rs.cli._args import (
    Subcommands,
    add_command,
    hostport_arg,
    positive_float,
    positive_int,
    unescape,
)
from proxyproto_rs.cli._cases import D4, S4, SECOND_HEADER, Case, builtin_cases, corpus_cases
from proxyproto_rs.cli._common import EXIT_IO, EXIT_NO, EXIT_OK, JSON, PROG, IOFailure, UsageError
from proxyproto_rs.cli._render import err, escape, format_endpoint, json_line, out

CHECK_EPILOG = r"""
Sends each case of a battery to the target on its own connection: a PROXY header
(valid or deliberately broken, each named after the rule it tests), then --probe.
A case is "accepted" when the target sends any byte back (or bytes matching
--expect), "refused" when it closes, resets or stays silent for --timeout seconds.
Findings: an invalid header accepted, or a valid one refused, at level "must" (the
spec's MUST); level "should" cases give warnings (findings with --strict); level
"may" cases are reported only. Cases also come from fuzz/corpus when present
(--corpus DIR; each file is classified by this package's strict parser).

examples:
  proxyproto check --target 127.0.0.1:8080
  proxyproto check --target 127.0.0.1:25 --probe 'EHLO check\r\n' --expect '^2'
  proxyproto check --target 127.0.0.1:8080 --json | jq 'select(.verdict != "ok")'
  proxyproto check --target 127.0.0.1:8080 --versions 2     # a v2-only receiver

exit status: 0 no findings, 1 findings, 2 bad usage, 3 target unreachable or it
refused the valid baseline header (wrong probe, or no PROXY protocol there).
"""

DEFAULT_PROBE: Final = r"GET / HTTP/1.0\r\nHost: proxyproto-check\r\n\r\n"


@dataclass
class Outcome:
    accepted: bool
    how: str
    """``response``, ``closed``, ``reset``, ``timeout`` or ``unexpected-response``."""
    response: bytes = b""


async def run_case(
    target: tuple[str, int] | str,
    case: Case,
    probe: bytes,
    wait: float,
    expect: bytes | None,
) -> Outcome:
    """One connection: the case's bytes, the probe, then wait for the first answer."""
    reader, writer = await _connect(target, wait)
    try:
        try:
            await _send(writer, case, probe)
        except OSError:
            return Outcome(False, "reset")
        return await _answer(reader, wait, expect)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _connect(
    target: tuple[str, int] | str, wait: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        async with asyncio.timeout(wait):
            if isinstance(target, str):
                return await asyncio.open_unix_connection(target)
            return await asyncio.open_connection(target[0], target[1])
    except TimeoutError:
        raise IOFailure(f"connecting to {format_endpoint(target)} timed out") from None
    except OSError as exc:
        raise IOFailure(
            f"cannot connect to {format_endpoint(target)}: {exc.strerror or exc}"
        ) from None


async def _send(writer: asyncio.StreamWriter, case: Case, probe: bytes) -> None:
    """The case's bytes (in its chunks, 0.2 s apart, when it has some), then the probe."""
    for i, chunk in enumerate(case.chunks):
        if i:
            await asyncio.sleep(0.2)
        writer.write(chunk)
        await writer.drain()
    writer.write(probe if case.chunks else case.data + probe)
    await writer.drain()


async def _answer(reader: asyncio.StreamReader, wait: float, expect: bytes | None) -> Outcome:
    """Accepted if the target answers (what *expect* matches) within *wait* seconds."""
    received = bytearray()
    try:
        async with asyncio.timeout(wait):
            while chunk := await reader.read(4096):
                received += chunk
                if expect is None or _matches(expect, bytes(received)):
                    break
    except TimeoutError:
        if not received:
            return Outcome(False, "timeout")
    except OSError:
        if not received:
            return Outcome(False, "reset")
    data = bytes(received)
    if not data:
        return Outcome(False, "closed")
    if expect is not None and not _matches(expect, data):
        return Outcome(False, "unexpected-response", data)
    return Outcome(True, "response", data)


def _matches(pattern: bytes, data: bytes) -> bool:
    return re.search(pattern, data) is not None


def verdict(case: Case, outcome: Outcome, strict: bool) -> str:
    """``ok``, ``finding``, ``warning`` or ``info``."""
    if outcome.accepted == case.valid:
        return "ok"
    if case.level == "must" or (case.level == "should" and strict):
        return "finding"
    if case.level == "should":
        return "warning"
    return "info"


def _short(data: bytes, limit: int = 60) -> str:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    text = repr(first[:limit])[1:]
    return text + ("..." if len(first) > limit else "")


def _check_cases(args: argparse.Namespace, versions: set[int]) -> list[Case]:
    cases = builtin_cases()
    corpus = _corpus_dir(args)
    if corpus is not None:
        cases += corpus_cases(corpus, args.corpus_limit)
    if args.only:
        cases = [c for c in cases if any(sel in c.name for sel in args.only)]
        if not cases:
            raise UsageError(f"--only {' '.join(args.only)} selects no case")
    # Valid headers of a version the target is not configured for are not expected to pass.
    return [
        replace(c, level="may", note=c.note + " (version off)")
        if c.valid and c.version and c.version not in versions
        else c
        for c in cases
    ]


def _corpus_dir(args: argparse.Namespace) -> Path | None:
    """``--corpus``, else the checkout's corpus (from the current directory, or beside an
    editable install) when there is one; None with ``--no-corpus``."""
    if args.corpus is not None:
        if not Path(args.corpus).is_dir():
            raise UsageError(f"--corpus {args.corpus}: not a directory")
        return None if args.no_corpus else Path(args.corpus)
    if args.no_corpus:
        return None
    candidates = (Path("fuzz/corpus"), Path(__file__).resolve().parents[3] / "fuzz/corpus")
    return next((p for p in candidates if p.is_dir()), None)


async def _check(args: argparse.Namespace, cases: list[Case]) -> int:
    probe = unescape(args.probe)
    expect = None if args.expect is None else args.expect.encode()
    versions = {int(x) for x in args.versions.split(",") if x.strip()}
    # Baseline: a plain valid header of an enabled version must be accepted, or the
    # target, probe or --expect is wrong and every result would be noise.
    version = 2 if 2 in versions else 1
    base = build_v2(S4, D4) if version == 2 else build_v1(S4, D4)
    baseline = await run_case(
        args.target, Case("baseline", base, True, "must", ""), probe, args.timeout, expect
    )
    if not baseline.accepted:
        err(
            f"{PROG} check: {format_endpoint(args.target)} {baseline.how} on a valid"
            f" v{version} header + probe: wrong --probe/--expect, or no PROXY protocol"
            " receiver there"
        )
        return EXIT_IO

    sem = asyncio.Semaphore(args.concurrency)

    async def one(case: Case) -> tuple[Case, Outcome]:
        async with sem:
            return case, await run_case(args.target, case, probe, args.timeout, expect)

    results = await asyncio.gather(*(one(c) for c in cases))
    if not args.json:
        out(
            f"check {format_endpoint(args.target)}: {len(cases)} cases, probe"
            f" {_short(probe)!s}, timeout {args.timeout} s"
        )
    for case, outcome in results:
        v = verdict(case, outcome, args.strict)
        if args.json:
            json_line(_case_json(case, outcome, v))
        elif v != "ok" or args.verbose:
            out(_case_line(case, outcome, v))
    summary = _summary(args, results)
    if args.json:
        json_line(summary)
    else:
        if summary["second_header_passed"]:
            out("a second PROXY header right after the first reaches the application")
        out(
            f"{summary['findings']} finding(s), {summary['warnings']} warning(s),"
            f" {summary['info']} info, {summary['ok']} ok"
        )
    return EXIT_NO if summary["findings"] else EXIT_OK


def _case_json(case: Case, outcome: Outcome, v: str) -> JSON:
    return {
        "type": "case",
        "name": case.name,
        "expect": "accepted" if case.valid else "refused",
        "outcome": "accepted" if outcome.accepted else "refused",
        "how": outcome.how,
        "verdict": v,
        "level": case.level,
        "rule": case.rule,
        "note": case.note,
        "response": _short(outcome.response) if outcome.response else None,
        "hex": case.data.hex(),
    }


def _case_line(case: Case, outcome: Outcome, v: str) -> str:
    mark = {"ok": "ok  ", "finding": "FAIL", "warning": "warn", "info": "info"}[v]
    if v != "ok":
        what = "valid header refused" if case.valid else "invalid header accepted"
    else:
        what = "accepted" if outcome.accepted else "refused"
    extra = f" -> {_short(outcome.response)}" if outcome.response else f" ({outcome.how})"
    note = f" {case.note}" if case.note and v != "ok" else ""
    return (
        f"  {mark}  {escape(case.name):<32} {what}{extra}  [{case.level}, rule {case.rule}]{note}"
    )


def _summary(args: argparse.Namespace, results: list[tuple[Case, Outcome]]) -> JSON:
    verdicts = [(c, o, verdict(c, o, args.strict)) for c, o in results]
    counts = {
        v: sum(1 for *_, x in verdicts if x == v) for v in ("ok", "finding", "warning", "info")
    }
    return {
        "type": "summary",
        "target": format_endpoint(args.target),
        "cases": len(results),
        "ok": counts["ok"],
        "findings": counts["finding"],
        "warnings": counts["warning"],
        "info": counts["info"],
        "invalid_accepted": sorted(
            c.name for c, o, v in verdicts if not c.valid and o.accepted and v == "finding"
        ),
        "valid_refused": sorted(
            c.name for c, o, v in verdicts if c.valid and not o.accepted and v == "finding"
        ),
        "second_header_passed": any(
            o.accepted for c, o, _ in verdicts if c.name.endswith(SECOND_HEADER)
        ),
    }


def _validate(args: argparse.Namespace) -> None:
    parts = [x.strip() for x in args.versions.split(",")]
    if not parts or any(x not in ("1", "2") for x in parts):
        raise UsageError(f"--versions: expected 1, 2 or 1,2, got {args.versions!r}")
    if args.expect is not None:
        try:
            re.compile(args.expect.encode())
        except re.error as exc:
            raise UsageError(f"--expect: bad regular expression: {exc}") from None


def run(args: argparse.Namespace) -> int:
    _validate(args)
    versions = {int(x) for x in args.versions.split(",") if x.strip()}
    return asyncio.run(_check(args, _check_cases(args, versions)))


def add_parser(subs: Subcommands) -> None:
    p = add_command(
        subs,
        "check",
        help="conformance-check someone else's PROXY receiver",
        description="Send a battery of valid and invalid PROXY headers to a receiver and"
        " report the invalid ones it accepted and the valid ones it refused.",
        epilog=CHECK_EPILOG,
    )
    p.add_argument(
        "--target", type=hostport_arg, required=True, metavar="ADDR", help="HOST:PORT or path"
    )
    p.add_argument(
        "--probe",
        default=DEFAULT_PROBE,
        help=r"bytes sent after each header; \r \n \t \0 \xHH escapes (default: an HTTP"
        " GET)",
    )
    p.add_argument(
        "--expect", metavar="REGEX", help="a response counts as accepted only if it matches"
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=2.0,
        metavar="S",
        help="seconds to wait for an answer (default 2)",
    )
    p.add_argument(
        "--versions",
        default="1,2",
        metavar="1,2",
        help="versions the target is configured to accept (default 1,2)",
    )
    p.add_argument("--strict", action="store_true", help="count 'should' warnings as findings")
    p.add_argument("--corpus", metavar="DIR", help="corpus directory (default: fuzz/corpus)")
    p.add_argument("--no-corpus", action="store_true", help="built-in cases only")
    p.add_argument(
        "--corpus-limit", type=positive_int, default=200, metavar="N", help="default 200"
    )
    p.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only cases whose name contains NAME"
    )
    p.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="default 8")
    p.add_argument("--json", action="store_true", help="JSON lines: one per case, then a summary")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the cases that pass")
    p.set_defaults(func=run)
