//! The board's store of unacknowledged events.
//!
//! [`EventRing`] numbers every event (seq 1, 2, 3, ... per boot) and keeps it until the host's
//! cumulative [`crate::msg::HostMsg::Ack`] covers it. After a host restart or a cable pull the board
//! re-sends what is still held ([`EventRing::unacked_from`]).
//!
//! **When the ring is full, pushing a new event drops the oldest unacknowledged one** and counts it
//! in [`EventRing::dropped`]. The host learns of the loss from the `oldest` field of the next event
//! envelope it receives ([`crate::host::HostEvent::Lost`] / `lost_before`).
//!
//! Memory: `N` events inline (no allocation). An [`Event`] is 200 bytes (caller ID dominates), so
//! `EventRing<32>` is 6,696 bytes (`size_of` on x86_64).

use heapless::Deque;

use crate::msg::{Event, SeqEvent};

/// Fixed-capacity ring of unacknowledged events for one boot.
#[derive(Debug, Clone)]
pub struct EventRing<const N: usize> {
    boot_id: u32,
    next_seq: u32,
    held: Deque<(u32, Event), N>,
    dropped: u32,
}

impl<const N: usize> EventRing<N> {
    /// An empty ring for the boot `boot_id`; the first event gets seq 1.
    /// `N` must be at least 1 (checked at compile time).
    pub const fn new(boot_id: u32) -> Self {
        const { assert!(N > 0, "EventRing needs a capacity of at least 1") };
        EventRing {
            boot_id,
            next_seq: 1,
            held: Deque::new(),
            dropped: 0,
        }
    }

    pub fn boot_id(&self) -> u32 {
        self.boot_id
    }

    /// The seq the next pushed event will get.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Events held (sent or not, not yet acknowledged).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Events evicted unacknowledged because the ring was full (wrapping).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The oldest seq still held, or [`Self::next_seq`] when nothing is held.
    pub fn oldest(&self) -> u32 {
        self.held.front().map_or(self.next_seq, |(s, _)| *s)
    }

    /// Number `event`, keep it, and return the envelope to send now. If the ring is full the oldest
    /// held event is dropped and counted.
    ///
    /// Seq is a `u32`: at ten events a second it lasts 13 years. Were it to reach `u32::MAX`, it
    /// would wrap to 1 and the host would discard the new events as replays until the board
    /// reboots with a new boot id; firmware should reboot (or take a new boot id) long before.
    pub fn push(&mut self, event: Event) -> SeqEvent {
        let seq = self.next_seq;
        self.next_seq = match self.next_seq.wrapping_add(1) {
            0 => 1,
            s => s,
        };
        if self.held.is_full() {
            self.held.pop_front();
            self.dropped = self.dropped.wrapping_add(1);
        }
        let envelope = SeqEvent {
            boot_id: self.boot_id,
            seq,
            oldest: 0,
            event: event.clone(),
        };
        // Cannot fail: not full (just made room, and N > 0 is checked in `new`).
        let _ = self.held.push_back((seq, event));
        SeqEvent {
            oldest: self.oldest(),
            ..envelope
        }
    }

    /// Cumulative acknowledgement: forget every held event with `seq <= up_to_seq`. Acks for another
    /// boot id are ignored. Returns how many were released.
    pub fn ack(&mut self, boot_id: u32, up_to_seq: u32) -> usize {
        if boot_id != self.boot_id {
            return 0;
        }
        let mut n = 0;
        while let Some((s, _)) = self.held.front() {
            if *s > up_to_seq {
                break;
            }
            self.held.pop_front();
            n += 1;
        }
        n
    }

    /// The held events with `seq >= from_seq`, oldest first, as envelopes ready to (re-)send.
    pub fn unacked_from(&self, from_seq: u32) -> impl Iterator<Item = SeqEvent> + '_ {
        let boot_id = self.boot_id;
        let oldest = self.oldest();
        self.held
            .iter()
            .filter(move |(s, _)| *s >= from_seq)
            .map(move |(s, e)| SeqEvent {
                boot_id,
                seq: *s,
                oldest,
                event: e.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_ack_replay_and_overflow() {
        let mut r: EventRing<3> = EventRing::new(9);
        for _ in 0..4 {
            r.push(Event::RingStop);
        }
        assert_eq!(r.dropped(), 1);
        assert_eq!(r.oldest(), 2);
        let seqs: std::vec::Vec<u32> = r.unacked_from(0).map(|e| e.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert_eq!(r.ack(8, 10), 0);
        assert_eq!(r.ack(9, 3), 2);
        assert_eq!(r.oldest(), 4);
        let e = r.push(Event::LineLost);
        assert_eq!((e.seq, e.oldest), (5, 4));
    }
}
