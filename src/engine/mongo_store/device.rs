//! whatsapp-rust's `DeviceStore` on MongoDB: the device document itself (`wa_device`).
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl DeviceStore for MongoDeviceStore {
    async fn save(&self, device: &Device) -> Result<()> {
        let mut doc = encode_device(device)?;
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

    async fn load(&self) -> Result<Option<Device>> {
        match self.find_one(DEVICE, doc! {"_id": DEVICE_ID}).await? {
            Some(d) => Ok(Some(decode_device(&d)?)),
            None => Ok(None),
        }
    }

    async fn exists(&self) -> Result<bool> {
        self.exists_one(DEVICE, doc! {"_id": DEVICE_ID}).await
    }

    async fn create(&self) -> Result<i32> {
        // Insert-if-absent: a fresh keyset must never replace a paired device's keys, so an
        // existing document is left alone (`$setOnInsert` only).
        let mut fresh = encode_device(&Device::new())?;
        fresh.remove("_id");
        self.upsert(
            DEVICE,
            doc! {"_id": DEVICE_ID},
            doc! {"$setOnInsert": fresh},
        )
        .await?;
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
