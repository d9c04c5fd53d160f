//! Secrets out of everything wharf shows or logs: environment values, URLs, error texts.
//!
//! Owns the rules for what counts as a secret. Called by `/api/server/environment`, the
//! webhook worker's logs and dead-letter errors, and the 500 body; pure functions, no state.
//! WAHA prints these in clear (its `/api/server/environment` shows custom headers and
//! tokens in hook URLs); wharf never does (README, "Differences").

/// What replaces a secret.
pub const MASK: &str = "***";

/// Names whose values are secrets whatever they hold.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "KEY",
        "PASSWORD",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "PASSPHRASE",
        "HEADERS",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// An environment variable's value as it may be shown: secret names fully masked except
/// header lists (names kept, values masked), URLs through [`url`].
pub fn env_value(name: &str, value: &str) -> String {
    if name.to_ascii_uppercase().ends_with("CUSTOM_HEADERS") {
        return header_list(value);
    }
    if is_secret_name(name) {
        return MASK.to_string();
    }
    if value.contains("://") {
        return url(value);
    }
    value.to_string()
}

/// `Name:value;Name2:value2` (WAHA's custom-header syntax) with every value masked.
pub fn header_list(value: &str) -> String {
    value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once(':') {
            Some((name, _)) => format!("{}:{MASK}", name.trim()),
            None => MASK.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A URL with its password and every query value masked (`https://u:***@h/p?token=***`).
/// Names and paths stay, so a reader still knows which receiver is meant. Text that is not
/// a URL is returned with the same treatment applied as far as it parses.
pub fn url(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, value),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (before_fragment_q, fragment) = match query {
        Some(q) => match q.split_once('#') {
            Some((q, f)) => (Some(q), Some(f)),
            None => (Some(q), None),
        },
        None => (None, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{user}:{MASK}@{host}")
            } else {
                format!("{MASK}@{host}")
            }
        }
        None => authority.to_string(),
    };
    let mut out = String::with_capacity(value.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(&authority);
    out.push_str(path);
    if let Some(q) = before_fragment_q {
        out.push('?');
        let masked: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}={MASK}"),
                None => kv.to_string(),
            })
            .collect();
        out.push_str(&masked.join("&"));
    }
    if fragment.is_some() {
        out.push('#');
        out.push_str(MASK);
    }
    out
}

/// Whether a query parameter carries the API key (its name in any case): it is never
/// echoed back (WAHA deletes it from `req.query` after authentication).
pub fn is_credential_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-api-key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_query_values() {
        assert_eq!(
            url("https://bob:hunter2@hooks.test:8443/in?token=abc&x=1#frag"),
            "https://bob:***@hooks.test:8443/in?token=***&x=***#***"
        );
        assert_eq!(url("http://tok@h/p"), "http://***@h/p");
        assert_eq!(url("http://h/p"), "http://h/p");
        assert_eq!(url("http://h/p?flag"), "http://h/p?flag");
        // An '@' in the path is not userinfo.
        assert_eq!(url("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn environment_values() {
        assert_eq!(env_value("WAHA_API_KEY", "abc"), MASK);
        assert_eq!(env_value("WHATSAPP_HOOK_HMAC_KEY", "abc"), MASK);
        assert_eq!(
            env_value(
                "WHATSAPP_HOOK_CUSTOM_HEADERS",
                "X-A: 1; Authorization:Bearer z"
            ),
            "X-A:***;Authorization:***"
        );
        assert_eq!(
            env_value("WHATSAPP_HOOK_URL", "https://h.test/x?access_token=zz"),
            "https://h.test/x?access_token=***"
        );
        assert_eq!(
            env_value("WHATSAPP_SESSIONS_MONGO_URL", "mongodb://u:p@db:27017/"),
            "mongodb://u:***@db:27017/"
        );
        assert_eq!(env_value("WAHA_LOG_LEVEL", "info"), "info");
    }
}
