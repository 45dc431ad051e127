//! The store's write and read semantics: seqs, events, dedup, read markers, nonces, revocation,
//! history paging, and what survives a reopen.

mod common;

use common::{APP, append, open, seq_of};
use magpie_store::{
    ConversationInfo, EventKind, Store, StoreError, StreamHead, Write, WriteResult,
};

#[test]
fn seqs_are_gap_free_and_per_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let batch = [
        append("u:alice:bob", "alice", "a1", "hi", &["alice", "bob"]),
        append("u:alice:carol", "alice", "a2", "hey", &["alice", "carol"]),
        append("u:alice:bob", "bob", "b1", "yo", &["alice", "bob"]),
        append("u:alice:bob", "alice", "a3", "sup", &["alice", "bob"]),
    ];
    let seqs: Vec<u64> = store.commit(&batch).unwrap().iter().map(seq_of).collect();
    assert_eq!(seqs, [1, 1, 2, 3]);
    let more = store
        .commit(&[
            append("u:alice:carol", "carol", "c1", "ok", &["alice", "carol"]),
            append("u:alice:bob", "bob", "b2", "k", &["alice", "bob"]),
        ])
        .unwrap();
    assert_eq!(more.iter().map(seq_of).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(
        store.conversation(APP, "u:alice:bob").unwrap(),
        ConversationInfo {
            last_seq: 4,
            visible_from: 1
        }
    );
    let all = store.history(APP, "u:alice:bob", 1, false, 100).unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(all[1].sender, "bob");
    assert_eq!(&all[1].content[..], b"yo");
    assert!(all.iter().all(|m| m.time_ms > 0), "time stamped");
    // Another app has its own conversations.
    assert_eq!(
        store.conversation("other", "u:alice:bob").unwrap(),
        ConversationInfo::default()
    );
}

#[test]
fn every_participant_gets_one_event_sender_included() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let r = store
        .commit(&[
            append(
                "g:team",
                "alice",
                "m1",
                "hello team",
                &["alice", "bob", "carol"],
            ),
            // The sender is missing from the list: it is added.
            append("u:alice:bob", "alice", "m2", "psst", &["bob"]),
            // A self-conversation with the sender listed twice: one event.
            append("u:alice:alice", "alice", "m3", "note", &["alice", "alice"]),
        ])
        .unwrap();
    let offsets = |r: &WriteResult| match r {
        WriteResult::Appended { offsets, .. } => offsets.clone(),
        other => panic!("{other:?}"),
    };
    let o = |u: &str, n: u64| (u.to_string(), n);
    assert_eq!(offsets(&r[0]), [o("alice", 1), o("bob", 1), o("carol", 1)]);
    assert_eq!(offsets(&r[1]), [o("bob", 2), o("alice", 2)]);
    assert_eq!(offsets(&r[2]), [o("alice", 3)]);

    let alice = store.read_events(APP, "alice", 0, 100).unwrap();
    assert_eq!(
        alice.iter().map(|d| d.offset).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        alice[2].kind,
        EventKind::Message {
            conversation: "u:alice:alice".into(),
            seq: 1
        }
    );
    let joined = alice[0].message.as_ref().expect("message joined");
    assert_eq!((joined.seq, &joined.content[..]), (1, &b"hello team"[..]));
    let carol = store.read_events(APP, "carol", 0, 100).unwrap();
    assert_eq!(carol.len(), 1);
    // Paging by `after` and `limit`.
    let page = store.read_events(APP, "alice", 1, 1).unwrap();
    assert_eq!(page.iter().map(|d| d.offset).collect::<Vec<_>>(), [2]);
    assert!(store.read_events(APP, "alice", 3, 10).unwrap().is_empty());
    assert!(
        store
            .read_events(APP, "alice", u64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .stream(APP, "alice")
            .unwrap()
            .expect("stream")
            .last_offset,
        3
    );
    assert_eq!(
        store
            .stream(APP, "carol")
            .unwrap()
            .expect("stream")
            .last_offset,
        1
    );
}

#[test]
fn a_retry_is_stored_once_and_a_reused_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store
        .commit(&[append("u:a:b", "a", "c-1", "hello", &["a", "b"])])
        .unwrap();
    let WriteResult::Appended {
        seq,
        time_ms,
        offsets,
        duplicate: false,
        silent,
    } = first[0].clone()
    else {
        panic!("{first:?}")
    };
    // The retry, alone and within a batch that also repeats it.
    let again = store
        .commit(&[
            append("u:a:b", "a", "c-1", "hello", &["a", "b"]),
            append("u:a:b", "a", "c-2", "second", &["a", "b"]),
            append("u:a:b", "a", "c-2", "second", &["a", "b"]),
            append("u:a:b", "a", "c-1", "other content", &["a", "b"]),
        ])
        .unwrap();
    assert_eq!(
        again[0],
        WriteResult::Appended {
            seq,
            time_ms,
            offsets,
            duplicate: true,
            silent,
        }
    );
    assert!(matches!(
        again[1],
        WriteResult::Appended {
            seq: 2,
            duplicate: false,
            ..
        }
    ));
    assert!(matches!(
        again[2],
        WriteResult::Appended {
            seq: 2,
            duplicate: true,
            ..
        }
    ));
    assert_eq!(again[3], WriteResult::ClientIdReused);
    assert_eq!(store.conversation(APP, "u:a:b").unwrap().last_seq, 2);
    assert_eq!(store.read_events(APP, "b", 0, 100).unwrap().len(), 2);
    // The same id from another sender is another message; an empty id is never deduplicated.
    let other = store
        .commit(&[
            append("u:a:b", "b", "c-1", "hello", &["a", "b"]),
            append("u:a:b", "a", "", "x", &["a", "b"]),
            append("u:a:b", "a", "", "x", &["a", "b"]),
        ])
        .unwrap();
    assert_eq!(other.iter().map(seq_of).collect::<Vec<_>>(), [3, 4, 5]);
}

#[test]
fn data_and_epochs_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (head, lurker) = {
        let store = open(dir.path());
        store
            .commit(&[
                append("u:a:b", "a", "1", "one", &["a", "b"]),
                Write::SetRead {
                    app: APP.into(),
                    user: "b".into(),
                    device: "b-phone".into(),
                    conversation: "u:a:b".into(),
                    seq: 1,
                },
                Write::Revoke {
                    app: APP.into(),
                    user: "a".into(),
                    at: 1_767_225_600,
                },
            ])
            .unwrap();
        let head = store.stream(APP, "b").unwrap().expect("b's stream");
        // A user who never received anything: no stream until it is opened, and opening it
        // again answers the same head.
        assert_eq!(store.stream(APP, "lurker").unwrap(), None);
        let open_lurker = || Write::OpenStream {
            app: APP.into(),
            user: "lurker".into(),
        };
        let [WriteResult::Stream(lurker)] = store.commit(&[open_lurker()]).unwrap()[..] else {
            panic!("no stream head")
        };
        assert_eq!(
            store.commit(&[open_lurker()]).unwrap(),
            [WriteResult::Stream(lurker)]
        );
        assert_eq!(store.stream(APP, "lurker").unwrap(), Some(lurker));
        (head, lurker)
    };
    assert_ne!(head.epoch, 0);
    assert_eq!(head.last_offset, 2);
    assert_ne!(lurker.epoch, 0);
    assert_ne!(lurker.epoch, head.epoch);
    assert_eq!(lurker.last_offset, 0);

    let store = open(dir.path());
    assert_eq!(store.stream(APP, "b").unwrap().expect("stream"), head);
    assert_eq!(
        store.stream(APP, "lurker").unwrap().expect("stream"),
        lurker
    );
    assert_eq!(store.history(APP, "u:a:b", 0, true, 10).unwrap().len(), 1);
    assert_eq!(store.read_seq(APP, "b", "u:a:b").unwrap(), 1);
    assert_eq!(store.revoked_before(APP, "a").unwrap(), 1_767_225_600);
    // Seqs continue after the reopen.
    let r = store
        .commit(&[append("u:a:b", "b", "2", "two", &["a", "b"])])
        .unwrap();
    assert_eq!(seq_of(&r[0]), 2);
    let b = store.stream(APP, "b").unwrap().expect("stream");
    assert_eq!(
        b,
        StreamHead {
            epoch: head.epoch,
            last_offset: 3
        }
    );
}

fn set_read(seq: u64, device: &str) -> Write {
    Write::SetRead {
        app: APP.into(),
        user: "bob".into(),
        device: device.into(),
        conversation: "u:alice:bob".into(),
        seq,
    }
}

#[test]
fn read_markers_only_move_forward() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.read_seq(APP, "bob", "u:alice:bob").unwrap(), 0);
    let r = store
        .commit(&[
            set_read(5, "phone"),
            set_read(3, "laptop"),
            set_read(5, "laptop"),
        ])
        .unwrap();
    assert_eq!(
        r,
        [
            WriteResult::ReadSet {
                seq: 5,
                offset: Some(1)
            },
            WriteResult::ReadSet {
                seq: 5,
                offset: None
            },
            WriteResult::ReadSet {
                seq: 5,
                offset: None
            },
        ]
    );
    let r = store.commit(&[set_read(7, "laptop")]).unwrap();
    assert_eq!(
        r[0],
        WriteResult::ReadSet {
            seq: 7,
            offset: Some(2)
        }
    );
    assert_eq!(store.read_seq(APP, "bob", "u:alice:bob").unwrap(), 7);
    let events = store.read_events(APP, "bob", 0, 10).unwrap();
    assert_eq!(
        events[1].kind,
        EventKind::Read {
            conversation: "u:alice:bob".into(),
            seq: 7,
            device: "laptop".into()
        }
    );
    assert!(events.iter().all(|e| e.message.is_none()));
}

/// One batch may write a key twice (two READs moving the same marker, a nonce used again after
/// it expired); the last write is what is read, and what a reopened store recovers from its
/// journal.
#[test]
fn a_key_written_twice_in_one_batch_keeps_the_last_value_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let nonce = |expires_at| Write::UseNonce {
        app: APP.into(),
        nonce: "n0nce-BBBB".into(),
        expires_at,
    };
    let future = 4_000_000_000; // 2096
    {
        let store = open(dir.path());
        let r = store
            .commit(&[
                set_read(5, "phone"),
                set_read(9, "laptop"),
                nonce(1),
                nonce(future),
            ])
            .unwrap();
        assert!(matches!(r[1], WriteResult::ReadSet { seq: 9, .. }), "{r:?}");
        assert_eq!(
            r[3],
            WriteResult::NonceAccepted,
            "the first use had expired"
        );
        assert_eq!(store.read_seq(APP, "bob", "u:alice:bob").unwrap(), 9);
    }
    let store = open(dir.path());
    assert_eq!(store.read_seq(APP, "bob", "u:alice:bob").unwrap(), 9);
    assert_eq!(
        store.commit(&[nonce(future)]).unwrap(),
        [WriteResult::NonceReplayed],
        "the second, unexpired use survived the reopen"
    );
}

#[test]
fn nonces_are_single_use_until_they_expire_and_revocation_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nonce = |n: &str, expires_at| Write::UseNonce {
        app: APP.into(),
        nonce: n.into(),
        expires_at,
    };
    let future = 4_000_000_000; // 2096
    let r = store
        .commit(&[
            nonce("n0nce-AAAA", future),
            nonce("n0nce-AAAA", future),
            nonce("expired-1", 1),
            nonce("expired-1", 1),
        ])
        .unwrap();
    use WriteResult::{NonceAccepted, NonceReplayed};
    assert_eq!(
        r,
        [NonceAccepted, NonceReplayed, NonceAccepted, NonceAccepted]
    );
    let other_app = Write::UseNonce {
        app: "other".into(),
        nonce: "n0nce-AAAA".into(),
        expires_at: future,
    };
    assert_eq!(
        store
            .commit(&[nonce("n0nce-AAAA", future), other_app])
            .unwrap(),
        [NonceReplayed, NonceAccepted]
    );

    assert_eq!(store.revoked_before(APP, "alice").unwrap(), 0);
    let revoke = |at| Write::Revoke {
        app: APP.into(),
        user: "alice".into(),
        at,
    };
    assert_eq!(
        store.commit(&[revoke(100)]).unwrap(),
        [WriteResult::Revoked]
    );
    assert_eq!(store.revoked_before(APP, "alice").unwrap(), 100);
    store.commit(&[revoke(50)]).unwrap();
    assert_eq!(store.revoked_before(APP, "alice").unwrap(), 50);
    assert_eq!(store.revoked_before("other", "alice").unwrap(), 0);
}

#[test]
fn history_pages_both_ways_within_visible_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let batch: Vec<Write> = (1..=10)
        .map(|i| {
            append(
                "g:x",
                "a",
                &format!("m{i}"),
                &format!("body {i}"),
                &["a", "b"],
            )
        })
        .collect();
    store.commit(&batch).unwrap();
    let seqs = |from, backward, limit| -> Vec<u64> {
        store
            .history(APP, "g:x", from, backward, limit)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    };
    assert_eq!(seqs(1, false, 4), [1, 2, 3, 4]);
    assert_eq!(seqs(5, false, 4), [5, 6, 7, 8]);
    assert_eq!(seqs(9, false, 4), [9, 10]);
    assert_eq!(seqs(0, false, 2), [1, 2]);
    assert!(seqs(11, false, 4).is_empty());
    assert_eq!(seqs(0, true, 3), [10, 9, 8]);
    assert_eq!(seqs(7, true, 3), [7, 6, 5]);
    assert_eq!(seqs(2, true, 5), [2, 1]);
    assert_eq!(seqs(99, true, 2), [10, 9]);
    assert!(seqs(0, true, 0).is_empty());
    assert!(
        store
            .history(APP, "g:unknown", 0, true, 10)
            .unwrap()
            .is_empty()
    );

    // Keep the newest 6: visible_from = 5.
    store.apply_retention(0, 0, 6).unwrap();
    assert_eq!(
        store.conversation(APP, "g:x").unwrap(),
        ConversationInfo {
            last_seq: 10,
            visible_from: 5
        }
    );
    assert_eq!(seqs(1, false, 3), [5, 6, 7]);
    assert_eq!(seqs(0, true, 100), [10, 9, 8, 7, 6, 5]);
    assert_eq!(seqs(6, true, 100), [6, 5]);
    assert!(seqs(4, true, 100).is_empty());
}

#[test]
fn an_invalid_write_fails_the_batch_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let long = "x".repeat(magpie_store::MAX_ID_LEN + 1);
    let err = store
        .commit(&[
            append("u:a:b", "a", "1", "one", &["a", "b"]),
            append(&long, "a", "2", "two", &["a"]),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    assert!(
        err.to_string().contains("conversation is 1025 bytes"),
        "{err}"
    );
    assert_eq!(store.conversation(APP, "u:a:b").unwrap().last_seq, 0);
    assert!(store.commit(&[]).unwrap().is_empty());
    let empty_app = Write::Revoke {
        app: String::new(),
        user: "a".into(),
        at: 1,
    };
    assert!(empty_app.validate().is_err());
}

#[test]
fn a_corrupt_record_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .commit(&[append("u:a:b", "a", "1", "one", &["a", "b"])])
            .unwrap();
    }
    {
        // Damage records behind the store's back: a truncated conversation record and an
        // event of an unknown kind.
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let ks = |name| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .unwrap()
        };
        // Keys are the store's business: overwrite every value of the two keyspaces.
        for (name, garbage) in [
            ("conversations", &b"\x01\x00\x00"[..]),
            ("events", &b"\x01\x09"[..]),
        ] {
            let ks = ks(name);
            let keys: Vec<_> = ks.iter().map(|g| g.key().unwrap()).collect();
            assert!(!keys.is_empty(), "{name}");
            for k in keys {
                ks.insert(k, garbage.to_vec()).unwrap();
            }
        }
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let store = open(dir.path());
    let err = store.conversation(APP, "u:a:b").unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                what: "conversation",
                ..
            }
        ),
        "{err}"
    );
    let err = store.read_events(APP, "b", 0, 10).unwrap_err();
    assert!(err.to_string().contains("event kind 9"), "{err}");
    // A write that needs the damaged record fails whole; others still work.
    assert!(
        store
            .commit(&[append("u:a:b", "a", "2", "two", &["a", "b"])])
            .is_err()
    );
    assert!(
        store
            .commit(&[append("u:a:c", "a", "3", "three", &["a", "c"])])
            .is_ok()
    );
}
