//! The configured state store ([`StateConfig`]), opened for the commands that read what the
//! daemon wrote (`status`, `verify`, `cutover`): never created here.

use std::sync::Arc;

use super::dynamo::DynamoStore;
use super::{StateStore, Store};
use crate::config::{StateConfig, build_clients};
use crate::error::Result;

/// The state store `config` names, if it exists.
pub async fn existing(config: &StateConfig) -> Result<Option<Arc<dyn StateStore>>> {
    Ok(match config {
        StateConfig::Sqlite(path) => Store::open_existing(path)?.map(|s| Arc::new(s) as Arc<dyn StateStore>),
        StateConfig::Dynamo(d) => {
            let clients = build_clients("state", &d.side).await?;
            DynamoStore::open_existing(clients.dynamodb, &d.table)
                .await?
                .map(|s| Arc::new(s) as Arc<dyn StateStore>)
        }
    })
}

/// Where `config` keeps the state, for messages.
pub fn describe(config: &StateConfig) -> String {
    match config {
        StateConfig::Sqlite(path) => format!("state store {}", path.display()),
        StateConfig::Dynamo(d) => format!("state table {}", d.table),
    }
}
