//! The one error type of the store.

use std::sync::Arc;

/// Anything that can go wrong in the store.
///
/// The error is `Clone` so that the [`GroupCommitter`](crate::GroupCommitter) can hand the failure
/// of one group commit to every submitter of that group.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage engine (or the disk under it) failed. After a failed fsync the engine refuses
    /// further writes until the store is reopened, since what reached the disk is unknown.
    #[error("storage engine failed while {context}: {source}")]
    Backend {
        /// What the store was doing.
        context: String,
        /// The engine's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A value read from disk does not decode: the file was damaged or written by something else.
    #[error("corrupt {what} record at key {key}: {detail}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// The record's key, printable (non-printable bytes escaped).
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A write or query the store cannot represent (for example an id longer than 65535 bytes).
    /// Nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The [`GroupCommitter`](crate::GroupCommitter)'s thread has stopped (its store failed to
    /// answer, or it panicked); the write may or may not have been committed.
    #[error("the group committer has stopped")]
    CommitterStopped,
}

impl StoreError {
    /// Wraps an engine error with what the store was doing.
    pub(crate) fn backend(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// A record that failed to decode.
    pub(crate) fn corrupt(what: &'static str, key: &[u8], detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            key: key.escape_ascii().to_string(),
            detail: detail.into(),
        }
    }
}

/// Adds context to engine results.
pub(crate) trait Context<T> {
    /// Maps the engine's error to [`StoreError::Backend`] with `context`.
    fn context(self, context: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, fjall::Error> {
    fn context(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::backend(context, e))
    }
}
