//! `wharf migrate --to <store> [--from <store>] [--session NAME]…`: copies every session
//! (or the named ones) with its whole state from one store to another, then the admin API
//! keys, then re-reads each session from the destination and compares the counts per kind.
//!
//! Owns: the order of the copy and its verification. Idempotent and resumable: every
//! write is an upsert by key, so running it again after an interruption finishes the job
//! and duplicates nothing. The source is only read (and left as is). Runs once in its
//! own process (called by `cli::run`).

use anyhow::Context as _;

use super::dump::{self, Counter, Loader};
use super::{Args, Failure, StoreSpec, print_counts, progress};
use crate::config::Config;

/// Runs the command.
///
/// # Errors
/// Bad arguments, a store that cannot be opened, a failed copy or a count mismatch.
pub async fn run(config: &Config, args: &Args) -> Result<(), Failure> {
    if !args.positional.is_empty() {
        return Err(Failure::Usage(format!(
            "unexpected argument {:?}",
            args.positional[0]
        )));
    }
    let to = args
        .to
        .as_deref()
        .ok_or_else(|| Failure::Usage("--to is required".into()))?;
    let to = StoreSpec::parse(to, config)?;
    let from = match &args.from {
        Some(f) => StoreSpec::parse(f, config)?,
        None => StoreSpec::current(config),
    };
    if from == to {
        return Err(Failure::Usage(format!(
            "the source and the destination are the same {}",
            from.describe()
        )));
    }
    eprintln!(
        "wharf migrate: {} → {} (stop the server using the source first)",
        from.describe(),
        to.describe()
    );
    let src = from.open(config, true).await?;
    let dst = to.open(config, false).await?;

    let mut names: Vec<String> = src
        .list_sessions()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    if !args.sessions.is_empty() {
        for wanted in &args.sessions {
            if !names.contains(wanted) {
                return Err(Failure::Failed(anyhow::anyhow!(
                    "no session {wanted:?} in the {}",
                    from.describe()
                )));
            }
        }
        names.retain(|n| args.sessions.contains(n));
    }

    let bar = progress(names.len() as u64, "sessions");
    let mut mismatched = Vec::new();
    for name in &names {
        bar.set_message(name.clone());
        let parsed = dst
            .session_name(name)
            .with_context(|| format!("session {name:?} cannot live in the destination"))?;
        let mut loader = CountingLoader {
            loader: Loader {
                store: &dst,
                name: parsed.clone(),
                keys: true,
            },
            counts: dump::Counts::new(),
        };
        dump::dump_session(&src, &parsed, &config.worker_id, &mut loader)
            .await
            .with_context(|| format!("copying session {name:?}"))?;
        let mut check = Counter::default();
        dump::dump_session(&dst, &parsed, &config.worker_id, &mut check)
            .await
            .with_context(|| format!("re-reading session {name:?} from the destination"))?;
        bar.suspend(|| print_counts(name, &loader.counts, Some(&check.0)));
        if !dump::covers(&check.0, &loader.counts) {
            mismatched.push(name.clone());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Admin keys belong to no session; session keys came with their session.
    let mut admin = 0_u64;
    for key in src.list_keys().await? {
        if key.is_admin || key.session.is_none() {
            dst.upsert_key(&key).await?;
            admin += 1;
        }
    }
    println!("  {:<20} {:<28} {admin:>8}", "(server)", "admin api_keys");

    if !mismatched.is_empty() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "the destination's counts differ for: {} (run the command again to finish an \
             interrupted copy)",
            mismatched.join(", ")
        )));
    }
    println!(
        "migrated {} session(s) to the {}; start wharf on it (the source is left as is)",
        names.len(),
        to.describe()
    );
    Ok(())
}

/// Loads each batch into the destination and counts it.
struct CountingLoader<'a> {
    loader: Loader<'a>,
    counts: dump::Counts,
}

impl dump::Sink for CountingLoader<'_> {
    async fn put(&mut self, batch: Vec<dump::Record>) -> anyhow::Result<()> {
        dump::count_into(&mut self.counts, &batch);
        self.loader.load(batch).await
    }
}

/// On boot with MongoDB: names the sessions of an embedded store at the configured path
/// that MongoDB does not have, and says how to move them (instead of ignoring them
/// silently). Called once by `app::open_store`; reads only.
pub async fn boot_hint(config: &Config, store: &crate::store::Store) {
    if config.mongo_url.is_none() {
        return;
    }
    let path = config
        .local_store_base_dir
        .join(&config.namespace)
        .join("waha.sqlite3");
    if !path.exists() {
        return;
    }
    let read = tokio::task::spawn_blocking(move || -> rusqlite::Result<Vec<String>> {
        let c = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut stmt = c.prepare("SELECT id FROM session_config ORDER BY id")?;
        let names = stmt.query_map([], |r| r.get(0))?;
        names.collect()
    })
    .await;
    let Ok(Ok(embedded)) = read else {
        return;
    };
    let known: Vec<String> = match store.list_sessions().await {
        Ok(s) => s.into_iter().map(|s| s.name).collect(),
        Err(_) => return,
    };
    let missing: Vec<&String> = embedded.iter().filter(|n| !known.contains(n)).collect();
    if missing.is_empty() {
        return;
    }
    let shown = missing
        .iter()
        .take(10)
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    tracing::warn!(
        sessions = shown,
        count = missing.len(),
        "WHATSAPP_SESSIONS_MONGO_URL is set, so the embedded store at {} is not used, and it \
         holds sessions MongoDB does not have. To move them (paired devices, history and \
         undelivered webhooks included), stop wharf and run: wharf migrate --from embedded \
         --to \"$WHATSAPP_SESSIONS_MONGO_URL\"",
        config.local_store_base_dir.display()
    );
}
