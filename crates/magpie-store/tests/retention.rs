//! Retention by age and by count: `visible_from` advances, events and dedup entries of dropped
//! messages go with them, expired nonces are dropped.

mod common;

use common::{APP, append, append_at, open, seq_of};
use magpie_store::{EventKind, RetentionStats, Store, Write, WriteResult};

fn events_of(store: &dyn Store, user: &str) -> Vec<(u64, EventKind, bool)> {
    store
        .read_events(APP, user, 0, 1000)
        .expect("read events")
        .into_iter()
        .map(|d| (d.offset, d.kind, d.message.is_some()))
        .collect()
}

#[test]
fn by_count_keeps_the_newest_and_drops_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let batch: Vec<Write> = (1..=10)
        .map(|i| {
            append(
                "u:a:b",
                "a",
                &format!("m{i}"),
                &format!("b{i}"),
                &["a", "b"],
            )
        })
        .collect();
    store.commit(&batch).unwrap();
    // A message in another conversation, interleaved in b's stream, and read markers.
    store
        .commit(&[
            append("u:b:c", "c", "x", "other", &["b", "c"]),
            Write::SetRead {
                app: APP.into(),
                user: "b".into(),
                device: "d".into(),
                conversation: "u:a:b".into(),
                seq: 3,
            },
            Write::SetRead {
                app: APP.into(),
                user: "b".into(),
                device: "d".into(),
                conversation: "u:a:b".into(),
                seq: 9,
            },
        ])
        .unwrap();

    let stats = store.apply_retention(1, 0, 4).unwrap();
    assert_eq!(
        stats,
        RetentionStats {
            conversations: 1,
            messages: 6,
            dedup_entries: 6,
            // 6 message events in a's stream and 6 in b's, and b's read marker at 3.
            events: 13,
            nonces: 0,
        }
    );
    assert_eq!(store.conversation(APP, "u:a:b").unwrap().visible_from, 7);
    assert_eq!(store.conversation(APP, "u:b:c").unwrap().visible_from, 1);
    let b = events_of(store.as_ref(), "b");
    let offsets: Vec<u64> = b.iter().map(|e| e.0).collect();
    assert_eq!(offsets, [7, 8, 9, 10, 11, 13], "events 1-6 and 12 dropped");
    assert!(b.iter().all(|(_, kind, has_message)| match kind {
        EventKind::Message { .. } => *has_message,
        EventKind::Read { seq, .. } => *seq == 9,
    }));
    // The stream's head does not move back.
    assert_eq!(
        store.stream(APP, "b").unwrap().expect("stream").last_offset,
        13
    );
    // The dedup entry went with the message: a very late retry is a new message.
    let r = store
        .commit(&[append("u:a:b", "a", "m1", "b1", &["a", "b"])])
        .unwrap();
    assert_eq!(seq_of(&r[0]), 11);
    // A retry of a kept message is still deduplicated.
    let r = store
        .commit(&[append("u:a:b", "a", "m9", "b9", &["a", "b"])])
        .unwrap();
    assert!(matches!(
        r[0],
        WriteResult::Appended {
            seq: 9,
            duplicate: true,
            ..
        }
    ));
    // A second pass with the same limits drops only the one that the new message pushed out.
    let again = store.apply_retention(1, 0, 4).unwrap();
    assert_eq!((again.messages, again.conversations), (1, 1));
    assert_eq!(
        store.apply_retention(1, 0, 4).unwrap(),
        RetentionStats::default()
    );
}

#[test]
fn by_age_stops_at_the_first_young_message_in_every_app() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for app in [APP, "other"] {
        let batch: Vec<Write> = (1..=10u64)
            .map(|i| {
                let mut w = append_at("g:x", "a", &format!("m{i}"), i * 1000, &["a"]);
                if let Write::AppendMessage { app: a, .. } = &mut w {
                    *a = app.into();
                }
                w
            })
            .collect();
        store.commit(&batch).unwrap();
    }
    // A young message in an old conversation keeps everything after it.
    store
        .commit(&[
            append_at("g:y", "a", "y1", 1000, &["a"]),
            append_at("g:y", "a", "y2", 9000, &["a"]),
            append_at("g:y", "a", "y3", 2000, &["a"]),
        ])
        .unwrap();
    // Older than 10_500 - 5_000 = 5_500 ms: seqs 1-5 of g:x in both apps, seq 1 of g:y.
    let stats = store.apply_retention(10_500, 5_000, 0).unwrap();
    assert_eq!(stats.conversations, 3);
    assert_eq!(stats.messages, 11);
    for app in [APP, "other"] {
        assert_eq!(store.conversation(app, "g:x").unwrap().visible_from, 6);
        let h = store.history(app, "g:x", 0, false, 100).unwrap();
        assert_eq!(h.first().map(|m| m.seq), Some(6));
    }
    assert_eq!(store.conversation(APP, "g:y").unwrap().visible_from, 2);
    let a = events_of(store.as_ref(), "a");
    assert_eq!(a.len(), 5 + 2);
    assert!(a.iter().all(|e| e.2), "no event without its message");

    // Age and count together: the stricter wins.
    let stats = store.apply_retention(10_500, 5_000, 2).unwrap();
    assert_eq!(store.conversation(APP, "g:x").unwrap().visible_from, 9);
    assert_eq!(store.conversation(APP, "g:y").unwrap().visible_from, 2);
    assert_eq!(stats.messages, 6);
}

#[test]
fn expired_nonces_are_dropped_and_can_be_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nonce = |n: &str, expires_at| Write::UseNonce {
        app: APP.into(),
        nonce: n.into(),
        expires_at,
    };
    let future = 4_000_000_000;
    store
        .commit(&[
            nonce("old-1", 100),
            nonce("old-2", 200),
            nonce("new", future),
        ])
        .unwrap();
    let stats = store.apply_retention(300_000, 0, 0).unwrap();
    assert_eq!(stats.nonces, 2);
    assert_eq!(
        store.commit(&[nonce("new", future)]).unwrap(),
        [WriteResult::NonceReplayed]
    );
    assert_eq!(store.apply_retention(300_000, 0, 0).unwrap().nonces, 0);
}

#[test]
fn retention_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let batch: Vec<Write> = (1..=5)
            .map(|i| append("u:a:b", "a", &format!("m{i}"), "x", &["a", "b"]))
            .collect();
        store.commit(&batch).unwrap();
        store.apply_retention(1, 0, 2).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.conversation(APP, "u:a:b").unwrap().visible_from, 4);
    assert_eq!(
        store
            .history(APP, "u:a:b", 1, false, 10)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    assert_eq!(store.read_events(APP, "b", 0, 10).unwrap().len(), 2);
}

#[test]
fn dropping_every_message_and_event_never_moves_a_head_back() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = {
        let store = open(dir.path());
        let batch: Vec<Write> = (1..=3u64)
            .map(|i| append_at("g:old", "a", &format!("m{i}"), i * 1000, &["a", "z"]))
            .collect();
        store.commit(&batch).unwrap();
        // Everything is older than 10_000 - 1_000 ms: the conversation and z's stream empty out.
        let stats = store.apply_retention(10_000, 1_000, 0).unwrap();
        assert_eq!((stats.messages, stats.events), (3, 6));
        assert!(store.read_events(APP, "z", 0, 10).unwrap().is_empty());
        assert_eq!(
            store.stream(APP, "z").unwrap().expect("stream").last_offset,
            3
        );
        store.stream(APP, "z").unwrap().expect("stream").epoch
    };
    // After a reopen the heads come from disk, not from the writer's cache.
    let store = open(dir.path());
    let info = store.conversation(APP, "g:old").unwrap();
    assert_eq!((info.last_seq, info.visible_from), (3, 4));
    assert!(store.history(APP, "g:old", 0, true, 10).unwrap().is_empty());
    let z = store.stream(APP, "z").unwrap().expect("stream");
    assert_eq!((z.epoch, z.last_offset), (epoch, 3));
    let r = store
        .commit(&[append("g:old", "a", "m4", "again", &["a", "z"])])
        .unwrap();
    let WriteResult::Appended { seq, offsets, .. } = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(*seq, 4);
    assert_eq!(offsets, &[("a".to_string(), 4), ("z".to_string(), 4)]);
    let z_events = store.read_events(APP, "z", 0, 10).unwrap();
    assert_eq!(z_events.len(), 1);
    assert_eq!(z_events[0].offset, 4);
}
