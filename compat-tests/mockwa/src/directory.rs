//! The channel directory: WhatsApp's newsletter directory over `w:mex` — browse by view
//! (`WAWebMexFetchNewsletterDirectoryListJobQuery`: `RECOMMENDED`, `FEATURED`,
//! `TRENDING`, `POPULAR`, `NEW`, filtered by country codes and categories) and search by
//! text (`…DirectorySearchResultsJobQuery`: the name or description contains it, case
//! insensitive), a page at a time with GraphQL cursors (`page_info`).
//!
//! Every newsletter of the network is in the directory. Its [`Listing`] (country,
//! categories, featured) is set through the admin API (`POST /admin/newsletters/{id}/
//! directory`, [`crate::MockNetwork::list_newsletter`]); an unlisted newsletter has no
//! country and no category, so only filter-free queries find it. Called by
//! [`crate::newsletters::mex`] first for every `w:mex` IQ (`None` for other queries) and
//! by the admin API; listings live in `State::directory` as long as the network.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wacore::iq::mex_operations as ops;
use wacore_binary::Node;

use crate::admin::AdminError;
use crate::conn::{Conn, Flow};
use crate::state::{Net, Newsletter};
use crate::wire::{B, attr, children, iq_result};

/// Where a newsletter shows in the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Listing {
    /// ISO 3166-1 alpha-2 code (`US`); `None` = in no country's view.
    pub country: Option<String>,
    /// Directory categories (`SPORTS`, …).
    pub categories: Vec<String>,
    /// Shown in the `FEATURED` view.
    pub featured: bool,
}

/// Sets the directory listing of newsletter `id` (`123@newsletter` or its user part).
pub(crate) fn list(net: &Net, id: &str, listing: Listing) -> Result<(), AdminError> {
    let id = id.split('@').next().unwrap_or_default().to_string();
    let mut st = net.lock();
    if !st.newsletters.contains_key(&id) {
        return Err(AdminError::NotFound(format!("no newsletter {id}")));
    }
    st.directory.insert(id, listing);
    Ok(())
}

fn answer(n: &Node, body: &Value) -> Flow {
    Flow::reply(iq_result(
        n,
        vec![
            B::new("result")
                .bytes(body.to_string().into_bytes())
                .build(),
        ],
    ))
}

fn refuse(n: &Node, code: u16, message: &str) -> Flow {
    answer(
        n,
        &json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"error_code": code}}]
        }),
    )
}

/// A list of strings, or one comma-separated string (clients send either).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(l)) => l
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn entry(id: &str, nl: &Newsletter) -> Value {
    json!({
        "id": format!("{id}@newsletter"),
        "thread_metadata": {
            "name": {"text": nl.name},
            "description": {"text": nl.description},
            "invite": nl.invite,
            "subscribers_count": nl.followers.len(),
            "verification": "UNVERIFIED",
            "creation_time": nl.created,
        },
    })
}

/// Answers the two directory queries; `None` for any other `w:mex` IQ.
pub(crate) fn mex(c: &mut Conn, n: &Node) -> Option<Flow> {
    let query = children(n).iter().find(|q| q.tag == "query")?;
    let qid = attr(query, "query_id")?;
    let by_view = qid == ops::fetch_newsletter_directory_list::DOC_ID;
    if !by_view && qid != ops::fetch_newsletter_directory_search_results::DOC_ID {
        return None;
    }
    if c.device().is_none() {
        return Some(refuse(n, 401, "not-authorized"));
    }
    let payload: Value = crate::wire::bytes(query)
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let vars = payload.get("variables").unwrap_or(&payload);
    let input = vars.get("input").cloned().unwrap_or_default();
    let limit = input
        .get("limit")
        .and_then(Value::as_u64)
        .filter(|l| *l > 0)
        .unwrap_or(50);
    let start = match input.get("start_cursor").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(c) => match c.parse::<usize>() {
            Ok(i) => i + 1,
            Err(_) => return Some(refuse(n, 400, "bad-request: unknown cursor")),
        },
    };
    let st = c.net.lock();
    let (categories, countries) = if by_view {
        let filters = input.get("filters").cloned().unwrap_or_default();
        (
            strings(filters.get("categories")),
            strings(filters.get("country_codes")),
        )
    } else {
        (strings(input.get("categories")), Vec::new())
    };
    let unlisted = Listing::default();
    let mut found: Vec<(&String, &Newsletter, &Listing)> = st
        .newsletters
        .iter()
        .map(|(id, nl)| (id, nl, st.directory.get(id).unwrap_or(&unlisted)))
        .filter(|(_, _, l)| {
            categories.is_empty() || l.categories.iter().any(|c| categories.contains(c))
        })
        .filter(|(_, _, l)| {
            countries.is_empty() || l.country.as_ref().is_some_and(|c| countries.contains(c))
        })
        .collect();
    // Ids grow with creation, so the id orders by age.
    let by_id = |a: &(&String, &Newsletter, &Listing), b: &(&String, &Newsletter, &Listing)| {
        a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0))
    };
    if by_view {
        let view = input.get("view").and_then(Value::as_str).unwrap_or("");
        match view {
            "RECOMMENDED" | "POPULAR" => found.sort_by(|a, b| {
                b.1.followers
                    .len()
                    .cmp(&a.1.followers.len())
                    .then_with(|| by_id(a, b))
            }),
            "FEATURED" => {
                found.retain(|(_, _, l)| l.featured);
                found.sort_by(by_id);
            }
            "TRENDING" => found.sort_by(|a, b| {
                b.1.posts
                    .len()
                    .cmp(&a.1.posts.len())
                    .then_with(|| by_id(a, b))
            }),
            "NEW" => found.sort_by(|a, b| by_id(b, a)),
            _ => return Some(refuse(n, 400, "bad-request: unknown view")),
        }
    } else {
        let text = input
            .get("search_text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_lowercase();
        if text.is_empty() {
            return Some(refuse(n, 400, "bad-request: empty search text"));
        }
        found.retain(|(_, nl, _)| {
            nl.name.to_lowercase().contains(&text) || nl.description.to_lowercase().contains(&text)
        });
        found.sort_by(|a, b| {
            b.1.followers
                .len()
                .cmp(&a.1.followers.len())
                .then_with(|| by_id(a, b))
        });
    }
    let total = found.len();
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    let page: Vec<Value> = found
        .iter()
        .skip(start)
        .take(take)
        .map(|(id, nl, _)| entry(id, nl))
        .collect();
    let end = start + page.len();
    let cursor = |i: usize| (!page.is_empty()).then(|| i.to_string());
    let page_info = json!({
        "startCursor": cursor(start),
        "endCursor": cursor(end.saturating_sub(1)),
        "hasNextPage": end < total,
        "hasPreviousPage": start > 0 && total > 0,
    });
    let root = if by_view {
        "xwa2_newsletters_directory_list"
    } else {
        "xwa2_newsletters_directory_search"
    };
    Some(answer(
        n,
        &json!({"data": {root: {"page_info": page_info, "result": page}}}),
    ))
}
