//! What can go wrong with the store on disk.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// An error of [`RedbStore`](crate::RedbStore).
///
/// Every variant names the database file, and its `Display` is one self-contained line
/// that already includes the underlying cause. For that reason the cause is kept in a field
/// rather than exposed through `source()`: anyhow's `{:#}` would otherwise print it twice.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open store {}: {error}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the database reported.
        error: redb::DatabaseError,
    },
    /// Another process (or another handle in this one) holds the database.
    #[error("store {} is already in use by another process", path.display())]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file holds something that is not a valid chainsim store.
    #[error("store {} is corrupted ({detail})", path.display())]
    Corrupted {
        /// The database file.
        path: PathBuf,
        /// What was found wrong, e.g. which block does not decode.
        detail: String,
    },
    /// A file-system operation around the database failed.
    #[error("store {}: cannot {action}: {error}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being attempted, e.g. "create the directory".
        action: &'static str,
        /// The OS error.
        error: io::Error,
    },
    /// A reader was used after its store was closed or dropped.
    #[error("store {} is closed", path.display())]
    Closed {
        /// The database file.
        path: PathBuf,
    },
    /// The database failed while reading or writing.
    #[error("store {}: database error: {error}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What the database reported.
        error: redb::Error,
    },
}

impl StoreError {
    /// Whether the data on disk is damaged, so that moving it aside and syncing again from
    /// peers (`--resync`) is the way out. False for errors where the file itself is fine,
    /// such as a lock held by another process or a full disk.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupted { .. })
    }

    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Open { path, .. }
            | Self::Locked { path }
            | Self::Closed { path }
            | Self::Corrupted { path, .. }
            | Self::Io { path, .. }
            | Self::Database { path, .. } => path,
        }
    }

    pub(crate) fn corrupted(path: &Path, detail: impl Into<String>) -> Self {
        Self::Corrupted {
            path: path.to_owned(),
            detail: detail.into(),
        }
    }

    /// Classifies an error met on an open database, so that damage reported by redb's
    /// checksums is a corruption the caller can act on rather than an opaque database error.
    pub(crate) fn database(path: &Path, error: impl Into<redb::Error>) -> Self {
        match error.into() {
            redb::Error::Corrupted(detail) => Self::corrupted(path, detail),
            redb::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => Self::corrupted(path, e.to_string()),
            error => Self::Database {
                path: path.to_owned(),
                error,
            },
        }
    }

    /// Classifies an error met while opening the file.
    pub(crate) fn open(path: &Path, error: redb::DatabaseError) -> Self {
        use redb::{DatabaseError as D, StorageError as S};
        match error {
            D::DatabaseAlreadyOpen | D::LockProtocolMismatch => Self::Locked { path: path.to_owned() },
            D::Storage(S::Corrupted(detail)) => Self::corrupted(path, detail),
            // redb reports a file without its magic number (not a database at all) this way.
            D::Storage(S::Io(e)) if e.kind() == io::ErrorKind::InvalidData => Self::corrupted(path, e.to_string()),
            error => Self::Open {
                path: path.to_owned(),
                error,
            },
        }
    }
}
