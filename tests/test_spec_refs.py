"""Every rule and decision the project cites resolves to an entry of docs/spec.md.

Strategy: docs/spec.md numbers its entries as bold lead-ins at the start of a line
(``**12. Ports**``, ``**D4. ...**``, ``**S2. ...**``). The scanner reads the repository's
code, tests, fuzz sources and docs for citations in a citation context only: the word
"rule"/"rules" followed by numbers (``rule 12``, ``rules 24, 25``, ``rules 8-17``,
``Rule 34/46``), and ``D<n>`` standing alone (not inside a word, a hex literal or a
quoted string such as a dict key). Each cited number must be an entry of the page, and the
page's own numbering must run 1, 2, 3, ... without gaps. The check battery of the CLI
carries rule numbers as data (``"30, 43 (D4)"``); those are resolved the same way.

The scanning functions take text and paths, so the tests below can plant a bad citation in a
temporary file and see it reported.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec.md"

# What is scanned: (folder or file, file name patterns). Build output, the fuzz corpus and
# virtual environments are left out below.
SCANNED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rust", ("*.rs",)),
    ("python", ("*.py", "*.pyi")),
    ("tests", ("*.py", "*.md", "*.txt")),
    ("fuzz", ("*.rs", "*.py", "*.sh", "*.md", "*.toml")),
    ("docs", ("*.md",)),
    ("benchmarks", ("*.py", "*.md", "*.rs", "*.c")),
    ("examples", ("*.rs", "*.py")),
    ("README.md", ("README.md",)),
    ("CHANGELOG.md", ("CHANGELOG.md",)),
)
SKIPPED_PARTS = frozenset({"target", "corpus", "artifacts", "__pycache__", "node_modules"})

# ``**12. Title**``, ``**D4. Title**``, ``**S2. Title**`` at the start of a line.
ENTRY = re.compile(r"^\*\*(?P<prefix>[DS]?)(?P<number>\d+)\. ", re.MULTILINE)

# "rule 12", "Rules 21-23, 27", "rules 10 and 12", "Rule 34/46": the numbers after the word.
_DASH = "-\u2013"  # hyphen, en dash
_NUMBER_LIST = rf"\d+(?:\s*(?:[{_DASH}]|,|/|\band\b|\bor\b)\s*\d+)*"
RULE_CITATION = re.compile(rf"\b[Rr]ules?\s+(?P<numbers>{_NUMBER_LIST})")
# "D4", "D1-D8", "(D2, D3)"; not "0xD4", "\xD4", "AD4", "D4x" or a quoted "D6".
DECISION_CITATION = re.compile(
    rf"(?<![\w\"'\\])D(?P<first>\d+)(?:\s*[{_DASH}]\s*D(?P<last>\d+))?(?![\w\"'])"
)


@dataclass(frozen=True)
class Citation:
    """One cited number: ``kind`` is ``"rule"`` or ``"decision"``."""

    where: str
    line: int
    kind: str
    number: int
    text: str


@dataclass(frozen=True)
class Entries:
    """The numbered entries of the spec page."""

    rules: tuple[int, ...]
    decisions: tuple[int, ...]
    spp: tuple[int, ...]


def spec_entries(text: str) -> Entries:
    """The entry numbers of a spec page, in the order they appear."""
    found: dict[str, list[int]] = {"": [], "D": [], "S": []}
    for m in ENTRY.finditer(text):
        found[m["prefix"]].append(int(m["number"]))
    return Entries(tuple(found[""]), tuple(found["D"]), tuple(found["S"]))


def _expand(numbers: str) -> list[int]:
    """``"21-23, 27"`` -> [21, 22, 23, 27]; a backwards range gives its two ends."""
    out: list[int] = []
    for part in re.split(r"\s*(?:,|/|\band\b|\bor\b)\s*", numbers):
        ends = [int(n) for n in re.split(rf"\s*[{_DASH}]\s*", part) if n]
        if len(ends) == 2 and ends[0] < ends[1]:
            out.extend(range(ends[0], ends[1] + 1))
        else:
            out.extend(ends)
    return out


def citations_in(text: str, where: str = "<text>") -> Iterator[Citation]:
    """Every rule and decision number cited in ``text``."""
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in RULE_CITATION.finditer(line):
            for n in _expand(m["numbers"]):
                yield Citation(where, lineno, "rule", n, m[0])
        for m in DECISION_CITATION.finditer(line):
            first = int(m["first"])
            last = int(m["last"]) if m["last"] else first
            for n in range(first, max(first, last) + 1):
                yield Citation(where, lineno, "decision", n, m[0])


def scanned_files(root: Path) -> Iterator[Path]:
    """The files whose citations must resolve, in a stable order."""
    seen: set[Path] = set()
    for place, patterns in SCANNED:
        base = root / place
        if base.is_file():
            candidates: Iterable[Path] = [base]
        elif base.is_dir():
            candidates = (p for pattern in patterns for p in base.rglob(pattern))
        else:
            continue
        for path in sorted(candidates):
            parts = path.relative_to(root).parts
            if path in seen or SKIPPED_PARTS.intersection(parts) or parts[0].startswith(".venv"):
                continue
            if any(part.startswith(".") for part in parts):
                continue
            seen.add(path)
            yield path


def unresolved(citations: Iterable[Citation], entries: Entries) -> list[Citation]:
    """The citations that name no entry of the spec page."""
    known = {"rule": set(entries.rules), "decision": set(entries.decisions)}
    return [c for c in citations if c.number not in known[c.kind]]


def unresolved_in_files(paths: Iterable[Path], entries: Entries, root: Path) -> list[Citation]:
    """The citations in ``paths`` that name no entry of the spec page."""
    bad: list[Citation] = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        bad.extend(unresolved(citations_in(text, where), entries))
    return bad


def numbering_problems(entries: Entries) -> list[str]:
    """Gaps, repeats or disorder in the page's numbering (each series starts at 1)."""
    problems = []
    for name, series in (("rule", entries.rules), ("D", entries.decisions), ("S", entries.spp)):
        if not series:
            problems.append(f"no {name} entries")
        elif list(series) != list(range(1, len(series) + 1)):
            problems.append(f"{name} entries are not 1..{len(series)} in order: {series}")
    return problems


def _describe(bad: Iterable[Citation]) -> str:
    return "\n".join(f"{c.where}:{c.line}: {c.text!r} cites {c.kind} {c.number}" for c in bad)


# --------------------------------------------------------------------------------------------
# The repository


@pytest.fixture(scope="module")
def entries() -> Entries:
    return spec_entries(SPEC.read_text(encoding="utf-8"))


def test_spec_numbering_is_contiguous(entries: Entries) -> None:
    assert numbering_problems(entries) == []
    # The numbers code and tests have cited since the first release stay where they are.
    assert len(entries.rules) >= 46
    assert len(entries.decisions) >= 8


def test_every_rule_names_its_source(entries: Entries) -> None:
    """Each numbered rule names the section of proxy-protocol.txt it restates, or says it
    is an observation of HAProxy's code rather than spec text."""
    text = SPEC.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=\*\*\d+\. )", text)
    sourced = {
        int(m[1])
        for block in blocks
        if (m := re.match(r"\*\*(\d+)\. ", block))
        and re.search(r"§\d|HAProxy's (?:source|`src/)", block.split("\n\n")[0])
    }
    assert set(entries.rules) - sourced == set()


def test_every_citation_in_the_repository_resolves(entries: Entries) -> None:
    files = list(scanned_files(ROOT))
    assert any(p.name == "v2.rs" for p in files), "the scan found no Rust sources"
    bad = unresolved_in_files(files, entries, ROOT)
    assert not bad, "citations with no entry in docs/spec.md:\n" + _describe(bad)


def test_the_repository_does_cite(entries: Entries) -> None:
    """The scan sees the citations it is meant to check (a broken regex would pass the test
    above by finding nothing)."""
    found = {
        (c.kind, c.number)
        for path in scanned_files(ROOT)
        for c in citations_in(path.read_text(encoding="utf-8", errors="replace"))
    }
    assert ("rule", 34) in found
    assert ("decision", 4) in found
    assert len(found) > 40


def _check_cases() -> list[object] | None:
    """The CLI's check battery, wherever the CLI keeps it (None if it has none)."""
    for module, attribute in (
        ("proxyproto_rs.cli._cases", "builtin_cases"),
        ("proxyproto_rs.cli.cases", "builtin_cases"),
        ("proxyproto_rs.cli", "builtin_cases"),
    ):
        try:
            found = getattr(importlib.import_module(module), attribute, None)
        except ImportError:
            continue
        if callable(found):
            cases = found()
            return list(cases) if isinstance(cases, Iterable) else None
        if isinstance(found, Iterable):
            return list(found)
    return None


def test_check_battery_rules_resolve(entries: Entries) -> None:
    cases = _check_cases()
    if cases is None:
        pytest.skip("the CLI has no check battery to read")
    bad: list[Citation] = []
    cited = 0
    for case in cases:
        rule = getattr(case, "rule", None)
        if not isinstance(rule, str):
            continue
        name = f"check case {getattr(case, 'name', '?')}"
        # The field holds bare numbers ("30, 43 (D4)"): read them as if after "rules".
        bare = DECISION_CITATION.sub("", rule)
        found = list(citations_in(f"rules {bare}", name)) if re.search(r"\d", bare) else []
        found += [c for c in citations_in(rule, name) if c.kind == "decision"]
        cited += len(found)
        bad.extend(unresolved(found, entries))
    assert cited > 20, "the check battery's rule fields were not read"
    assert not bad, _describe(bad)


# --------------------------------------------------------------------------------------------
# The scanner itself: it must find what it is meant to find, and fail when it should


def test_planted_bad_citations_are_reported(tmp_path: Path, entries: Entries) -> None:
    past_rules = max(entries.rules) + 1
    past_decisions = max(entries.decisions) + 1
    planted = tmp_path / "planted.rs"
    planted.write_text(
        f"// Rejected at once (rule {past_rules}).\n"
        f"// See rules 3, {past_rules + 1} and D{past_decisions}.\n"
        "// Fine: rule 12, D4.\n",
        encoding="utf-8",
    )
    bad = unresolved_in_files([planted], entries, tmp_path)
    assert [(c.line, c.kind, c.number) for c in bad] == [
        (1, "rule", past_rules),
        (2, "rule", past_rules + 1),
        (2, "decision", past_decisions),
    ]
    assert "planted.rs:1:" in _describe(bad)


def test_citation_forms() -> None:
    def cited(text: str) -> list[tuple[str, int]]:
        return [(c.kind, c.number) for c in citations_in(text)]

    assert cited("SPEC rule 5") == [("rule", 5)]
    assert cited("(rules 24, 25)") == [("rule", 24), ("rule", 25)]
    assert cited("Rules 21-23, 27:") == [("rule", n) for n in (21, 22, 23, 27)]
    assert cited("rules 10 and 12") == [("rule", 10), ("rule", 12)]
    assert cited("rules 8\u201310") == [("rule", 8), ("rule", 9), ("rule", 10)]
    assert cited("Rule 34/46:") == [("rule", 34), ("rule", 46)]
    assert cited("(D2, D3)") == [("decision", 2), ("decision", 3)]
    assert cited("decisions D1-D3") == [("decision", n) for n in (1, 2, 3)]
    assert cited("rule 10 (D6)") == [("rule", 10), ("decision", 6)]


def test_no_false_citations() -> None:
    """Hex bytes, identifiers and quoted keys that look like a decision are not citations,
    and numbers not introduced by "rule" are not rules."""
    for text in (
        'HEADERS = {"D6": DST6}',
        "value = 0xD4",
        'b"\\xD4\\x01"',
        "AD4 D4x D4_CASE",
        "the first 12 bytes, ruler 3, rules of thumb",
        "sha256: 4D1A9e",
    ):
        assert list(citations_in(text)) == [], text


def test_numbering_problems_are_found() -> None:
    text = "**1. A** (§2)\n**2. B** (§2)\n**4. C** (§2)\n**D1. X**\n**D1. Y**\n**S1. Z**\n"
    problems = numbering_problems(spec_entries(text))
    assert len(problems) == 2
    assert "rule entries are not 1..3" in problems[0]
    assert "D entries are not 1..2" in problems[1]
    assert numbering_problems(spec_entries("**1. A**\n**D1. X**\n")) == ["no S entries"]
