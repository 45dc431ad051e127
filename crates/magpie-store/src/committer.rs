//! Group commit: many concurrent writers, one durable transaction per round.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use crate::{Store, StoreError, Write, WriteResult};

/// A queued write and where its answer goes.
struct Job {
    write: Write,
    reply: oneshot::Sender<Result<WriteResult, StoreError>>,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
    largest_batch: AtomicU64,
}

/// What a [`GroupCommitter`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitterStats {
    /// Calls of [`Store::commit`] (successful or not).
    pub commits: u64,
    /// Writes handed to those calls.
    pub writes: u64,
    /// The most writes in one commit.
    pub largest_batch: u64,
}

/// Merges concurrent writes into group commits.
///
/// A dedicated thread takes whatever is queued when it becomes free (at most `max_batch` writes),
/// commits it with one [`Store::commit`], and answers every submitter. It never waits for a batch
/// to fill: a lone write is committed at once, and writes that arrive during a commit form the
/// next batch. Under load the batch grows by itself to what arrives during one fsync.
///
/// The handle is cheap to clone. When every handle is dropped, the thread commits what is still
/// queued and exits; [`GroupCommitter::close`] waits for that.
#[derive(Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    exited: watch::Receiver<bool>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// The batch limit used when `start` is given 0.
    pub const DEFAULT_MAX_BATCH: usize = 256;

    /// Starts the commit thread for `store`. `max_batch` caps the writes per commit (0: the
    /// default, [`Self::DEFAULT_MAX_BATCH`]).
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn start(store: Arc<dyn Store>, max_batch: usize) -> Self {
        let max_batch = if max_batch == 0 {
            Self::DEFAULT_MAX_BATCH
        } else {
            max_batch
        };
        let (queue, rx) = mpsc::channel::<Job>();
        let (exited_tx, exited) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("magpie-group-commit".into())
            .spawn(move || {
                run(store.as_ref(), &rx, max_batch, &thread_counters);
                // Release the store before announcing the exit, so that a closer may reopen it.
                drop(store);
                let _ = exited_tx.send(true);
            })
            .expect("cannot start the group-commit thread");
        Self {
            queue,
            counters,
            exited,
        }
    }

    /// Queues `write` for the next group commit and waits for its result, which arrives once the
    /// commit is durable. An invalid write ([`Write::validate`]) is refused at once without
    /// affecting others.
    ///
    /// If the future is dropped before it completes, the write is still committed.
    pub async fn submit(&self, write: Write) -> Result<WriteResult, StoreError> {
        self.enqueue(write)?.await
    }

    /// Queues `write` now, before returning, and gives the future of its result. Writes enqueued
    /// one after the other are committed in that order, so a caller can keep several writes in
    /// flight (pipelining) and still have them applied in the order it received them.
    pub fn enqueue(
        &self,
        write: Write,
    ) -> Result<impl Future<Output = Result<WriteResult, StoreError>> + Send + 'static, StoreError>
    {
        write.validate()?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { write, reply })
            .map_err(|_| StoreError::CommitterStopped)?;
        Ok(async move { answer.await.map_err(|_| StoreError::CommitterStopped)? })
    }

    /// Counters since the start.
    pub fn stats(&self) -> CommitterStats {
        CommitterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Drops this handle and waits until the thread has committed everything queued and exited,
    /// which happens once every other clone of the handle is dropped too.
    pub async fn close(self) {
        let mut exited = self.exited.clone();
        drop(self);
        // An error means the thread is gone already.
        let _ = exited.wait_for(|done| *done).await;
    }
}

/// The commit thread: until every sender is gone and the queue is empty.
fn run(store: &dyn Store, rx: &mpsc::Receiver<Job>, max_batch: usize, counters: &Counters) {
    // Reused from round to round instead of regrowing in every one.
    let mut writes = Vec::new();
    let mut replies = Vec::new();
    while let Ok(first) = rx.recv() {
        writes.push(first.write);
        replies.push(first.reply);
        while writes.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => {
                    writes.push(job.write);
                    replies.push(job.reply);
                }
                Err(_) => break,
            }
        }
        let n = writes.len() as u64;
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.writes.fetch_add(n, Ordering::Relaxed);
        counters.largest_batch.fetch_max(n, Ordering::Relaxed);
        match catch_unwind(AssertUnwindSafe(|| store.commit(&writes))) {
            Ok(Ok(results)) if results.len() == replies.len() => {
                for (reply, result) in replies.drain(..).zip(results) {
                    // The submitter may have gone away; the write is committed all the same.
                    let _ = reply.send(Ok(result));
                }
            }
            Ok(Ok(results)) => {
                tracing::error!(
                    writes = writes.len(),
                    results = results.len(),
                    "store answered a batch with the wrong number of results"
                );
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(StoreError::CommitterStopped));
                }
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, writes = writes.len(), "group commit failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(_) => {
                tracing::error!("the store panicked in a group commit; the committer stops");
                // Dropping the replies answers their submitters with `CommitterStopped`.
                return;
            }
        }
        // The batch's messages are not held while the thread waits for the next one.
        writes.clear();
    }
}
