//! The etcd backend (etcd v3 over gRPC), for control planes that outgrow one machine.
//!
//! Every precondition is an etcd transaction comparing `create_revision` or `mod_revision`, so the
//! semantics match the SQLite backend exactly, and revisions are etcd's own.

use async_trait::async_trait;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

use crate::{EventKind, KeyValue, Result, Revision, Store, StoreError, WatchEvent, WatchReceiver};

/// How long one etcd call may take before it is an error: a healthy etcd answers in
/// milliseconds, and a caller must not wait forever on one that does not.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `call`, or an error once it has taken [`CALL_TIMEOUT`].
async fn timed<T>(
    what: &str,
    call: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(answer) => answer.map_err(StoreError::from),
        Err(_) => Err(StoreError::Task(format!(
            "etcd did not answer {what} within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

pub struct EtcdStore {
    client: Client,
}

impl EtcdStore {
    /// Connects to the given endpoints (`http://host:port`).
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        // Keep-alive pings find a dead connection (and so end a watch on it) without traffic.
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = timed("a connection", Client::connect(endpoints, Some(options))).await?;
        Ok(EtcdStore { client })
    }

    fn client(&self) -> Client {
        self.client.clone()
    }
}

fn convert(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map(|h| h.revision()).unwrap_or_default()
}

/// The value read by the `or_else` branch of a failed transaction.
fn failed_read(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
    resp.op_responses().iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(convert),
        _ => None,
    })
}

#[async_trait]
impl Store for EtcdStore {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = timed("a transaction", self.client().txn(txn)).await?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        Ok(header_revision(resp.header()))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = timed("a read", self.client().get(key, None)).await?;
        Ok(resp.kvs().first().map(convert))
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
        let mut client = self.client();
        let list = client.get(prefix, Some(GetOptions::new().with_prefix()));
        let resp = timed("a list", list).await?;
        let kvs = resp.kvs().iter().map(convert).collect();
        Ok((kvs, header_revision(resp.header())))
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed("a transaction", self.client().txn(txn)).await?;
        if resp.succeeded() {
            return Ok(header_revision(resp.header()));
        }
        match failed_read(&resp) {
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Some(current) => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let compare = match expected {
            Some(rev) => Compare::mod_revision(key, CompareOp::Equal, rev),
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed("a transaction", self.client().txn(txn)).await?;
        if resp.succeeded() {
            let prev = resp.op_responses().iter().find_map(|op| match op {
                TxnOpResponse::Delete(del) => del.prev_kvs().first().map(convert),
                _ => None,
            });
            let rev = header_revision(resp.header());
            return match prev {
                Some(prev) => Ok((prev, rev)),
                // Deleted between the compare and the delete cannot happen inside one txn.
                None => Err(StoreError::NotFound {
                    key: key.to_string(),
                }),
            };
        }
        match (failed_read(&resp), expected) {
            (Some(current), Some(expected)) => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
            _ => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchReceiver> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(after + 1);
        let mut stream = timed("a watch", self.client().watch(prefix, Some(options))).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = tx.closed() => return,
                    msg = stream.message() => msg,
                };
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return;
                    }
                };
                if resp.compact_revision() != 0 {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: after,
                            compacted: resp.compact_revision(),
                        }))
                        .await;
                    return;
                }
                if resp.canceled() {
                    let _ = tx
                        .send(Err(StoreError::Task(format!(
                            "etcd cancelled the watch: {}",
                            resp.cancel_reason()
                        ))))
                        .await;
                    return;
                }
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    let converted = match event.event_type() {
                        EventType::Put => WatchEvent {
                            kind: if kv.create_revision() == kv.mod_revision() {
                                EventKind::Created
                            } else {
                                EventKind::Updated
                            },
                            kv: convert(kv),
                        },
                        EventType::Delete => {
                            let Some(prev) = event.prev_kv() else {
                                continue;
                            };
                            WatchEvent {
                                kind: EventKind::Deleted,
                                kv: KeyValue {
                                    mod_revision: kv.mod_revision(),
                                    ..convert(prev)
                                },
                            }
                        }
                    };
                    if tx.send(Ok(converted)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn current_revision(&self) -> Result<Revision> {
        let mut client = self.client();
        let count = client.get("/", Some(GetOptions::new().with_count_only()));
        let resp = timed("a revision read", count).await?;
        Ok(header_revision(resp.header()))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match timed("a compaction", self.client().compact(revision, None)).await {
            Ok(_) => Ok(()),
            // Compacting to a revision that is already compacted is not an error for our callers.
            Err(StoreError::Etcd(etcd_client::Error::GRpcStatus(status)))
                if status.message().contains("already been compacted") =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_etcd_that_never_answers_is_an_error_not_a_hang() {
        // Accepts connections and never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let endpoints = [format!("http://{addr}")];
        let call = async {
            let store = EtcdStore::connect(&endpoints).await?;
            store.get("/registry/pods/default/p").await
        };
        let outcome = tokio::time::timeout(Duration::from_secs(30), call).await;
        match outcome {
            Ok(Err(err)) => assert!(err.to_string().contains("did not answer"), "{err}"),
            other => panic!("an error within the store's own timeouts, not {other:?}"),
        }
    }
}
