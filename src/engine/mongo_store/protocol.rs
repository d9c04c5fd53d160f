//! whatsapp-rust's `ProtocolStore` on MongoDB: protocol caches: sender-key device status, LID↔PN mappings, base keys, device lists, group metadata, tc tokens, sent messages and pending inbound messages.
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl ProtocolStore for MongoDeviceStore {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        self.find_all(SENDER_KEY_DEVICES, doc! {"group_jid": group_jid}, None)
            .await?
            .iter()
            .map(|d| Ok((get_str(d, "device_jid")?, get_bool(d, "has_key")?)))
            .collect()
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let now = now_secs();
        let statements = entries
            .iter()
            .map(|(device_jid, has_key)| {
                upsert_statement(
                    doc! {"group_jid": group_jid, "device_jid": *device_jid},
                    doc! {"$set": {"has_key": *has_key, "updated_at": now}},
                )
            })
            .collect();
        self.bulk_update(SENDER_KEY_DEVICES, statements).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete_many(SENDER_KEY_DEVICES, doc! {"group_jid": group_jid})
            .await?;
        Ok(())
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        let values = device_jids.iter().map(|j| Bson::from(*j)).collect();
        self.delete_in(SENDER_KEY_DEVICES, doc! {}, "device_jid", values)
            .await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.delete_many(SENDER_KEY_DEVICES, doc! {}).await?;
        Ok(())
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.find_one(LID_PN_MAPPING, doc! {"_id": lid})
            .await?
            .map(|d| decode_lid_mapping(&d))
            .transpose()
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        // A phone number can have had several LIDs; the most recently updated one is
        // current (ties: the greater LID, for a deterministic answer).
        self.coll(LID_PN_MAPPING)
            .find_one(doc! {"phone_number": phone})
            .sort(doc! {"updated_at": -1, "_id": -1})
            .await
            .map_err(db_err)?
            .map(|d| decode_lid_mapping(&d))
            .transpose()
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        let (filter, update) = lid_mapping_update(entry);
        self.upsert(LID_PN_MAPPING, filter, update).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let statements = entries
            .iter()
            .map(|e| {
                let (filter, update) = lid_mapping_update(e);
                upsert_statement(filter, update)
            })
            .collect();
        self.bulk_update(LID_PN_MAPPING, statements).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.find_all(LID_PN_MAPPING, doc! {}, None)
            .await?
            .iter()
            .map(decode_lid_mapping)
            .collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.upsert(
            BASE_KEYS,
            doc! {"address": address, "message_id": message_id},
            doc! {
                "$set": {"base_key": bin(base_key)},
                "$setOnInsert": {"created_at": now_secs()},
            },
        )
        .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        match self
            .find_one(
                BASE_KEYS,
                doc! {"address": address, "message_id": message_id},
            )
            .await?
        {
            Some(d) => Ok(get_bin(&d, "base_key")? == current_base_key),
            None => Ok(false),
        }
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete_one(
            BASE_KEYS,
            doc! {"address": address, "message_id": message_id},
        )
        .await
    }

    // Device lists and tc tokens are read through the store's caches (`cache.rs`): each
    // send looks up the peer's devices and token again.

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        let (filter, update) = device_list_update(&record)?;
        let user = record.user.clone();
        self.caches
            .device_lists
            .write(
                &user,
                Some(record),
                self.upsert(DEVICE_REGISTRY, filter, update),
            )
            .await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let statements = records
            .iter()
            .map(|r| {
                let (filter, update) = device_list_update(r)?;
                Ok(upsert_statement(filter, update))
            })
            .collect::<Result<Vec<_>>>()?;
        let entries = records
            .into_iter()
            .map(|r| (r.user.clone(), Some(r)))
            .collect();
        self.caches
            .device_lists
            .write_many(entries, self.bulk_update(DEVICE_REGISTRY, statements))
            .await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.caches
            .device_lists
            .get_or_read(user, self.read_devices(user))
            .await
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.caches
            .device_lists
            .write(
                user,
                None,
                self.delete_one(DEVICE_REGISTRY, doc! {"_id": user}),
            )
            .await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get_blob(GROUP_METADATA, group_jid.into(), "info")
            .await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.upsert(
            GROUP_METADATA,
            doc! {"_id": group_jid},
            doc! {"$set": {"info": bin(blob), "updated_at": now_secs()}},
        )
        .await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete_one(GROUP_METADATA, doc! {"_id": group_jid})
            .await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.caches
            .tc_tokens
            .get_or_read(jid, self.read_tc_token(jid))
            .await
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.caches
            .tc_tokens
            .write(jid, Some(entry.clone()), self.write_tc_token(jid, entry))
            .await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.caches
            .tc_tokens
            .write(jid, None, self.delete_one(TC_TOKENS, doc! {"_id": jid}))
            .await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        let mut cursor = self
            .coll(TC_TOKENS)
            .find(doc! {})
            .projection(doc! {"_id": 1})
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(db_err)? {
            out.push(get_str(&d, "_id")?);
        }
        Ok(out)
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // Gone only when both windows are dead: the received token is absent (empty) or
        // older than its cutoff, and the sender bucket is absent (null) or older than its.
        let _writer = self.caches.tc_tokens.writer().await;
        let deleted = self
            .delete_many(
                TC_TOKENS,
                doc! {"$and": [
                    {"$or": [{"token": bin(&[])}, {"token_timestamp": {"$lt": token_cutoff}}]},
                    {"$or": [
                        {"sender_timestamp": Bson::Null},
                        {"sender_timestamp": {"$lt": sender_cutoff}},
                    ]},
                ]},
            )
            .await;
        self.caches.tc_tokens.clear();
        deleted
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        // One atomic upsert: `$max` only ever advances the sender bucket (a null one is
        // below every number), and an existing token is never touched. A new row is a
        // byte-less placeholder, as in the reference stores.
        let _writer = self.caches.tc_tokens.writer().await;
        let touched = self
            .upsert(
                TC_TOKENS,
                doc! {"_id": jid},
                doc! {
                    "$max": {"sender_timestamp": sender_timestamp},
                    "$set": {"updated_at": now_secs()},
                    "$setOnInsert": {"token": bin(&[]), "token_timestamp": sender_timestamp},
                },
            )
            .await;
        self.caches.tc_tokens.forget(jid);
        touched
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        let _writer = self.caches.tc_tokens.writer().await;
        self.caches.tc_tokens.forget(jid);
        let stored = self
            .store_received_tc_token_uncached(jid, token, token_timestamp)
            .await;
        self.caches.tc_tokens.forget(jid);
        stored
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        self.upsert(
            SENT_MESSAGES,
            doc! {"chat_jid": chat_jid, "message_id": message_id},
            doc! {"$set": {"payload": bin(payload), "created_at": now_secs()}},
        )
        .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        self.guard()?;
        // findOneAndDelete: of concurrent takers exactly one gets the payload, so a retry
        // receipt is answered at most once.
        match self
            .coll(SENT_MESSAGES)
            .find_one_and_delete(doc! {"chat_jid": chat_jid, "message_id": message_id})
            .await
            .map_err(db_err)?
        {
            Some(d) => Ok(Some(get_bin(&d, "payload")?)),
            None => Ok(None),
        }
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_many(
            SENT_MESSAGES,
            doc! {"created_at": {"$lt": cutoff_timestamp}},
        )
        .await
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        let (filter, update) = pending_inbound_update(chat, sender, id, message);
        self.upsert(PENDING_INBOUND, filter, update).await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        match self
            .find_one(
                PENDING_INBOUND,
                doc! {"chat": chat, "sender": sender, "id": id},
            )
            .await?
        {
            Some(d) => Ok(Some(get_bin(&d, "message")?)),
            None => Ok(None),
        }
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete_one(
            PENDING_INBOUND,
            doc! {"chat": chat, "sender": sender, "id": id},
        )
        .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_many(
            PENDING_INBOUND,
            doc! {"inserted_at": {"$lt": cutoff_timestamp}},
        )
        .await
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let statements = rows
            .iter()
            .map(|r| {
                let (filter, update) = pending_inbound_update(r.chat, r.sender, r.id, r.message);
                upsert_statement(filter, update)
            })
            .collect();
        self.bulk_update(PENDING_INBOUND, statements).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        // One deleteMany per chunk over an `$or` of exact keys.
        self.guard()?;
        let coll = self.coll(PENDING_INBOUND);
        for chunk in keys.chunks(BATCH_MAX_OPS) {
            let any: Vec<Document> = chunk
                .iter()
                .map(|k| doc! {"chat": k.chat, "sender": k.sender, "id": k.id})
                .collect();
            coll.delete_many(doc! {"$or": any}).await.map_err(db_err)?;
        }
        Ok(())
    }
}

impl MongoDeviceStore {
    /// `get_devices` from the server.
    async fn read_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        let Some(d) = self.find_one(DEVICE_REGISTRY, doc! {"_id": user}).await? else {
            return Ok(None);
        };
        let devices: Vec<DeviceInfo> = match d.get("devices") {
            Some(v) => bson::from_bson(v.clone()).map_err(ser_err)?,
            None => Vec::new(),
        };
        let raw_id = match d.get("raw_id") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(
                u32::try_from(get_i64(&d, "raw_id")?)
                    .map_err(|e| StoreError::Validation(format!("raw_id of {user}: {e}")))?,
            ),
        };
        let phash = match d.get("phash") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(get_str(&d, "phash")?),
        };
        Ok(Some(DeviceListRecord {
            user: get_str(&d, "_id")?,
            devices,
            timestamp: get_i64(&d, "timestamp")?,
            phash,
            raw_id,
        }))
    }
}

impl MongoDeviceStore {
    /// `get_tc_token` from the server.
    async fn read_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        let Some(d) = self.find_one(TC_TOKENS, doc! {"_id": jid}).await? else {
            return Ok(None);
        };
        let sender_timestamp = match d.get("sender_timestamp") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(get_i64(&d, "sender_timestamp")?),
        };
        Ok(Some(TcTokenEntry {
            token: get_bin(&d, "token")?,
            token_timestamp: get_i64(&d, "token_timestamp")?,
            sender_timestamp,
        }))
    }

    /// `put_tc_token` to the server.
    async fn write_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.upsert(
            TC_TOKENS,
            doc! {"_id": jid},
            doc! {"$set": {
                "token": bin(&entry.token),
                "token_timestamp": entry.token_timestamp,
                "sender_timestamp": entry.sender_timestamp,
                "updated_at": now_secs(),
            }},
        )
        .await
    }
}

impl MongoDeviceStore {
    /// `store_received_tc_token` on the server; its reads bypass the cache (the loop
    /// decides on the row as it is now).
    async fn store_received_tc_token_uncached(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        // Newer-wins without a read-modify-write: the condition is part of the update's
        // filter, so it is evaluated atomically with the write. Nothing matched means the
        // row is missing (insert it) or holds a fresher real token (keep it, once a read
        // confirms it). A lost insert race or a row that changed in between goes round
        // again against the new state.
        self.guard()?;
        let coll = self.coll(TC_TOKENS);
        let set = doc! {"$set": {
            "token": bin(token),
            "token_timestamp": token_timestamp,
            "updated_at": now_secs(),
        }};
        let filter = doc! {
            "_id": jid,
            "$or": [{"token": bin(&[])}, {"token_timestamp": {"$lte": token_timestamp}}],
        };
        for _ in 0..TC_TOKEN_ATTEMPTS {
            let res = coll
                .update_one(filter.clone(), set.clone())
                .await
                .map_err(db_err)?;
            if res.matched_count > 0 {
                return Ok(());
            }
            if let Some(current) = self.read_tc_token(jid).await? {
                if !current.token.is_empty() && current.token_timestamp > token_timestamp {
                    // A fresher real token is stored: keeping it is the answer.
                    return Ok(());
                }
                // Changed between the update and this read: decide again.
                continue;
            }
            let row = doc! {
                "_id": jid,
                "token": bin(token),
                "token_timestamp": token_timestamp,
                "updated_at": now_secs(),
            };
            match coll.insert_one(row).await {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(StoreError::RetriesExhausted {
            op: "store_received_tc_token".to_owned(),
        })
    }
}
