//! Tests of the fault proxy itself (`ferry_rig::faults`): each fault reaches the AWS SDK as the
//! error class it stands for, and a partial BatchWriteItem is valid DynamoDB on both legs.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue as Av, PutRequest, WriteRequest};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ferry::error::{Error, Kind};
use ferry_rig::data::create_table;
use ferry_rig::{Account, DynamoLocal, REGION};

use ferry_rig::faults::proxy::FaultProxy;
use ferry_rig::faults::{Fault, Rule};

/// A client through `endpoint` with the SDK's own retries off (as ferry builds them), so each call
/// sees exactly one answer.
fn client(endpoint: &str, acct: &Account, attempt_timeout: Option<Duration>) -> aws_sdk_dynamodb::Client {
    let mut timeouts = aws_smithy_types::timeout::TimeoutConfig::builder();
    if let Some(t) = attempt_timeout {
        timeouts = timeouts.operation_attempt_timeout(t);
    }
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(acct.credentials())
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .timeout_config(timeouts.build())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

async fn put(c: &aws_sdk_dynamodb::Client, pk: &str) -> Result<(), SdkError<PutItemError, HttpResponse>> {
    c.put_item()
        .table_name("Faulty")
        .item("pk", Av::S(pk.into()))
        .item("sk", Av::N("1".into()))
        .send()
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_reaches_the_sdk_as_its_error_class() {
    let ddb = DynamoLocal::shared();
    let acct = Account::fresh("proxy");
    create_table(&ddb.client(&acct), "Faulty", None).await;
    let proxy = FaultProxy::start(&ddb.endpoint).await;
    let c = client(&proxy.endpoint, &acct, None);
    put(&c, "plain").await.expect("a request with no rule is forwarded");

    // Throttle: a service error with DynamoDB's throttling code, which ferry retries as a throttle.
    proxy.add(Rule::new(Fault::Throttle).on("PutItem").next(1));
    let e = put(&c, "a").await.unwrap_err();
    let SdkError::ServiceError(se) = &e else {
        panic!("throttle: {e:?}")
    };
    assert_eq!(se.raw().status().as_u16(), 400);
    assert_eq!(se.err().code(), Some("ProvisionedThroughputExceededException"));
    assert_eq!(Error::from_sdk("PutItem", e).kind(), Kind::Throttled);

    // 500 with an unknown code: a service error with that code and status 500.
    proxy.add(Rule::new(Fault::Unknown500).on("PutItem").next(1));
    let e = put(&c, "a").await.unwrap_err();
    let SdkError::ServiceError(se) = &e else {
        panic!("500: {e:?}")
    };
    assert_eq!(se.raw().status().as_u16(), 500);
    assert_eq!(se.err().code(), Some("InjectedUnknownServerFault"));

    // 503 with an empty body: a service error with status 503 and no code at all.
    proxy.add(Rule::new(Fault::Empty503).on("PutItem").next(1));
    let e = put(&c, "a").await.unwrap_err();
    let SdkError::ServiceError(se) = &e else {
        panic!("503: {e:?}")
    };
    assert_eq!(se.raw().status().as_u16(), 503);
    assert_eq!(se.err().code(), None);

    // Reset: no answer at all, a dispatch failure (transient for ferry).
    proxy.add(Rule::new(Fault::Reset).on("PutItem").next(1));
    let e = put(&c, "a").await.unwrap_err();
    assert!(matches!(e, SdkError::DispatchFailure(_)), "reset: {e:?}");
    assert_eq!(Error::from_sdk("PutItem", e).kind(), Kind::Retryable);

    // Delay: forwarded after the wait; and longer than an attempt timeout, the SDK gives up.
    proxy.add(Rule::delay(Duration::from_millis(200)).on("PutItem").next(1));
    put(&c, "delayed").await.expect("a delayed request is forwarded");
    let impatient = client(&proxy.endpoint, &acct, Some(Duration::from_millis(200)));
    proxy.add(Rule::delay(Duration::from_secs(10)).on("PutItem").next(1));
    let e = put(&impatient, "slow").await.unwrap_err();
    assert!(matches!(e, SdkError::TimeoutError(_)), "slow answer: {e:?}");

    // Outage: every request fails to dispatch until it ends; then requests go through again.
    proxy.outage_for(Duration::from_secs(600));
    for _ in 0..3 {
        let e = put(&c, "a").await.unwrap_err();
        assert!(matches!(e, SdkError::DispatchFailure(_)), "outage: {e:?}");
    }
    proxy.clear();
    put(&c, "after").await.expect("forwarded again after the outage");

    // Streams calls are told apart and throttled with the Streams code.
    let s = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(REGION))
            .endpoint_url(&proxy.endpoint)
            .credentials_provider(acct.credentials())
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build(),
    );
    proxy.add(Rule::new(Fault::Throttle).on("ListStreams").next(1));
    let e = s.list_streams().send().await.unwrap_err();
    assert_eq!(e.code(), Some("LimitExceededException"), "{e:?}");
    assert_eq!(Error::from_sdk("ListStreams", e).kind(), Kind::Throttled);
    s.list_streams().send().await.expect("a Next(1) rule fires once");

    // Every fault was counted where it happened; a rule for another operation never fired.
    for f in [Fault::Throttle, Fault::Unknown500, Fault::Empty503, Fault::Reset] {
        assert_eq!(proxy.injected_on(f, "PutItem"), 1, "{f:?}: {}", proxy.report());
    }
    assert_eq!(proxy.injected_on(Fault::Delay, "PutItem"), 2, "{}", proxy.report());
    assert!(proxy.injected(Fault::Outage) >= 3, "{}", proxy.report());
    assert_eq!(
        proxy.injected_on(Fault::Throttle, "ListStreams"),
        1,
        "{}",
        proxy.report()
    );
    let direct = ddb.client(&acct);
    for pk in ["plain", "delayed", "after"] {
        let got = direct
            .get_item()
            .table_name("Faulty")
            .key("pk", Av::S(pk.into()))
            .key("sk", Av::N("1".into()))
            .send()
            .await
            .unwrap();
        assert!(got.item.is_some(), "{pk} was forwarded and written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_write_leaves_the_rest_unprocessed_and_a_resend_completes_it() {
    let ddb = DynamoLocal::shared();
    let acct = Account::fresh("proxy");
    let direct = ddb.client(&acct);
    create_table(&direct, "Faulty", None).await;
    let proxy = FaultProxy::start(&ddb.endpoint).await;
    let c = client(&proxy.endpoint, &acct, None);
    let reqs: Vec<WriteRequest> = (0..10)
        .map(|i| {
            let put = PutRequest::builder()
                .item("pk", Av::S(format!("k{i}")))
                .item("sk", Av::N("1".into()))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    proxy.add(Rule::new(Fault::PartialBatch).next(2));
    let out = c
        .batch_write_item()
        .request_items("Faulty", reqs)
        .send()
        .await
        .expect("partial batch");
    let left = out
        .unprocessed_items()
        .and_then(|u| u.get("Faulty"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(left.len(), 5, "{out:?}");
    let count = || async { direct.scan().table_name("Faulty").send().await.unwrap().count };
    assert_eq!(count().await, 5, "only the forwarded half was written");

    // Resent: half of the five again (the rule's second turn), then the rest with no rule left.
    let out = c.batch_write_item().request_items("Faulty", left).send().await.unwrap();
    let left = out
        .unprocessed_items()
        .and_then(|u| u.get("Faulty"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(left.len(), 3);
    let out = c.batch_write_item().request_items("Faulty", left).send().await.unwrap();
    assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()), "{out:?}");
    assert_eq!(count().await, 10);
    assert_eq!(proxy.injected_on(Fault::PartialBatch, "BatchWriteItem"), 2);

    // A one-item batch comes back whole, and nothing reaches the table.
    proxy.add(Rule::new(Fault::PartialBatch).next(1));
    let one = WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .item("pk", Av::S("single".into()))
                .item("sk", Av::N("1".into()))
                .build()
                .unwrap(),
        )
        .build();
    let out = c
        .batch_write_item()
        .request_items("Faulty", vec![one])
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.unprocessed_items().and_then(|u| u.get("Faulty")).map(Vec::len),
        Some(1)
    );
    assert_eq!(count().await, 10);
}
