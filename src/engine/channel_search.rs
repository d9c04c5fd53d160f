//! WhatsApp's channel directory through the engine: browse it by view (recommended,
//! popular, new, …, filtered by countries and categories) or search it by text, a page at
//! a time, through whatsapp-rust's raw MEX queries (`WAWebMexFetchNewsletterDirectory
//! ListJobQuery` and `…DirectorySearchResultsJobQuery`; the feature API has no directory).
//!
//! Owns: the variables of both queries and the reading of their answers into plain
//! [`DirectoryPage`]s. Called by `api/channel_search.rs` with the engine handle of the
//! WORKING gate, on the caller's task; holds nothing between calls.

use serde_json::{Value, json};
use whatsapp_rust::{
    MexRequest,
    wacore::iq::mex_operations::{
        fetch_newsletter_directory_list as by_view,
        fetch_newsletter_directory_search_results as by_text,
    },
};

use super::{Error, Session, channels::mex_err};

/// What to look for in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryQuery {
    /// One of the directory's views, filtered.
    View {
        /// `RECOMMENDED`, `FEATURED`, `TRENDING`, `POPULAR`, `NEW`.
        view: String,
        /// ISO 3166-1 alpha-2 codes; empty = any.
        countries: Vec<String>,
        /// Directory categories; empty = any.
        categories: Vec<String>,
    },
    /// Channels whose name or description contains the text.
    Text {
        /// The search text.
        text: String,
        /// Directory categories; empty = any.
        categories: Vec<String>,
    },
}

/// A channel as the directory shows it (WAHA's `ChannelPublicInfo` before formatting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryChannel {
    /// `123@newsletter`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Invite code.
    pub invite: Option<String>,
    /// Picture URL (WhatsApp's media host plus the picture's direct path).
    pub picture: Option<String>,
    /// Verified badge.
    pub verified: bool,
    /// Followers.
    pub subscribers: u64,
}

/// One page of directory results with GraphQL's cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPage {
    /// The channels of this page.
    pub channels: Vec<DirectoryChannel>,
    /// Cursor of the first result (`None` for an empty page).
    pub start_cursor: Option<String>,
    /// Cursor of the last result: pass it as the next request's start cursor.
    pub end_cursor: Option<String>,
    /// More results after this page.
    pub has_next_page: bool,
    /// Results before this page.
    pub has_previous_page: bool,
}

/// A string, or a number rendered as one (MEX sends counts either way).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A boolean, also when sent as `"true"` (the generated mirror types read these as text).
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn channel(r: &Value) -> Option<DirectoryChannel> {
    let id = r.get("id").and_then(Value::as_str)?.to_string();
    let meta = r.get("thread_metadata").cloned().unwrap_or_default();
    let text = |field: &str| {
        meta.pointer(&format!("/{field}/text"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let picture = meta
        .pointer("/picture/direct_path")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(|p| format!("https://mmg.whatsapp.net{p}"));
    Some(DirectoryChannel {
        id,
        name: text("name").unwrap_or_default(),
        description: text("description").filter(|d| !d.is_empty()),
        invite: meta
            .get("invite")
            .and_then(Value::as_str)
            .map(str::to_string),
        picture,
        verified: meta
            .get("verification")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("verified")),
        subscribers: meta
            .get("subscribers_count")
            .and_then(text_of)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

/// Reads `data.<root>` of a directory answer.
fn page(data: Option<Value>, root: &str) -> Result<DirectoryPage, Error> {
    let node = data
        .as_ref()
        .and_then(|d| d.get(root))
        .ok_or_else(|| Error::Send(format!("the directory answer has no {root}")))?;
    let info = node.get("page_info").cloned().unwrap_or_default();
    let channels = node
        .get("result")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(channel).collect())
        .unwrap_or_default();
    Ok(DirectoryPage {
        channels,
        start_cursor: info.get("startCursor").and_then(text_of),
        end_cursor: info.get("endCursor").and_then(text_of),
        has_next_page: flag(info.get("hasNextPage")),
        has_previous_page: flag(info.get("hasPreviousPage")),
    })
}

impl Session {
    /// One page of WhatsApp's channel directory: at most `limit` channels after
    /// `start_cursor` (`None` = from the start).
    ///
    /// # Errors
    /// Stale handle; WhatsApp refused the query (a bad view or cursor is its 400).
    pub async fn channel_directory(
        &self,
        query: &DirectoryQuery,
        limit: u32,
        start_cursor: Option<&str>,
    ) -> Result<DirectoryPage, Error> {
        let client = self.client()?;
        let mex = client.mex();
        // `json!` variables: the generated mirror types read the country filter as one
        // string, while the directory filters by a list of codes.
        let (response, root) = match query {
            DirectoryQuery::View {
                view,
                countries,
                categories,
            } => {
                let vars = json!({
                    "fetch_status_metadata": false,
                    "input": {
                        "view": view,
                        "filters": {"country_codes": countries, "categories": categories},
                        "limit": limit,
                        "start_cursor": start_cursor,
                    },
                });
                let request = MexRequest::new(by_view::NAME, by_view::DOC_ID, vars);
                (
                    mex.query(request).await.map_err(mex_err)?,
                    "xwa2_newsletters_directory_list",
                )
            }
            DirectoryQuery::Text { text, categories } => {
                let vars = json!({
                    "fetch_status_metadata": false,
                    "input": {
                        "search_text": text,
                        "categories": categories,
                        "limit": limit,
                        "start_cursor": start_cursor,
                    },
                });
                let request = MexRequest::new(by_text::NAME, by_text::DOC_ID, vars);
                (
                    mex.query(request).await.map_err(mex_err)?,
                    "xwa2_newsletters_directory_search",
                )
            }
        };
        page(response.data, root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_answer_becomes_a_page() {
        let data = json!({"xwa2_newsletters_directory_list": {
        "page_info": {"startCursor": "0", "endCursor": "1", "hasNextPage": "true",
                      "hasPreviousPage": false},
        "result": [
            {"id": "1@newsletter", "thread_metadata": {
                "name": {"text": "One"}, "description": {"text": ""},
                "invite": "AAA", "subscribers_count": "7", "verification": "VERIFIED",
                "picture": {"direct_path": "/v/t1/x"}}},
            {"id": "2@newsletter", "thread_metadata": {"name": {"text": "Two"},
                "subscribers_count": 3}},
            {"thread_metadata": {}}
        ]}});
        let p = page(Some(data), "xwa2_newsletters_directory_list").unwrap();
        assert_eq!(p.channels.len(), 2);
        assert_eq!(p.channels[0].subscribers, 7);
        assert!(p.channels[0].verified);
        assert_eq!(p.channels[0].description, None);
        assert_eq!(
            p.channels[0].picture.as_deref(),
            Some("https://mmg.whatsapp.net/v/t1/x")
        );
        assert_eq!(p.channels[1].subscribers, 3);
        assert!(p.has_next_page);
        assert!(!p.has_previous_page);
        assert_eq!(p.end_cursor.as_deref(), Some("1"));
        assert!(page(Some(json!({})), "xwa2_newsletters_directory_list").is_err());
    }
}
