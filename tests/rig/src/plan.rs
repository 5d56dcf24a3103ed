//! Set-up shared by the plan tests: ferry folders on moto Regions, table and function builders,
//! and reading a destination back as a plan schema.

use std::path::Path;

use crate::moto::Moto;
use crate::process::FerryDir;
use crate::{Account, DynamoLocal};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ProvisionedThroughput, ScalarAttributeType, StreamSpecification,
    StreamViewType,
};
use ferry::config::Clients;
use ferry::discover::settings;
use ferry::plan::schema::{Extras, TableSchema};

/// A ferry folder (running `bin`) whose source and destination are two Regions of the shared moto.
pub fn ferry_dir(bin: &Path, dir: &Path, src_region: &str, dst_region: &str) -> FerryDir {
    let moto = Moto::shared();
    let as_ddb = DynamoLocal {
        endpoint: moto.endpoint.clone(),
        admin: String::new(),
        pid: None,
    };
    let f = FerryDir::between(
        bin,
        dir,
        (&as_ddb, &Account::fresh("src")),
        (&as_ddb, &Account::fresh("dst")),
        "",
    );
    let text = format!(
        "[source]\nprofile = \"src\"\nregion = \"{src_region}\"\nendpoint_url = \"{e}\"\n\n\
         [destination]\nprofile = \"dst\"\nregion = \"{dst_region}\"\nendpoint_url = \"{e}\"\n\n\
         [state]\npath = \"state/ferry.db\"\n",
        e = moto.endpoint
    );
    std::fs::write(&f.config, text).unwrap();
    f
}

pub fn attr(name: &str, ty: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ty)
        .build()
        .unwrap()
}

pub fn key(name: &str, ty: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(ty)
        .build()
        .unwrap()
}

pub fn stream(view: StreamViewType) -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(view)
        .build()
        .unwrap()
}

pub fn tp(r: i64, w: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(r)
        .write_capacity_units(w)
        .build()
        .unwrap()
}

pub async fn create_function(lam: &aws_sdk_lambda::Client, name: &str, role: &str) {
    lam.create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role)
        .handler("app.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(b"not run by moto".to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

pub async fn stream_arn(ddb: &aws_sdk_dynamodb::Client, table: &str) -> String {
    let d = ddb.describe_table().table_name(table).send().await.unwrap();
    d.table.unwrap().latest_stream_arn.unwrap()
}

/// The destination as a plan schema, read back the way discover reads a source.
pub async fn described(c: &Clients, table: &str) -> TableSchema {
    let d = ferry::discover::describe(c, table, ferry::retry::Policy::STARTUP)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("destination {table} missing"));
    let extras = Extras {
        ttl_attribute: settings::ttl(c, table).await.unwrap(),
        pitr: settings::pitr(c, table).await.unwrap(),
        tags: settings::tags(c, d.table_arn.as_deref().unwrap()).await.unwrap(),
    };
    TableSchema::from_description(&d, &extras)
}

pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}:\n{text}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}
