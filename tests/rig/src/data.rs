//! Test tables and items: a hash+range table with a GSI and an LSI, items holding every attribute
//! type (high-precision numbers, binary, sets, lists, maps nested five deep), and one ~390 KB item.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, PutRequest, ScalarAttributeType, StreamSpecification,
    StreamViewType, TableDescription, WriteRequest,
};
use aws_smithy_types::Blob;
use rand::{Rng, RngCore};

use ferry::item::Item;

pub const HASH: &str = "pk";
pub const RANGE: &str = "sk";

fn attr(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .expect("complete")
}

fn key(name: &str, t: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .expect("complete")
}

/// Creates `name` with pk (S) + sk (N), GSI `by_group` (group S, sk N), LSI `by_label` (pk, label S),
/// on demand, with a stream of `view` (or none), and waits until it is active.
pub async fn create_table(c: &Client, name: &str, view: Option<StreamViewType>) -> TableDescription {
    let gsi = GlobalSecondaryIndex::builder()
        .index_name("by_group")
        .key_schema(key("group", KeyType::Hash))
        .key_schema(key(RANGE, KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .expect("complete");
    let lsi = LocalSecondaryIndex::builder()
        .index_name("by_label")
        .key_schema(key(HASH, KeyType::Hash))
        .key_schema(key("label", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("n_precise")
                .build(),
        )
        .build()
        .expect("complete");
    let mut req = c
        .create_table()
        .table_name(name)
        .attribute_definitions(attr(HASH, ScalarAttributeType::S))
        .attribute_definitions(attr(RANGE, ScalarAttributeType::N))
        .attribute_definitions(attr("group", ScalarAttributeType::S))
        .attribute_definitions(attr("label", ScalarAttributeType::S))
        .key_schema(key(HASH, KeyType::Hash))
        .key_schema(key(RANGE, KeyType::Range))
        .global_secondary_indexes(gsi)
        .local_secondary_indexes(lsi)
        .billing_mode(BillingMode::PayPerRequest);
    if let Some(v) = view {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(v)
                .build()
                .expect("complete"),
        );
    }
    req.send().await.unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
    wait_until(c, name, |_| true).await
}

/// Waits until `name` is ACTIVE and `ready` says so of its description.
async fn wait_until(c: &Client, name: &str, ready: impl Fn(&TableDescription) -> bool) -> TableDescription {
    loop {
        let t = c
            .describe_table()
            .table_name(name)
            .send()
            .await
            .expect("DescribeTable")
            .table;
        if let Some(t) = t.filter(|t| t.table_status.as_ref().is_some_and(|s| s.as_str() == "ACTIVE") && ready(t)) {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Turns on a stream for a table that has none (the items already in it are in no stream record,
/// so only a snapshot can copy them).
pub async fn enable_stream(c: &Client, name: &str, view: StreamViewType) {
    c.update_table()
        .table_name(name)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()
                .expect("complete"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable {name}: {e:?}"));
    wait_until(c, name, |t| t.latest_stream_arn.is_some()).await;
}

/// Creates a plain table with another key schema (id S only), for mismatch tests.
pub async fn create_other_schema_table(c: &Client, name: &str) {
    c.create_table()
        .table_name(name)
        .attribute_definitions(attr("id", ScalarAttributeType::S))
        .key_schema(key("id", KeyType::Hash))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
}

pub fn key_of(pk: &str, sk: i64) -> Item {
    Item::from([
        (HASH.to_string(), Av::S(pk.to_string())),
        (RANGE.to_string(), Av::N(sk.to_string())),
    ])
}

/// An item with every attribute type; `rng` varies the values.
pub fn rich_item(pk: &str, sk: i64, rng: &mut impl RngCore) -> Item {
    let mut item = key_of(pk, sk);
    let n: u64 = rng.random_range(0..1_000_000);
    let mut bytes = vec![0u8; rng.random_range(1..64)];
    rng.fill_bytes(&mut bytes);
    item.insert("s".into(), Av::S(format!("value-{n}-ünïcødé-✓")));
    item.insert(
        "n_precise".into(),
        Av::N(format!("12345678901234567890123456.{n:06}123456")),
    );
    item.insert("n_small".into(), Av::N(format!("-0.000000000000{}", n + 1)));
    item.insert("b".into(), Av::B(Blob::new(bytes.clone())));
    item.insert("flag".into(), Av::Bool(n.is_multiple_of(2)));
    item.insert("nothing".into(), Av::Null(true));
    item.insert("ss".into(), Av::Ss(vec![format!("a{n}"), "b".into(), "c".into()]));
    item.insert("ns".into(), Av::Ns(vec![n.to_string(), "3.14".into(), "-7E-3".into()]));
    item.insert("bs".into(), Av::Bs(vec![Blob::new(bytes), Blob::new(vec![0, 1, 2])]));
    item.insert(
        "list".into(),
        Av::L(vec![
            Av::S("x".into()),
            Av::N(n.to_string()),
            Av::Bool(true),
            Av::L(vec![]),
        ]),
    );
    item.insert("deep".into(), nested(5, n));
    if !n.is_multiple_of(3) {
        item.insert("group".into(), Av::S(format!("g{}", n % 7)));
    }
    if !n.is_multiple_of(4) {
        item.insert("label".into(), Av::S(format!("label-{}", n % 11)));
    }
    item
}

fn nested(depth: u32, n: u64) -> Av {
    let mut m = Item::from([
        ("level".to_string(), Av::N(depth.to_string())),
        ("n".to_string(), Av::N(n.to_string())),
    ]);
    if depth > 1 {
        m.insert("child".into(), nested(depth - 1, n));
    }
    Av::M(m)
}

/// An item of about `kb` KB (DynamoDB's limit is 400 KB including names).
pub fn big_item(pk: &str, sk: i64, kb: usize, rng: &mut impl RngCore) -> Item {
    let mut item = rich_item(pk, sk, rng);
    let filler: String = (0..kb * 1024).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    item.insert("filler".into(), Av::S(filler));
    item
}

/// Plain items of about `bytes` bytes, for throughput work.
pub fn sized_item(pk: &str, sk: i64, bytes: usize) -> Item {
    let mut item = key_of(pk, sk);
    item.insert("payload".into(), Av::S("p".repeat(bytes.saturating_sub(40))));
    item.insert("v".into(), Av::N(sk.to_string()));
    item
}

/// Writes items with BatchWriteItem (25 at a time), retrying unprocessed ones.
pub async fn load(c: &Client, table: &str, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let reqs: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(i.clone())).build().expect("item"))
                    .build()
            })
            .collect();
        send_batch(c, table, reqs).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Sends one batch, retrying unprocessed items until all are written.
pub async fn send_batch(c: &Client, table: &str, mut reqs: Vec<WriteRequest>) -> Result<(), String> {
    while !reqs.is_empty() {
        let out = c
            .batch_write_item()
            .request_items(table, reqs)
            .send()
            .await
            .map_err(|e| format!("BatchWriteItem {table}: {e:?}"))?;
        reqs = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
    }
    Ok(())
}

/// The table's description (it must exist).
pub async fn describe(c: &Client, table: &str) -> aws_sdk_dynamodb::types::TableDescription {
    let out = c.describe_table().table_name(table).send().await;
    out.unwrap_or_else(|e| panic!("DescribeTable {table}: {e:?}"))
        .table
        .expect("a described table")
}
