//! Tests of the v1 text parser and writer: fixed lines for each rule of docs/spec.md a v1
//! line can break (rules 8-14, D1, D5, D6, D8), and mutated random lines on which each fast
//! path (dotted quads, IPv6 groups, the whole TCP4 line, the parsed port) must agree with the
//! general, byte-by-byte one.

use super::*;
use crate::ip_text::tests::xorshift;
use crate::ip_text::{write_ipv6, MAX_V6_CANONICAL};
use crate::Addresses;

/// Up to two random bytes of `text` replaced by bytes of `alphabet`.
fn mutate(next: &mut impl FnMut() -> u64, text: &mut [u8], alphabet: &[u8]) {
    for _ in 0..(next() % 3) {
        let i = (next() as usize) % text.len();
        text[i] = alphabet[(next() as usize) % alphabet.len()];
    }
}

/// `text`, or one time in four a random prefix of it (input still arriving).
fn maybe_cut<'t>(next: &mut impl FnMut() -> u64, text: &'t [u8]) -> &'t [u8] {
    let cut = (next() as usize) % (text.len() + 1);
    &text[..if next().is_multiple_of(4) { cut } else { text.len() }]
}

/// Eight IPv6 groups, a quarter of them zero and a quarter below 16, so that zero runs of
/// every length and place occur.
fn random_groups(next: &mut impl FnMut() -> u64) -> [u16; 8] {
    let mut g = [0u16; 8];
    for x in &mut g {
        *x = match next() % 4 {
            0 => 0,
            1 => (next() % 16) as u16,
            _ => next() as u16,
        };
    }
    g
}

fn ok(line: &[u8]) -> Layout {
    match parse(line, false) {
        Ok(Status::Complete { header, consumed }) => {
            assert_eq!(consumed, line.len());
            *header.layout()
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
    }
}

/// The addresses of the whole line, through the public accessor.
fn addresses_of(line: &[u8]) -> Addresses {
    crate::Header::from_parts(line, ok(line)).unwrap().addresses()
}

fn err(line: &[u8]) -> (ErrorKind, usize) {
    match parse(line, false) {
        Err(e) => (e.kind, e.offset),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
    }
}

/// Every proper prefix of a valid line is Partial with a needed that never overshoots.
fn prefixes_partial(line: &[u8]) {
    for n in 0..line.len() {
        match parse(&line[..n], false) {
            Ok(Status::Partial { needed }) => assert!(needed >= 1 && n + needed <= line.len()),
            other => panic!("prefix {n} of {:?}: {other:?}", String::from_utf8_lossy(line)),
        }
    }
}

#[test]
fn rule8_tcp4_tcp6_unknown() {
    let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    assert_eq!(ok(line).family, Family::Inet);
    assert_eq!(
        addresses_of(line),
        Addresses::V4 {
            src: "192.168.0.1:56324".parse().unwrap(),
            dst: "192.168.0.11:443".parse().unwrap()
        }
    );
    let line = b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n";
    assert_eq!(ok(line).family, Family::Inet6);
    assert_eq!(
        addresses_of(line),
        Addresses::V6 {
            src: "2001:db8::1".parse().unwrap(),
            dst: "::ffff:10.0.0.1".parse().unwrap(),
            src_port: 0,
            dst_port: 65535
        }
    );
    let l = ok(b"PROXY UNKNOWN\r\n");
    assert_eq!(
        (l.family, l.protocol, addresses_of(b"PROXY UNKNOWN\r\n")),
        (Family::Unspec, Protocol::Unspec, Addresses::None)
    );
    for line in [
        &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"[..],
        b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    ] {
        prefixes_partial(line);
    }
}

#[test]
fn rule14_longest_lines() {
    let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {v6} {v6} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    ok(tcp6.as_bytes());
    let unknown = format!("PROXY UNKNOWN {v6} {v6} 65535 65535\r\n");
    assert_eq!(unknown.len(), 107);
    ok(unknown.as_bytes());
    // One byte more: the LF would be at index 107.
    let over = format!("PROXY UNKNOWN {v6} {v6} 65535 655350\r\n");
    assert_eq!(err(over.as_bytes()), (ErrorKind::V1TooLong, 105));
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(200, b'x');
    assert_eq!(err(&long), (ErrorKind::V1TooLong, 105));
}

#[test]
fn d1_rejects_at_the_first_impossible_byte() {
    assert_eq!(err(b"GET / HTTP/1.1"), (ErrorKind::NotProxyProtocol, 0));
    assert_eq!(err(b"PRX"), (ErrorKind::NotProxyProtocol, 2));
    assert_eq!(err(b"PROXY."), (ErrorKind::V1Syntax, 5));
    assert_eq!(err(b"PROXY ."), (ErrorKind::V1Protocol, 6));
    assert_eq!(err(b"PROXY TCP5"), (ErrorKind::V1Protocol, 9));
    assert_eq!(err(b"PROXY TCP4  "), (ErrorKind::V1Address, 11));
    assert_eq!(err(b"PROXY UNKNOWNX"), (ErrorKind::V1Syntax, 13));
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), (ErrorKind::V1Syntax, 30));
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r"), (ErrorKind::V1Syntax, 31));
}

#[test]
fn rule10_ipv4_strict() {
    for (line, at) in [
        (&b"PROXY TCP4 01.2.3.4 "[..], 12),
        (b"PROXY TCP4 256.", 13),
        (b"PROXY TCP4 1.2.3 ", 16),
        (b"PROXY TCP4 1.2.3.4.", 18),
        (b"PROXY TCP4 1..", 13),
        (b"PROXY TCP4 ::1 ", 11),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8x", 26),
    ] {
        assert_eq!(err(line), (ErrorKind::V1Address, at), "{:?}", String::from_utf8_lossy(line));
    }
    ok(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n");
}

#[test]
fn rule11_d6_ipv6_strict() {
    for line in [
        &b"PROXY TCP6 fe80::1%eth0 "[..],
        b"PROXY TCP6 1.2.3.4 ",
        b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ",
        b"PROXY TCP6 1::2::3 ",
        b"PROXY TCP6 ::: ",
        b"PROXY TCP6 12345:: ",
        b"PROXY TCP6 :1 ",
        b"PROXY TCP6 ::ffff:01.2.3.4 ",
        b"PROXY TCP6 ::ffff:1.2.3.4.5 ",
        b"PROXY TCP6 ::ffff:1.2.3 ",
        b"PROXY TCP6 1:2:3:4:5:6:7 ",
        b"PROXY TCP6 g:: ",
    ] {
        assert_eq!(err(line).0, ErrorKind::V1Address, "{:?}", String::from_utf8_lossy(line));
    }
    assert_eq!(err(b"PROXY TCP6 fe80::1%"), (ErrorKind::V1Address, 18));
    assert_eq!(err(b"PROXY TCP6 1.2"), (ErrorKind::V1Address, 12));
    assert_eq!(err(b"PROXY TCP6 1::2::"), (ErrorKind::V1Address, 16));
    for addr in [
        "::",
        "::1",
        "1::",
        "FE80::A",
        "1:2:3:4:5:6:7:8",
        "::ffff:1.2.3.4",
        "1:2:3:4:5:6:1.2.3.4",
        "0001:db8::",
    ] {
        ok(format!("PROXY TCP6 {addr} ::1 1 2\r\n").as_bytes());
    }
}

/// Our IPv6 reader agrees with the standard library's on valid forms and on random
/// mutations of them (the standard one also rejects zone ids and leading-zero quads).
#[test]
fn rule11_ipv6_agrees_with_std() {
    use core::str::FromStr;
    let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
    let alphabet = b"0123456789abcdefABCDEF:.x%";
    for _ in 0..20_000 {
        let g = random_groups(&mut next);
        let addr = Ipv6Addr::from(g);
        let mut text = match next() % 4 {
            0 => addr.to_string(),
            1 => g.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":"),
            2 => Ipv6Addr::from(g)
                .to_ipv4_mapped()
                .map_or(addr.to_string(), |v4| format!("::ffff:{v4}")),
            _ => format!(
                "{}:{}.{}.{}.{}",
                g[..6].iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":"),
                next() % 256,
                next() % 256,
                next() % 256,
                next() % 256
            ),
        }
        .into_bytes();
        mutate(&mut next, &mut text, alphabet);
        let std = core::str::from_utf8(&text).ok().and_then(|t| Ipv6Addr::from_str(t).ok());
        let mut line = b"PROXY TCP6 ".to_vec();
        line.extend_from_slice(&text);
        line.extend_from_slice(b" ::1 1 2\r\n");
        let ours = match parse(&line, false) {
            Ok(Status::Complete { .. }) => match addresses_of(&line) {
                Addresses::V6 { src, .. } => Some(src),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(&text));
    }
}

/// The fast IPv4 reader accepts exactly what the byte-by-byte one accepts, with the same
/// value and length, on random and mutated dotted quads, alone (its 16-byte window
/// padded) and followed by more bytes.
#[test]
fn rule10_fast_ipv4_agrees_with_the_cursor() {
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
    let alphabet = b"0123456789. x";
    let mut taken = 0;
    for round in 0..100_000 {
        let mut text =
            format!("{}.{}.{}.{} ", next() % 300, next() % 256, next() % 256, next() % 1000)
                .into_bytes();
        mutate(&mut next, &mut text, alphabet);
        if round % 2 == 1 {
            text.extend_from_slice(b"0.0.0.0 1 2\r\n");
        }
        let text = maybe_cut(&mut next, &text);
        let mut c = Cursor { buf: text, pos: 0, min_total: 0 };
        let slow = c.ipv4_by_byte(b' ').ok().map(|addr| (addr, c.pos));
        let fast = read_ipv4(text, Some(b' '));
        assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(text));
        taken += usize::from(fast.is_some());
    }
    assert!(taken > 5_000, "only {taken} valid texts");
}

/// The fast IPv6 reader accepts only what the byte-by-byte one accepts, with the same
/// value and length (rule 11), on random forms of random addresses, mutated and cut; and
/// it takes every form without a dotted quad (so `.source` and TCP6 lines use it).
#[test]
fn rule11_fast_ipv6_agrees_with_the_cursor() {
    let mut next = xorshift(0xD1B5_4A32_D192_ED03u64);
    let alphabet = b"0123456789abcdefABCDEF:. x";
    let mut taken = 0;
    for _ in 0..50_000 {
        let g = random_groups(&mut next);
        let addr = Ipv6Addr::from(g);
        let hex: Vec<String> = g.iter().map(|x| format!("{x:X}")).collect();
        let form = next() % 4;
        let mut text = match form {
            0 => {
                let mut t = [0; MAX_V6_CANONICAL];
                let n = write_ipv6(addr, &mut t);
                t[..n].to_vec()
            }
            1 => g.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":").into(),
            2 => hex.join(":").into(),
            _ => {
                // `::` in place of a random run of groups, zero or not.
                let (a, b) = ((next() % 8) as usize, (next() % 9) as usize);
                let (a, b) = (a.min(b), a.max(b));
                format!("{}::{}", hex[..a].join(":"), hex[b..].join(":")).into()
            }
        };
        text.push(b' ');
        let valid = form != 0 || addr.to_ipv4_mapped().is_none();
        if form < 3 && valid {
            assert_eq!(read_ipv6(&text, b' '), Some((addr, text.len() - 1)), "{text:?}");
        }
        mutate(&mut next, &mut text, alphabet);
        let text = maybe_cut(&mut next, &text);
        if let Some((fast, len)) = read_ipv6(text, b' ') {
            taken += 1;
            let mut c = Cursor { buf: text, pos: 0, min_total: 0 };
            let slow = c.ipv6_by_byte(b' ').ok();
            assert_eq!((slow, c.pos), (Some(fast), len), "{:?}", String::from_utf8_lossy(text));
        }
    }
    assert!(taken > 10_000, "the fast path took only {taken} texts");
}

/// The `PROXY TCP4` fast path accepts only lines the general pass accepts, with the same
/// layout, on random and mutated lines (rules 8, 10, 12, 13).
#[test]
fn rule8_fast_tcp4_agrees_with_the_general_pass() {
    let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
    let alphabet = b"0123456789. \r\nxPT4";
    let mut taken = 0;
    for _ in 0..100_000 {
        let mut line = format!(
            "PROXY TCP4 {}.{}.{}.{} {}.0.{}.1 {} {}\r\nrest",
            next() % 300,
            next() % 256,
            next() % 256,
            next() % 1000,
            next() % 256,
            next() % 256,
            next() % 70_000,
            [0, 7, 65535, 65536, 99_999, 123_456][(next() % 6) as usize]
        )
        .into_bytes();
        mutate(&mut next, &mut line, alphabet);
        let line = maybe_cut(&mut next, &line);
        if let Some(fast) = tcp4_fast(line) {
            taken += 1;
            let mut c = Cursor { buf: line, pos: 0, min_total: MIN_LEN };
            let general = parse_line(&mut c, false).ok();
            assert_eq!(general, Some(fast), "{:?}", String::from_utf8_lossy(line));
        }
    }
    assert!(taken > 2_000, "the fast path took only {taken} lines");
}

/// On every line `parse` accepts, TCP4 and TCP6 (the ports' edges and lengths, both
/// ends), the unchecked reader of the ports gives what the checking one gives (rule 12).
#[test]
fn rule12_parsed_endpoint_agrees_with_the_checked_one() {
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
    let ports = [0u32, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 65_535];
    let mut checked = 0;
    for i in 0..20_000 {
        let mut port = || {
            let p = if next().is_multiple_of(2) {
                ports[(next() % 11) as usize]
            } else {
                next() as u32
            };
            p % 65_536
        };
        let (sport, dport) = (port(), port());
        let line = if i % 2 == 0 {
            let o = next().to_le_bytes();
            format!(
                "PROXY TCP4 {}.{}.{}.{} {}.0.0.{} {sport} {dport}\r\n",
                o[0], o[1], o[2], o[3], o[4], o[5]
            )
        } else {
            format!(
                "PROXY TCP6 2001:db8::{:x} ::{:x} {sport} {dport}\r\n",
                next() as u16,
                next() as u16
            )
        };
        let (line, layout) = (line.as_bytes(), ok(line.as_bytes()));
        for end in [End::Source, End::Destination] {
            assert_eq!(
                Some(parsed_endpoint_at(line, &layout, end)),
                endpoint_at(line, &layout, end),
                "{:?}",
                String::from_utf8_lossy(line)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 40_000);
}

#[test]
fn rule12_ports_strict() {
    for (line, at) in [
        (&b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 "[..], 27),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 ", 28),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 ", 31),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 5_6 ", 28),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1  ", 29),
    ] {
        assert_eq!(err(line), (ErrorKind::V1Port, at), "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn d5_unknown_trailing_and_haproxy_short_form() {
    ok(b"PROXY UNKNOWN whatever \x00 bytes\r\n");
    assert_eq!(err(b"PROXY UNKNOWN a\nb\r\n"), (ErrorKind::V1Syntax, 15));
    assert_eq!(err(b"PROXY UNKNOWN a\rb"), (ErrorKind::V1Syntax, 16));
    assert!(matches!(parse(b"PROXY UNKNOWN\r\n", true), Ok(Status::Complete { .. })));
    assert_eq!(parse(b"PROXY UNKNOWN x\r\n", true).unwrap_err().offset, 13);
}

#[test]
fn payload_after_the_line_is_left_alone() {
    let s = parse(b"PROXY UNKNOWN\r\nGET / HTTP/1.1\r\n", false).unwrap();
    assert!(matches!(s, Status::Complete { consumed: 15, .. }));
}

#[test]
fn write_roundtrip() {
    let mut out = Vec::new();
    let ends = Endpoints::Inet(
        "[2001:db8:0::1]:80".parse().unwrap(),
        "[::ffff:1.2.3.4]:443".parse().unwrap(),
    );
    write(&mut out, &ends).unwrap();
    assert_eq!(out, b"PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 80 443\r\n");
    ok(&out);
    out.clear();
    write(&mut out, &Endpoints::None).unwrap();
    assert_eq!(out, b"PROXY UNKNOWN\r\n");
    let mixed = Endpoints::Inet("1.2.3.4:1".parse().unwrap(), "[::1]:2".parse().unwrap());
    assert_eq!(write(&mut out, &mixed), Err(BuildError::MixedFamilies));
}

/// The TCP4 writer (table lookups, no `fmt`) writes what `std`'s `Display` writes, which
/// is the canonical text rules 10 and 12 ask for, on the edges of every field and on
/// random addresses; and the line parses back to the same addresses.
#[test]
fn write_tcp4_matches_display() {
    let mut next = xorshift(0x0123_4567_89AB_CDEFu64);
    let edges = [0u32, 1, 9, 10, 99, 100, 255, 0x0A00_0001, 0xFFFF_FFFF];
    let ports = [0u16, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535];
    let mut cases: Vec<(u32, u16)> = edges.iter().zip(ports).map(|(&a, p)| (a, p)).collect();
    cases.extend((0..2000).map(|_| {
        let r = next();
        ((r >> 16) as u32, r as u16)
    }));
    for pair in cases.windows(2) {
        let s = SocketAddrV4::new(Ipv4Addr::from(pair[0].0), pair[0].1);
        let d = SocketAddrV4::new(Ipv4Addr::from(pair[1].0), pair[1].1);
        let mut out = Vec::new();
        write(&mut out, &Endpoints::Inet(s.into(), d.into())).unwrap();
        let want = format!("PROXY TCP4 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port());
        assert_eq!(out, want.as_bytes());
        assert_eq!(addresses_of(&out), Addresses::V4 { src: s, dst: d });
    }
}

/// D8: a TCP6 line carries the canonical text of its addresses.
#[test]
fn d8_write_tcp6_is_canonical() {
    let ends = Endpoints::Inet("[2001:db8::1]:80".parse().unwrap(), "[::2]:0".parse().unwrap());
    let mut out = Vec::new();
    write(&mut out, &ends).unwrap();
    assert_eq!(out, b"PROXY TCP6 2001:db8::1 ::2 80 0\r\n");
}
