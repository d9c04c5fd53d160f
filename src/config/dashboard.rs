//! Dashboard settings (`WAHA_DASHBOARD_*`, `../shared/reference/waha.md` §3.2, §12).
//!
//! Owns [`DashboardConfig`]: whether `/dashboard` is served and the HTTP Basic credentials
//! that protect it. Read once by [`super::Config::from_vars`]; `api::dashboard` checks
//! every dashboard request against it for the life of the process.

use subtle::ConstantTimeEq;

use super::{Reader, Secret, is_weak_key, random_key};

/// `WAHA_DASHBOARD_ENABLED` / `_USERNAME` / `_PASSWORD` / `_NO_PASSWORD`.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// `WAHA_DASHBOARD_ENABLED` (true); false → `/dashboard` answers 404.
    pub enabled: bool,
    /// The Basic-auth login; `None` when `WAHA_DASHBOARD_NO_PASSWORD=true`.
    pub credentials: Option<BasicCredentials>,
    /// A password generated because none (or a weak one) was configured; printed at start.
    pub generated_password: Option<Secret<String>>,
}

/// A username and password for HTTP Basic auth.
#[derive(Debug, Clone)]
pub struct BasicCredentials {
    /// `WAHA_DASHBOARD_USERNAME` (`admin`).
    pub username: String,
    /// `WAHA_DASHBOARD_PASSWORD` (random when missing or weak).
    pub password: Secret<String>,
}

impl BasicCredentials {
    /// Whether `username`/`password` are these (both compared in constant time, so a
    /// wrong guess takes as long whichever part is wrong).
    pub fn matches(&self, username: &str, password: &str) -> bool {
        let user_ok = self.username.as_bytes().ct_eq(username.as_bytes());
        let pass_ok = self.password.expose().as_bytes().ct_eq(password.as_bytes());
        bool::from(user_ok & pass_ok)
    }
}

impl DashboardConfig {
    /// Reads the `WAHA_DASHBOARD_*` variables. The weak-value rule is the API key's: WAHA
    /// replaces a missing or weak password (`admin`, `123`, …) by a random one.
    pub(super) fn read(r: &mut Reader<'_>) -> Self {
        let enabled = r.bool(&["WAHA_DASHBOARD_ENABLED"], true);
        let no_password = r.bool(&["WAHA_DASHBOARD_NO_PASSWORD"], false);
        let username = r.string(&["WAHA_DASHBOARD_USERNAME"], "admin");
        let mut generated_password = None;
        let credentials = (!no_password).then(|| {
            let raw = r.string(&["WAHA_DASHBOARD_PASSWORD"], "");
            let password = if is_weak_key(&raw) {
                let generated = random_key();
                generated_password = Some(Secret::new(generated.clone()));
                generated
            } else {
                raw
            };
            BasicCredentials {
                username,
                password: Secret::new(password),
            }
        });
        Self {
            enabled,
            credentials,
            // Only worth printing when someone can log in with it.
            generated_password: generated_password.filter(|_| enabled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn parse(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn defaults_enable_it_with_admin_and_a_random_password() {
        let c = parse(&[]);
        assert!(c.dashboard.enabled);
        let creds = c.dashboard.credentials.as_ref().unwrap();
        assert_eq!(creds.username, "admin");
        let generated = c.dashboard.generated_password.as_ref().unwrap().expose();
        assert_eq!(generated.len(), 32);
        assert!(creds.matches("admin", generated));
        assert!(!creds.matches("admin", ""));
    }

    #[test]
    fn weak_passwords_are_replaced_strong_ones_kept() {
        for weak in ["admin", "123", "waha", ""] {
            let c = parse(&[("WAHA_DASHBOARD_PASSWORD", weak)]);
            let creds = c.dashboard.credentials.unwrap();
            assert!(!creds.matches("admin", weak), "{weak:?} should be replaced");
            assert!(c.dashboard.generated_password.is_some());
        }
        let c = parse(&[
            ("WAHA_DASHBOARD_USERNAME", "ops"),
            ("WAHA_DASHBOARD_PASSWORD", "a-strong-one-42"),
        ]);
        let creds = c.dashboard.credentials.unwrap();
        assert!(creds.matches("ops", "a-strong-one-42"));
        assert!(!creds.matches("admin", "a-strong-one-42"));
        assert!(!creds.matches("ops", "a-strong-one-4"));
        assert!(c.dashboard.generated_password.is_none());
    }

    #[test]
    fn no_password_and_disabled() {
        let c = parse(&[("WAHA_DASHBOARD_NO_PASSWORD", "true")]);
        assert!(c.dashboard.credentials.is_none());
        assert!(c.dashboard.generated_password.is_none());
        let c = parse(&[("WAHA_DASHBOARD_ENABLED", "false")]);
        assert!(!c.dashboard.enabled);
        assert!(c.dashboard.generated_password.is_none());
    }
}
