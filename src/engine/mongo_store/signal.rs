//! whatsapp-rust's `SignalStore` on MongoDB: identity keys, Signal sessions, pre-keys, signed pre-keys and sender keys (`wa_identities`, `wa_sessions`, `wa_prekeys`, `wa_signed_prekeys`, `wa_sender_keys`).
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl SignalStore for MongoDeviceStore {
    // Identities and sessions are read through the store's caches (`cache.rs`): the
    // same address is looked up many times (each send and receive, each device of a
    // user), and every write of them goes through this store.

    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.caches
            .identities
            .write(
                address,
                Some(key),
                self.put_blob(IDENTITIES, address.into(), "key", &key),
            )
            .await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let entries = identities
            .iter()
            .map(|(a, k)| (a.to_string(), Some(*k)))
            .collect();
        self.caches
            .identities
            .write_many(
                entries,
                self.put_blobs(
                    IDENTITIES,
                    "key",
                    identities.iter().map(|(a, k)| (a.as_ref(), k.as_slice())),
                ),
            )
            .await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        self.caches
            .identities
            .get_or_read(address, async {
                match self.get_blob(IDENTITIES, address.into(), "key").await? {
                    Some(key) => {
                        let len = key.len();
                        let key: [u8; 32] = key.try_into().map_err(|_| {
                            StoreError::Validation(format!(
                                "identity key of {address}: {len} bytes, not 32"
                            ))
                        })?;
                        Ok(Some(key))
                    }
                    None => Ok(None),
                }
            })
            .await
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.caches
            .identities
            .write(
                address,
                None,
                self.delete_one(IDENTITIES, doc! {"_id": address}),
            )
            .await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        self.caches
            .sessions
            .get_or_read(address, async {
                Ok(self
                    .get_blob(SESSIONS, address.into(), "record")
                    .await?
                    .map(Bytes::from))
            })
            .await
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.caches
            .sessions
            .write(
                address,
                Some(Bytes::copy_from_slice(session)),
                self.put_blob(SESSIONS, address.into(), "record", session),
            )
            .await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let entries = sessions
            .iter()
            .map(|(a, s)| (a.to_string(), Some(s.clone())))
            .collect();
        self.caches
            .sessions
            .write_many(
                entries,
                self.put_blobs(
                    SESSIONS,
                    "record",
                    sessions.iter().map(|(a, s)| (a.as_ref(), s.as_ref())),
                ),
            )
            .await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.caches
            .sessions
            .write(
                address,
                None,
                self.delete_one(SESSIONS, doc! {"_id": address}),
            )
            .await
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        // The record itself (one `find` either way) so that the next `get_session` of
        // this address is answered from memory.
        Ok(self.get_session(address).await?.is_some())
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` (device 0) or `user:device@server`; an anchored
        // prefix regex is served by the `_id` index.
        let filter = doc! {"_id": {"$regex": format!("^{}[@:]", regex_escape(user))}};
        if self.exists_one(SESSIONS, filter.clone()).await? {
            return Ok(true);
        }
        self.exists_one(IDENTITIES, filter).await
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.upsert(
            PREKEYS,
            doc! {"_id": i64::from(id)},
            doc! {"$set": {"key": bin(record), "uploaded": uploaded}},
        )
        .await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let statements = keys
            .iter()
            .map(|(id, record)| {
                upsert_statement(
                    doc! {"_id": i64::from(*id)},
                    doc! {"$set": {"key": bin(record), "uploaded": uploaded}},
                )
            })
            .collect();
        self.bulk_update(PREKEYS, statements).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self
            .get_blob(PREKEYS, i64::from(id).into(), "key")
            .await?
            .map(Bytes::from))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let mut found: HashMap<u32, Bytes> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let wanted: Vec<i64> = chunk.iter().map(|&id| i64::from(id)).collect();
            for d in self
                .find_all(PREKEYS, doc! {"_id": {"$in": wanted}}, None)
                .await?
            {
                let id = u32::try_from(get_i64(&d, "_id")?)
                    .map_err(|e| StoreError::Validation(format!("prekey id: {e}")))?;
                found.insert(id, Bytes::from(get_bin(&d, "key")?));
            }
        }
        // The caller's order, each id once, only the ones that exist.
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id).map(|record| (*id, record)))
            .collect())
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // updateMany without upsert: a key consumed between the upload snapshot and this
        // call stays deleted.
        self.guard()?;
        let coll = self.coll(PREKEYS);
        for chunk in ids.chunks(IN_CHUNK) {
            let wanted: Vec<i64> = chunk.iter().map(|&id| i64::from(id)).collect();
            coll.update_many(
                doc! {"_id": {"$in": wanted}},
                doc! {"$set": {"uploaded": true}},
            )
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete_one(PREKEYS, doc! {"_id": i64::from(id)}).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let top = self
            .coll(PREKEYS)
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .projection(doc! {"_id": 1})
            .await
            .map_err(db_err)?;
        match top {
            Some(d) => u32::try_from(get_i64(&d, "_id")?)
                .map_err(|e| StoreError::Validation(format!("prekey id: {e}"))),
            None => Ok(0),
        }
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.put_blob(SIGNED_PREKEYS, i64::from(id).into(), "record", record)
            .await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get_blob(SIGNED_PREKEYS, i64::from(id).into(), "record")
            .await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        self.find_all(SIGNED_PREKEYS, doc! {}, Some(doc! {"_id": 1}))
            .await?
            .iter()
            .map(|d| {
                let id = u32::try_from(get_i64(d, "_id")?)
                    .map_err(|e| StoreError::Validation(format!("signed prekey id: {e}")))?;
                Ok((id, get_bin(d, "record")?))
            })
            .collect()
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete_one(SIGNED_PREKEYS, doc! {"_id": i64::from(id)})
            .await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put_blob(SENDER_KEYS, address.into(), "record", record)
            .await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_blobs(
            SENDER_KEYS,
            "record",
            sender_keys.iter().map(|(a, r)| (a.as_ref(), r.as_ref())),
        )
        .await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get_blob(SENDER_KEYS, address.into(), "record").await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete_one(SENDER_KEYS, doc! {"_id": address}).await
    }
}
