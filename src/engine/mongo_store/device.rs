//! whatsapp-rust's `DeviceStore` on MongoDB: the device document itself (`wa_device`).
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl DeviceStore for MongoDeviceStore {
    async fn save(&self, device: &Device) -> Result<()> {
        self.guard()?;
        let json = serde_json::to_vec(device).map_err(ser_err)?;
        let caches = &self.caches;
        let _writer = caches.device.writer().await;
        if caches.device_written().as_deref() == Some(json.as_slice()) {
            // This store wrote exactly these bytes last (at its own epoch): nothing to send.
            caches.device.set(DEVICE_ID, Some(device.clone()));
            return Ok(());
        }
        let result = self.write_device(device_doc(&json)).await;
        match &result {
            Ok(()) => {
                caches.device.set(DEVICE_ID, Some(device.clone()));
                *caches.device_written() = Some(json);
            }
            Err(_) => {
                caches.device.forget(DEVICE_ID);
                *caches.device_written() = None;
            }
        }
        result
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.caches
            .device
            .get_or_read(DEVICE_ID, async {
                match self.find_one(DEVICE, doc! {"_id": DEVICE_ID}).await? {
                    Some(d) => Ok(Some(decode_device(&d)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn exists(&self) -> Result<bool> {
        if let Some(device) = self.caches.device.get(DEVICE_ID) {
            return Ok(device.is_some());
        }
        self.exists_one(DEVICE, doc! {"_id": DEVICE_ID}).await
    }

    async fn create(&self) -> Result<i32> {
        // Insert-if-absent: a fresh keyset must never replace a paired device's keys, so an
        // existing document is left alone (`$setOnInsert` only).
        let stored = encode_device(&Device::new())?;
        let mut fresh = stored.clone();
        fresh.remove("_id");
        self.guard()?;
        let _writer = self.caches.device.writer().await;
        *self.caches.device_written() = None;
        let inserted = self
            .coll(DEVICE)
            .update_one(doc! {"_id": DEVICE_ID}, doc! {"$setOnInsert": fresh})
            .upsert(true)
            .await;
        match inserted {
            // Inserted: the next `load` answers what a read would decode from it.
            Ok(r) if r.upserted_id.is_some() => {
                self.caches
                    .device
                    .set(DEVICE_ID, Some(decode_device(&stored)?));
            }
            // A device was there already (or a racing create inserted it): read it.
            Ok(_) => self.caches.device.forget(DEVICE_ID),
            Err(e) if is_duplicate_key(&e) => self.caches.device.forget(DEVICE_ID),
            Err(e) => {
                self.caches.device.forget(DEVICE_ID);
                return Err(db_err(e));
            }
        }
        Ok(DEVICE_ROW_ID)
    }

    async fn resource_report(&self) -> whatsapp_rust::wacore::stats::StorageResourceReport {
        // The data lives in MongoDB, not in this process.
        whatsapp_rust::wacore::stats::StorageResourceReport {
            memory_bytes: Some(0),
            ..Default::default()
        }
    }
}

impl MongoDeviceStore {
    /// Replaces the device document with `doc`; in cluster mode only at an epoch ≥ the
    /// stored one.
    async fn write_device(&self, mut doc: Document) -> Result<()> {
        let Some(epoch) = self.epoch() else {
            return self.replace(DEVICE, doc! {"_id": DEVICE_ID}, doc).await;
        };
        // Cluster mode: the document carries the lease epoch of its writer, and a write at
        // an older epoch matches nothing — the upsert then hits the `_id` and fails, so a
        // fenced-out former owner can never overwrite what a newer owner saved.
        doc.insert("epoch", epoch);
        let filter = doc! {
            "_id": DEVICE_ID,
            "$or": [{"epoch": {"$exists": false}}, {"epoch": {"$lte": epoch}}],
        };
        self.guard()?;
        match self
            .coll(DEVICE)
            .replace_one(filter, &doc)
            .upsert(true)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(StoreError::Database(
                format!("device document belongs to a newer lease than epoch {epoch}").into(),
            )),
            Err(e) => Err(db_err(e)),
        }
    }
}
