//! The stored encoding of calls in the `calls` tree.
//!
//! A month holds ~100,000 calls and the monthly report reads them all; decoding them from JSON (three RFC 3339
//! times and a dozen keyed fields each) cost ~2.5 µs a call, most of the report. Calls are therefore written as a
//! compact binary record: a leading format byte [`CALL_V1`], then a fixed layout. Records written before (JSON
//! objects, which start with `{`) still read: [`decode_call`] looks at the first byte. The public JSON contract
//! (MQTT and HTTP payloads, the outbox, exports) is untouched: only the `calls` tree's values change.
//!
//! Layout of version 1, all integers little-endian:
//!
//! ```text
//! u8   format = 0x01
//! u16  flags (FLAG_*): direction, which optional fields are present, repeat, vip, clock_unsynced
//! u8   number_status   0 known, 1 withheld, 2 unavailable, 3 none
//! u8   outcome         0 absent, 1 answered, 2 missed, 3 unknown, 4 interrupted
//! u32  rings
//! time started_at, [answered_at], [ended_at]       time = i64 seconds since the epoch + u32 nanoseconds
//! f64  [wait_s], [talk_s]
//! str  id, line, [number], [name], [agent], [message]   str = LEB128 length + UTF-8 bytes
//! ```
//!
//! Bracketed fields are present only when their flag is set; the record must end exactly after the last field.
//! Adding a field to [`Call`] does not compile until [`encode_call`] handles it; it then needs a new format byte,
//! with the older versions still decoded, since stores keep old records forever.
//!
//! Version 2 (format byte `0x02`) is version 1 with two more flags and fields, for lines that know who answered and
//! who hung up first: `str [answered_by]` after `[message]`, then `u8 [cleared_by]` (0 caller, 1 office,
//! 2 unknown). A call without them is still written as version 1, byte for byte as before.

use chrono::DateTime;
use serde::de::Error as _;

use crate::model::{Call, ClearedBy, Direction, NumberStatus, Outcome, Time};

/// The first byte of a version-1 binary call record. (A JSON record starts with `{`.)
pub(super) const CALL_V1: u8 = 0x01;
/// Version 2: version 1 with `answered_by` and `cleared_by`.
pub(super) const CALL_V2: u8 = 0x02;

const FLAG_OUT: u16 = 1 << 0;
const FLAG_NUMBER: u16 = 1 << 1;
const FLAG_NAME: u16 = 1 << 2;
const FLAG_ANSWERED_AT: u16 = 1 << 3;
const FLAG_ENDED_AT: u16 = 1 << 4;
const FLAG_WAIT: u16 = 1 << 5;
const FLAG_TALK: u16 = 1 << 6;
const FLAG_AGENT: u16 = 1 << 7;
const FLAG_REPEAT: u16 = 1 << 8;
const FLAG_VIP: u16 = 1 << 9;
const FLAG_CLOCK_UNSYNCED: u16 = 1 << 10;
const FLAG_MESSAGE: u16 = 1 << 11;
const FLAGS_V1: u16 = (1 << 12) - 1;
const FLAG_ANSWERED_BY: u16 = 1 << 12;
const FLAG_CLEARED_BY: u16 = 1 << 13;
const FLAGS_V2: u16 = (1 << 14) - 1;

/// A call as stored: the binary record of version 1.
pub(super) fn encode_call(c: &Call) -> Vec<u8> {
    // Destructured in full, so that a new field of `Call` does not compile until it is stored.
    let Call {
        id,
        line,
        direction,
        number,
        number_status,
        name,
        started_at,
        answered_at,
        ended_at,
        rings,
        wait_s,
        talk_s,
        outcome,
        agent,
        repeat,
        vip,
        clock_unsynced,
        message,
        answered_by,
        cleared_by,
    } = c;
    // JSON writes a non-finite number as `null`, which reads back as `None`: so does this encoding.
    let wait_s = wait_s.filter(|w| w.is_finite());
    let talk_s = talk_s.filter(|t| t.is_finite());
    let mut flags = 0u16;
    let mut set = |bit: u16, on: bool| {
        if on {
            flags |= bit;
        }
    };
    set(FLAG_OUT, *direction == Direction::Out);
    set(FLAG_NUMBER, number.is_some());
    set(FLAG_NAME, name.is_some());
    set(FLAG_ANSWERED_AT, answered_at.is_some());
    set(FLAG_ENDED_AT, ended_at.is_some());
    set(FLAG_WAIT, wait_s.is_some());
    set(FLAG_TALK, talk_s.is_some());
    set(FLAG_AGENT, agent.is_some());
    set(FLAG_REPEAT, *repeat);
    set(FLAG_VIP, *vip);
    set(FLAG_CLOCK_UNSYNCED, *clock_unsynced);
    set(FLAG_MESSAGE, message.is_some());
    set(FLAG_ANSWERED_BY, answered_by.is_some());
    set(FLAG_CLEARED_BY, cleared_by.is_some());

    let strings = [
        Some(id),
        Some(line),
        number.as_ref(),
        name.as_ref(),
        agent.as_ref(),
        message.as_ref(),
        answered_by.as_ref(),
    ];
    let mut out =
        Vec::with_capacity(64 + strings.iter().flatten().map(|s| s.len() + 2).sum::<usize>());
    out.push(if flags & !FLAGS_V1 == 0 {
        CALL_V1
    } else {
        CALL_V2
    });
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(match number_status {
        NumberStatus::Known => 0,
        NumberStatus::Withheld => 1,
        NumberStatus::Unavailable => 2,
        NumberStatus::None => 3,
    });
    out.push(match outcome {
        None => 0,
        Some(Outcome::Answered) => 1,
        Some(Outcome::Missed) => 2,
        Some(Outcome::Unknown) => 3,
        Some(Outcome::Interrupted) => 4,
    });
    out.extend_from_slice(&rings.to_le_bytes());
    for t in [Some(started_at), answered_at.as_ref(), ended_at.as_ref()]
        .into_iter()
        .flatten()
    {
        out.extend_from_slice(&t.timestamp().to_le_bytes());
        out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
    }
    for x in [wait_s, talk_s].into_iter().flatten() {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for s in strings.into_iter().flatten() {
        let mut n = s.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(s.as_bytes());
    }
    if let Some(c) = cleared_by {
        out.push(match c {
            ClearedBy::Caller => 0,
            ClearedBy::Office => 1,
            ClearedBy::Unknown => 2,
        });
    }
    out
}

/// A stored call: a binary record, or a JSON one written by an earlier linekeeper.
pub(super) fn decode_call(v: &[u8]) -> Result<Call, serde_json::Error> {
    match v.first() {
        Some(&CALL_V1) => decode_binary(&v[1..], FLAGS_V1).map_err(serde_json::Error::custom),
        Some(&CALL_V2) => decode_binary(&v[1..], FLAGS_V2).map_err(serde_json::Error::custom),
        _ => serde_json::from_slice(v),
    }
}

/// The number and start of a stored call, without allocating for the other fields (the repeat-caller index is
/// built from a week of calls at start).
pub(super) fn decode_number_at(v: &[u8]) -> Result<(Option<String>, Time), serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct NumberAt {
        number: Option<String>,
        started_at: Time,
    }
    match v.first() {
        // Version 2 begins as version 1 does.
        Some(&CALL_V1 | &CALL_V2) => number_at_v1(&v[1..]).map_err(serde_json::Error::custom),
        _ => serde_json::from_slice(v).map(|c: NumberAt| (c.number, c.started_at)),
    }
}

fn number_at_v1(v: &[u8]) -> Result<(Option<String>, Time), &'static str> {
    let mut r = Reader { rest: v };
    let flags = u16::from_le_bytes(r.take()?);
    let _status_outcome_rings: [u8; 6] = r.take()?;
    let started_at = r.time()?;
    if flags & FLAG_NUMBER == 0 {
        return Ok((None, started_at));
    }
    let skip = [FLAG_ANSWERED_AT, FLAG_ENDED_AT]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count()
        * 12
        + [FLAG_WAIT, FLAG_TALK]
            .iter()
            .filter(|&&bit| flags & bit != 0)
            .count()
            * 8;
    r.rest = r
        .rest
        .get(skip..)
        .ok_or("binary call record is truncated")?;
    r.str()?; // id
    r.str()?; // line
    Ok((Some(r.str()?.to_owned()), started_at))
}

/// Reads the fields of a version-1 record (after its format byte).
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or("binary call record is truncated")?;
        self.rest = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take::<1>()?[0])
    }

    fn time(&mut self) -> Result<Time, &'static str> {
        let secs = i64::from_le_bytes(self.take()?);
        let nanos = u32::from_le_bytes(self.take()?);
        DateTime::from_timestamp(secs, nanos).ok_or("binary call record has a time out of range")
    }

    fn string(&mut self) -> Result<String, &'static str> {
        self.str().map(str::to_owned)
    }

    fn str(&mut self) -> Result<&'a str, &'static str> {
        let mut n = 0usize;
        let mut shift = 0;
        loop {
            let byte = self.u8()?;
            if shift >= usize::BITS {
                return Err("binary call record has a bad string length");
            }
            n |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if n > self.rest.len() {
            return Err("binary call record is truncated");
        }
        let (s, rest) = self.rest.split_at(n);
        self.rest = rest;
        std::str::from_utf8(s).map_err(|_| "binary call record has a string that is not UTF-8")
    }
}

/// Reads a version 1 or 2 record (after its format byte); `known`: the flags of that version.
fn decode_binary(v: &[u8], known: u16) -> Result<Call, &'static str> {
    let mut r = Reader { rest: v };
    let flags = u16::from_le_bytes(r.take()?);
    if flags & !known != 0 {
        return Err("binary call record has unknown flags");
    }
    let has = |bit: u16| flags & bit != 0;
    let number_status = match r.u8()? {
        0 => NumberStatus::Known,
        1 => NumberStatus::Withheld,
        2 => NumberStatus::Unavailable,
        3 => NumberStatus::None,
        _ => return Err("binary call record has an unknown number status"),
    };
    let outcome = match r.u8()? {
        0 => None,
        1 => Some(Outcome::Answered),
        2 => Some(Outcome::Missed),
        3 => Some(Outcome::Unknown),
        4 => Some(Outcome::Interrupted),
        _ => return Err("binary call record has an unknown outcome"),
    };
    let rings = u32::from_le_bytes(r.take()?);
    let started_at = r.time()?;
    let answered_at = has(FLAG_ANSWERED_AT).then(|| r.time()).transpose()?;
    let ended_at = has(FLAG_ENDED_AT).then(|| r.time()).transpose()?;
    let wait_s = has(FLAG_WAIT)
        .then(|| r.take().map(f64::from_le_bytes))
        .transpose()?;
    let talk_s = has(FLAG_TALK)
        .then(|| r.take().map(f64::from_le_bytes))
        .transpose()?;
    let id = r.string()?;
    let line = r.string()?;
    let number = has(FLAG_NUMBER).then(|| r.string()).transpose()?;
    let name = has(FLAG_NAME).then(|| r.string()).transpose()?;
    let agent = has(FLAG_AGENT).then(|| r.string()).transpose()?;
    let message = has(FLAG_MESSAGE).then(|| r.string()).transpose()?;
    let answered_by = has(FLAG_ANSWERED_BY).then(|| r.string()).transpose()?;
    let cleared_by = match has(FLAG_CLEARED_BY).then(|| r.u8()).transpose()? {
        None => None,
        Some(0) => Some(ClearedBy::Caller),
        Some(1) => Some(ClearedBy::Office),
        Some(2) => Some(ClearedBy::Unknown),
        Some(_) => return Err("binary call record has an unknown cleared_by"),
    };
    if !r.rest.is_empty() {
        return Err("binary call record has trailing bytes");
    }
    Ok(Call {
        id,
        line,
        direction: if has(FLAG_OUT) {
            Direction::Out
        } else {
            Direction::In
        },
        number,
        number_status,
        name,
        started_at,
        answered_at,
        ended_at,
        rings,
        wait_s,
        talk_s,
        outcome,
        agent,
        repeat: has(FLAG_REPEAT),
        vip: has(FLAG_VIP),
        clock_unsynced: has(FLAG_CLOCK_UNSYNCED),
        message,
        answered_by,
        cleared_by,
    })
}

#[cfg(test)]
mod tests;
