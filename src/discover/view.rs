//! What a source table's stream carries, as ferry applies it: full new images, or only keys (then
//! ferry reads the item from the source before writing it).

use aws_sdk_dynamodbstreams::types::StreamViewType;

/// How a table's stream view type maps onto operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// NEW_IMAGE, NEW_AND_OLD_IMAGES: inserts and modifies carry the full new item.
    NewImage,
    /// KEYS_ONLY, OLD_IMAGE: the current item is read from the source before writing.
    KeysOnly,
}

impl View {
    /// From the view type's name (the DynamoDB and Streams SDKs each have their own enum).
    pub fn of(view_type: &str) -> Option<View> {
        match StreamViewType::from(view_type) {
            StreamViewType::NewImage | StreamViewType::NewAndOldImages => Some(View::NewImage),
            StreamViewType::KeysOnly | StreamViewType::OldImage => Some(View::KeysOnly),
            _ => None,
        }
    }
}
