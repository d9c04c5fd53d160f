//! App state (syncd) as the server and as the primary phone keep it: per
//! account and collection, the ordered list of patches (version N is the
//! N-th), and the phone's decoded view of the result.
//!
//! Called by [`crate::proto`] for `w:sync:app:state` IQs (sync requests and
//! patches a companion sends), by [`crate::conn`] for the app-state key the
//! phone shares with each new companion, and by [`crate::admin`] to read the
//! phone's view or make the phone push a mutation. Lives in [`State`] as long
//! as the network does.
//!
//! The phone holds ONE app-state key per account and shares it with every
//! companion, so every device of the account (and the phone) can decrypt every
//! patch. The phone applies each stored patch with wacore's own
//! `process_patch` (MACs validated), so a patch a companion built against a
//! wrong base is refused rather than kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};
use wacore::appstate::hash::{HashState, generate_patch_mac};
use wacore::appstate::{ExpandedAppStateKeys, encode_record, expand_app_state_keys, process_patch};
use wacore_binary::Node;
use waproto::whatsapp as wa;

use crate::state::{DevKey, State, now};
use crate::wire::{B, attr, bytes, child, children, iq_result, server_jid};

/// The phone's app-state key (one per account).
pub(crate) struct AccountKey {
    pub(crate) id: Vec<u8>,
    pub(crate) data: [u8; 32],
    keys: Arc<ExpandedAppStateKeys>,
}

/// One collection: its patches and the phone's view of their result.
#[derive(Default)]
struct Collection {
    /// Encoded `SyncdPatch`es with their `version` set; `patches[i]` is v(i+1).
    patches: Vec<Vec<u8>>,
    hash: HashState,
    /// index MAC -> value MAC of every live entry (for the ltHash).
    value_macs: HashMap<Vec<u8>, Vec<u8>>,
    /// Decoded live entries: index (JSON array) -> value.
    entries: BTreeMap<Vec<String>, wa::SyncActionValue>,
}

/// An account's app state.
pub(crate) struct Account {
    pub(crate) key: AccountKey,
    collections: HashMap<String, Collection>,
}

impl Account {
    fn new() -> Self {
        let mut data = [0u8; 32];
        rand::fill(&mut data);
        let mut id = vec![0u8, 0, 0, 0];
        id.extend_from_slice(&rand::random::<[u8; 2]>());
        Account {
            key: AccountKey {
                id,
                data,
                keys: Arc::new(expand_app_state_keys(&data)),
            },
            collections: HashMap::new(),
        }
    }
}

/// The account's app state, created (with a fresh key) on first use.
pub(crate) fn account<'a>(st: &'a mut State, phone: &str) -> &'a mut Account {
    st.app_state
        .entry(phone.to_string())
        .or_insert_with(Account::new)
}

/// Applies an encoded patch (version already set) to the phone's view and
/// stores it. Errors leave the collection untouched.
fn accept(acc: &mut Account, name: &str, mut patch: wa::SyncdPatch) -> Result<u64> {
    let keys = acc.key.keys.clone();
    let key_id = acc.key.id.clone();
    let col = acc.collections.entry(name.to_string()).or_default();
    let version = col.patches.len() as u64 + 1;
    patch.version = buffa::MessageField::some(wa::SyncdVersion {
        version: Some(version),
    });
    let mut hash = col.hash.clone();
    let macs = &col.value_macs;
    let result = process_patch(
        &patch,
        &mut hash,
        |id| {
            if id == key_id.as_slice() {
                Ok(keys.clone())
            } else {
                Err(wacore::appstate::AppStateError::KeyNotFound)
            }
        },
        |index_mac| Ok(macs.get(index_mac).cloned()),
        true,
        name,
    )
    .map_err(|e| anyhow!("patch v{version} of {name}: {e}"))?;
    for m in &result.removed_index_macs {
        col.value_macs.remove(m);
    }
    for m in result.added_macs {
        col.value_macs.insert(m.index_mac, m.value_mac);
    }
    for m in result.mutations {
        match m.operation {
            wa::syncd_mutation::SyncdOperation::SET => {
                col.entries
                    .insert(m.index, m.action_value.unwrap_or_default());
            }
            wa::syncd_mutation::SyncdOperation::REMOVE => {
                col.entries.remove(&m.index);
            }
        }
    }
    col.hash = hash;
    col.patches.push(waproto::codec::syncd_patch_to_vec(&patch));
    Ok(version)
}

/// `<notification type="server_sync">` telling devices a collection moved.
fn server_sync(name: &str, version: u64) -> Node {
    B::new("notification")
        .a("from", server_jid())
        .a("type", "server_sync")
        .a("id", crate::state::random_token(8))
        .a("t", now().to_string())
        .kids([B::new("collection")
            .a("name", name.to_string())
            .a("version", version.to_string())
            .build()])
        .build()
}

fn patches_after(col: Option<&Collection>, after: u64) -> Vec<Node> {
    col.map(|c| {
        c.patches
            .iter()
            .skip(after as usize)
            .map(|p| B::new("patch").bytes(p.clone()).build())
            .collect()
    })
    .unwrap_or_default()
}

/// A `w:sync:app:state` IQ from device `dev`. A collection without any
/// patch yet still answers 409, which whatsapp-rust takes as "nothing to
/// sync" (as before app state existed here).
pub(crate) fn iq(st: &mut State, dev: &DevKey, n: &Node) -> Node {
    let phone = dev.0.clone();
    let cols = child(n, "sync").map(children).unwrap_or(&[]).to_vec();
    let mut out = Vec::new();
    for col in &cols {
        let Some(name) = attr(col, "name") else {
            continue;
        };
        let base: u64 = attr(col, "version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if let Some(p) = child(col, "patch") {
            out.push(patch(st, dev, &name, base, p));
            continue;
        }
        let acc = account(st, &phone);
        let current = acc
            .collections
            .get(&name)
            .map_or(0, |c| c.patches.len() as u64);
        if current == 0 {
            out.push(error_collection(&name, 409, "conflict", vec![]));
            continue;
        }
        let patches = patches_after(acc.collections.get(&name), base);
        let mut b = B::new("collection")
            .a("name", name.clone())
            .a("version", current.to_string());
        if !patches.is_empty() {
            b = b.kids([B::new("patches").kids(patches).build()]);
        }
        out.push(b.build());
    }
    iq_result(n, vec![B::new("sync").kids(out).build()])
}

fn error_collection(name: &str, code: u16, text: &str, patches: Vec<Node>) -> Node {
    let mut kids = vec![
        B::new("error")
            .a("code", code.to_string())
            .a("text", text.to_string())
            .build(),
    ];
    if !patches.is_empty() {
        kids.push(B::new("patches").kids(patches).build());
    }
    B::new("collection")
        .a("name", name.to_string())
        .a("type", "error")
        .kids(kids)
        .build()
}

/// A companion's patch against `base`: stale base → 409 with the patches it
/// missed; undecodable or MAC-invalid → 400; else stored, and the account's
/// other devices get `server_sync`.
fn patch(st: &mut State, dev: &DevKey, name: &str, base: u64, p: &Node) -> Node {
    let phone = dev.0.clone();
    let acc = account(st, &phone);
    let current = acc
        .collections
        .get(name)
        .map_or(0, |c| c.patches.len() as u64);
    if base != current {
        let missed = patches_after(acc.collections.get(name), base);
        return error_collection(name, 409, "conflict", missed);
    }
    let decoded = bytes(p)
        .ok_or_else(|| anyhow!("empty patch"))
        .and_then(|b| {
            waproto::codec::syncd_patch_decode(b).map_err(|e| anyhow!("undecodable patch: {e}"))
        })
        .and_then(|patch| accept(acc, name, patch));
    match decoded {
        Ok(version) => {
            st.deliver_to_phone(&phone, Some(dev), &server_sync(name, version));
            B::new("collection")
                .a("name", name.to_string())
                .a("version", version.to_string())
                .build()
        }
        Err(e) => {
            tracing::debug!("mockwa refused app-state patch from {dev:?}: {e:#}");
            error_collection(name, 400, "bad-request", vec![])
        }
    }
}

/// A label as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelState {
    pub id: String,
    pub name: String,
    /// WhatsApp color index.
    pub color: i32,
    pub deleted: bool,
}

/// A label on a chat, as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelChatState {
    pub label_id: String,
    pub chat_id: String,
}

/// The phone's decoded app state (`GET /admin/phones/{phone}/app-state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStateView {
    /// Chats whose last archive action archived them.
    pub archived: Vec<String>,
    /// Pinned chats.
    pub pinned: Vec<String>,
    /// Chats marked unread (last `markChatAsRead` had `read: false`).
    pub unread: Vec<String>,
    /// Every label ever edited (deleted ones with `deleted: true`).
    pub labels: Vec<LabelState>,
    /// Label associations currently on.
    pub label_chats: Vec<LabelChatState>,
    /// Collection name -> current version.
    pub versions: BTreeMap<String, u64>,
    /// Every live entry's index (e.g. `["archive","1555…@s.whatsapp.net"]`).
    pub indexes: Vec<Vec<String>>,
}

pub(crate) fn view(st: &State, phone: &str) -> AppStateView {
    let mut v = AppStateView::default();
    let Some(acc) = st.app_state.get(phone) else {
        return v;
    };
    let mut names: Vec<&String> = acc.collections.keys().collect();
    names.sort();
    for name in names {
        let col = &acc.collections[name];
        v.versions.insert(name.clone(), col.patches.len() as u64);
        for (index, value) in &col.entries {
            v.indexes.push(index.clone());
            let kind = index.first().map(String::as_str).unwrap_or_default();
            let arg = |i: usize| index.get(i).cloned().unwrap_or_default();
            match kind {
                "archive" if value.archive_chat_action.archived == Some(true) => {
                    v.archived.push(arg(1))
                }
                "pin_v1" | "pin" if value.pin_action.pinned == Some(true) => v.pinned.push(arg(1)),
                "markChatAsRead" if value.mark_chat_as_read_action.read == Some(false) => {
                    v.unread.push(arg(1))
                }
                "label_edit" => {
                    let a = &value.label_edit_action;
                    v.labels.push(LabelState {
                        id: arg(1),
                        name: a.name.clone().unwrap_or_default(),
                        color: a.color.unwrap_or_default(),
                        deleted: a.deleted.unwrap_or(false),
                    });
                }
                "label_jid" if value.label_association_action.labeled == Some(true) => {
                    v.label_chats.push(LabelChatState {
                        label_id: arg(1),
                        chat_id: arg(2),
                    })
                }
                _ => {}
            }
        }
    }
    v
}

/// A change the phone's user makes (`POST /admin/phones/{phone}/app-state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum PhoneAction {
    /// Archive (`archived: true`) or unarchive a chat.
    #[serde(rename_all = "camelCase")]
    Archive { chat_id: String, archived: bool },
    /// Pin or unpin a chat.
    #[serde(rename_all = "camelCase")]
    Pin { chat_id: String, pinned: bool },
    /// Mark a chat read or unread.
    #[serde(rename_all = "camelCase")]
    MarkRead { chat_id: String, read: bool },
    /// Create, edit or delete a label.
    #[serde(rename_all = "camelCase")]
    LabelEdit {
        label_id: String,
        name: String,
        color: i32,
        #[serde(default)]
        deleted: bool,
    },
    /// Put a label on a chat (`labeled: true`) or take it off.
    #[serde(rename_all = "camelCase")]
    LabelChat {
        label_id: String,
        chat_id: String,
        labeled: bool,
    },
}

fn mutation_of(action: &PhoneAction) -> (&'static str, Vec<String>, wa::SyncActionValue, i32) {
    use wa::sync_action_value as sv;
    let mut value = wa::SyncActionValue {
        timestamp: Some(now() * 1000),
        ..Default::default()
    };
    match action {
        PhoneAction::Archive { chat_id, archived } => {
            value.archive_chat_action = buffa::MessageField::some(sv::ArchiveChatAction {
                archived: Some(*archived),
                ..Default::default()
            });
            (
                "regular_low",
                vec!["archive".into(), chat_id.clone()],
                value,
                3,
            )
        }
        PhoneAction::Pin { chat_id, pinned } => {
            value.pin_action = buffa::MessageField::some(sv::PinAction {
                pinned: Some(*pinned),
            });
            (
                "regular_low",
                vec!["pin_v1".into(), chat_id.clone()],
                value,
                5,
            )
        }
        PhoneAction::MarkRead { chat_id, read } => {
            value.mark_chat_as_read_action = buffa::MessageField::some(sv::MarkChatAsReadAction {
                read: Some(*read),
                ..Default::default()
            });
            (
                "regular_low",
                vec!["markChatAsRead".into(), chat_id.clone()],
                value,
                3,
            )
        }
        PhoneAction::LabelEdit {
            label_id,
            name,
            color,
            deleted,
        } => {
            value.label_edit_action = buffa::MessageField::some(sv::LabelEditAction {
                name: Some(name.clone()),
                color: Some(*color),
                deleted: Some(*deleted),
                ..Default::default()
            });
            (
                "regular",
                vec!["label_edit".into(), label_id.clone()],
                value,
                3,
            )
        }
        PhoneAction::LabelChat {
            label_id,
            chat_id,
            labeled,
        } => {
            value.label_association_action =
                buffa::MessageField::some(sv::LabelAssociationAction {
                    labeled: Some(*labeled),
                    ..Default::default()
                });
            (
                "regular",
                vec!["label_jid".into(), label_id.clone(), chat_id.clone()],
                value,
                3,
            )
        }
    }
}

/// The phone makes a change: builds a patch exactly as a client would
/// (wacore's encoding and MACs), stores it and tells every companion.
pub(crate) fn phone_push(st: &mut State, phone: &str, action: &PhoneAction) -> Result<u64> {
    let (name, index, value, schema_version) = mutation_of(action);
    let acc = account(st, phone);
    let index_bytes = serde_json::to_vec(&index)?;
    let mut iv = [0u8; 16];
    rand::fill(&mut iv);
    let (mutation, _) = encode_record(
        wa::syncd_mutation::SyncdOperation::SET,
        &index_bytes,
        &value,
        &acc.key.keys,
        &acc.key.id,
        &iv,
        schema_version,
    );
    let col = acc.collections.entry(name.to_string()).or_default();
    let mut hash = col.hash.clone();
    let macs = &col.value_macs;
    let mutations = vec![mutation];
    let (_, r) = hash.update_hash(&mutations, |index_mac, _| Ok(macs.get(index_mac).cloned()));
    r?;
    hash.version += 1;
    let mut patch = wa::SyncdPatch {
        snapshot_mac: Some(hash.generate_snapshot_mac(name, &acc.key.keys.snapshot_mac)),
        key_id: buffa::MessageField::some(wa::KeyId {
            id: Some(acc.key.id.clone()),
        }),
        mutations,
        ..Default::default()
    };
    patch.patch_mac = Some(generate_patch_mac(
        &patch,
        name,
        &acc.key.keys.patch_mac,
        hash.version,
    ));
    let version = accept(acc, name, patch)?;
    st.deliver_to_phone(phone, None, &server_sync(name, version));
    Ok(version)
}
