//! Old home of WAHA's message shape, kept as a re-export while other branches still
//! import `messages::model`. The types live in [`crate::model::message`]; the lead
//! removes this file once every caller imports from there.

pub use crate::model::message::{
    MessageId, MessageSource, ReplyToMessage, S3MediaData, WALocation, WAMedia, WAMessage, ack,
    is_chat_id, message_id,
};
