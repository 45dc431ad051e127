//! Group commit: many concurrent writers, one durable transaction per round.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use crate::{Durability, Store, StoreError, Write, WriteResult};

/// A queued write and where its answer goes.
struct Job {
    write: Write,
    reply: Reply,
}

/// Where the answer to one write goes.
type Reply = oneshot::Sender<Result<WriteResult, StoreError>>;

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
    largest_batch: AtomicU64,
    syncs: AtomicU64,
}

/// What a [`GroupCommitter`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitterStats {
    /// Batches handed to the store (successful or not).
    pub commits: u64,
    /// Writes in those batches.
    pub writes: u64,
    /// The most writes in one batch.
    pub largest_batch: u64,
    /// Calls of [`Store::sync`] by the sync thread (with [`Durability::Immediate`], for the
    /// batches written while more writes waited; one covers every batch written during the
    /// previous one).
    pub syncs: u64,
}

/// How far the batches of a pipelined committer are: written (visible to readers) and settled
/// (durable, or answered with an error).
struct Progress {
    /// Batches the commit thread has begun to write. Counted before the write, so a reader that
    /// sees a batch's data finds it counted.
    begun: AtomicU64,
    /// Batches settled, in order.
    settled: watch::Sender<u64>,
    /// An fsync failed: what was written may not be durable, and nothing read since may be
    /// shown. Set before the failed batches count as settled.
    failed: AtomicBool,
}

/// Merges concurrent writes into group commits.
///
/// A dedicated thread takes whatever is queued when it becomes free (at most `max_batch` writes)
/// and applies it as one transaction. It never waits for a batch to fill: a lone write is
/// committed at once, and writes that arrive meanwhile form the next batch, so under load the
/// batch grows by itself.
///
/// With [`Durability::Immediate`], under load the fsync runs beside the writing: when more
/// writes wait behind a batch, the commit thread writes it ([`Store::write`]) and hands it to a
/// sync thread, which fsyncs ([`Store::sync`]) and then answers it, while the commit thread
/// writes the next batch; one fsync covers every batch written during the previous one. A batch
/// with nothing waiting behind it is committed with its own fsync ([`Store::commit`]) by the
/// commit thread. Either way an answer means the write is durable. Readers can see a written
/// batch before it is durable, so whatever is shown to a client after a read waits for
/// [`GroupCommitter::settled`].
///
/// With [`Durability::Relaxed`] the commit thread commits ([`Store::commit`]) and answers at
/// once; the store fsyncs in the background.
///
/// The handle is cheap to clone. When every handle is dropped, the threads commit what is still
/// queued and exit; [`GroupCommitter::close`] waits for that.
#[derive(Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    exited: watch::Receiver<bool>,
    /// `None` when the commit thread answers at once (relaxed durability).
    progress: Option<Arc<Progress>>,
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

    /// Starts the commit thread (and with [`Durability::Immediate`] the sync thread) for
    /// `store`. `max_batch` caps the writes per batch (0: the default,
    /// [`Self::DEFAULT_MAX_BATCH`]).
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
        let progress = (store.durability() == Durability::Immediate).then(|| {
            Arc::new(Progress {
                begun: AtomicU64::new(0),
                settled: watch::Sender::new(0),
                failed: AtomicBool::new(false),
            })
        });
        let thread_counters = Arc::clone(&counters);
        let thread_progress = progress.clone();
        std::thread::Builder::new()
            .name("magpie-group-commit".into())
            .spawn(move || {
                match thread_progress {
                    None => run(store.as_ref(), &rx, max_batch, &thread_counters),
                    Some(progress) => {
                        run_pipelined(&store, &rx, max_batch, &thread_counters, &progress);
                    }
                }
                // Release the store before announcing the exit, so that a closer may reopen it.
                drop(store);
                let _ = exited_tx.send(true);
            })
            .expect("cannot start the group-commit thread");
        Self {
            queue,
            counters,
            exited,
            progress,
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
    ) -> Result<
        impl Future<Output = Result<WriteResult, StoreError>> + Send + 'static + use<>,
        StoreError,
    > {
        write.validate()?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { write, reply })
            .map_err(|_| StoreError::CommitterStopped)?;
        Ok(async move { answer.await.map_err(|_| StoreError::CommitterStopped)? })
    }

    /// Resolves once every batch the commit thread has begun so far is durable (or answered
    /// with an error). A reader calls it after reading and shows the client what it read only
    /// then, so no client sees a write that a power loss could still take back. Ready at once
    /// with relaxed durability, where acknowledged writes are not fsynced either.
    ///
    /// An error once an fsync has failed: what the read saw may not be durable.
    pub fn settled(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let wait = self.progress.as_ref().map(|p| {
            (
                Arc::clone(p),
                p.begun.load(Ordering::SeqCst),
                p.settled.subscribe(),
            )
        });
        async move {
            let Some((progress, begun, mut settled)) = wait else {
                return Ok(());
            };
            // `Progress` owns the sender, so the wait cannot end in an error while this future
            // lives; the commit thread settles everything (`u64::MAX`) when it stops.
            let _ = settled.wait_for(|n| *n >= begun).await;
            if progress.failed() {
                return Err(progress.failure("reading"));
            }
            Ok(())
        }
    }

    /// Counters since the start.
    pub fn stats(&self) -> CommitterStats {
        CommitterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
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

/// Takes the next batch into `writes` and `replies`: `held` (a job taken early) or else the
/// next job, blocking for it, then what is queued, up to `max_batch`. `false` once every sender
/// is gone and the queue is empty.
fn next_batch(
    rx: &mpsc::Receiver<Job>,
    held: &mut Option<Job>,
    max_batch: usize,
    writes: &mut Vec<Write>,
    replies: &mut Vec<Reply>,
    counters: &Counters,
) -> bool {
    let first = match held.take() {
        Some(job) => job,
        None => match rx.recv() {
            Ok(job) => job,
            Err(_) => return false,
        },
    };
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
    true
}

/// Answers a batch: result `i` to reply `i`, or `error` to every one.
fn answer(replies: impl IntoIterator<Item = Reply>, outcome: Result<Vec<WriteResult>, StoreError>) {
    match outcome {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // The submitter may have gone away; the write is committed all the same.
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// The store's results for a batch of `n` writes; an error if they do not match the batch, or
/// `None` if the store panicked (the commit thread stops: its state is unknown).
fn outcome(
    n: usize,
    call: impl FnOnce() -> Result<Vec<WriteResult>, StoreError>,
) -> Option<Result<Vec<WriteResult>, StoreError>> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(results)) if results.len() == n => Some(Ok(results)),
        Ok(Ok(results)) => {
            tracing::error!(
                writes = n,
                results = results.len(),
                "store answered a batch with the wrong number of results; the committer stops"
            );
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, writes = n, "group commit failed");
            Some(Err(e))
        }
        Err(_) => {
            tracing::error!("the store panicked in a group commit; the committer stops");
            None
        }
    }
}

/// The commit thread with relaxed durability: commit and answer, until every sender is gone
/// and the queue is empty.
fn run(store: &dyn Store, rx: &mpsc::Receiver<Job>, max_batch: usize, counters: &Counters) {
    // Reused from round to round instead of regrowing in every one.
    let mut writes = Vec::new();
    let mut replies = Vec::new();
    while next_batch(
        rx,
        &mut None,
        max_batch,
        &mut writes,
        &mut replies,
        counters,
    ) {
        // Dropping the replies (on a stop) answers their submitters with `CommitterStopped`.
        let Some(outcome) = outcome(writes.len(), || store.commit(&writes)) else {
            return;
        };
        answer(replies.drain(..), outcome);
        // The batch's messages are not held while the thread waits for the next one.
        writes.clear();
    }
}

/// A written batch on its way to the sync thread.
struct Written {
    /// The batch's number: batches are numbered from 1 in the order they are written.
    number: u64,
    replies: Vec<Reply>,
    outcome: Result<Vec<WriteResult>, StoreError>,
}

impl Progress {
    /// Batches up to `number` are settled: every one of them was written before an fsync that
    /// has returned (or failed and is answered).
    fn settle(&self, number: u64) {
        self.settled.send_if_modified(|settled| {
            let newer = number > *settled;
            if newer {
                *settled = number;
            }
            newer
        });
    }

    /// Whether every batch before `number` is settled.
    fn settled_before(&self, number: u64) -> bool {
        *self.settled.borrow() + 1 >= number
    }

    /// Marks the store failed: nothing written from now on is acknowledged, and nothing read
    /// is shown.
    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The error of everything after a failure, saying what was being done.
    fn failure(&self, doing: &str) -> StoreError {
        StoreError::backend(
            doing,
            std::io::Error::other("an fsync of the journal failed or the store panicked; restart"),
        )
    }
}

/// The commit thread with immediate durability. A batch written while more writes wait, or
/// while earlier batches are still being synced, is handed to the sync thread, so that the next
/// batch is written during its fsync, and answers and settling stay in batch order. A batch
/// with nothing before or behind it has nothing to overlap with and is committed here with its
/// own fsync ([`Store::commit`]), which spares the low-load case a thread hop per write.
fn run_pipelined(
    store: &Arc<dyn Store>,
    rx: &mpsc::Receiver<Job>,
    max_batch: usize,
    counters: &Arc<Counters>,
    progress: &Arc<Progress>,
) {
    let (to_sync, written) = mpsc::channel::<Written>();
    let syncer = {
        let (store, counters, progress) = (store.clone(), counters.clone(), progress.clone());
        std::thread::Builder::new()
            .name("magpie-sync".into())
            .spawn(move || sync_loop(store.as_ref(), &written, &counters, &progress))
            .expect("cannot start the sync thread")
    };
    let mut writes = Vec::new();
    let mut replies = Vec::new();
    let mut held = None;
    let mut stopped = false;
    while next_batch(
        rx,
        &mut held,
        max_batch,
        &mut writes,
        &mut replies,
        counters,
    ) {
        // Does more wait? (Taking the next job is how to look.)
        held = rx.try_recv().ok();
        // Before the write: a reader that sees the batch must find it counted.
        let number = progress.begun.fetch_add(1, Ordering::SeqCst) + 1;
        if progress.failed() {
            // After a failed fsync nothing more is acknowledged (see `Store::sync`).
            answer(replies.drain(..), Err(progress.failure("writing")));
            progress.settle(number);
        } else if held.is_none() && progress.settled_before(number) {
            let Some(outcome) = outcome(writes.len(), || store.commit(&writes)) else {
                stopped = true;
                break;
            };
            answer(replies.drain(..), outcome);
            progress.settle(number);
        } else {
            let Some(outcome) = outcome(writes.len(), || store.write(&writes)) else {
                // The batch may be visible and will never be synced.
                stopped = true;
                break;
            };
            let batch = Written {
                number,
                replies: std::mem::take(&mut replies),
                outcome,
            };
            if to_sync.send(batch).is_err() {
                // The sync thread is gone (it panicked).
                stopped = true;
                break;
            }
        }
        writes.clear();
    }
    drop(to_sync);
    if syncer.join().is_err() {
        stopped = true;
    }
    if stopped {
        progress.fail();
    }
    // No reader waits for a batch that will never settle.
    progress.settle(u64::MAX);
}

/// The sync thread: takes every written batch waiting, fsyncs once, answers them in order.
fn sync_loop(
    store: &dyn Store,
    written: &mpsc::Receiver<Written>,
    counters: &Counters,
    progress: &Progress,
) {
    let mut group = Vec::new();
    while let Ok(first) = written.recv() {
        group.push(first);
        group.extend(written.try_iter());
        // A batch that failed wrote nothing and needs no fsync.
        let synced = if group.iter().any(|b| b.outcome.is_ok()) {
            counters.syncs.fetch_add(1, Ordering::Relaxed);
            match catch_unwind(AssertUnwindSafe(|| store.sync())) {
                Ok(result) => result,
                Err(_) => Err(progress.failure("syncing")),
            }
        } else {
            Ok(())
        };
        if let Err(e) = &synced {
            // The store refuses writes from now on (see `Store::sync`), and so does the commit
            // thread.
            tracing::error!(error = %e, batches = group.len(), "fsync failed; the batches are not acknowledged");
            progress.fail();
        }
        // Once anything failed, no batch is acknowledged: one written during a failed fsync
        // may be synced "successfully" after the kernel dropped the failed pages.
        let failed = progress.failed().then(|| progress.failure("syncing"));
        let last = group.last().map_or(0, |b| b.number);
        for batch in group.drain(..) {
            let outcome = match (&synced, &failed, batch.outcome) {
                (Err(e), _, Ok(_)) => Err(e.clone()),
                (_, Some(e), Ok(_)) => Err(e.clone()),
                (_, _, outcome) => outcome,
            };
            answer(batch.replies, outcome);
        }
        progress.settle(last);
    }
}
