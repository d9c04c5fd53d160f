//! Express's routing leniency, which WAHA's clients rely on and actix does not have.
//!
//! Owns the [`RouteTable`] (the served path templates, taken from the OpenAPI document
//! once per app) and the [`express_routing`] middleware that runs before actix routes:
//! - a trailing slash is ignored (`/api/sessions/` is `/api/sessions`);
//! - literal path segments match in any letter case (`/API/Sessions`), while parameter
//!   values keep theirs (session names and chat ids are case-sensitive);
//! - every GET route answers `HEAD` (actix-http sends no body for a HEAD request).
//!
//! A request is rewritten only when it does not already match a template exactly.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, Uri},
    middleware::Next,
    web,
};

/// The path templates the app serves, split into segments (`None` = a `{param}`).
pub struct RouteTable {
    templates: Vec<Vec<Option<String>>>,
}

impl RouteTable {
    /// From OpenAPI-style templates (`/api/{session}/chats`).
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let templates = paths
            .into_iter()
            .map(|p| {
                segments(p)
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
                    .collect()
            })
            .collect();
        Self { templates }
    }

    /// The path with its literal segments spelled as the best-matching template spells
    /// them, or `None` when it already matches one exactly (or matches none at all).
    fn canonical(&self, path: &str) -> Option<String> {
        let segs: Vec<&str> = segments(path).collect();
        let fits = |t: &[Option<String>], exact: bool| {
            t.len() == segs.len()
                && t.iter().zip(&segs).all(|(lit, seg)| match lit {
                    None => !seg.is_empty(),
                    Some(l) if exact => l == seg,
                    Some(l) => l.eq_ignore_ascii_case(seg),
                })
        };
        if self.templates.iter().any(|t| fits(t, true)) {
            return None;
        }
        // The template with the most literal segments wins (`/api/sessions/{session}` over
        // `/api/{session}/…`-style catch-alls).
        let best = self
            .templates
            .iter()
            .filter(|t| fits(t, false))
            .max_by_key(|t| t.iter().filter(|s| s.is_some()).count())?;
        let rewritten: Vec<&str> = best
            .iter()
            .zip(&segs)
            .map(|(lit, seg)| lit.as_deref().unwrap_or(seg))
            .collect();
        Some(format!("/{}", rewritten.join("/")))
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/')
}

/// Middleware: see the module docs.
pub async fn express_routing(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let path = req.path();
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    let table = req.app_data::<web::Data<RouteTable>>().cloned();
    let new_path = table
        .and_then(|t| t.canonical(trimmed))
        .or_else(|| (trimmed.len() != path.len()).then(|| trimmed.to_string()));
    if let Some(new_path) = new_path {
        let pq = match req.query_string() {
            "" => new_path,
            q => format!("{new_path}?{q}"),
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_take_the_template_case_params_keep_theirs() {
        let t = RouteTable::new([
            "/api/sessions",
            "/api/sessions/{session}",
            "/api/{session}/chats",
            "/api/{session}/auth/qr",
            "/ping",
        ]);
        assert_eq!(t.canonical("/api/sessions"), None);
        assert_eq!(
            t.canonical("/API/Sessions").as_deref(),
            Some("/api/sessions")
        );
        assert_eq!(
            t.canonical("/api/SESSIONS/MySession").as_deref(),
            Some("/api/sessions/MySession")
        );
        assert_eq!(
            t.canonical("/Api/MyS/Chats").as_deref(),
            Some("/api/MyS/chats")
        );
        assert_eq!(
            t.canonical("/api/MyS/auth/QR").as_deref(),
            Some("/api/MyS/auth/qr")
        );
        // Exact matches and unknown paths are left alone.
        assert_eq!(t.canonical("/api/MyS/chats"), None);
        assert_eq!(t.canonical("/nope/here"), None);
    }
}
