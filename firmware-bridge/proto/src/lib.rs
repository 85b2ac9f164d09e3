//! Wire protocol between the linekeeper bridge board and the linekeeper daemon.
//!
//! * [`msg`]: the messages ([`msg::BoardMsg`] board -> host, [`msg::HostMsg`] host -> board).
//! * [`frame`]: `COBS(version | postcard | CRC-16) 0x00` framing, [`frame::encode`] and the streaming
//!   [`frame::Decoder`].
//! * [`ring`]: the board's [`ring::EventRing`] of unacknowledged events.
//! * [`board`]: the board's [`board::BoardCore`] (seq, ring, acks, replay), used by the firmware
//!   and the simulator.
//! * [`host`]: the host's [`host::HostSession`] (dedup of replays, acks, version errors).
//! * `sim` (feature `std`): an I/O-free board simulator for daemon tests.
//!
//! `no_std` and no `alloc` unless the `std` feature is on. See README.md for the byte-level format.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]

pub mod board;
pub mod frame;
pub mod host;
pub mod msg;
pub mod ring;
#[cfg(any(feature = "std", test))]
pub mod sim;

/// The protocol version, byte 0 of every frame body. Bump it for any change that is not an
/// appended enum variant (see README, "Changing the protocol").
pub const PROTO_VERSION: u8 = 1;

pub use board::{BoardCore, HostCommand, LineState};
pub use frame::{decode_frame, encode, Decoder, DecoderStats, FrameError, MAX_FRAME};
pub use host::{HostEvent, HostLink, HostSession, ProtoMismatch, SessionState, Step};
pub use msg::{BoardMsg, Event, HostMsg};
pub use ring::EventRing;
