//! The client's view of its event stream, sans-IO: cursor, gap detection and de-duplication
//! (`spec/sync.md` §3–4).
//!
//! [`SyncState`] takes WELCOME heads, PUSHes and SYNC_REPLYs in and gives [`Event`]s and the SYNC
//! request to send out. The rules:
//!
//! - the cursor is (epoch, highest processed offset); events at or below it are duplicates and
//!   are dropped ([SYNC-4.3]);
//! - a pushed event more than one above the cursor is a gap: the push is processed up to the gap
//!   and the rest is pulled with SYNC from the cursor;
//! - a SYNC_REPLY is authoritative: its events are the next ones the stream holds (retention may
//!   have removed some), so a jump there is not a gap;
//! - after a WELCOME, the client syncs until the announced head ([SYNC-4.4]);
//! - a reply with `reset` (or another epoch) starts over at the new epoch, offset 0, and says so
//!   with [`Event::Reset`] ([SYNC-3.4]);
//! - one SYNC is in flight at a time;
//! - a stored message is emitted once per (conversation id, seq); after a reset the app rebuilds
//!   its cache, so the messages that follow the reset are emitted again.

use std::collections::{HashSet, VecDeque};

use magpie_session::pb;

use crate::event::{Event, Stored};

/// Where a device without a cursor starts reading its stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InitialSync {
    /// From the start of what the server holds (all retained messages).
    #[default]
    FromStart,
    /// From the head announced in the first WELCOME: only what happens from now on.
    FromHead,
}

/// What a step of [`SyncState`] produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SyncOutput {
    /// Events for the application, in order.
    pub events: Vec<Event>,
    /// A SYNC to send now, if any.
    pub sync: Option<pb::Sync>,
}

/// How many (conversation id, seq) pairs are remembered for de-duplication.
const SEEN_CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
struct Seen {
    set: HashSet<(String, u64)>,
    order: VecDeque<(String, u64)>,
}

impl Seen {
    /// Records the key; `false` if it was already there.
    fn insert(&mut self, conversation: &str, seq: u64) -> bool {
        let key = (conversation.to_owned(), seq);
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() >= SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key.clone());
        self.set.insert(key);
        true
    }
}

/// The cursor, gap and de-duplication logic of a client, without sockets.
#[derive(Debug)]
pub struct SyncState {
    /// (epoch, highest processed offset); `None` before the first WELCOME of a new device.
    /// Epoch 0 means "not known yet" (streams have non-zero epochs, [SYNC-3.3]).
    cursor: Option<(u64, u64)>,
    initial: InitialSync,
    /// A SYNC is in flight.
    in_flight: bool,
    /// A need to pull arose while a SYNC was in flight: pull again after its reply.
    again: bool,
    /// An offset known to exist (a head, or an event seen after a gap) that the client pulls
    /// towards.
    wanted: u64,
    /// The `limit` put in SYNC requests (0: the server's page size).
    page: u32,
    seen: Seen,
}

impl SyncState {
    /// A state starting at `cursor` (epoch, offset) if the device has one (kept from an earlier
    /// run), else at the point `initial` says.
    pub fn new(cursor: Option<(u64, u64)>, initial: InitialSync) -> SyncState {
        SyncState {
            cursor,
            initial,
            in_flight: false,
            again: false,
            wanted: 0,
            page: 0,
            seen: Seen::default(),
        }
    }

    /// Sets the `limit` of SYNC requests (0: the server's page size).
    pub fn set_page_size(&mut self, limit: u32) {
        self.page = limit;
    }

    /// The cursor: the epoch and the highest offset processed.
    pub fn cursor(&self) -> Option<pb::Cursor> {
        self.cursor
            .map(|(epoch, offset)| pb::Cursor { epoch, offset })
    }

    /// Whether a SYNC is in flight.
    pub fn is_syncing(&self) -> bool {
        self.in_flight
    }

    /// A session opened with this head ([SYNC-4.4]); returns the SYNC to send, if any. Whatever
    /// was in flight on an older connection is forgotten.
    pub fn on_welcome(&mut self, head: Option<&pb::Cursor>) -> Option<pb::Sync> {
        self.in_flight = false;
        self.again = false;
        let head = head.cloned().unwrap_or_default();
        let (epoch, highest) = match self.cursor {
            Some(c) => c,
            None => {
                let start = match self.initial {
                    InitialSync::FromStart => (head.epoch, 0),
                    InitialSync::FromHead => (head.epoch, head.offset),
                };
                self.cursor = Some(start);
                start
            }
        };
        self.wanted = head.offset;
        let other_epoch = epoch != 0 && head.epoch != 0 && epoch != head.epoch;
        if other_epoch || highest < head.offset {
            // With another epoch, the server answers `reset` ([SYNC-3.4]).
            self.request()
        } else {
            None
        }
    }

    /// The connection ended: the SYNC in flight, if any, will never be answered.
    pub fn on_disconnect(&mut self) {
        self.in_flight = false;
        self.again = false;
    }

    /// The SYNC in flight failed (REQUEST_ERROR). The next gap or WELCOME pulls again.
    pub fn on_sync_failed(&mut self) {
        self.in_flight = false;
        self.again = false;
    }

    /// A PUSH arrived.
    pub fn on_push(&mut self, push: pb::Push) -> SyncOutput {
        let mut out = SyncOutput::default();
        let mut events = push.events;
        if !events.is_empty() {
            events.sort_by_key(|e| e.offset);
            match self.cursor {
                // Before any WELCOME there is nothing to compare with; WELCOME's sync fetches
                // these anyway.
                None => {}
                Some((epoch, _)) if epoch != 0 && push.epoch != 0 && epoch != push.epoch => {
                    // Another epoch: never a gap to fill; SYNC from the cursor gets the reset.
                    self.wanted = u64::MAX;
                    out.sync = self.request();
                }
                Some((epoch, mut highest)) => {
                    if epoch == 0 {
                        self.cursor = Some((push.epoch, highest));
                    }
                    for event in events {
                        if event.offset <= highest {
                            continue; // [SYNC-4.3]: a duplicate.
                        }
                        if event.offset > highest + 1 {
                            // A gap: pull from the cursor; what follows comes with the pull.
                            self.wanted = self.wanted.max(event.offset);
                            out.sync = self.request();
                            break;
                        }
                        highest = event.offset;
                        self.apply(event, push.silent, &mut out.events);
                    }
                }
            }
        }
        out.events.extend(push.live.into_iter().map(Event::Live));
        out.events
            .extend(push.presence.into_iter().map(Event::Presence));
        out
    }

    /// The SYNC in flight was answered.
    pub fn on_sync_reply(&mut self, reply: pb::SyncReply) -> SyncOutput {
        let mut out = SyncOutput::default();
        let requested_again = std::mem::take(&mut self.again);
        self.in_flight = false;
        let (epoch, _) = self.cursor.unwrap_or((reply.epoch, 0));
        let other_epoch = epoch != 0 && reply.epoch != 0 && epoch != reply.epoch;
        if reply.reset || other_epoch {
            // [SYNC-3.4]: start over; not a loss, not a gap.
            self.cursor = Some((reply.epoch, 0));
            self.wanted = 0;
            self.seen = Seen::default();
            out.events.push(Event::Reset);
        } else if epoch == 0 || self.cursor.is_none() {
            let highest = self.cursor.map_or(0, |c| c.1);
            self.cursor = Some((reply.epoch, highest));
        }
        let mut events = reply.events;
        events.sort_by_key(|e| e.offset);
        let mut progressed = false;
        for event in events {
            if event.offset <= self.highest() {
                continue;
            }
            // A reply holds the next events the stream has: a jump is not a gap.
            progressed = true;
            self.apply(event, false, &mut out.events);
        }
        self.wanted = self.wanted.max(reply.head);
        if self.wanted == u64::MAX {
            // The epoch question was settled by this reply.
            self.wanted = reply.head;
        }
        if self.highest() < self.wanted && (progressed || requested_again) {
            out.sync = self.request();
        } else {
            // At the head, or a reply that brought nothing new: stop here rather than loop;
            // the next gap or WELCOME pulls again.
            self.wanted = self.highest();
        }
        out
    }

    fn highest(&self) -> u64 {
        self.cursor.map_or(0, |c| c.1)
    }

    fn request(&mut self) -> Option<pb::Sync> {
        if self.in_flight {
            self.again = true;
            return None;
        }
        let (epoch, offset) = self.cursor?;
        self.in_flight = true;
        Some(pb::Sync {
            after: Some(pb::Cursor { epoch, offset }),
            limit: self.page,
        })
    }

    /// Processes one event, in order: moves the cursor and emits it unless it was seen;
    /// `silent` when a PUSH said so.
    fn apply(&mut self, event: pb::Event, silent: bool, out: &mut Vec<Event>) {
        if let Some((_, highest)) = self.cursor.as_mut() {
            *highest = event.offset;
        }
        let offset = event.offset;
        match event.kind {
            Some(pb::event::Kind::Message(message))
                if message.seq == 0 || self.seen.insert(&message.conversation_id, message.seq) =>
            {
                out.push(Event::Message(Stored {
                    offset,
                    item: message,
                    silent,
                }));
            }
            Some(pb::event::Kind::Read(read)) => out.push(Event::Read(Stored {
                offset,
                item: read,
                silent,
            })),
            // A message already emitted (same conversation and seq), or a kind from a later
            // revision: skipped, but the cursor moved past it.
            Some(pb::event::Kind::Message(_)) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: u64, conversation: &str, seq: u64) -> pb::Event {
        pb::Event {
            offset,
            kind: Some(pb::event::Kind::Message(pb::Message {
                conversation_id: conversation.into(),
                seq,
                message_id: format!("{conversation}/{seq}"),
                sender: "bob".into(),
                ..Default::default()
            })),
        }
    }

    fn read(offset: u64, seq: u64) -> pb::Event {
        pb::Event {
            offset,
            kind: Some(pb::event::Kind::Read(pb::ReadMarker {
                conversation_id: "d:alice:bob".into(),
                seq,
                device_id: "phone".into(),
            })),
        }
    }

    fn push(epoch: u64, events: Vec<pb::Event>) -> pb::Push {
        pb::Push {
            epoch,
            events,
            ..Default::default()
        }
    }

    fn reply(epoch: u64, head: u64, reset: bool, events: Vec<pb::Event>) -> pb::SyncReply {
        pb::SyncReply {
            epoch,
            events,
            head,
            reset,
        }
    }

    fn head(epoch: u64, offset: u64) -> pb::Cursor {
        pb::Cursor { epoch, offset }
    }

    fn sync_after(epoch: u64, offset: u64) -> Option<pb::Sync> {
        Some(pb::Sync {
            after: Some(head(epoch, offset)),
            limit: 0,
        })
    }

    /// The offsets of the stored events, and markers for the others.
    fn offsets(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Message(m) => format!("m{}", m.offset),
                Event::Read(r) => format!("r{}", r.offset),
                Event::Reset => "reset".into(),
                Event::Live(_) => "live".into(),
                Event::Presence(_) => "presence".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn new_device_syncs_from_start_until_head() {
        let mut s = SyncState::new(None, InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 3))), sync_after(7, 0));
        assert!(s.is_syncing());
        // A page that stops short of the head: pull again from the last offset.
        let out = s.on_sync_reply(reply(
            7,
            3,
            false,
            vec![msg(1, "d:a:b", 1), msg(2, "d:a:b", 2)],
        ));
        assert_eq!(offsets(&out.events), ["m1", "m2"]);
        assert_eq!(out.sync, sync_after(7, 2));
        let out = s.on_sync_reply(reply(7, 3, false, vec![read(3, 2)]));
        assert_eq!(offsets(&out.events), ["r3"]);
        assert_eq!(out.sync, None);
        assert!(!s.is_syncing());
        assert_eq!(s.cursor(), Some(head(7, 3)));
    }

    #[test]
    fn new_device_from_head_skips_the_past() {
        let mut s = SyncState::new(None, InitialSync::FromHead);
        assert_eq!(s.on_welcome(Some(&head(7, 40))), None);
        assert_eq!(s.cursor(), Some(head(7, 40)));
        let out = s.on_push(push(7, vec![msg(41, "d:a:b", 9)]));
        assert_eq!(offsets(&out.events), ["m41"]);
        assert_eq!(out.sync, None);
    }

    #[test]
    fn up_to_date_welcome_asks_nothing() {
        let mut s = SyncState::new(Some((7, 5)), InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 5))), None);
        assert_eq!(s.on_welcome(Some(&head(7, 6))), sync_after(7, 5));
    }

    #[test]
    fn duplicate_pushes_are_ignored() {
        let mut s = SyncState::new(Some((7, 5)), InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 5))), None);
        let out = s.on_push(push(
            7,
            vec![msg(4, "d:a:b", 4), msg(5, "d:a:b", 5), msg(6, "d:a:b", 6)],
        ));
        assert_eq!(offsets(&out.events), ["m6"]);
        let out = s.on_push(push(7, vec![msg(6, "d:a:b", 6)]));
        assert!(out.events.is_empty());
        assert_eq!(out.sync, None);
    }

    #[test]
    fn gap_in_push_pulls_from_the_cursor() {
        let mut s = SyncState::new(Some((7, 5)), InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 5))), None);
        // 6 is missing: nothing of this push is processed, SYNC from 5.
        let out = s.on_push(push(7, vec![msg(7, "d:a:b", 7), msg(8, "d:a:b", 8)]));
        assert!(out.events.is_empty());
        assert_eq!(out.sync, sync_after(7, 5));
        // Another push while the SYNC is in flight: still a gap, no second SYNC.
        let out = s.on_push(push(7, vec![msg(9, "d:a:b", 9)]));
        assert!(out.events.is_empty());
        assert_eq!(out.sync, None);
        // The reply brings 6..=8 (head 8, from before 9 was committed): pull again for 9.
        let out = s.on_sync_reply(reply(
            7,
            8,
            false,
            vec![msg(6, "d:a:b", 6), msg(7, "d:a:b", 7), msg(8, "d:a:b", 8)],
        ));
        assert_eq!(offsets(&out.events), ["m6", "m7", "m8"]);
        assert_eq!(out.sync, sync_after(7, 8));
        let out = s.on_sync_reply(reply(7, 9, false, vec![msg(9, "d:a:b", 9)]));
        assert_eq!(offsets(&out.events), ["m9"]);
        assert_eq!(out.sync, None);
        assert_eq!(s.cursor(), Some(head(7, 9)));
    }

    #[test]
    fn push_processed_up_to_the_gap() {
        let mut s = SyncState::new(Some((7, 5)), InitialSync::FromStart);
        s.on_welcome(Some(&head(7, 5)));
        let out = s.on_push(push(7, vec![msg(6, "d:a:b", 6), msg(8, "d:a:b", 8)]));
        assert_eq!(offsets(&out.events), ["m6"]);
        assert_eq!(out.sync, sync_after(7, 6));
    }

    #[test]
    fn contiguous_push_during_sync_then_overlapping_reply() {
        let mut s = SyncState::new(Some((7, 0)), InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 2))), sync_after(7, 0));
        // The reply is slow; 1 and 2 (then 3) are pushed meanwhile? Only contiguous ones apply.
        let out = s.on_push(push(7, vec![msg(1, "d:a:b", 1)]));
        assert_eq!(offsets(&out.events), ["m1"]);
        // The reply overlaps what was pushed: 1 is a duplicate.
        let out = s.on_sync_reply(reply(
            7,
            2,
            false,
            vec![msg(1, "d:a:b", 1), msg(2, "d:a:b", 2)],
        ));
        assert_eq!(offsets(&out.events), ["m2"]);
        assert_eq!(out.sync, None);
    }

    #[test]
    fn reply_jump_is_not_a_gap() {
        // Retention removed offsets 1..=56: the stream starts at 57.
        let mut s = SyncState::new(None, InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 58))), sync_after(7, 0));
        let out = s.on_sync_reply(reply(
            7,
            58,
            false,
            vec![msg(57, "d:a:b", 40), msg(58, "d:a:b", 41)],
        ));
        assert_eq!(offsets(&out.events), ["m57", "m58"]);
        assert_eq!(out.sync, None);
    }

    #[test]
    fn empty_reply_below_head_does_not_loop() {
        let mut s = SyncState::new(Some((7, 2)), InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 5))), sync_after(7, 2));
        let out = s.on_sync_reply(reply(7, 5, false, vec![]));
        assert_eq!(out.sync, None);
        assert!(!s.is_syncing());
        // The next gap pulls again.
        let out = s.on_push(push(7, vec![msg(6, "d:a:b", 6)]));
        assert_eq!(out.sync, sync_after(7, 2));
    }

    #[test]
    fn reset_starts_over_at_the_new_epoch() {
        let mut s = SyncState::new(Some((7, 30)), InitialSync::FromStart);
        // The server's stream has another epoch now: SYNC from the old cursor gets the reset.
        assert_eq!(s.on_welcome(Some(&head(9, 2))), sync_after(7, 30));
        let out = s.on_sync_reply(reply(9, 2, true, vec![msg(1, "d:a:b", 1), read(2, 1)]));
        assert_eq!(offsets(&out.events), ["reset", "m1", "r2"]);
        assert_eq!(out.sync, None);
        assert_eq!(s.cursor(), Some(head(9, 2)));
    }

    #[test]
    fn push_of_another_epoch_is_not_a_gap() {
        let mut s = SyncState::new(Some((7, 30)), InitialSync::FromStart);
        s.on_welcome(Some(&head(7, 30)));
        let out = s.on_push(push(9, vec![msg(1, "d:a:b", 1)]));
        assert!(out.events.is_empty());
        assert_eq!(out.sync, sync_after(7, 30));
        let out = s.on_sync_reply(reply(9, 1, true, vec![msg(1, "d:a:b", 1)]));
        assert_eq!(offsets(&out.events), ["reset", "m1"]);
        assert_eq!(out.sync, None);
    }

    #[test]
    fn same_message_twice_is_emitted_once() {
        let mut s = SyncState::new(Some((7, 0)), InitialSync::FromStart);
        s.on_welcome(Some(&head(7, 0)));
        let out = s.on_push(push(
            7,
            vec![msg(1, "d:a:b", 1), msg(2, "d:a:b", 1), msg(3, "d:a:c", 1)],
        ));
        assert_eq!(offsets(&out.events), ["m1", "m3"]);
        assert_eq!(s.cursor(), Some(head(7, 3)));
    }

    #[test]
    fn live_and_presence_pass_through() {
        let mut s = SyncState::new(Some((7, 0)), InitialSync::FromStart);
        s.on_welcome(Some(&head(7, 0)));
        let out = s.on_push(pb::Push {
            epoch: 7,
            events: vec![],
            live: vec![pb::Message {
                class: pb::MessageClass::Status as i32,
                ..Default::default()
            }],
            presence: vec![pb::PresenceEvent {
                user_id: "bob".into(),
                online: true,
                ..Default::default()
            }],
            silent: false,
        });
        assert_eq!(offsets(&out.events), ["live", "presence"]);
        assert_eq!(out.sync, None);
    }

    #[test]
    fn reconnect_forgets_the_sync_in_flight() {
        let mut s = SyncState::new(Some((7, 0)), InitialSync::FromStart);
        assert_eq!(s.on_welcome(Some(&head(7, 3))), sync_after(7, 0));
        s.on_disconnect();
        assert!(!s.is_syncing());
        assert_eq!(s.on_welcome(Some(&head(7, 4))), sync_after(7, 0));
    }

    #[test]
    fn unordered_push_is_processed_in_offset_order() {
        let mut s = SyncState::new(Some((7, 0)), InitialSync::FromStart);
        s.on_welcome(Some(&head(7, 0)));
        let out = s.on_push(push(7, vec![msg(2, "d:a:b", 2), msg(1, "d:a:b", 1)]));
        assert_eq!(offsets(&out.events), ["m1", "m2"]);
    }

    #[test]
    fn unknown_epoch_is_adopted() {
        // A server that announced no head (epoch 0) then pushes with its epoch.
        let mut s = SyncState::new(None, InitialSync::FromStart);
        assert_eq!(s.on_welcome(None), None);
        let out = s.on_push(push(5, vec![msg(1, "d:a:b", 1)]));
        assert_eq!(offsets(&out.events), ["m1"]);
        assert_eq!(s.cursor(), Some(head(5, 1)));
    }
}
