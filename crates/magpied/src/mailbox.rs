//! A session's mailbox: what the rest of the server hands to one connection task.
//!
//! Written by hand rather than as two tokio mpsc channels (a bounded one for pushes and an
//! unbounded control lane, as it first was): each channel allocates its first block of slots when
//! it is made, about 0.8 KiB apiece, which idle sessions paid for nothing (`benches/` idle
//! memory). Here an idle session holds one small allocation, and the queue grows only when
//! something is queued. There is one receiver, the connection task, so a single stored waker
//! does (an `AtomicWaker`): a `Notify` would put a waiter node into the future every idle session
//! keeps parked.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use magpie_session::pb;
use magpie_wire::ErrorCode;

/// What a session's connection task receives from the rest of the server.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Push to the client ([SYNC-4.2]).
    Push(pb::Push),
    /// Close the session with a code (kick, shutdown, slow reader).
    Close(ErrorCode, String),
}

/// The sending side, cloned into the hub's tables. Pushes queue up to the session's capacity; a
/// full queue marks a slow reader ([SESSION-6.1]), whose session is closed: it loses nothing, it
/// resumes with SYNC from its cursor.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// The receiver's waker, woken by every push and close.
    ready: AtomicWaker,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    pushes: VecDeque<pb::Push>,
    /// Set once; taken by the receiver ahead of any queued push.
    close: Option<(ErrorCode, String)>,
    closed: bool,
}

impl Mailbox {
    /// A mailbox that holds up to `capacity` pushes.
    pub(crate) fn new(capacity: usize) -> Mailbox {
        Mailbox {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                ready: AtomicWaker::new(),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Queues a push, or closes a session that has fallen `capacity` pushes behind.
    pub(crate) fn push(&self, push: pb::Push) {
        self.with_state(|state, capacity| {
            if state.closed {
                return;
            }
            if state.pushes.len() >= capacity {
                state.pushes.clear();
                state.close = Some((ErrorCode::INTERNAL_ERROR, "slow reader".into()));
                state.closed = true;
            } else {
                state.pushes.push_back(push);
            }
        });
        self.inner.ready.wake();
    }

    /// Asks the session to close with `code` (the first request wins).
    pub(crate) fn close(&self, code: ErrorCode, reason: String) {
        self.with_state(|state, _| {
            if !state.closed {
                state.close = Some((code, reason));
                state.closed = true;
            }
        });
        self.inner.ready.wake();
    }

    /// The next item without waiting: a close request first, then pushes in order.
    pub(crate) fn try_next(&self) -> Option<Outbound> {
        self.with_state(|state, _| {
            if let Some((code, reason)) = state.close.take() {
                return Some(Outbound::Close(code, reason));
            }
            let push = state.pushes.pop_front().map(Outbound::Push);
            if state.pushes.is_empty() && state.pushes.capacity() > 64 {
                // A burst is over: give its memory back.
                state.pushes = VecDeque::new();
            }
            push
        })
    }

    /// Waits for the next item. Cancel-safe: nothing is taken until it is returned. One task
    /// receives (the waker of the latest poll is the one woken).
    pub(crate) async fn next(&self) -> Outbound {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Outbound> {
        if let Some(out) = self.try_next() {
            return Poll::Ready(out);
        }
        self.inner.ready.register(cx.waker());
        // An item queued between the first look and the registration woke nobody: look again.
        match self.try_next() {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State, usize) -> R) -> R {
        // A panic elsewhere while holding the lock leaves a queue that is still consistent.
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state, self.inner.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(n: u64) -> pb::Push {
        pb::Push {
            epoch: n,
            ..Default::default()
        }
    }

    #[test]
    fn pushes_come_out_in_order_and_close_goes_first() {
        let m = Mailbox::new(8);
        m.push(push(1));
        m.push(push(2));
        assert!(matches!(m.try_next(), Some(Outbound::Push(p)) if p.epoch == 1));
        m.close(ErrorCode::GOING_AWAY, "bye".into());
        assert!(matches!(m.try_next(), Some(Outbound::Close(c, _)) if c == ErrorCode::GOING_AWAY));
        assert!(matches!(m.try_next(), Some(Outbound::Push(p)) if p.epoch == 2));
        assert!(m.try_next().is_none());
    }

    #[test]
    fn a_full_queue_closes_the_session_as_a_slow_reader() {
        let m = Mailbox::new(2);
        for n in 0..3 {
            m.push(push(n));
        }
        match m.try_next() {
            Some(Outbound::Close(code, reason)) => {
                assert_eq!(code, ErrorCode::INTERNAL_ERROR);
                assert_eq!(reason, "slow reader");
            }
            other => panic!("expected a close, got {other:?}"),
        }
        // Nothing after the close: the client resumes with SYNC.
        m.push(push(9));
        m.close(ErrorCode::GOING_AWAY, "later".into());
        assert!(m.try_next().is_none());
    }

    #[tokio::test]
    async fn next_wakes_for_an_item_queued_later() {
        let m = Mailbox::new(4);
        let sender = m.clone();
        let waiter = tokio::spawn(async move { m.next().await });
        tokio::task::yield_now().await;
        sender.push(push(7));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(matches!(got, Outbound::Push(p) if p.epoch == 7));
    }
}
