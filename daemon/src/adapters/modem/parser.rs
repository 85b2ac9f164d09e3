//! Parser for the text a caller-ID modem (or our bridge board) writes on its serial line.
//!
//! The de-facto format is the one NCID reads (see `telephony-anchors.md` §1.2):
//!
//! ```text
//! RING
//! DATE = 0511
//! TIME = 1852
//! NMBR = 4075550000      (or DDN_NMBR = / DDN = )
//! NAME = JOHN DOE
//! RING
//! ```
//!
//! Lines come in any order, some may be missing, and there may or may not be spaces around `=`.
//! Everything here is pure (no I/O) and must not panic on any input: the bytes come from a
//! serial line and can be anything after a baud-rate mismatch or line noise.

/// DLE (Ctrl-P, `^P`): voice modems shield event codes with it, e.g. `\x10R\x10X` (`^PR^PX`),
/// which a Motorola modem sends before the caller-ID block.
const DLE: u8 = 0x10;

fn is_eol(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// Splits the byte stream from a serial line into lines. CR, LF or CRLF end a line (also LFCR,
/// CR CR...: empty lines are dropped).
///
/// Memory bounded: a line longer than `max_len` bytes is discarded up to its terminator and
/// counted in [`overlong`](Self::overlong). The internal buffer never holds more than `max_len`
/// bytes (and its capacity is grown only up to `max_len`).
#[derive(Debug, Clone)]
pub struct LineSplitter {
    max_len: usize,
    /// Bytes of the current, not yet terminated line. Invariant: `buf.len() <= max_len`.
    buf: Vec<u8>,
    /// True while skipping the rest of an overlong line (until its terminator).
    discarding: bool,
    overlong: u64,
}

impl LineSplitter {
    /// A splitter that keeps lines of at most `max_len` bytes (terminator not counted).
    /// With `max_len == 0` every non-empty line is overlong.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            buf: Vec::new(),
            discarding: false,
            overlong: 0,
        }
    }

    /// Feed bytes; calls `out` with each complete non-empty line (without terminator).
    /// A partial line at the end of `bytes` is kept for the next call.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut impl FnMut(&[u8])) {
        while let Some(pos) = bytes.iter().position(|&b| is_eol(b)) {
            self.append(&bytes[..pos]);
            self.end_line(out);
            bytes = &bytes[pos + 1..];
        }
        self.append(bytes);
    }

    /// Number of overlong lines discarded so far. A line is counted as soon as it exceeds
    /// `max_len`, even if its terminator has not arrived yet.
    pub fn overlong(&self) -> u64 {
        self.overlong
    }

    /// Forget a partial line (after a reconnect). The overlong counter is kept.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }

    /// Appends a piece of the current line (no terminator inside).
    fn append(&mut self, part: &[u8]) {
        if self.discarding || part.is_empty() {
            return;
        }
        // `buf.len() <= max_len` holds, so the subtraction cannot underflow.
        if part.len() > self.max_len - self.buf.len() {
            self.discarding = true;
            self.overlong += 1;
            self.buf.clear();
            return;
        }
        let needed = self.buf.len() + part.len();
        if needed > self.buf.capacity() {
            // Grow geometrically like Vec does, but never past max_len.
            let target = needed
                .max(self.buf.capacity().saturating_mul(2))
                .max(64)
                .min(self.max_len);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(part);
    }

    fn end_line(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.discarding {
            self.discarding = false;
        } else if !self.buf.is_empty() {
            out(&self.buf);
        }
        self.buf.clear();
    }
}

/// One line from the modem, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemLine {
    /// "RING", "RING A", "RING B" (distinctive ring), "RING 1".
    Ring { label: Option<String> },
    /// A caller-ID field.
    Field(CidField),
    /// "OK" / "0" (numeric result).
    Ok,
    /// "ERROR" / "4".
    Error,
    /// An echoed command: a line starting with "AT" (case-insensitive).
    Echo(String),
    /// "OFFHOOK" (also "LINE OFFHOOK"): our bridge board's extension line.
    OffHook,
    /// "ONHOOK" (also "LINE ONHOOK").
    OnHook,
    /// Anything else, decoded text (logged by the caller), e.g. "CONNECT", "NO CARRIER",
    /// a modem ident, an unknown `KEY = value` line. Trimmed of whitespace and NUL bytes.
    Other(String),
}

/// A caller-ID field. Values are decoded with [`decode_text`] and trimmed; they may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidField {
    /// "DATE = 0511" (MMDD), value may be empty.
    Date(String),
    /// "TIME = 1852" (HHMM), value may be empty.
    Time(String),
    /// "DATE TIME=01/06 14:15", the combined form.
    DateTime(String),
    /// "NMBR = ...", "DDN_NMBR = ...", "DDN = ...".
    Number(CallerNumber),
    /// "NAME = ...".
    Name(String),
    /// "MESG = ..." (usually hex of the raw message type / parameters).
    Message(String),
}

/// The calling number, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerNumber {
    /// A number. When the value looks like a phone number (digits, `+ * #`, and the separators
    /// space, `-`, `.`, `(`, `)`), the separators are removed: "(407) 555-0000" -> "4075550000".
    /// All zeros ("0000000000", sent with `NAME = PrivDirOff`) is kept as a known number: it is
    /// what the exchange sent, and the caller can decide what it means.
    /// Any other value (e.g. "NO TIME" in NCID's test corpus) is kept verbatim (trimmed), so it
    /// shows up in the call log instead of being lost.
    Known(String),
    /// "P", "PRIVATE", "WITHHELD", "BLOCKED", "RESTRICTED", "ANONYMOUS" (case-insensitive).
    Withheld,
    /// "O", "OUT OF AREA", "OUT-OF-AREA", "UNAVAILABLE", "UNKNOWN" (case-insensitive), an empty
    /// value, a masked number made only of `#` ("##########"), or only separators.
    Unavailable,
}

/// Classifies one line (without its terminator). Never panics.
///
/// Tolerated: leading/trailing whitespace and NUL bytes, any spacing around `=`, lower-case keys,
/// and a garbage prefix before a keyword: non-printable bytes (e.g. `"\x10NMBR = 123"`) or
/// DLE-shielded codes such as NCID's `^PR^PX` (`"\x10R\x10X"`) and `^P.^X`.
pub fn parse_line(raw: &[u8]) -> ModemLine {
    let line = trim_bytes(raw);
    if let Some(parsed) = parse_clean(skip_junk(line, false)) {
        return parsed;
    }
    // Second reading: a DLE swallows the byte after it, even a printable one ("\x10R").
    // Tried only if the first reading failed, because in "\x10NMBR = 1" the DLE is lone junk.
    if line.contains(&DLE) {
        if let Some(parsed) = parse_clean(skip_junk(line, true)) {
            return parsed;
        }
    }
    ModemLine::Other(decode_text(line))
}

/// Trims ASCII whitespace and NUL bytes at both ends.
fn trim_bytes(bytes: &[u8]) -> &[u8] {
    let junk = |b: &u8| b.is_ascii_whitespace() || *b == 0;
    let start = bytes.iter().position(|b| !junk(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !junk(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Skips a leading run of bytes that cannot start a keyword: anything but printable,
/// non-space ASCII. With `dle_pairs`, a DLE also swallows the byte after it.
fn skip_junk(line: &[u8], dle_pairs: bool) -> &[u8] {
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if dle_pairs && b == DLE {
            i += 2;
        } else if !b.is_ascii_graphic() {
            i += 1;
        } else {
            break;
        }
    }
    line.get(i..).unwrap_or_default()
}

/// Parses a line whose first byte (if any) is printable ASCII. `None` if not recognised.
fn parse_clean(s: &[u8]) -> Option<ModemLine> {
    if s.len() >= 2 && s[..2].eq_ignore_ascii_case(b"AT") {
        return Some(ModemLine::Echo(decode_text(s)));
    }
    if let Some(eq) = s.iter().position(|&b| b == b'=') {
        return parse_field(&s[..eq], &s[eq + 1..]).map(ModemLine::Field);
    }
    // Keywords are ASCII; a line that is not UTF-8 cannot be one.
    let text = std::str::from_utf8(s).ok()?;
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    let parsed = match upper.as_slice() {
        ["RING"] => ModemLine::Ring { label: None },
        ["RING", _] => ModemLine::Ring {
            label: Some(words[1].to_owned()),
        },
        ["OK"] | ["0"] => ModemLine::Ok,
        ["ERROR"] | ["4"] => ModemLine::Error,
        ["OFFHOOK"] | ["LINE", "OFFHOOK"] => ModemLine::OffHook,
        ["ONHOOK"] | ["LINE", "ONHOOK"] => ModemLine::OnHook,
        _ => return None,
    };
    Some(parsed)
}

/// `KEY = value`: the key is matched case-insensitively with runs of whitespace collapsed,
/// so "date  time" matches "DATE TIME"; stray control bytes (line noise) inside the key are
/// ignored. `None` for an unknown key.
fn parse_field(key: &[u8], value: &[u8]) -> Option<CidField> {
    let key: Vec<u8> = key
        .iter()
        .filter(|b| b.is_ascii_whitespace() || !b.is_ascii_control())
        .copied()
        .collect();
    let key = std::str::from_utf8(&key).ok()?;
    let key = key
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    let value = decode_value(value);
    let field = match key.as_str() {
        "DATE" => CidField::Date(value),
        "TIME" => CidField::Time(value),
        "DATE TIME" | "DATETIME" => CidField::DateTime(value),
        "NMBR" | "DDN_NMBR" | "DDN" => CidField::Number(classify_number(&value)),
        "NAME" => CidField::Name(value),
        "MESG" => CidField::Message(value),
        _ => return None,
    };
    Some(field)
}

fn decode_value(value: &[u8]) -> String {
    let text = decode_text(trim_bytes(value));
    // Bytes were trimmed of ASCII whitespace; also trim Unicode whitespace after decoding.
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if trimmed.len() == text.len() {
        text
    } else {
        trimmed.to_owned()
    }
}

fn classify_number(value: &str) -> CallerNumber {
    let words = value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    match words.as_str() {
        "P" | "PRIVATE" | "WITHHELD" | "BLOCKED" | "RESTRICTED" | "ANONYMOUS" => {
            return CallerNumber::Withheld
        }
        "" | "O" | "OUT OF AREA" | "OUT-OF-AREA" | "UNAVAILABLE" | "UNKNOWN" => {
            return CallerNumber::Unavailable
        }
        _ => {}
    }
    let is_dial_char = |c: char| c.is_ascii_digit() || matches!(c, '+' | '*' | '#');
    let is_separator = |c: char| matches!(c, ' ' | '\t' | '-' | '.' | '(' | ')');
    if value.chars().all(|c| is_dial_char(c) || is_separator(c)) {
        let dialled: String = value.chars().filter(|&c| is_dial_char(c)).collect();
        // Some exchanges mask the number as "##########" before sending "O".
        if dialled.chars().all(|c| c == '#') {
            return CallerNumber::Unavailable;
        }
        return CallerNumber::Known(dialled);
    }
    CallerNumber::Known(value.to_owned())
}

/// Bytes to text: valid UTF-8 as is; otherwise GB18030 (Chinese modems and exchanges send GBK
/// names) when it decodes without errors; otherwise a lossless escape: printable ASCII kept
/// (a backslash written as `\\`, so the escape stays unambiguous), every other byte as `\xNN`.
/// Never panics.
///
/// Note: GB18030 accepts many byte pairs, so a Latin-1 name ("V\xe4h\xe4l\xe4") can come out as
/// Chinese characters. Exchanges in Latin-1 countries send ASCII, so GBK is the better guess.
pub fn decode_text(raw: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(raw) {
        return text.to_owned();
    }
    if let Some(text) =
        encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(raw)
    {
        return text.into_owned();
    }
    escape_bytes(raw)
}

fn escape_bytes(raw: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(raw.len() * 2);
    for &b in raw {
        match b {
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Text the simulated modem / a real modem sends for one caller-ID block, lines ended "\r\n":
/// `DATE`, `TIME`, `NMBR` (`P` when `number` is `None`) and, when given, `NAME`.
/// Control characters inside the values are replaced by spaces so that a value can never
/// break the line framing.
pub fn format_cid_block(
    date_mmdd: &str,
    time_hhmm: &str,
    number: Option<&str>,
    name: Option<&str>,
) -> String {
    let mut out = String::with_capacity(64);
    push_field(&mut out, "DATE", date_mmdd);
    push_field(&mut out, "TIME", time_hhmm);
    push_field(&mut out, "NMBR", number.unwrap_or("P"));
    if let Some(name) = name {
        push_field(&mut out, "NAME", name);
    }
    out
}

fn push_field(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(" = ");
    out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
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
}
