//! Property tests of the framing: no panics on any input, round trips, recovery after corruption.

mod strategies;

use linekeeper_bridge_proto::frame::{decode_frame, encode, Decoder, FrameError, CRC16, MAX_FRAME};
use linekeeper_bridge_proto::msg::{BoardMsg, HostMsg};
use proptest::prelude::*;
use strategies::{board_msg, host_msg};

fn enc<M: serde::Serialize>(m: &M) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(m, &mut buf).expect("every message fits MAX_FRAME");
    buf[..n].to_vec()
}

/// Feed `bytes` split at the given cut points.
fn feed_chunked<M: linekeeper_bridge_proto::frame::WireMsg>(
    dec: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> Vec<Result<M, FrameError>> {
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
        dec.feed::<M>(&bytes[start..c], |r| out.push(r));
        start = c;
    }
    out
}

/// Is `small` a subsequence of `big`?
fn is_subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// Frame `payload` with the right version and CRC, so only postcard decoding can reject it.
fn valid_frame_around(payload: &[u8]) -> Vec<u8> {
    let mut body = vec![linekeeper_bridge_proto::PROTO_VERSION];
    body.extend_from_slice(payload);
    let crc = CRC16.checksum(&body).to_le_bytes();
    body.extend_from_slice(&crc);
    let mut out = vec![0u8; cobs::max_encoding_length(body.len())];
    let n = cobs::try_encode(&body, &mut out).unwrap();
    out.truncate(n);
    out
}

fn payload_error_only<M>(r: &Result<M, FrameError>) -> bool {
    matches!(
        r,
        Ok(_) | Err(FrameError::UnknownMessage) | Err(FrameError::UnknownEvent { .. })
    )
}

/// `PROPTEST_CASES` overrides the number of cases (for long runs).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// Arbitrary payloads behind a valid CRC exercise the postcard decoding of every type.
    #[test]
    fn any_payload_behind_a_valid_crc_decodes_or_is_unknown(
        payload in proptest::collection::vec(any::<u8>(), 1..249),
    ) {
        let f = valid_frame_around(&payload);
        let r = decode_frame::<BoardMsg>(&mut f.clone());
        prop_assert!(payload_error_only(&r), "{:?}", r);
        let r = decode_frame::<HostMsg>(&mut f.clone());
        prop_assert!(payload_error_only(&r), "{:?}", r);
    }

    /// A valid message's payload with one byte changed (CRC fixed up): decodes or is unknown.
    #[test]
    fn mutated_payload_decodes_or_is_unknown(m in board_msg(), at in any::<usize>(), val in any::<u8>()) {
        let mut buf = [0u8; MAX_FRAME];
        let mut p = postcard::to_slice(&m, &mut buf).unwrap().to_vec();
        let i = at % p.len();
        p[i] = val;
        let mut f = valid_frame_around(&p);
        let r = decode_frame::<BoardMsg>(&mut f);
        prop_assert!(payload_error_only(&r), "{:?}", r);
    }

    #[test]
    fn any_bytes_give_frames_or_counted_errors(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut dec: Decoder = Decoder::new();
        let out = feed_chunked::<BoardMsg>(&mut dec, &bytes, &cuts);
        let s = dec.stats();
        prop_assert_eq!(out.len() as u32, s.frames + s.errors());
        prop_assert_eq!(out.iter().filter(|r| r.is_ok()).count() as u32, s.frames);
        // Never more results than delimiters.
        prop_assert!(out.len() <= bytes.iter().filter(|b| **b == 0).count());
        let mut hdec: Decoder = Decoder::new();
        let _ = feed_chunked::<HostMsg>(&mut hdec, &bytes, &cuts);
    }

    #[test]
    fn any_frame_body_decodes_or_errors(mut bytes in proptest::collection::vec(1u8..=255, 0..300)) {
        let _ = decode_frame::<BoardMsg>(&mut bytes.clone());
        let _ = decode_frame::<HostMsg>(&mut bytes);
    }

    #[test]
    fn board_msg_round_trips(m in board_msg()) {
        let bytes = enc(&m);
        prop_assert!(bytes.len() <= MAX_FRAME);
        prop_assert_eq!(bytes.iter().filter(|b| **b == 0).count(), 1);
        prop_assert_eq!(*bytes.last().unwrap(), 0);
        let mut dec: Decoder = Decoder::new();
        let mut out = Vec::new();
        dec.feed::<BoardMsg>(&bytes, |r| out.push(r));
        prop_assert_eq!(out, vec![Ok(m)]);
    }

    #[test]
    fn host_msg_round_trips(m in host_msg()) {
        let bytes = enc(&m);
        prop_assert!(bytes.len() <= MAX_FRAME);
        let mut dec: Decoder = Decoder::new();
        let mut out = Vec::new();
        dec.feed::<HostMsg>(&bytes, |r| out.push(r));
        prop_assert_eq!(out, vec![Ok(m)]);
    }

    /// A stream of frames, cut into random chunks, with some frames corrupted (bit flips, deleted
    /// bytes) and noise bursts between frames: every untouched frame comes out, in order.
    #[test]
    fn stream_recovers_every_uncorrupted_frame(
        msgs in proptest::collection::vec(board_msg(), 1..24),
        damage in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 24),
        noise in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 24),
        cuts in proptest::collection::vec(any::<usize>(), 0..32),
        leading_garbage in proptest::collection::vec(1u8..=255, 0..20),
    ) {
        let mut stream = leading_garbage.clone();
        stream.push(0); // the receiver opened the port mid-frame; the next delimiter resyncs
        let mut intact = Vec::new();
        let mut corrupted = 0usize;
        for (i, m) in msgs.iter().enumerate() {
            let mut f = enc(m);
            let body_len = f.len() - 1;
            let (kind, pos, bit) = damage[i];
            match kind % 4 {
                0 => {
                    f[pos % body_len] ^= 1 << (bit % 8);
                    corrupted += 1;
                }
                1 => {
                    f.remove(pos % body_len);
                    corrupted += 1;
                }
                _ => intact.push(m.clone()),
            }
            stream.extend_from_slice(&f);
            if kind % 8 == 7 {
                // Noise on the line, ended by a delimiter (the next frame stays intact).
                stream.extend_from_slice(&noise[i]);
                stream.push(0);
            }
        }
        let mut dec: Decoder = Decoder::new();
        let out = feed_chunked::<BoardMsg>(&mut dec, &stream, &cuts);
        let ok: Vec<BoardMsg> = out.into_iter().filter_map(Result::ok).collect();
        // (A corrupted frame or noise passing the CRC is possible, at about 2^-16 per frame, so
        // extra frames are allowed; missing or reordered intact ones are not.)
        prop_assert!(is_subsequence(&intact, &ok), "intact {} ok {}", intact.len(), ok.len());
        prop_assert!(dec.stats().errors() as usize >= corrupted.min(1));
    }
}
