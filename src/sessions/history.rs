//! History sync into the store: the chats and recent messages a phone pushes to a newly
//! linked session become the session's chats and message history, its push names and
//! LID pairs go to the contact store — so `GET /chats`, `…/messages`, `/contacts/all` and
//! `/lids` show them right after pairing. No `message` webhooks (WAHA fires none for
//! history).
//!
//! Owns: nothing long-lived. Called by the session's delivery task (in order with live
//! traffic) for each blob; reads it through the engine's bounded reader (one chat in
//! memory at a time, at most `WHARF_HISTORY_SYNC_DEPTH` messages per chat) and stops at once when
//! the session stops. A message that fails to store is logged and skipped.

use std::collections::HashSet;

use serde_json::{Map, json};
use tokio_util::sync::CancellationToken;

use super::inbox::Inbox;
use crate::{
    engine::history::{HistoryBlob, HistoryChat, HistoryExtras, HistoryItem},
    model::{
        message::{MessageSource, WAMessage, ack, message_id},
        session::MeInfo,
    },
    store::{ContactPatch, LidPair},
};

/// The newest messages kept per synced chat by default (`WHARF_HISTORY_SYNC_DEPTH`;
/// WhatsApp's initial bootstrap sends recent messages only; this bounds what one chat may
/// add).
pub const HISTORY_DEPTH: usize = 100;

fn message(
    me: Option<&MeInfo>,
    chat: &HistoryChat,
    m: &crate::engine::history::HistoryMessage,
) -> WAMessage {
    let me_id = me.map(|m| m.id.clone()).unwrap_or_default();
    let is_group = chat.id.ends_with("@g.us");
    let participant = if is_group {
        m.participant.clone()
    } else {
        None
    };
    let (from, to) = if m.from_me {
        (me_id, chat.id.clone())
    } else {
        (chat.id.clone(), me_id)
    };
    let mut data = Map::new();
    data.insert("engine".into(), json!("whatsapp-rust"));
    data.insert("history".into(), json!(true));
    if let Some(name) = &m.push_name {
        data.insert("pushName".into(), json!(name));
    }
    let ack = if m.from_me { ack::SERVER } else { ack::READ };
    WAMessage {
        id: message_id(m.from_me, &chat.id, &m.wa_id, participant.as_deref()),
        timestamp: m.timestamp,
        from,
        from_me: m.from_me,
        source: MessageSource::App,
        to: Some(to),
        participant,
        author: None,
        body: m.body.clone(),
        has_media: false,
        media: None,
        media_url: None,
        ack,
        ack_name: ack::name(ack).to_string(),
        location: None,
        v_cards: Vec::new(),
        reply_to: None,
        data,
    }
}

async fn store_chat(inbox: &Inbox, me: Option<&MeInfo>, chat: &HistoryChat) {
    for m in &chat.messages {
        let msg = message(me, chat, m);
        if let Err(e) = inbox.messages.save(&inbox.session, &msg).await {
            tracing::warn!(session = inbox.session, id = msg.id, error = %e, "could not store a synced message");
        }
    }
    if let Some(name) = &chat.name
        && let Err(e) = inbox
            .messages
            .set_chat_name(&inbox.session, &chat.id, name)
            .await
    {
        tracing::warn!(session = inbox.session, chat = chat.id, error = %e, "could not name a synced chat");
    }
}

async fn store_extras(
    inbox: &Inbox,
    chats: &HashSet<String>,
    named: &HashSet<String>,
    x: HistoryExtras,
) {
    let pairs: Vec<LidPair> = x
        .lids
        .into_iter()
        .map(|(lid, pn)| LidPair { lid, pn })
        .collect();
    let patches: Vec<ContactPatch> = x
        .push_names
        .iter()
        .filter(|(id, _)| id.ends_with("@c.us") || id.ends_with("@lid"))
        .map(|(id, name)| ContactPatch {
            id: id.clone(),
            pushname: Some(name.clone()),
            is_wa_contact: Some(true),
            ..ContactPatch::default()
        })
        .collect();
    super::contacts::learn(&inbox.store, &inbox.session, &patches, &pairs).await;
    // A synced one-to-one chat without a name of its own is named after the push name.
    for (id, name) in &x.push_names {
        if chats.contains(id)
            && !named.contains(id)
            && let Err(e) = inbox.messages.set_chat_name(&inbox.session, id, name).await
        {
            tracing::warn!(session = inbox.session, chat = id, error = %e, "could not name a synced chat");
        }
    }
}

/// Stores one history blob (see the module doc).
pub(crate) async fn store(
    inbox: &Inbox,
    me: Option<&MeInfo>,
    blob: HistoryBlob,
    cancel: &CancellationToken,
) {
    let mut rx = blob.read(inbox.session.clone(), inbox.history_depth);
    let mut chats = HashSet::new();
    let mut named = HashSet::new();
    let mut stored = 0usize;
    loop {
        let item = tokio::select! {
            () = cancel.cancelled() => return,
            item = rx.recv() => item,
        };
        match item {
            None => break,
            Some(HistoryItem::Chat(c)) => {
                store_chat(inbox, me, &c).await;
                stored += c.messages.len();
                if c.name.is_some() {
                    named.insert(c.id.clone());
                }
                chats.insert(c.id);
            }
            Some(HistoryItem::Extras(x)) => store_extras(inbox, &chats, &named, x).await,
        }
    }
    tracing::info!(
        session = inbox.session,
        chats = chats.len(),
        messages = stored,
        "history sync stored"
    );
}
