//! Making written commits durable without fjall's journal lock.
//!
//! `Database::persist` holds the journal lock for the whole fsync, so a commit cannot write its
//! journal entry while an earlier one is being synced. Two users need the fsync beside the
//! writer instead:
//! - [`Durability::Relaxed`](crate::Durability::Relaxed)'s background fsync, which with
//!   `persist` stalled every commit for its duration (1 to 10 ms on this project's disk, every
//!   interval): the tail of relaxed-mode latency;
//! - [`Store::sync`](crate::Store::sync) after [`Store::write`](crate::Store::write), which lets
//!   the group committer write the next batch while the previous one is synced.
//!
//! fsync(2) through any descriptor makes what was written to a file durable, and a written
//! commit's journal entry is in the operating system when the commit returns (fjall's
//! `PersistMode::Buffer` flushes its buffer), so syncing descriptors of our own covers every
//! written commit. The names (`<n>.jnl` in the database folder) are fjall's layout; when none
//! is found the caller falls back to `Database::persist`.
//!
//! The descriptors are kept open between syncs: cheaper than reopening, and Linux reports a
//! failed writeback to every descriptor that was open when it failed, where a descriptor
//! opened afterwards may not hear of it ("fsyncgate").

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The journal files of one database folder, kept open for fsync.
#[derive(Debug)]
pub(super) struct Journals {
    dir: PathBuf,
    open: Mutex<Vec<(PathBuf, File)>>,
    /// An fsync failed: what reached the disk is unknown, and a later fsync may succeed only
    /// because the kernel dropped the failed pages, so nothing more is written.
    failed: AtomicBool,
}

impl Journals {
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            open: Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
        }
    }

    /// Whether an fsync has failed since the store was opened.
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Fsyncs every journal file of the folder, and the folder itself when a journal appeared
    /// since the last call; returns how many journals it synced (0: none found). After an
    /// error, [`Journals::failed`] is true for good.
    pub(super) fn sync(&self) -> io::Result<usize> {
        let synced = self.sync_all();
        if synced.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        synced
    }

    fn sync_all(&self) -> io::Result<usize> {
        let mut present = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "jnl") {
                present.push(path);
            }
        }
        // A failed sync leaves nothing to trust; the lock is only ever held here.
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Journals retired since the last call (their data is in tables now) are closed.
        open.retain(|(path, _)| present.contains(path));
        let mut appeared = false;
        for path in present {
            if open.iter().any(|(p, _)| *p == path) {
                continue;
            }
            match File::open(&path) {
                Ok(file) => {
                    open.push((path, file));
                    appeared = true;
                }
                // Retired since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for (_, file) in open.iter() {
            file.sync_all()?;
        }
        if appeared {
            // The folder's entry of a new journal.
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(open.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_the_journals_and_follows_new_and_retired_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journals = Journals::new(dir.path());
        assert_eq!(journals.sync().expect("sync"), 0, "no journal yet");
        std::fs::write(dir.path().join("0.jnl"), b"a").expect("write");
        std::fs::write(dir.path().join("other.txt"), b"b").expect("write");
        assert_eq!(journals.sync().expect("sync"), 1);
        std::fs::write(dir.path().join("1.jnl"), b"c").expect("write");
        assert_eq!(journals.sync().expect("sync"), 2);
        std::fs::remove_file(dir.path().join("0.jnl")).expect("remove");
        assert_eq!(
            journals.sync().expect("sync"),
            1,
            "the retired journal is closed"
        );
    }
}
