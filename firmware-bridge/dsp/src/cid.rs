//! Caller-ID message parsing: Bellcore GR-30 SDMF (`0x04`) and MDMF (`0x80`), ETSI EN 300 659 call set-up
//! (`0x80`), message waiting (`0x06`, `0x82`), and the checksum.
//!
//! A message on the wire is `type, length, data[length], checksum`, where the checksum is the two's complement of
//! the mod-256 sum of type, length and data (so the sum of all bytes is 0 mod 256).

use heapless::String;

/// Longest number kept (BT SIN227 allows 18 digits; longer numbers are cut).
pub const MAX_NUMBER: usize = 24;
/// Longest name kept (GR-30: 15, BT: 20 characters; longer names are cut).
pub const MAX_NAME: usize = 32;
/// Longest whole message (type + length + 255 data bytes + checksum).
pub const MAX_MESSAGE: usize = 258;

/// How the caller ID reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CidFormat {
    /// Bell 202 FSK, 1200 Hz mark / 2200 Hz space (GR-30; North America, mainland China, ...).
    Bell202,
    /// ITU V.23 FSK, 1300 Hz mark / 2100 Hz space (ETSI EN 300 659, BT SIN227, NTT).
    V23,
    /// DTMF caller ID (ETSI variants 1 to 4).
    Dtmf,
}

impl CidFormat {
    /// The name used in the host tool's JSON: `"bell202"`, `"v23"` or `"dtmf"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CidFormat::Bell202 => "bell202",
            CidFormat::V23 => "v23",
            CidFormat::Dtmf => "dtmf",
        }
    }
}

/// Whether the number (or name) was delivered, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presentation {
    /// Delivered.
    Available,
    /// Withheld by the caller (`P`, DTMF `D1#` / special info `10`).
    Private,
    /// Out of area / unavailable (`O`, DTMF `D3#` / special info `00`).
    Unavailable,
}

impl Presentation {
    /// The name used in the host tool's JSON: `"available"`, `"private"`, `"unavailable"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Presentation::Available => "available",
            Presentation::Private => "private",
            Presentation::Unavailable => "unavailable",
        }
    }

    fn from_reason(b: u8) -> Self {
        match b {
            b'P' | b'p' => Presentation::Private,
            _ => Presentation::Unavailable,
        }
    }
}

/// One caller-ID message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerId {
    /// The signalling it came in.
    pub format: CidFormat,
    /// The FSK message type (`0x04` SDMF, `0x80` MDMF / ETSI call set-up); 0 for DTMF.
    pub message_type: u8,
    /// The calling number, when delivered.
    pub number: Option<String<MAX_NUMBER>>,
    /// The calling name, when delivered.
    pub name: Option<String<MAX_NAME>>,
    /// Why the number is missing, or `Available`.
    pub presentation: Presentation,
    /// Why the name is missing (MDMF `0x08`), or `Available` (also when no name was sent without a reason).
    pub name_presentation: Presentation,
    /// Date and time `MMDDHHMM` as sent (ASCII digits), when present and well formed.
    pub datetime: Option<[u8; 8]>,
    /// FSK: the checksum matched. DTMF (which has none): the sequence ended with its terminator.
    pub checksum_ok: bool,
}

impl CallerId {
    /// An empty record of this format.
    pub fn empty(format: CidFormat, message_type: u8) -> Self {
        CallerId {
            format,
            message_type,
            number: None,
            name: None,
            presentation: Presentation::Available,
            name_presentation: Presentation::Available,
            datetime: None,
            checksum_ok: false,
        }
    }

    /// The date and time as text `MMDDHHMM`.
    pub fn datetime_str(&self) -> Option<&str> {
        self.datetime
            .as_ref()
            .and_then(|d| core::str::from_utf8(d).ok())
    }
}

/// What a complete FSK message was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Caller ID (SDMF `0x04`, MDMF `0x80`).
    CallerId(CallerId),
    /// Visual message-waiting indicator (SDMF `0x06`, MDMF `0x82`), with the checksum result.
    MessageWaiting {
        /// Lamp on.
        on: bool,
        /// The checksum matched.
        checksum_ok: bool,
    },
}

/// Whether `t` is a message type the receiver accepts as the first byte after the mark signal.
pub fn known_type(t: u8) -> bool {
    matches!(t, 0x04 | 0x06 | 0x80 | 0x82)
}

/// Whether the bytes (type, length, data, checksum) sum to 0 mod 256.
pub fn checksum_ok(msg: &[u8]) -> bool {
    msg.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

/// Appends the checksum byte for `body` (type, length, data). For synthesizers and tests.
pub fn checksum_for(body: &[u8]) -> u8 {
    body.iter()
        .fold(0u8, |a, &b| a.wrapping_add(b))
        .wrapping_neg()
}

fn push_text<const N: usize>(out: &mut String<N>, bytes: &[u8]) {
    for &b in bytes {
        let c = if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '?'
        };
        if out.push(c).is_err() {
            break;
        }
    }
}

fn text<const N: usize>(bytes: &[u8]) -> Option<String<N>> {
    let mut s = String::new();
    push_text(&mut s, bytes);
    let trimmed_empty = s.trim().is_empty();
    if trimmed_empty {
        None
    } else {
        Some(s)
    }
}

fn datetime(bytes: &[u8]) -> Option<[u8; 8]> {
    if bytes.len() != 8 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut d = [0u8; 8];
    d.copy_from_slice(bytes);
    Some(d)
}

/// Parses one whole message `type, length, data, checksum`. Returns `None` when the message is not complete
/// (wrong length), its type is not one we decode, or its structure is broken (a parameter running past the end).
/// A message whose checksum is wrong but whose structure is sound is returned with `checksum_ok: false`.
pub fn parse(format: CidFormat, msg: &[u8]) -> Option<Message> {
    let (&ty, rest) = msg.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if rest.len() != len + 1 {
        return None;
    }
    let data = rest.get(..len)?;
    let ok = checksum_ok(msg);
    match ty {
        0x04 => parse_sdmf(format, data, ok).map(Message::CallerId),
        0x80 => parse_mdmf(format, data, ok).map(Message::CallerId),
        0x06 => {
            // SDMF message waiting: 0x42 0x42 0x42 on, 0x6F 0x6F 0x6F off.
            match data.first() {
                Some(0x42) => Some(Message::MessageWaiting {
                    on: true,
                    checksum_ok: ok,
                }),
                Some(0x6F) => Some(Message::MessageWaiting {
                    on: false,
                    checksum_ok: ok,
                }),
                _ => None,
            }
        }
        0x82 => {
            let mut on = None;
            for (code, value) in Params::new(data) {
                if code == 0x0B {
                    on = value.first().map(|&v| v != 0);
                }
            }
            Params::new(data).valid().then_some(())?;
            on.map(|on| Message::MessageWaiting {
                on,
                checksum_ok: ok,
            })
        }
        _ => None,
    }
}

fn parse_sdmf(format: CidFormat, data: &[u8], ok: bool) -> Option<CallerId> {
    // MMDDHHMM followed by the number, or a single 'O' / 'P'.
    if data.len() < 9 {
        return None;
    }
    let mut c = CallerId::empty(format, 0x04);
    c.checksum_ok = ok;
    c.datetime = datetime(data.get(..8)?);
    let num = data.get(8..)?;
    if num.len() == 1 && matches!(num[0], b'O' | b'P' | b'o' | b'p') {
        c.presentation = Presentation::from_reason(num[0]);
    } else {
        c.number = text(num);
        if c.number.is_none() {
            c.presentation = Presentation::Unavailable;
        }
    }
    Some(c)
}

fn parse_mdmf(format: CidFormat, data: &[u8], ok: bool) -> Option<CallerId> {
    if !Params::new(data).valid() {
        return None;
    }
    let mut c = CallerId::empty(format, 0x80);
    c.checksum_ok = ok;
    let mut reason = None;
    for (code, value) in Params::new(data) {
        match code {
            0x01 => c.datetime = datetime(value),
            0x02 => c.number = text(value),
            0x04 => reason = value.first().copied(),
            0x07 => c.name = text(value),
            0x08 => {
                if let Some(&r) = value.first() {
                    c.name_presentation = Presentation::from_reason(r);
                }
            }
            _ => {}
        }
    }
    if c.number.is_none() {
        c.presentation = match reason {
            Some(r) => Presentation::from_reason(r),
            None => Presentation::Unavailable,
        };
    }
    Some(c)
}

/// Iterator over MDMF parameters `(code, value)`.
struct Params<'a> {
    data: &'a [u8],
    broken: bool,
}

impl<'a> Params<'a> {
    fn new(data: &'a [u8]) -> Self {
        Params {
            data,
            broken: false,
        }
    }

    /// Whether the parameters exactly fill the data.
    fn valid(mut self) -> bool {
        while self.next().is_some() {}
        !self.broken
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&code, rest) = self.data.split_first()?;
        let Some((&len, rest)) = rest.split_first() else {
            self.broken = true;
            self.data = &[];
            return None;
        };
        let len = len as usize;
        if rest.len() < len {
            self.broken = true;
            self.data = &[];
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.data = rest;
        Some((code, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, data: &[u8]) -> heapless::Vec<u8, MAX_MESSAGE> {
        let mut v = heapless::Vec::new();
        v.push(ty).unwrap();
        v.push(data.len() as u8).unwrap();
        v.extend_from_slice(data).unwrap();
        let ck = checksum_for(&v);
        v.push(ck).unwrap();
        v
    }

    #[test]
    fn sdmf_number() {
        let m = frame(0x04, b"120314301234567890");
        let Some(Message::CallerId(c)) = parse(CidFormat::Bell202, &m) else {
            panic!()
        };
        assert_eq!(c.number.as_deref(), Some("1234567890"));
        assert_eq!(c.datetime_str(), Some("12031430"));
        assert!(c.checksum_ok);
    }

    #[test]
    fn sdmf_private_and_bad_checksum() {
        let mut m = frame(0x04, b"01010000P");
        let last = m.len() - 1;
        m[last] ^= 1;
        let Some(Message::CallerId(c)) = parse(CidFormat::Bell202, &m) else {
            panic!()
        };
        assert_eq!(c.presentation, Presentation::Private);
        assert!(c.number.is_none());
        assert!(!c.checksum_ok);
    }

    #[test]
    fn mdmf_all_params() {
        let mut d = heapless::Vec::<u8, 64>::new();
        d.extend_from_slice(&[0x01, 8]).unwrap();
        d.extend_from_slice(b"11282359").unwrap();
        d.extend_from_slice(&[0x07, 5]).unwrap();
        d.extend_from_slice(b"ALICE").unwrap();
        d.extend_from_slice(&[0x04, 1, b'O']).unwrap();
        let m = frame(0x80, &d);
        let Some(Message::CallerId(c)) = parse(CidFormat::V23, &m) else {
            panic!()
        };
        assert_eq!(c.name.as_deref(), Some("ALICE"));
        assert_eq!(c.presentation, Presentation::Unavailable);
        assert_eq!(c.datetime_str(), Some("11282359"));
    }

    #[test]
    fn mdmf_broken_structure() {
        let m = frame(0x80, &[0x02, 9, b'1', b'2']);
        assert!(parse(CidFormat::Bell202, &m).is_none());
        assert!(parse(CidFormat::Bell202, &[0x80]).is_none());
        assert!(parse(CidFormat::Bell202, &[]).is_none());
    }

    #[test]
    fn mwi() {
        let m = frame(0x82, &[0x0B, 1, 0xFF]);
        assert_eq!(
            parse(CidFormat::Bell202, &m),
            Some(Message::MessageWaiting {
                on: true,
                checksum_ok: true
            })
        );
    }
}
