"""ServerOptions: validated once, immutable, and the one trust test every server uses."""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proxyproto_rs import MAX_V2_SIZE, Header, Parser, build_v2, parse
from proxyproto_rs.options import (
    DEFAULT_MAX_SIZE,
    MIN_MAX_SIZE,
    Network,
    ServerOptions,
    resolve,
)

HEADER = parse(build_v2(("203.0.113.7", 51234), ("10.0.0.5", 443)))


def test_defaults() -> None:
    opts = ServerOptions()
    assert opts.trusted is None
    assert opts.trusts_everyone
    assert opts.untrusted == "reject"
    assert opts.timeout == 5.0
    assert opts.max_size == DEFAULT_MAX_SIZE == 4096
    assert opts.max_pending is None
    assert opts.trusts(("198.51.100.1", 1))
    assert opts.trusts("")


def test_immutable_hashable_and_equal_by_value() -> None:
    a = ServerOptions(trusted=["10.0.0.0/8", "unix"], timeout=3)
    b = ServerOptions(trusted=("10.0.0.0/8", "unix"), timeout=3)
    assert a == b
    assert hash(a) == hash(b)
    assert a.trusted == (ipaddress.ip_network("10.0.0.0/8"), "unix")
    with pytest.raises(AttributeError):
        a.timeout = 1  # type: ignore[misc]
    c = a.replace(timeout=4)
    assert c.timeout == 4
    assert a.timeout == 3
    assert c.trusted == a.trusted
    assert "10.0.0.0/8" in repr(a)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"untrusted": "maybe"}, ValueError, "untrusted"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": float("nan")}, ValueError, "timeout"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"ssl_handshake_timeout": -1}, ValueError, "ssl_handshake_timeout"),
        ({"max_size": MIN_MAX_SIZE - 1}, ValueError, "max_size must be 16..65551"),
        ({"max_size": MAX_V2_SIZE + 1}, ValueError, "max_size must be 16..65551"),
        ({"max_size": 2**200}, ValueError, "max_size"),
        ({"max_size": 4096.0}, TypeError, "max_size"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"allow_v1": 1}, TypeError, "allow_v1"),
        ({"allow_v1": False, "allow_v2": False}, ValueError, "both"),
        ({"ssl": "context"}, TypeError, "ssl"),
        ({"policy": 3}, TypeError, "policy"),
        ({"policy": lambda a: True}, TypeError, "policy must accept"),
        ({"trusted": ["10.0.0.0/33"]}, ValueError, "trusted"),
        ({"trusted": [10]}, TypeError, "trusted"),
    ],
)
def test_validated_when_made(kwargs: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        ServerOptions(**kwargs)


def test_bounds_come_from_the_core() -> None:
    assert ServerOptions(max_size=MIN_MAX_SIZE).max_size == 16
    assert ServerOptions(max_size=MAX_V2_SIZE).max_size == 65551
    # The same bounds the core's Parser enforces.
    Parser(max_size=MIN_MAX_SIZE)
    Parser(max_size=MAX_V2_SIZE)
    with pytest.raises(ValueError, match="max_size"):
        Parser(max_size=MAX_V2_SIZE + 1)


def test_resolve_keywords_build_or_override() -> None:
    assert resolve(None, {}) == ServerOptions()
    base = ServerOptions(trusted=["10.0.0.0/8"], timeout=3)
    assert resolve(base, {}) is base
    assert resolve(None, {"timeout": 2}) == ServerOptions(timeout=2)
    over = resolve(base, {"timeout": 2})
    assert over.timeout == 2
    assert over.trusted == base.trusted
    with pytest.raises(TypeError, match=r"unexpected server option.*tmeout"):
        resolve(None, {"tmeout": 2})


def test_new_parser_carries_every_parser_option() -> None:
    strict = ServerOptions(haproxy_limits=True).new_parser()
    # HAProxy's receiver profile accepts only the short v1 UNKNOWN form (SPEC rule 45).
    with pytest.raises(ValueError, match=r"."):
        strict.feed(b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n")
    assert ServerOptions().new_parser().feed(b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n")
    v2_only = ServerOptions(allow_v1=False).new_parser()
    with pytest.raises(ValueError, match=r"."):
        v2_only.feed(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
    small = ServerOptions(max_size=16).new_parser()
    with pytest.raises(ValueError, match=r"."):
        small.feed(bytes(HEADER))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"haproxy_limits": True},
        {"allow_v1": False},
        {"allow_v2": False},
        {"verify_checksum": False},
        {"max_size": 16},
    ],
)
def test_options_parse_is_parse_with_the_parser_options(changes: dict[str, Any]) -> None:
    """``ServerOptions.parse`` gives what ``parse`` gives with the same keywords, header or
    error, for every parser option (the default set takes the keyword-free call)."""
    options = ServerOptions(**changes)
    bad_crc = bytearray(build_v2(("203.0.113.7", 1), ("10.0.0.1", 2), crc32c=True))
    bad_crc[-1] ^= 0xFF
    inputs = [
        b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        bytes(HEADER),
        bytes(bad_crc),
    ]
    for data in inputs:
        try:
            expected: object = parse(data, **changes)
        except ValueError as exc:
            expected = (type(exc), str(exc))
        try:
            got: object = options.parse(data)
        except ValueError as exc:
            got = (type(exc), str(exc))
        assert got == expected, (changes, data)


@pytest.mark.parametrize(
    ("trusted", "peer", "expected"),
    [
        (["127.0.0.0/8"], ("127.0.0.1", 1), True),
        (["127.0.0.0/8"], ("127.0.0.2", 1), True),
        (["127.0.0.0/8"], ("128.0.0.1", 1), False),
        # A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6 (SPEC D8's spelling).
        (["127.0.0.0/8"], ("::ffff:127.0.0.1", 1, 0, 0), True),
        (["::ffff:127.0.0.0/104"], ("::ffff:127.0.0.1", 1, 0, 0), True),
        (["::ffff:127.0.0.0/104"], ("127.0.0.1", 1), True),
        (["::ffff:127.0.0.1/128"], ("127.0.0.1", 1), True),
        (["::/0"], ("::ffff:127.0.0.1", 1, 0, 0), True),
        (["::/0"], ("127.0.0.1", 1), True),
        (["::1"], ("::1", 1, 0, 0), True),
        (["::1"], ("127.0.0.1", 1), False),
        (["fe80::/10"], ("fe80::1%eth0", 1, 0, 2), True),
        (["10.0.0.0/8"], ("not-an-ip", 1), False),
        (["10.0.0.0/8"], "", False),  # UNIX peer, "unix" not trusted
        (["10.0.0.0/8"], "/run/sock", False),
        (["unix"], "", True),
        (["unix"], ("10.0.0.1", 1), False),
        ([ipaddress.ip_network("10.0.0.0/8")], ("10.1.2.3", 1), True),
        ("10.0.0.0/8", ("10.1.2.3", 1), True),
    ],
)
def test_trust(trusted: Any, peer: object, expected: bool) -> None:
    opts = ServerOptions(trusted=trusted)
    assert opts.trusts(peer) is expected
    assert opts.trust_function()(peer) is expected


def _reference_trust(networks: list[Network], host: str) -> bool:
    """The trust rule written with ``ipaddress``: what the core's integer test must agree with."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv4Address):
        forms.append(ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed))
    elif ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)
    return any(form in net for form in forms for net in networks if form.version == net.version)


_v4_nets = st.builds(
    lambda a, n: ipaddress.IPv4Network((a, n), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
_v6_nets = st.builds(
    lambda a, n: ipaddress.IPv6Network((a, n), strict=False),
    st.one_of(st.integers(0, 2**128 - 1), st.integers(0xFFFF_0000_0000, 0xFFFF_FFFF_FFFF)),
    st.integers(0, 128),
)
_hosts = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda a: str(ipaddress.IPv4Address(a))),
    st.integers(0, 2**128 - 1).map(lambda a: str(ipaddress.IPv6Address(a))),
    st.integers(0, 2**32 - 1).map(lambda a: f"::ffff:{ipaddress.IPv4Address(a)}"),
    st.integers(0, 2**32 - 1).map(lambda a: f"{ipaddress.IPv6Address(a)}%eth0"),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_v4_nets, _v6_nets), min_size=1, max_size=4), _hosts)
def test_trust_matches_ipaddress(networks: list[Network], host: str) -> None:
    opts = ServerOptions(trusted=networks)
    expected = _reference_trust(networks, host)
    assert opts.trusts((host, 1)) is expected
    assert opts.trust_function()((host, 1, 0, 0)) is expected


def test_trust_has_no_per_host_state() -> None:
    # Many distinct peers (a scan, or a large proxy fleet) get the same verdicts throughout.
    opts = ServerOptions(trusted=["10.0.0.0/8"])
    for i in range(10_000):
        assert opts.trusts((f"10.{i // 256 % 256}.{i % 256}.1", 1))
        assert not opts.trusts((f"11.{i // 256 % 256}.{i % 256}.1", 1))


def test_trust_test_makes_no_ipaddress_object(monkeypatch: pytest.MonkeyPatch) -> None:
    # The per-connection test reads the peer's text in the core: ipaddress is used only when
    # the options are made, never for a peer, first-seen or not.
    opts = ServerOptions(trusted=["10.0.0.0/8", "::ffff:127.0.0.0/104", "2001:db8::/32"])

    def refuse(*args: object) -> None:
        raise AssertionError("ipaddress used per connection")

    for name in ("ip_address", "IPv4Address", "IPv6Address"):
        monkeypatch.setattr(ipaddress, name, refuse)
    assert opts.trusts(("10.1.2.3", 1))
    assert opts.trusts(("127.0.0.1", 1))
    assert opts.trusts(("2001:db8::7", 1, 0, 0))
    assert not opts.trusts(("192.0.2.1", 1))


def test_trusted_networks_refuses_a_prefix_too_long() -> None:
    from proxyproto_rs._core import _TrustedNetworks

    with pytest.raises(ValueError, match="prefix length"):
        _TrustedNetworks([(0, 33)], [], False)
    with pytest.raises(ValueError, match="prefix length"):
        _TrustedNetworks([], [(0, 129)], False)
    assert _TrustedNetworks([(0, 32)], [(0, 128)], True).allows("")


def test_policy_three_arguments_and_two() -> None:
    seen: list[tuple[object, ...]] = []

    def three(peer: object, header: Header | None, local: object) -> bool:
        seen.append((peer, header, local))
        return local == ("10.0.0.5", 443)

    def two(peer: object, header: Header | None) -> bool:
        seen.append((peer, header))
        return header is not None

    opts3 = ServerOptions(policy=three)
    assert opts3.accepts(("10.0.0.1", 5), HEADER, ("10.0.0.5", 443))
    assert not opts3.accepts(("10.0.0.1", 5), HEADER, ("10.0.0.5", 80))
    opts2 = ServerOptions(policy=two)
    assert opts2.accepts(("10.0.0.1", 5), HEADER, ("10.0.0.5", 443))
    assert not opts2.accepts(("10.0.0.1", 5), None, ("10.0.0.5", 443))
    assert seen[0] == (("10.0.0.1", 5), HEADER, ("10.0.0.5", 443))
    assert seen[2] == (("10.0.0.1", 5), HEADER)
    assert ServerOptions(policy=lambda *args: len(args) == 3).accepts(1, None, 2)
    assert ServerOptions().accepts(1, None, 2)


def test_ssl_context_accepted() -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert ServerOptions(ssl=ctx).ssl is ctx
