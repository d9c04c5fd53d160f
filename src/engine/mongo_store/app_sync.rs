//! whatsapp-rust's `AppSyncStore` on MongoDB: app-state sync keys, collection versions and mutation MACs (`wa_app_state_keys`, `wa_app_state_versions`, `wa_app_state_mutation_macs`).
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl AppSyncStore for MongoDeviceStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        match self
            .find_one(APP_STATE_KEYS, doc! {"_id": bin(key_id)})
            .await?
        {
            Some(d) => Ok(Some(AppStateSyncKey {
                key_data: get_bin(&d, "key_data")?,
                fingerprint: get_bin(&d, "fingerprint")?,
                timestamp: get_i64(&d, "timestamp")?,
            })),
            None => Ok(None),
        }
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.upsert(
            APP_STATE_KEYS,
            doc! {"_id": bin(key_id)},
            doc! {"$set": {
                "key_data": bin(&key.key_data),
                "fingerprint": bin(&key.fingerprint),
                "timestamp": key.timestamp,
            }},
        )
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        // Cached (`cache.rs`): every sync round reads each collection's version. A miss
        // reads the whole collection (a handful of documents, one per app-state
        // collection) in one `find` and caches every known name, stored or not, so a sync
        // of all five collections costs one round trip, not five.
        let versions = &self.caches.versions;
        if let Some(state) = versions.get(name) {
            return Ok(state);
        }
        let generation = versions.generation();
        let mut stored = HashMap::new();
        for d in self.find_all(APP_STATE_VERSIONS, doc! {}, None).await? {
            stored.insert(get_str(&d, "_id")?, decode_hash_state(&d)?);
        }
        let wanted = stored.get(name).cloned().unwrap_or_default();
        for known in APP_STATE_NAMES {
            let state = stored.remove(known).unwrap_or_default();
            versions.fill(known, state, generation);
        }
        if !APP_STATE_NAMES.contains(&name) {
            versions.fill(name, wanted.clone(), generation);
        }
        Ok(wanted)
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        let mut replacement = encode_hash_state(&state)?;
        replacement.insert("_id", name);
        self.caches
            .versions
            .write(
                name,
                state,
                self.replace(APP_STATE_VERSIONS, doc! {"_id": name}, replacement),
            )
            .await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let version = u64_to_i64(version)?;
        let statements = mutations
            .iter()
            .map(|m| {
                upsert_statement(
                    doc! {"name": name, "index_mac": bin(&m.index_mac)},
                    doc! {"$set": {"version": version, "value_mac": bin(&m.value_mac)}},
                )
            })
            .collect();
        self.bulk_update(MUTATION_MACS, statements).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        match self
            .find_one(
                MUTATION_MACS,
                doc! {"name": name, "index_mac": bin(index_mac)},
            )
            .await?
        {
            Some(d) => Ok(Some(get_bin(&d, "value_mac")?)),
            None => Ok(None),
        }
    }

    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        let mut out = HashMap::with_capacity(index_macs.len());
        for chunk in index_macs.chunks(IN_CHUNK) {
            let wanted: Vec<Bson> = chunk.iter().map(|m| bin(m)).collect();
            for d in self
                .find_all(
                    MUTATION_MACS,
                    doc! {"name": name, "index_mac": {"$in": wanted}},
                    None,
                )
                .await?
            {
                let index_mac = get_bin(&d, "index_mac")?;
                // Only 32-byte index MACs can have been asked for.
                if let Ok(key) = <[u8; 32]>::try_from(index_mac.as_slice()) {
                    out.insert(key, get_bin(&d, "value_mac")?);
                }
            }
        }
        Ok(out)
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let values = index_macs.iter().map(|m| bin(m)).collect();
        self.delete_in(MUTATION_MACS, doc! {"name": name}, "index_mac", values)
            .await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.delete_many(MUTATION_MACS, doc! {"name": name}).await?;
        Ok(())
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        // Like the SQLite store: the greatest key id (byte-wise), skipping rows that do not
        // decode as a key (they read as absent through get_sync_key, so a build_patch on
        // them would fail). Compared here, not by a server sort, because MongoDB orders
        // Binary by length first; the collection holds a handful of keys.
        let latest = self
            .find_all(APP_STATE_KEYS, doc! {}, None)
            .await?
            .into_iter()
            .filter(|d| get_bin(d, "key_data").is_ok() && get_bin(d, "fingerprint").is_ok())
            .filter_map(|d| get_bin(&d, "_id").ok())
            .max();
        Ok(latest)
    }
}
