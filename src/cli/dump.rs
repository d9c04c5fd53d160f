//! One session's complete state as a stream of backend-neutral records, and back: the
//! seam shared by `wharf migrate` (dump from one store, load into another), `wharf
//! export` (dump into an encrypted file) and `wharf import` (file into a store).
//!
//! Owns: [`Record`] (kind + key + payload, serde JSON), [`dump_session`] (reads a session
//! from a [`Store`] in bounded batches into a [`Sink`]), [`Loader`] (writes batches into a
//! store) and [`Counts`] (what the verification compares). Every write is an upsert by
//! the record's key (session name, message id, contact id, outbox sequence…), so loading
//! the same records again, e.g. after an interruption, never duplicates anything.
//!
//! Called by `cli::migrate` and `cli::backup`, in a process of their own while no server
//! runs on the store; everything lives for one command.

#![allow(async_fn_in_trait)]

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::engine::dump::DeviceRecord;
use crate::model::groups::Group;
use crate::model::labels::Label;
use crate::model::message::WAMessage;
use crate::model::name::SessionName;
use crate::model::session::{MeInfo, SessionConfig};
use crate::store::dump::OutboxEntry;
use crate::store::{
    ApiKeyRecord, ChatQuery, ContactPatch, ContactQuery, GroupQuery, KeyActions, LidPair,
    MessageQuery, SessionRecord, SortOrder, Store,
};

/// Records per batch: what is held in memory at once (and one frame of an export).
pub const BATCH: u32 = 500;

/// One piece of a session's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The session and its config (always first).
    Session {
        /// Session name.
        name: String,
        /// Its `SessionConfig`.
        config: Option<SessionConfig>,
    },
    /// The account it is logged in as.
    Me {
        /// WAHA's `me`.
        me: MeInfo,
    },
    /// Assigned to a worker (restarted on that worker's boot).
    Worker {
        /// `WAHA_WORKER_ID` of the worker.
        worker: String,
    },
    /// An API key bound to this session.
    ApiKey {
        /// `key_id_…`.
        id: String,
        /// Stored form (a hash).
        key: String,
        /// Active.
        is_active: bool,
        /// Admin.
        is_admin: bool,
        /// Its actions.
        actions: Option<KeyActions>,
    },
    /// Device keys (engine storage).
    Device {
        /// The record.
        record: DeviceRecord,
    },
    /// A chat and its name (its messages follow).
    Chat {
        /// Chat id.
        id: String,
        /// Name, when known.
        name: Option<String>,
    },
    /// A message.
    Message {
        /// The stored message.
        msg: Box<WAMessage>,
    },
    /// A contact.
    Contact {
        /// `…@c.us` / `…@lid`.
        id: String,
        /// Saved name.
        name: Option<String>,
        /// Push name.
        pushname: Option<String>,
        /// Blocked.
        is_blocked: bool,
        /// On WhatsApp.
        is_wa_contact: bool,
        /// Cached picture URL.
        picture_url: Option<String>,
        /// When it was fetched.
        picture_at: Option<i64>,
    },
    /// A LID ↔ phone-number pair.
    Lid {
        /// `…@lid`.
        lid: String,
        /// `…@c.us`.
        pn: String,
    },
    /// A cached group.
    Group {
        /// The group.
        group: Box<Group>,
    },
    /// A label.
    Label {
        /// The label.
        label: Label,
    },
    /// A label on a chat.
    LabelChat {
        /// Label id.
        label: String,
        /// Chat id.
        chat: String,
    },
    /// An outbox row (undelivered webhook or dead letter).
    Outbox {
        /// The row.
        entry: OutboxEntry,
    },
}

impl Record {
    /// The kind, for counts (`messages`, `device.sessions`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Session { .. } => "session",
            Self::Me { .. } => "me",
            Self::Worker { .. } => "worker",
            Self::ApiKey { .. } => "api_keys",
            Self::Device { record } => record.kind(),
            Self::Chat { .. } => "chats",
            Self::Message { .. } => "messages",
            Self::Contact { .. } => "contacts",
            Self::Lid { .. } => "lids",
            Self::Group { .. } => "groups",
            Self::Label { .. } => "labels",
            Self::LabelChat { .. } => "label_chats",
            Self::Outbox { entry } if entry.dead => "dead_letters",
            Self::Outbox { .. } => "outbox",
        }
    }
}

/// Pages through a store list `BATCH` items at a time (`fetch` takes the offset), handing
/// each page to `sink` as records; stops after the first short page.
async fn paged<T>(
    sink: &mut impl Sink,
    mut fetch: impl AsyncFnMut(u32) -> anyhow::Result<Vec<T>>,
    to_record: impl Fn(T) -> Record,
) -> anyhow::Result<()> {
    let mut offset = 0;
    loop {
        let page = fetch(offset).await?;
        let n = u32::try_from(page.len()).unwrap_or(BATCH);
        sink.put(page.into_iter().map(&to_record).collect()).await?;
        if n < BATCH {
            return Ok(());
        }
        offset += n;
    }
}

/// Records per kind.
pub type Counts = BTreeMap<&'static str, u64>;

/// Where dumped batches go.
pub trait Sink {
    /// Takes one batch, in dump order.
    async fn put(&mut self, batch: Vec<Record>) -> anyhow::Result<()>;
}

/// A sink that only counts (the verification re-reads the destination through it).
#[derive(Default)]
pub struct Counter(pub Counts);

impl Sink for Counter {
    async fn put(&mut self, batch: Vec<Record>) -> anyhow::Result<()> {
        count_into(&mut self.0, &batch);
        Ok(())
    }
}

/// Whether `dst` holds at least what `src` counted, kind by kind (more is fine: a
/// destination that already served the session may have received more since).
pub fn covers(dst: &Counts, src: &Counts) -> bool {
    src.iter()
        .all(|(kind, n)| dst.get(kind).copied().unwrap_or(0) >= *n)
}

/// Adds `batch` to `counts`.
pub fn count_into(counts: &mut Counts, batch: &[Record]) {
    for r in batch {
        *counts.entry(r.kind()).or_default() += 1;
    }
}

/// Reads the whole state of session `name` from `store` into `sink`, in batches of at
/// most [`BATCH`] records: the session first, then device keys, chats with their
/// messages, contacts, LIDs, groups, labels and the outbox. `worker` is this worker's id
/// (`WAHA_WORKER_ID`): an assignment to it is part of the state.
///
/// # Errors
/// The session does not exist, or the store failed.
pub async fn dump_session(
    store: &Store,
    name: &SessionName,
    worker: &str,
    sink: &mut impl Sink,
) -> anyhow::Result<()> {
    let record = store
        .get_session(name.as_str())
        .await?
        .with_context(|| format!("no session {name:?} in the {} store", store.kind()))?;
    let mut head = vec![Record::Session {
        name: record.name,
        config: record.config,
    }];
    if let Some(me) = store.get_me(name.as_str()).await? {
        head.push(Record::Me { me });
    }
    if store
        .sessions_of_worker(worker)
        .await?
        .iter()
        .any(|s| s == name.as_str())
    {
        head.push(Record::Worker {
            worker: worker.to_string(),
        });
    }
    for k in store.list_keys().await? {
        if k.session.as_deref() == Some(name.as_str()) && !k.is_admin {
            head.push(Record::ApiKey {
                id: k.id,
                key: k.key,
                is_active: k.is_active,
                is_admin: k.is_admin,
                actions: k.actions,
            });
        }
    }
    sink.put(head).await?;

    let session = store.session(name);
    let device = crate::engine::dump::dump_device(&session.device())
        .await
        .context("device keys")?;
    for chunk in device.chunks(BATCH as usize) {
        sink.put(
            chunk
                .iter()
                .cloned()
                .map(|record| Record::Device { record })
                .collect(),
        )
        .await?;
    }

    let chats = session.messages().chats(&ChatQuery::default()).await?;
    for chat in chats {
        let mut batch = vec![Record::Chat {
            id: chat.id.clone(),
            name: chat.name.clone(),
        }];
        let mut offset = 0;
        loop {
            let q = MessageQuery {
                limit: Some(BATCH),
                offset,
                sort_order: SortOrder::Asc,
                ..MessageQuery::default()
            };
            let page = session.messages().list(&chat.id, &q).await?;
            let n = u32::try_from(page.len()).unwrap_or(BATCH);
            batch.extend(
                page.into_iter()
                    .map(|m| Record::Message { msg: Box::new(m) }),
            );
            sink.put(std::mem::take(&mut batch)).await?;
            if n < BATCH {
                break;
            }
            offset += n;
        }
    }

    paged(
        sink,
        async |offset| {
            let q = ContactQuery {
                limit: Some(BATCH),
                offset,
                ..ContactQuery::default()
            };
            Ok(session.contacts().list(&q).await?)
        },
        |c| Record::Contact {
            id: c.id,
            name: c.name,
            pushname: c.pushname,
            is_blocked: c.is_blocked,
            is_wa_contact: c.is_wa_contact,
            picture_url: c.picture_url,
            picture_at: c.picture_at,
        },
    )
    .await?;
    paged(
        sink,
        async |offset| Ok(session.contacts().list_lids(Some(BATCH), offset).await?),
        |p| Record::Lid {
            lid: p.lid,
            pn: p.pn,
        },
    )
    .await?;
    paged(
        sink,
        async |offset| {
            let q = GroupQuery {
                limit: Some(BATCH),
                offset,
                ..GroupQuery::default()
            };
            Ok(session.groups().list(&q).await?)
        },
        |g| Record::Group { group: Box::new(g) },
    )
    .await?;
    let mut batch = Vec::new();
    for label in session.labels().list().await? {
        let chats = session.labels().chats_of(&label.id).await?;
        let id = label.id.clone();
        batch.push(Record::Label { label });
        batch.extend(chats.into_iter().map(|chat| Record::LabelChat {
            label: id.clone(),
            chat,
        }));
    }
    sink.put(batch).await?;
    let outbox = session.outbox_entries().await?;
    for chunk in outbox.chunks(BATCH as usize) {
        sink.put(
            chunk
                .iter()
                .cloned()
                .map(|entry| Record::Outbox { entry })
                .collect(),
        )
        .await?;
    }
    Ok(())
}

/// Writes record batches into a store, as session `name`.
pub struct Loader<'a> {
    /// The destination.
    pub store: &'a Store,
    /// The session's name there (`import --as` renames).
    pub name: SessionName,
    /// Whether the session's API keys come along (not when importing under another name:
    /// the keys are the original session's).
    pub keys: bool,
}

impl Sink for Loader<'_> {
    async fn put(&mut self, batch: Vec<Record>) -> anyhow::Result<()> {
        self.load(batch).await
    }
}

impl Loader<'_> {
    /// Writes one batch (upserts).
    ///
    /// # Errors
    /// The store failed or a record does not decode.
    pub async fn load(&self, batch: Vec<Record>) -> anyhow::Result<()> {
        let name = self.name.as_str();
        let session = self.store.session(&self.name);
        let mut device = Vec::new();
        let (mut contacts, mut lids, mut groups, mut outbox) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in batch {
            match r {
                Record::Session { config, .. } => {
                    self.store
                        .upsert_session(&SessionRecord {
                            name: name.to_string(),
                            config,
                        })
                        .await?;
                }
                Record::Me { me } => self.store.set_me(name, Some(&me)).await?,
                Record::Worker { worker } => self.store.assign_worker(name, &worker).await?,
                Record::ApiKey {
                    id,
                    key,
                    is_active,
                    is_admin,
                    actions,
                } => {
                    if self.keys {
                        self.store
                            .upsert_key(&ApiKeyRecord {
                                id,
                                key,
                                is_active,
                                is_admin,
                                session: Some(name.to_string()),
                                actions,
                            })
                            .await?;
                    }
                }
                Record::Device { record } => device.push(record),
                Record::Chat { id, name } => {
                    if let Some(chat_name) = name {
                        session.messages().set_chat_name(&id, &chat_name).await?;
                    }
                }
                Record::Message { msg } => session.messages().save(&msg).await?,
                Record::Contact {
                    id,
                    name,
                    pushname,
                    is_blocked,
                    is_wa_contact,
                    picture_url,
                    picture_at,
                } => {
                    contacts.push(ContactPatch {
                        id,
                        name,
                        pushname,
                        is_blocked: Some(is_blocked),
                        is_wa_contact: Some(is_wa_contact),
                        picture: picture_at.map(|at| (picture_url, at)),
                    });
                }
                Record::Lid { lid, pn } => lids.push(LidPair { lid, pn }),
                Record::Group { group } => groups.push(*group),
                Record::Label { label } => session.labels().upsert(&label).await?,
                Record::LabelChat { label, chat } => {
                    session.labels().set_chat(&label, &chat, true).await?;
                }
                Record::Outbox { entry } => outbox.push(entry),
            }
        }
        session.contacts().merge(&contacts).await?;
        session.contacts().upsert_lids(&lids).await?;
        if !groups.is_empty() {
            session.groups().upsert(&groups).await?;
        }
        if !outbox.is_empty() {
            session.restore_outbox(&outbox).await?;
        }
        crate::engine::dump::load_device(&session.device(), &device)
            .await
            .context("device keys")?;
        Ok(())
    }
}
