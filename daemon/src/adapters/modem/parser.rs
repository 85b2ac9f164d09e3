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
mod tests;
