//! The lifetime sweeper: removes local media files older than `WHATSAPP_FILES_LIFETIME`
//! (WAHA deletes each file that long after writing it; 0 keeps them, and then no sweeper
//! runs).
//!
//! Owns: one task that scans `{folder}/{session}/*` every `lifetime / 2` (at least every
//! second, at most every minute) and deletes files whose modification time is older than
//! the lifetime, so a file lives between `lifetime` and `1.5 × lifetime`. Partial downloads
//! (`.partial/`) are left to their writers. Started by `App::build` through
//! [`super::MediaService::spawn_sweeper`]; the App keeps the [`SweeperTask`] and stops it
//! (cancel, then join with a deadline) on shutdown.

use std::{path::PathBuf, time::Duration};

use tokio_util::sync::CancellationToken;

/// The running sweeper. Dropping it detaches the task (it still ends with its token).
#[must_use = "the sweeper must be kept and stopped on shutdown"]
pub struct SweeperTask {
    cancel: CancellationToken,
    join: tokio::task::JoinHandle<()>,
}

impl SweeperTask {
    /// Two-phase stop: cancel, then wait at most `deadline` (a scan in progress ends at
    /// its next file); past it the task is aborted. Returns whether it ended in time.
    pub async fn stop(self, deadline: Duration) -> bool {
        self.cancel.cancel();
        let abort = self.join.abort_handle();
        match tokio::time::timeout(deadline, self.join).await {
            Ok(_) => true,
            Err(_) => {
                abort.abort();
                tracing::warn!("media: sweeper did not stop in time; aborted");
                false
            }
        }
    }
}

pub(super) fn spawn(folder: PathBuf, lifetime: Duration, cancel: CancellationToken) -> SweeperTask {
    let every = (lifetime / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let token = cancel.clone();
    let join = tokio::spawn(async move {
        loop {
            match sweep(&folder, lifetime, &token).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "media: expired files removed"),
                Err(e) => tracing::warn!(error = %e, "media: sweep failed"),
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
    SweeperTask { cancel, join }
}

/// One pass; returns how many files went.
async fn sweep(
    folder: &std::path::Path,
    lifetime: Duration,
    cancel: &CancellationToken,
) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut sessions = match tokio::fs::read_dir(folder).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = std::time::SystemTime::now();
    while let Some(dir) = sessions.next_entry().await? {
        if dir.file_name().to_string_lossy().starts_with('.') || !dir.file_type().await?.is_dir() {
            continue;
        }
        let mut files = tokio::fs::read_dir(dir.path()).await?;
        while let Some(f) = files.next_entry().await? {
            if cancel.is_cancelled() {
                return Ok(removed);
            }
            let Ok(meta) = f.metadata().await else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if meta.is_file() && age >= lifetime && tokio::fs::remove_file(f.path()).await.is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
