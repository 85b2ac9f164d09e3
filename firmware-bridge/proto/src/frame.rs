//! Framing: `COBS( version | postcard(msg) | crc16_le ) 0x00`.
//!
//! * [`encode`] writes one frame into a caller-provided buffer.
//! * [`Decoder`] takes bytes in arbitrary chunks (as a serial port delivers them) and yields one
//!   `Result<M, FrameError>` per `0x00` delimiter. It uses a fixed `[u8; N]` buffer, never allocates
//!   and never panics; after any error it starts over at the next `0x00`.

use core::fmt;

use crc::{Crc, CRC_16_IBM_SDLC};
use serde::{de::DeserializeOwned, Serialize};

use crate::msg::{BoardMsg, HostMsg};
use crate::PROTO_VERSION;

/// CRC-16/IBM-SDLC (the X.25 / HDLC FCS: poly 0x1021 reflected, init 0xFFFF, xorout 0xFFFF),
/// over the version byte and the postcard payload, stored little-endian.
pub const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// Largest decoded frame body: version byte + postcard payload + 2 CRC bytes.
pub const MAX_BODY: usize = 252;
/// Largest postcard payload.
pub const MAX_PAYLOAD: usize = MAX_BODY - 3;
/// Largest encoded frame on the wire, including the `0x00` delimiter (= 254).
/// Size encode buffers and [`Decoder`] with this.
pub const MAX_FRAME: usize = cobs::max_encoding_length(MAX_BODY) + 1;

/// Largest encoded [`HostMsg`] frame, including the delimiter (tested in `tests/sizes.rs`). The
/// board may size its host-side decoder with it: `Decoder<MAX_HOST_FRAME>`.
pub const MAX_HOST_FRAME: usize = 32;

/// The frame could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The message serialises to more than [`MAX_PAYLOAD`] bytes (cannot happen for this crate's
    /// messages; see the size test), or the output buffer is smaller than the frame.
    BufferTooSmall,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("frame does not fit the buffer")
    }
}

/// Why a frame was rejected. Every variant is counted in [`DecoderStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Invalid COBS (a code byte pointing past the delimiter).
    Cobs,
    /// Decoded to fewer than 4 bytes (version, one payload byte, CRC).
    TooShort,
    /// The CRC does not match: corrupted on the line, or garbage before the first delimiter.
    Crc,
    /// More than the decoder's buffer before a delimiter; the bytes were skipped.
    Oversize,
    /// Valid frame of another protocol version (see [`crate::host::ProtoMismatch`]).
    Version { frame: u8, ours: u8 },
    /// Valid frame, but the payload is not a message we know (a newer peer's appended variant,
    /// or trailing bytes).
    UnknownMessage,
    /// Valid frame holding a board event this host cannot decode (a newer board's appended
    /// [`crate::msg::Event`] variant). The envelope is readable, so the host still acknowledges it.
    UnknownEvent { boot_id: u32, seq: u32, oldest: u32 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Cobs => f.write_str("invalid COBS framing"),
            FrameError::TooShort => f.write_str("frame too short"),
            FrameError::Crc => f.write_str("CRC mismatch"),
            FrameError::Oversize => write!(f, "frame longer than {MAX_FRAME} bytes"),
            FrameError::Version { frame, ours } => {
                write!(f, "frame of protocol version {frame}, we speak {ours}")
            }
            FrameError::UnknownMessage => f.write_str("unknown message"),
            FrameError::UnknownEvent { seq, .. } => write!(f, "unknown event (seq {seq})"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// A message type that travels in frames. `unknown` says what to report when a valid frame's
/// payload does not decode.
pub trait WireMsg: Serialize + DeserializeOwned {
    /// The error for an undecodable payload. Default: [`FrameError::UnknownMessage`].
    fn unknown(_payload: &[u8]) -> FrameError {
        FrameError::UnknownMessage
    }
}

impl WireMsg for HostMsg {}

/// postcard index of [`BoardMsg::Event`].
const BOARD_EVENT_TAG: u32 = 1;

impl WireMsg for BoardMsg {
    /// A [`BoardMsg::Event`] whose envelope (`boot_id`, `seq`, `oldest`) reads but whose event does
    /// not is reported as [`FrameError::UnknownEvent`] so the host can acknowledge it.
    fn unknown(payload: &[u8]) -> FrameError {
        match postcard::take_from_bytes::<(u32, u32, u32, u32)>(payload) {
            Ok(((BOARD_EVENT_TAG, boot_id, seq, oldest), _)) if seq != 0 => {
                FrameError::UnknownEvent {
                    boot_id,
                    seq,
                    oldest,
                }
            }
            _ => FrameError::UnknownMessage,
        }
    }
}

/// Encode `msg` as one frame (ending in `0x00`) into `out`; returns the number of bytes written.
pub fn encode<M: Serialize>(msg: &M, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_versioned(PROTO_VERSION, msg, out)
}

/// [`encode`] with an explicit version byte. Only for simulators and tests of version handling.
pub fn encode_versioned<M: Serialize>(
    version: u8,
    msg: &M,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut body = [0u8; MAX_BODY];
    let (head, rest) = body.split_at_mut(1);
    head[0] = version;
    let payload_room = rest
        .get_mut(..MAX_PAYLOAD)
        .ok_or(EncodeError::BufferTooSmall)?;
    let n = postcard::to_slice(msg, payload_room)
        .map_err(|_| EncodeError::BufferTooSmall)?
        .len();
    let data_len = 1 + n;
    let crc = CRC16.checksum(body.get(..data_len).ok_or(EncodeError::BufferTooSmall)?);
    body.get_mut(data_len..data_len + 2)
        .ok_or(EncodeError::BufferTooSmall)?
        .copy_from_slice(&crc.to_le_bytes());
    let body = body
        .get(..data_len + 2)
        .ok_or(EncodeError::BufferTooSmall)?;
    let k = cobs::try_encode(body, out).map_err(|_| EncodeError::BufferTooSmall)?;
    *out.get_mut(k).ok_or(EncodeError::BufferTooSmall)? = 0;
    Ok(k + 1)
}

/// Decode one complete frame (without its `0x00`), in place.
pub fn decode_frame<M: WireMsg>(frame: &mut [u8]) -> Result<M, FrameError> {
    let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    let body = frame.get(..n).ok_or(FrameError::Cobs)?;
    let [data @ .., lo, hi] = body else {
        return Err(FrameError::TooShort);
    };
    let [version, payload @ ..] = data else {
        return Err(FrameError::TooShort);
    };
    if payload.is_empty() {
        return Err(FrameError::TooShort);
    }
    if CRC16.checksum(data) != u16::from_le_bytes([*lo, *hi]) {
        return Err(FrameError::Crc);
    }
    if *version != PROTO_VERSION {
        return Err(FrameError::Version {
            frame: *version,
            ours: PROTO_VERSION,
        });
    }
    match postcard::take_from_bytes::<M>(payload) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(M::unknown(payload)),
    }
}

/// Counts of what a [`Decoder`] produced (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecoderStats {
    /// Good frames.
    pub frames: u32,
    pub cobs: u32,
    pub too_short: u32,
    pub crc: u32,
    pub oversize: u32,
    pub version: u32,
    /// Unknown messages, including unknown events.
    pub unknown: u32,
}

impl DecoderStats {
    /// All rejected frames.
    pub fn errors(&self) -> u32 {
        self.cobs
            .wrapping_add(self.too_short)
            .wrapping_add(self.crc)
            .wrapping_add(self.oversize)
            .wrapping_add(self.version)
            .wrapping_add(self.unknown)
    }

    fn count(&mut self, r: &Result<impl Sized, FrameError>) {
        let c = match r {
            Ok(_) => &mut self.frames,
            Err(FrameError::Cobs) => &mut self.cobs,
            Err(FrameError::TooShort) => &mut self.too_short,
            Err(FrameError::Crc) => &mut self.crc,
            Err(FrameError::Oversize) => &mut self.oversize,
            Err(FrameError::Version { .. }) => &mut self.version,
            Err(FrameError::UnknownMessage) | Err(FrameError::UnknownEvent { .. }) => {
                &mut self.unknown
            }
        };
        *c = c.wrapping_add(1);
    }
}

/// Streaming frame decoder with a fixed `N`-byte buffer (an encoded frame without its delimiter
/// must fit; [`MAX_FRAME`] is always enough for this crate's messages).
///
/// Empty frames (`0x00 0x00`) are skipped silently, so a sender may start with a `0x00` to flush
/// the receiver.
#[derive(Debug, Clone)]
pub struct Decoder<const N: usize = MAX_FRAME> {
    buf: [u8; N],
    len: usize,
    overflow: bool,
    stats: DecoderStats,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    pub const fn new() -> Self {
        Decoder {
            buf: [0; N],
            len: 0,
            overflow: false,
            stats: DecoderStats {
                frames: 0,
                cobs: 0,
                too_short: 0,
                crc: 0,
                oversize: 0,
                version: 0,
                unknown: 0,
            },
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Drop a partial frame (e.g. after the port was reopened).
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    /// Bytes of the current, not yet delimited, frame.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Push one byte; returns a result when `byte` is a delimiter ending a non-empty frame.
    pub fn push<M: WireMsg>(&mut self, byte: u8) -> Option<Result<M, FrameError>> {
        if byte != 0 {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = byte;
                    self.len += 1;
                }
                None => self.overflow = true,
            }
            return None;
        }
        let r = if self.overflow {
            Err(FrameError::Oversize)
        } else if self.len == 0 {
            return None;
        } else {
            match self.buf.get_mut(..self.len) {
                Some(frame) => decode_frame::<M>(frame),
                None => Err(FrameError::Oversize),
            }
        };
        self.reset();
        self.stats.count(&r);
        Some(r)
    }

    /// Feed a chunk; `f` is called once per frame result, in order. Every byte is consumed.
    pub fn feed<M: WireMsg>(&mut self, chunk: &[u8], mut f: impl FnMut(Result<M, FrameError>)) {
        for &b in chunk {
            if let Some(r) = self.push::<M>(b) {
                f(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    #[test]
    fn round_trip_and_no_interior_zero() {
        let msg = HostMsg::Ack {
            boot_id: 0,
            up_to_seq: 0,
        };
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&msg, &mut buf).unwrap();
        assert_eq!(buf[n - 1], 0);
        assert!(!buf[..n - 1].contains(&0));
        let mut d: Decoder = Decoder::new();
        let mut out = None;
        d.feed::<HostMsg>(&buf[..n], |r| out = Some(r));
        assert_eq!(out, Some(Ok(msg)));
    }

    #[test]
    fn crc_is_ibm_sdlc() {
        assert_eq!(CRC16.checksum(b"123456789"), 0x906E);
    }

    #[test]
    fn golden_bytes_status_request() {
        // version 1, postcard tag 4, CRC-16/IBM-SDLC of [01 04] little-endian, COBS, 0x00.
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&HostMsg::StatusRequest, &mut buf).unwrap();
        let crc = CRC16.checksum(&[1, 4]).to_le_bytes();
        assert_eq!(&buf[..n], &[5, 1, 4, crc[0], crc[1], 0]);
    }

    #[test]
    fn bit_flip_is_crc_error() {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&HostMsg::StatusRequest, &mut buf).unwrap();
        buf[2] ^= 0x10;
        let mut d: Decoder = Decoder::new();
        let mut out = None;
        d.feed::<HostMsg>(&buf[..n], |r| out = Some(r));
        assert_eq!(out, Some(Err(FrameError::Crc)));
        assert_eq!(d.stats().crc, 1);
    }

    #[test]
    fn oversize_then_resync() {
        let mut d: Decoder<16> = Decoder::new();
        let mut got = std::vec::Vec::new();
        d.feed::<HostMsg>(&[0x55; 40], |r| got.push(r));
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&HostMsg::StatusRequest, &mut buf).unwrap();
        d.feed::<HostMsg>(&[0], |r| got.push(r));
        d.feed::<HostMsg>(&buf[..n], |r| got.push(r));
        assert_eq!(got, [Err(FrameError::Oversize), Ok(HostMsg::StatusRequest)]);
    }

    #[test]
    fn version_mismatch_reported() {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_versioned(3, &HostMsg::StatusRequest, &mut buf).unwrap();
        let mut d: Decoder = Decoder::new();
        let mut out = None;
        d.feed::<HostMsg>(&buf[..n], |r| out = Some(r));
        assert_eq!(
            out,
            Some(Err(FrameError::Version {
                frame: 3,
                ours: PROTO_VERSION
            }))
        );
    }

    #[test]
    fn unknown_event_variant_keeps_envelope() {
        // Tag 1 (Event), boot 7, seq 9, oldest 8, event variant 200 (from a newer board).
        let payload = [1u8, 7, 9, 8, 0xC8, 0x01, 0x00];
        let mut body = [0u8; 16];
        body[0] = PROTO_VERSION;
        body[1..1 + payload.len()].copy_from_slice(&payload);
        let crc = CRC16.checksum(&body[..1 + payload.len()]).to_le_bytes();
        body[1 + payload.len()..3 + payload.len()].copy_from_slice(&crc);
        let mut enc = [0u8; 32];
        let k = cobs::try_encode(&body[..3 + payload.len()], &mut enc).unwrap();
        let r = decode_frame::<BoardMsg>(&mut enc[..k]);
        assert_eq!(
            r,
            Err(FrameError::UnknownEvent {
                boot_id: 7,
                seq: 9,
                oldest: 8
            })
        );
    }
}
