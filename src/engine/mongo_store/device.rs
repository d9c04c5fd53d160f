//! whatsapp-rust's `DeviceStore` on MongoDB: the device document itself (`wa_device`).
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl DeviceStore for MongoDeviceStore {
    async fn save(&self, device: &Device) -> Result<()> {
        self.replace(DEVICE, doc! {"_id": DEVICE_ID}, encode_device(device)?)
            .await
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
