//! `TestStore`: the one store fixture of the tests that drive `wharf::store::Store`
//! directly (the storage contract, message history, the event bus).
//!
//! Owns: one opened `Store` and what it lives on: a temp SQLite folder (deleted when the
//! fixture drops) or a fresh namespace on the binary's shared MongoDB (`support::mongo`).
//! Each test builds its own; `TestStore::all` gives both backends, the MongoDB one only
//! when a server is configured (skipped loudly otherwise, a failure under
//! `WHARF_REQUIRE_MONGO=1`). App-level tests use `support::app::StoreKind` instead.

use std::path::Path;

use tempfile::TempDir;
use wharf::store::{Namespaces, Store};

use super::mongo::MongoServer;

/// One backend under test, reopenable (what a restart sees).
pub struct TestStore {
    /// The opened store.
    pub store: Store,
    /// Its namespaces (`gows` on SQLite; unique per test on MongoDB).
    pub ns: Namespaces,
    /// Where its data lives.
    pub target: Target,
}

/// Where a [`TestStore`] keeps its data.
pub enum Target {
    /// `base` is `WAHA_LOCAL_STORE_BASE_DIR`.
    Sqlite {
        /// Removed when the fixture drops.
        base: TempDir,
    },
    /// URL of the shared server.
    Mongo {
        /// `mongodb://…`
        url: String,
    },
}

impl TestStore {
    /// SQLite under a fresh temp dir, namespaces `gows`.
    pub async fn sqlite() -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        let ns = Namespaces {
            main: "gows".into(),
            session: "gows".into(),
        };
        let store = Store::sqlite(base.path(), ns.clone())
            .await
            .expect("open sqlite store");
        Self {
            store,
            ns,
            target: Target::Sqlite { base },
        }
    }

    /// A fresh namespace on the shared MongoDB; `None` (after a loud `SKIPPED` naming
    /// `test`) when there is none.
    pub async fn mongo(test: &str) -> Option<Self> {
        let server = MongoServer::shared(test)?;
        let name = server.unique_namespace();
        let ns = Namespaces {
            main: name.clone(),
            session: name,
        };
        let store = Store::mongo(server.url(), ns.clone())
            .await
            .expect("connect to mongodb");
        Some(Self {
            store,
            ns,
            target: Target::Mongo {
                url: server.url().to_owned(),
            },
        })
    }

    /// Both backends: SQLite, then MongoDB when available.
    pub async fn all(test: &str) -> Vec<Self> {
        let mut all = vec![Self::sqlite().await];
        all.extend(Self::mongo(test).await);
        all
    }

    /// `sqlite` or `mongodb`, for assertion messages.
    pub fn name(&self) -> &'static str {
        match self.target {
            Target::Sqlite { .. } => "sqlite",
            Target::Mongo { .. } => "mongodb",
        }
    }

    /// A second, independent store on the same data (what a restart sees).
    pub async fn reopen(&self) -> Store {
        match &self.target {
            Target::Sqlite { base } => Store::sqlite(base.path(), self.ns.clone()).await,
            Target::Mongo { url } => Store::mongo(url, self.ns.clone()).await,
        }
        .expect("reopen store")
    }

    /// The SQLite base folder (`None` on MongoDB).
    pub fn sqlite_base(&self) -> Option<&Path> {
        match &self.target {
            Target::Sqlite { base } => Some(base.path()),
            Target::Mongo { .. } => None,
        }
    }
}
