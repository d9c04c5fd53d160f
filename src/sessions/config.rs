//! Old home of WAHA's session settings, kept as a re-export while other branches still
//! import `sessions::config`. The types live in [`crate::model::session`]; the lead
//! removes this file once every caller imports from there.

pub use crate::model::session::{
    ClientSessionConfig, CustomHeader, GowsConfig, GowsStorageConfig, HmacConfiguration,
    IgnoreConfig, MeInfo, NowebConfig, NowebStoreConfig, ProxyConfig, RetriesConfiguration,
    RetryPolicy, SessionConfig, WebhookConfig, WebjsConfig,
};
