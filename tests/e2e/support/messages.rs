//! A second handle on a running `TestApp`'s message history, for tests that seed messages
//! and read them back through the API.
//!
//! Owns nothing long-lived: opens its own `Store` over the app's store (the same SQLite
//! folder or MongoDB namespace, with the app's default `gows` namespaces for the embedded
//! store) and wraps it in a `MessageStore`. Dropped with the test.

use wharf::messages::MessageStore;
use wharf::store::{Namespaces, Store};

use super::app::{StoreKind, TestApp};

/// A `MessageStore` over the same data as `app`'s own.
pub async fn message_store(app: &TestApp) -> MessageStore {
    let store = match &app.store {
        StoreKind::Embedded => {
            // TestApp's embedded store: `{dir}/sessions`, namespaces default to `gows`.
            let ns = Namespaces {
                main: "gows".into(),
                session: "gows".into(),
            };
            Store::sqlite(&app.dir.path().join("sessions"), ns).await
        }
        StoreKind::Mongo { url, namespace } => {
            let ns = Namespaces {
                main: namespace.clone(),
                session: namespace.clone(),
            };
            Store::mongo(url, ns).await
        }
    }
    .expect("second handle on the app's store");
    MessageStore::new(store)
}
