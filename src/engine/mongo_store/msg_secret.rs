//! whatsapp-rust's `MsgSecretStore` on MongoDB: message secrets (`wa_msg_secrets`).
//!
//! Owns: those collections' documents for one session's [`MongoDeviceStore`]; the shared
//! helpers (upserts, batches, encoding, error mapping) are in `mongo_store/mod.rs`. Called
//! by whatsapp-rust through the backend the engine builds; lives with that store.

use super::*;

#[async_trait]
impl MsgSecretStore for MongoDeviceStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        // Each row is one atomic upsert: the secret is replaced, and `$max` merges the
        // deadline (stored with "never" as the maximum, see MSG_SECRET_NEVER) and the
        // parent time exactly like merge_msg_secret_expiry / merge_msg_secret_message_ts.
        // Ordered statements keep duplicate keys within a batch merging in order.
        let stored = entries.len();
        let now = now_secs();
        let statements = entries
            .iter()
            .map(|e| {
                upsert_statement(
                    doc! {"chat": e.chat.as_ref(), "sender": e.sender.as_ref(), "msg_id": e.msg_id.as_ref()},
                    doc! {
                        "$set": {"secret": bin(&e.secret), "created_at": now},
                        "$max": {
                            "expires_at": encode_msg_secret_expiry(e.expires_at),
                            "message_ts": e.message_ts,
                        },
                    },
                )
            })
            .collect();
        self.bulk_update(MSG_SECRETS, statements).await?;
        Ok(stored)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        match self
            .find_one(
                MSG_SECRETS,
                doc! {"chat": chat, "sender": sender, "msg_id": msg_id},
            )
            .await?
        {
            Some(d) => Ok(Some((get_bin(&d, "secret")?, get_i64(&d, "message_ts")?))),
            None => Ok(None),
        }
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        // "Never" is stored as MSG_SECRET_NEVER and must survive any cutoff.
        self.delete_many(
            MSG_SECRETS,
            doc! {"expires_at": {"$lte": cutoff_timestamp, "$lt": MSG_SECRET_NEVER}},
        )
        .await
    }
}
