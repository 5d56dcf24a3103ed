//! Opening the state table: ferry creates it on first use (on-demand, point-in-time recovery on
//! where the endpoint has it), waits for it, and refuses a table of another shape.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, ScalarAttributeType,
    TableDescription, TableStatus,
};

use tokio_util::sync::CancellationToken;

use super::DynamoStore;
use crate::error::{Error, Result};

impl DynamoStore {
    /// Opens the state table `table`, creating it when missing. `client` must have the SDK's
    /// retries off (ferry's own driver retries).
    pub async fn open(client: Client, table: &str, stop: &CancellationToken) -> Result<DynamoStore> {
        let store = Self::new(client, table, stop);
        match store.describe().await? {
            Some(t) => store.check_shape(&t)?,
            None => store.create().await?,
        }
        Ok(store)
    }

    /// Opens the state table `table` if it exists (`ferry status`, `verify`, `cutover`): `None`
    /// when it does not, and it is never created here.
    pub async fn open_existing(client: Client, table: &str) -> Result<Option<DynamoStore>> {
        let store = Self::new(client, table, &CancellationToken::new());
        match store.describe().await? {
            Some(t) => store.check_shape(&t).map(|()| Some(store)),
            None => Ok(None),
        }
    }

    /// Every call's retries end on `stop` (a daemon's stop request).
    fn new(client: Client, table: &str, stop: &CancellationToken) -> DynamoStore {
        DynamoStore {
            client,
            table: table.to_string(),
            fence: Default::default(),
            stop: stop.clone(),
        }
    }

    /// The state table's description; `None` when it does not exist.
    async fn describe(&self) -> Result<Option<TableDescription>> {
        self.retrier("describing")
            .run(|| async {
                match self.client.describe_table().table_name(&self.table).send().await {
                    Ok(out) => Ok(out.table),
                    Err(e) => match Error::from_sdk("DescribeTable", e) {
                        e if e.code() == Some("ResourceNotFoundException") => Ok(None),
                        e => Err(e),
                    },
                }
            })
            .await
    }

    fn check_shape(&self, t: &TableDescription) -> Result<()> {
        let type_of = |name: &str| {
            let defs = t.attribute_definitions().iter();
            defs.filter(|d| d.attribute_name() == name)
                .map(|d| d.attribute_type().as_str())
                .next()
        };
        let shape: Vec<(&str, &str, Option<&str>)> = t
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type().as_str(), type_of(k.attribute_name())))
            .collect();
        if shape == [("pk", "HASH", Some("S")), ("sk", "RANGE", Some("S"))] {
            return Ok(());
        }
        Err(Error::fatal(format!(
            "state table {} exists with another key schema ({shape:?}); ferry keeps its state in a table keyed \
             by pk (HASH, string) and sk (RANGE, string). Name another table in [state] table.",
            self.table
        )))
    }

    async fn create(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
        let request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk").map_err(|e| Error::fatal(e.to_string()))?)
            .attribute_definitions(attr("sk").map_err(|e| Error::fatal(e.to_string()))?)
            .key_schema(key("pk", KeyType::Hash).map_err(|e| Error::fatal(e.to_string()))?)
            .key_schema(key("sk", KeyType::Range).map_err(|e| Error::fatal(e.to_string()))?);
        let created = self
            .retrier("creating")
            .run(|| async {
                match request.clone().send().await {
                    Ok(_) => Ok(true),
                    // Another worker created it first.
                    Err(e) => match Error::from_sdk("CreateTable", e) {
                        e if e.code() == Some("ResourceInUseException") => Ok(false),
                        e => Err(e),
                    },
                }
            })
            .await?;
        let active =
            |d: Option<TableDescription>| Ok(d.filter(|t| t.table_status == Some(TableStatus::Active)).map(|_| ()));
        self.retrier("waiting for")
            .poll(std::time::Duration::from_millis(500), || self.describe(), active)
            .await?;
        if created {
            tracing::info!(table = %self.table, "created the state table");
            self.enable_pitr().await;
        }
        Ok(())
    }

    /// Point-in-time recovery, so the state can be restored; an endpoint without it (DynamoDB
    /// Local) is told, not refused.
    async fn enable_pitr(&self) {
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build();
        let Ok(spec) = spec else { return };
        let call = self
            .client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(spec)
            .send()
            .await;
        if let Err(e) = call {
            let e = Error::from_sdk("UpdateContinuousBackups", e);
            tracing::warn!(table = %self.table, "could not turn on point-in-time recovery for the state table: {e}");
        }
    }
}
