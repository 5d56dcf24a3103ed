//! The SQS change buffer's dead-letter queue on the rig (DynamoDB Local for the tables, moto for
//! the queues): a queue with a redrive policy is refused before anything is written; with
//! `queue_allow_dead_letter = true`, a message in the dead-letter queue shows in `ferry status`
//! and `/metrics` and stops its table loudly while another table goes on.

use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use aws_sdk_sqs::types::QueueAttributeName as A;
use ferry_rig::data::create_table;
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::wait::wait_for;
use ferry_rig::{Account, DynamoLocal};

struct Rig {
    dst: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    dlq_url: String,
    ferry: FerryDir,
    _dir: tempfile::TempDir,
}

/// A source "Orders" read from a FIFO queue whose redrive policy targets a FIFO dead-letter
/// queue, and a source "Other" read from its stream; `opt_in` sets `queue_allow_dead_letter`.
async fn setup(name: &str, opt_in: bool) -> Rig {
    let ddb = DynamoLocal::shared();
    let moto = Moto::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let src = ddb.client(&sa);
    create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    create_table(&src, "Other", Some(StreamViewType::NewAndOldImages)).await;
    let sqs = moto.sqs_client();
    let tag = format!("{name}{}", std::process::id());
    let dlq_url = moto.fifo_queue(&format!("{tag}-dlq"), 30).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|mut m| m.remove(&A::QueueArn))
        .expect("QueueArn");
    let queue_url = moto.fifo_queue(&tag, 3).await;
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(
            A::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .expect("SetQueueAttributes");
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = format!(
        "[source.endpoints]\nsqs = \"{m}\"\ns3 = \"{m}\"\n\n[[table]]\nsource = \"Orders\"\nsnapshot = \"none\"\n\
         change_source = \"sqs\"\nqueue_url = \"{queue_url}\"\nqueue_visibility_timeout_seconds = 3\n\
         queue_allow_dead_letter = {opt_in}\n\n[[table]]\nsource = \"Other\"\n",
        m = moto.endpoint
    );
    let ferry = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &sa, &da, &tables);
    Rig {
        dst: ddb.client(&da),
        sqs,
        queue_url,
        dlq_url,
        ferry,
        _dir: dir,
    }
}

/// Waits for `ferry sync` to exit by itself.
async fn exited(rig: &Rig, child: &mut Running) -> std::process::ExitStatus {
    wait_for(
        Duration::from_secs(60),
        "ferry sync to exit",
        || rig.ferry.logs(),
        || {
            let done = child.try_wait().expect("try_wait");
            async move { done }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_a_redrive_policy_is_refused_before_anything_is_written() {
    let rig = setup("refuse", false).await;
    let mut child = rig.ferry.spawn_sync(&[]);
    let status = exited(&rig, &mut child).await;
    let logs = rig.ferry.all_logs();
    assert!(!status.success(), "{}", rig.ferry.logs());
    for want in [
        format!(
            "queue {} has a redrive policy (dead-letter queue arn:aws:sqs:",
            rig.queue_url
        ),
        "maxReceiveCount 5".to_string(),
        "queue_allow_dead_letter = true".to_string(),
    ] {
        assert!(logs.contains(&want), "missing {want:?} in\n{}", rig.ferry.logs());
    }
    // Refused at the start-up checks: no destination table was created, not even for "Other".
    let tables = rig
        .dst
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names
        .unwrap_or_default();
    assert!(tables.is_empty(), "{tables:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_opt_in_a_dead_letter_stops_its_table_loudly_and_shows_in_status_and_metrics() {
    let rig = setup("watch", true).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = rig.ferry.spawn_sync(&["--metrics", &addr]);
    // Watched and empty.
    wait_for(
        Duration::from_secs(60),
        "the dead-letter queue watched",
        || rig.ferry.logs(),
        || async {
            let t = rig.ferry.table_status("Orders")?;
            let other = rig.ferry.table_status("Other")?;
            (t["queue"]["dead_letter_depth"] == 0
                && t["queue"]["dead_letter_url"] == rig.dlq_url.as_str()
                && other["phase"] == "streaming")
                .then_some(())
        },
    )
    .await;
    assert!(rig.ferry.table_status("Orders").unwrap()["error"].is_null());
    // A message lands in the dead-letter queue (as SQS moves one after maxReceiveCount receives).
    rig.sqs
        .send_message()
        .queue_url(&rig.dlq_url)
        .message_body("{}")
        .message_group_id("g")
        .message_deduplication_id("d1")
        .send()
        .await
        .expect("SendMessage");
    let t = wait_for(
        Duration::from_secs(30),
        "the table stopped",
        || rig.ferry.logs(),
        || async {
            let t = rig.ferry.table_status("Orders")?;
            t["error"].is_string().then_some(t)
        },
    )
    .await;
    let error = t["error"].as_str().unwrap();
    for want in [
        "1 message(s) are in the dead-letter queue",
        rig.dlq_url.as_str(),
        "ferry verify --repair",
    ] {
        assert!(error.contains(want), "missing {want:?} in {error}");
    }
    assert_eq!(t["queue"]["dead_letter_depth"], 1, "{t}");
    assert!(!t["caught_up"].as_bool().unwrap_or(true), "{t}");
    let text = String::from_utf8_lossy(&rig.ferry.run(&["status", "-c", "ferry.toml"]).stdout).to_string();
    assert!(
        text.contains(&format!("dead-letter queue {}: 1 messages", rig.dlq_url)),
        "{text}"
    );
    wait_for(
        Duration::from_secs(10),
        "the dead-letter depth in /metrics",
        || rig.ferry.logs(),
        || async {
            http_get(&addr, "/metrics")
                .contains("ferry_dead_letter_depth{table=\"Orders\"} 1")
                .then_some(())
        },
    )
    .await;
    // The other table goes on.
    let other = rig.ferry.table_status("Other").unwrap();
    assert!(other["error"].is_null() && other["phase"] == "streaming", "{other}");
    assert!(child.try_wait().unwrap().is_none(), "{}", rig.ferry.logs());
    terminate(&child);
    let status = exited(&rig, &mut child).await;
    assert!(!status.success(), "a stopped table fails the run: {}", rig.ferry.logs());
    assert!(
        rig.ferry.all_logs().contains("dead-letter queue"),
        "{}",
        rig.ferry.logs()
    );
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
