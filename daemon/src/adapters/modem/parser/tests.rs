use super::*;
use proptest::prelude::*;

fn known(n: &str) -> ModemLine {
    ModemLine::Field(CidField::Number(CallerNumber::Known(n.to_owned())))
}
fn field(f: CidField) -> ModemLine {
    ModemLine::Field(f)
}
fn s(v: &str) -> String {
    v.to_owned()
}
fn ring(label: Option<&str>) -> ModemLine {
    ModemLine::Ring {
        label: label.map(str::to_owned),
    }
}

/// Feeds `input` in `chunks` pieces of the given sizes (the rest in one piece) and returns
/// the lines.
fn split_chunked(max_len: usize, input: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, u64) {
    let mut splitter = LineSplitter::new(max_len);
    let mut lines = Vec::new();
    let mut rest = input;
    for &cut in cuts {
        let cut = cut.min(rest.len());
        splitter.push(&rest[..cut], &mut |l| lines.push(l.to_vec()));
        rest = &rest[cut..];
    }
    splitter.push(rest, &mut |l| lines.push(l.to_vec()));
    (lines, splitter.overlong())
}

fn parse_all(input: &[u8]) -> Vec<ModemLine> {
    let mut splitter = LineSplitter::new(256);
    let mut parsed = Vec::new();
    splitter.push(input, &mut |l| parsed.push(parse_line(l)));
    parsed
}

#[test]
fn real_world_lines() {
    use CallerNumber::*;
    use CidField::*;
    let table: Vec<(&[u8], ModemLine)> = vec![
        // Plain NCID modem format (doc/NCID-API.md).
        (b"RING", ring(None)),
        (b"RING A", ring(Some("A"))),
        (b"RING B", ring(Some("B"))),
        (b"RING 1", ring(Some("1"))),
        (b"ring", ring(None)),
        (b"MESG = 110101", field(Message(s("110101")))),
        (b"DATE = 0511", field(Date(s("0511")))),
        (b"TIME = 1852", field(Time(s("1852")))),
        (b"NMBR = 4075550000", known("4075550000")),
        (b"DDN_NMBR = 4075550000", known("4075550000")),
        (b"NAME = JOHN DOE", field(Name(s("JOHN DOE")))),
        // NCID test/test-modem-calls.data edge cases.
        (b"NMBR = P", field(Number(Withheld))),
        (b"NAME = WITHHELD", field(Name(s("WITHHELD")))),
        (b"DDN = 9415557218", known("9415557218")),
        (b"DDN = ", field(Number(Unavailable))),
        (b"DDN = MISSING NAME", known("MISSING NAME")),
        (b"DATE =", field(Date(s("")))),
        (b"TIME=", field(Time(s("")))),
        (b"NMBR = NO TIME", known("NO TIME")),
        (b"DATE TIME=01/06 14:15", field(DateTime(s("01/06 14:15")))),
        (b"NMBR = 0000000000", known("0000000000")),
        (b"NAME = PrivDirOff", field(Name(s("PrivDirOff")))),
        ("NAME = Vähälä".as_bytes(), field(Name(s("Vähälä")))),
        (b"TIME = 12541", field(Time(s("12541")))),
        (b"NMBR = 14075552120", known("14075552120")),
        (b"NMBR = Restricted", field(Number(Withheld))),
        (b"NAME = Unavailable", field(Name(s("Unavailable")))),
        (b"CID RING", ModemLine::Other(s("CID RING"))),
        // Non-ASCII names: UTF-8 and GBK ("张伟").
        ("NAME = 张伟".as_bytes(), field(Name(s("张伟")))),
        (b"NAME = \xD5\xC5\xCE\xB0", field(Name(s("张伟")))),
        // Undecodable bytes are escaped, not lost.
        (b"NAME = A\xFFB\\", field(Name(s("A\\xffB\\\\")))),
        // Masked / withheld / unavailable spellings.
        (b"NMBR = ##########", field(Number(Unavailable))),
        (b"NMBR = O", field(Number(Unavailable))),
        (b"NMBR = out of area", field(Number(Unavailable))),
        (b"NMBR = UNAVAILABLE", field(Number(Unavailable))),
        (b"NMBR = private", field(Number(Withheld))),
        (b"NMBR = Blocked", field(Number(Withheld))),
        (b"NMBR = p", field(Number(Withheld))),
        // Separators inside numbers are dropped; + * # are kept.
        (b"NMBR = (407) 555-0000", known("4075550000")),
        (b"NMBR = +49 30 1234-567", known("+49301234567")),
        (b"NMBR = *31#0301234", known("*31#0301234")),
        // Spacing, case, whitespace, NULs and junk prefixes.
        (b"NMBR=4075550000", known("4075550000")),
        (b"nmbr = 123", known("123")),
        (b"  NMBR   =   123  \0\0", known("123")),
        (b"\0\0NMBR = 123", known("123")),
        (b"\tdate\t=\t0511", field(Date(s("0511")))),
        (
            b"date  time = 01/06 14:15",
            field(DateTime(s("01/06 14:15"))),
        ),
        (b"\x10NMBR = 123", known("123")),
        (b"\x10R\x10XNMBR = 123", known("123")),
        (b"\x10.\x18NAME = JOHN", field(Name(s("JOHN")))),
        (b"\xff\xfeRING", ring(None)),
        (b"NAME = A=B", field(Name(s("A=B")))),
        (b"NMBR\0 = 42", known("42")),
        // Results, echoes and the bridge board's hook lines.
        (b"OK", ModemLine::Ok),
        (b"0", ModemLine::Ok),
        (b"ERROR", ModemLine::Error),
        (b"4", ModemLine::Error),
        (b"AT+VCID=1", ModemLine::Echo(s("AT+VCID=1"))),
        (b"ATZ", ModemLine::Echo(s("ATZ"))),
        (b"at#cid=1", ModemLine::Echo(s("at#cid=1"))),
        (b"OFFHOOK", ModemLine::OffHook),
        (b"ONHOOK", ModemLine::OnHook),
        (b"LINE OFFHOOK", ModemLine::OffHook),
        // Anything else.
        (b"CONNECT", ModemLine::Other(s("CONNECT"))),
        (b"NO CARRIER", ModemLine::Other(s("NO CARRIER"))),
        (b"RINGING", ModemLine::Other(s("RINGING"))),
        (b"RING A B", ModemLine::Other(s("RING A B"))),
        (b"FOO = bar", ModemLine::Other(s("FOO = bar"))),
        (b"\x10R\x10X", ModemLine::Other(s("\x10R\x10X"))),
        (b"", ModemLine::Other(s(""))),
        (b"\xff", ModemLine::Other(s("\\xff"))),
    ];
    for (raw, expected) in table {
        assert_eq!(
            parse_line(raw),
            expected,
            "input {:?}",
            raw.escape_ascii().to_string()
        );
    }
}

#[test]
fn ncid_sample_session_parses() {
    let input = b"\r\nRING\r\n\r\nMESG = 110101\r\nDATE = 0421\r\nTIME = 0934\r\n\
NMBR = P\r\nNAME = WITHHELD\r\n\r\nRING\r\n";
    assert_eq!(
        parse_all(input),
        vec![
            ModemLine::Ring { label: None },
            field(CidField::Message(s("110101"))),
            field(CidField::Date(s("0421"))),
            field(CidField::Time(s("0934"))),
            field(CidField::Number(CallerNumber::Withheld)),
            field(CidField::Name(s("WITHHELD"))),
            ModemLine::Ring { label: None },
        ]
    );
}

#[test]
fn decode_text_fallbacks() {
    assert_eq!(decode_text(b"plain"), "plain");
    assert_eq!(decode_text("Vähälä".as_bytes()), "Vähälä");
    assert_eq!(decode_text(&[0xD5, 0xC5, 0xCE, 0xB0]), "张伟");
    assert_eq!(decode_text(b"a\xffb\x01\\"), "a\\xffb\\x01\\\\");
    assert_eq!(decode_text(b""), "");
}

#[test]
fn line_endings_across_chunk_boundaries() {
    let input = b"RING\rDATE = 0511\nTIME = 1852\r\nNMBR = 1\n\rNAME = X\r\r\n\nOK\r";
    let expected: Vec<Vec<u8>> = [
        "RING",
        "DATE = 0511",
        "TIME = 1852",
        "NMBR = 1",
        "NAME = X",
        "OK",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    // Every single cut point, and byte-by-byte.
    for cut in 0..=input.len() {
        assert_eq!(split_chunked(64, input, &[cut]).0, expected, "cut at {cut}");
    }
    let ones = vec![1; input.len()];
    assert_eq!(split_chunked(64, input, &ones).0, expected);
}

#[test]
fn partial_line_is_kept_until_terminated_and_reset_forgets_it() {
    let mut splitter = LineSplitter::new(64);
    let mut lines = Vec::new();
    splitter.push(b"NMBR = 12", &mut |l| lines.push(l.to_vec()));
    assert!(lines.is_empty());
    splitter.push(b"34\r", &mut |l| lines.push(l.to_vec()));
    assert_eq!(lines, vec![b"NMBR = 1234".to_vec()]);

    lines.clear();
    splitter.push(b"half a li", &mut |l| lines.push(l.to_vec()));
    splitter.reset();
    splitter.push(b"RING\r\n", &mut |l| lines.push(l.to_vec()));
    assert_eq!(lines, vec![b"RING".to_vec()]);
}

#[test]
fn overlong_lines_are_discarded_and_counted() {
    let mut splitter = LineSplitter::new(16);
    let mut lines = Vec::new();
    // Exactly max_len is fine.
    splitter.push(b"0123456789abcdef\r\n", &mut |l| lines.push(l.to_vec()));
    assert_eq!(lines.len(), 1);
    assert_eq!(splitter.overlong(), 0);
    // A long line in many chunks: memory stays bounded, then the next line parses.
    for _ in 0..1000 {
        splitter.push(b"xxxxxxxxxxxxx", &mut |l| lines.push(l.to_vec()));
        assert!(splitter.buf.len() <= 16 && splitter.buf.capacity() <= 64);
    }
    assert_eq!(splitter.overlong(), 1);
    splitter.push(b"yyy\r\nNMBR = 5\r", &mut |l| lines.push(l.to_vec()));
    assert_eq!(lines.len(), 2);
    assert_eq!(parse_line(&lines[1]), known("5"));
    // Two overlong lines in one chunk.
    splitter.push(&[b'z'; 40], &mut |_| {});
    splitter.push(b"\n", &mut |_| {});
    splitter.push(&[b'z'; 17], &mut |_| {});
    splitter.push(b"\r\nOK\r\n", &mut |l| lines.push(l.to_vec()));
    assert_eq!(splitter.overlong(), 3);
    assert_eq!(lines.last().map(|l| parse_line(l)), Some(ModemLine::Ok));
}

#[test]
fn format_cid_block_round_trips() {
    let block = format_cid_block("0511", "1852", Some("4075550000"), Some("JOHN DOE"));
    assert_eq!(
        block,
        "DATE = 0511\r\nTIME = 1852\r\nNMBR = 4075550000\r\nNAME = JOHN DOE\r\n"
    );
    let block = format_cid_block("0511", "1852", None, None);
    assert_eq!(block, "DATE = 0511\r\nTIME = 1852\r\nNMBR = P\r\n");
    // A control character in a value cannot inject a line.
    let block = format_cid_block("0511", "1852", Some("1"), Some("EVIL\r\nRING"));
    assert_eq!(
        parse_all(block.as_bytes()).last(),
        Some(&field(CidField::Name(s("EVIL  RING"))))
    );
}

/// Bytes biased towards what matters to the parser: terminators, DLE, NUL, keys, GBK.
fn modem_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![DLE]),
        Just(vec![0]),
        Just(b"=".to_vec()),
        Just(b" ".to_vec()),
        Just(b"NMBR".to_vec()),
        Just(b"DATE TIME".to_vec()),
        Just(b"RING".to_vec()),
        Just(b"AT".to_vec()),
        Just(vec![0xD5, 0xC5, 0xCE, 0xB0]),
        Just("张".as_bytes().to_vec()),
    ];
    prop::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
}

/// The reference model of the splitter: split on CR/LF, drop empty lines, drop (and count)
/// lines over max_len; the unterminated tail is not emitted but counts if already overlong.
fn model_split(max_len: usize, input: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let mut parts: Vec<&[u8]> = input.split(|&b| is_eol(b)).collect();
    let tail = parts.pop().unwrap_or_default();
    let mut overlong = u64::from(tail.len() > max_len);
    let mut lines = Vec::new();
    for part in parts {
        if part.len() > max_len {
            overlong += 1;
        } else if !part.is_empty() {
            lines.push(part.to_vec());
        }
    }
    (lines, overlong)
}

proptest! {
    #[test]
    fn parse_line_never_panics(raw in prop_oneof![modem_bytes(), prop::collection::vec(any::<u8>(), 0..256)]) {
        let _ = parse_line(&raw);
        let _ = decode_text(&raw);
    }

    #[test]
    fn splitter_never_panics_and_stays_bounded(
        max_len in 0usize..48,
        input in prop_oneof![modem_bytes(), prop::collection::vec(any::<u8>(), 0..256)],
        cuts in prop::collection::vec(0usize..40, 0..16),
    ) {
        let mut splitter = LineSplitter::new(max_len);
        let mut rest = &input[..];
        for cut in cuts.iter().copied().chain(std::iter::once(usize::MAX)) {
            let cut = cut.min(rest.len());
            splitter.push(&rest[..cut], &mut |line| {
                assert!(!line.is_empty() && line.len() <= max_len);
                let _ = parse_line(line);
            });
            prop_assert!(splitter.buf.len() <= max_len);
            prop_assert!(splitter.buf.capacity() <= max_len.max(64));
            rest = &rest[cut..];
        }
    }

    #[test]
    fn splitting_is_independent_of_chunking(
        max_len in 0usize..48,
        input in modem_bytes(),
        cuts in prop::collection::vec(0usize..40, 0..16),
    ) {
        let whole = split_chunked(max_len, &input, &[]);
        prop_assert_eq!(&split_chunked(max_len, &input, &cuts), &whole);
        prop_assert_eq!(&whole, &model_split(max_len, &input));
    }

    #[test]
    fn cid_block_after_garbage_parses_back(
        garbage in prop::collection::vec(any::<u8>(), 0..128),
        date in "[0-9]{4}",
        time in "[0-9]{4}",
        number in prop::option::of("[+]?[0-9][0-9*#]{0,17}"),
        name in prop::option::of("[^\\p{Cc}]{0,24}"),
        cuts in prop::collection::vec(0usize..64, 0..8),
    ) {
        let block = format_cid_block(&date, &time, number.as_deref(), name.as_deref());
        let mut input = garbage;
        input.push(b'\n');
        input.extend_from_slice(block.as_bytes());

        let (lines, _) = split_chunked(1024, &input, &cuts);
        let parsed: Vec<ModemLine> = lines.iter().map(|l| parse_line(l)).collect();

        let mut expected = vec![
            field(CidField::Date(date.clone())),
            field(CidField::Time(time.clone())),
            field(CidField::Number(match &number {
                Some(n) => CallerNumber::Known(n.clone()),
                None => CallerNumber::Withheld,
            })),
        ];
        if let Some(name) = &name {
            expected.push(field(CidField::Name(name.trim().to_owned())));
        }
        // The garbage ends at the LF, so the block is exactly the last lines.
        prop_assert!(parsed.len() >= expected.len());
        prop_assert_eq!(&parsed[parsed.len() - expected.len()..], &expected[..]);
    }
}
