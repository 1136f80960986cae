//! The embedded backend: one SQLite database in WAL mode.
//!
//! Layout (kine-like): `kv` holds the current value of every live key; `log` holds one row per
//! revision (the new value, or the last value for a delete) and is what watches replay from.
//! All writes go through one writer thread that commits whatever is queued in a single transaction
//! (group commit), then publishes the events to live watchers. A write is acknowledged only after
//! its transaction committed, so a killed process loses no acknowledged write.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    prefix_end, EventKind, KeyValue, Result, Revision, Store, StoreError, WatchEvent, WatchReceiver,
};

/// How many queued writes one transaction may take.
const MAX_BATCH: usize = 512;
/// How many events a slow watcher may fall behind before it re-reads the log.
const FANOUT_CAPACITY: usize = 8192;
const READERS: usize = 4;

enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<Revision>>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
        reply: oneshot::Sender<Result<Revision>>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
        reply: oneshot::Sender<Result<(KeyValue, Revision)>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

pub struct SqliteStore {
    writer: std::sync::mpsc::Sender<WriteOp>,
    readers: Arc<ReaderPool>,
    fanout: broadcast::Sender<Arc<WatchEvent>>,
}

/// Read-only connections; WAL lets them read committed data while the writer writes.
struct ReaderPool {
    conns: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

impl ReaderPool {
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = pool.conns.lock().map_err(|_| StoreError::Closed)?.pop();
            let conn = match pooled {
                Some(c) => c,
                None => open(&pool.path, READER_CACHE_KIB)?,
            };
            let out = f(&conn);
            if let Ok(mut conns) = pool.conns.lock() {
                if conns.len() < READERS {
                    conns.push(conn);
                }
            }
            out
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// Page-cache sizes in KiB: the writer touches every page it changes; readers only serve the
/// occasional read-modify-write, as lists and watches come from the API server's cache.
const WRITER_CACHE_KIB: i64 = 8 * 1024;
const READER_CACHE_KIB: i64 = 1024;

fn open(path: &Path, cache_kib: i64) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a write is acknowledged only once the WAL is on disk, so a power loss cannot drop
    // acknowledged writes (nor hand their revisions out again). Group commit (one transaction,
    // one sync, per batch of queued writes) keeps the rate up.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(conn)
}

/// Creates the database file readable by its owner only (it holds every object, secrets too);
/// SQLite gives its `-wal` and `-shm` files the same mode.
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        restrict(path)?;
        let conn = open(path, WRITER_CACHE_KIB)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                key TEXT PRIMARY KEY, value BLOB NOT NULL,
                create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS log (
                rev INTEGER PRIMARY KEY, key TEXT NOT NULL, kind INTEGER NOT NULL,
                value BLOB NOT NULL, create_rev INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);",
        )?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open(path, READER_CACHE_KIB)?);
        }
        let (fanout, _) = broadcast::channel(FANOUT_CAPACITY);
        let (writer, ops) = std::sync::mpsc::channel();
        let publish = fanout.clone();
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, ops, publish))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(SqliteStore {
            writer,
            readers: Arc::new(ReaderPool {
                conns: Mutex::new(readers),
                path: path.to_path_buf(),
            }),
            fanout,
        })
    }

    async fn write<T>(&self, op: WriteOp, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        self.writer.send(op).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn read_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    conn.prepare_cached("SELECT value, create_rev, mod_rev FROM kv WHERE key = ?1")?
        .query_row(params![key], |r| {
            Ok(KeyValue {
                key: key.to_string(),
                value: r.get(0)?,
                create_revision: r.get(1)?,
                mod_revision: r.get(2)?,
            })
        })
        .optional()
}

fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
}

/// Applies one write inside the open transaction and says whether it succeeded. Checks happen
/// before any row is touched; a write that fails half-way (its `kv` row written, its `log` row
/// not, on a full disk) is undone by the caller's savepoint, so the two tables never disagree.
fn apply(
    tx: &Connection,
    rev: &mut Revision,
    op: WriteOp,
    events: &mut Vec<WatchEvent>,
    replies: &mut Vec<Box<dyn FnOnce() + Send>>,
) -> bool {
    match op {
        WriteOp::Create { key, value, reply } => {
            let res = (|| -> Result<Revision> {
                if read_kv(tx, &key)?.is_some() {
                    return Err(StoreError::AlreadyExists { key: key.clone() });
                }
                let new_rev = *rev + 1;
                put_row(tx, &key, &value, new_rev, new_rev, EventKind::Created)?;
                *rev = new_rev;
                events.push(WatchEvent {
                    kind: EventKind::Created,
                    kv: KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: new_rev,
                        mod_revision: new_rev,
                    },
                });
                Ok(new_rev)
            })();
            let ok = res.is_ok();
            replies.push(Box::new(move || {
                let _ = reply.send(res);
            }));
            ok
        }
        WriteOp::Update {
            key,
            value,
            expected,
            reply,
        } => {
            let res = (|| -> Result<Revision> {
                let Some(current) = read_kv(tx, &key)? else {
                    return Err(StoreError::NotFound { key: key.clone() });
                };
                if current.mod_revision != expected {
                    return Err(StoreError::Conflict {
                        key: key.clone(),
                        expected,
                        current: Some(Box::new(current)),
                    });
                }
                let new_rev = *rev + 1;
                put_row(
                    tx,
                    &key,
                    &value,
                    current.create_revision,
                    new_rev,
                    EventKind::Updated,
                )?;
                *rev = new_rev;
                events.push(WatchEvent {
                    kind: EventKind::Updated,
                    kv: KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: current.create_revision,
                        mod_revision: new_rev,
                    },
                });
                Ok(new_rev)
            })();
            let ok = res.is_ok();
            replies.push(Box::new(move || {
                let _ = reply.send(res);
            }));
            ok
        }
        WriteOp::Delete {
            key,
            expected,
            reply,
        } => {
            let res = (|| -> Result<(KeyValue, Revision)> {
                let Some(current) = read_kv(tx, &key)? else {
                    return Err(StoreError::NotFound { key: key.clone() });
                };
                if let Some(expected) = expected {
                    if current.mod_revision != expected {
                        return Err(StoreError::Conflict {
                            key: key.clone(),
                            expected,
                            current: Some(Box::new(current)),
                        });
                    }
                }
                let new_rev = *rev + 1;
                tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute(params![key])?;
                tx.prepare_cached(
                    "INSERT INTO log (rev, key, kind, value, create_rev) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    new_rev,
                    key,
                    kind_code(EventKind::Deleted),
                    current.value,
                    current.create_revision
                ])?;
                *rev = new_rev;
                events.push(WatchEvent {
                    kind: EventKind::Deleted,
                    kv: KeyValue {
                        mod_revision: new_rev,
                        ..current.clone()
                    },
                });
                Ok((current, new_rev))
            })();
            let ok = res.is_ok();
            replies.push(Box::new(move || {
                let _ = reply.send(res);
            }));
            ok
        }
        WriteOp::Compact { revision, reply } => {
            let res = (|| -> Result<()> {
                let compacted = meta(tx, "compacted")?;
                if revision > compacted {
                    let upto = revision.min(*rev);
                    tx.prepare_cached("DELETE FROM log WHERE rev < ?1")?
                        .execute(params![upto])?;
                    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?
                        .execute(params![upto])?;
                }
                Ok(())
            })();
            let ok = res.is_ok();
            replies.push(Box::new(move || {
                let _ = reply.send(res);
            }));
            ok
        }
    }
}

fn kind_code(kind: EventKind) -> i64 {
    match kind {
        EventKind::Created => 0,
        EventKind::Updated => 1,
        EventKind::Deleted => 2,
    }
}

fn kind_from_code(code: i64) -> EventKind {
    match code {
        0 => EventKind::Created,
        1 => EventKind::Updated,
        _ => EventKind::Deleted,
    }
}

fn put_row(
    tx: &Connection,
    key: &str,
    value: &[u8],
    create_rev: Revision,
    mod_rev: Revision,
    kind: EventKind,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
    )?
    .execute(params![key, value, create_rev, mod_rev])?;
    tx.prepare_cached(
        "INSERT INTO log (rev, key, kind, value, create_rev) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![mod_rev, key, kind_code(kind), value, create_rev])?;
    Ok(())
}

fn writer_loop(
    mut conn: Connection,
    ops: std::sync::mpsc::Receiver<WriteOp>,
    fanout: broadcast::Sender<Arc<WatchEvent>>,
) {
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        let mut replies: Vec<Box<dyn FnOnce() + Send>> = Vec::with_capacity(batch.len());
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut rev = meta(&tx, "revision")?;
            for op in batch.drain(..) {
                // Each write commits whole or not at all, whatever the others in the batch do.
                tx.execute_batch("SAVEPOINT write")?;
                if apply(&tx, &mut rev, op, &mut events, &mut replies) {
                    tx.execute_batch("RELEASE write")?;
                } else {
                    tx.execute_batch("ROLLBACK TO write; RELEASE write")?;
                }
            }
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                .execute(params![rev])?;
            tx.commit()
        })();
        match outcome {
            Ok(()) => {
                for reply in replies {
                    reply();
                }
                for event in events {
                    let _ = fanout.send(Arc::new(event));
                }
            }
            Err(err) => {
                // The transaction rolled back: nothing of this batch is stored, so every caller gets
                // the error (dropping the replies tells them the write failed).
                tracing::error!(%err, "sqlite batch failed; rolled back");
                drop(replies);
            }
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let (reply, rx) = oneshot::channel();
        let key = key.to_string();
        self.write(WriteOp::Create { key, value, reply }, rx).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.readers.run(move |c| Ok(read_kv(c, &key)?)).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
        let prefix = prefix.to_string();
        self.readers.run(move |c| {
            let tx = c.unchecked_transaction()?;
            let rev = meta(&tx, "revision")?;
            let end = prefix_end(&prefix);
            let mut stmt = tx.prepare_cached(
                "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ?1 AND key < CAST(?2 AS TEXT) ORDER BY key",
            )?;
            let rows = stmt
                .query_map(params![prefix, end], |r| {
                    Ok(KeyValue {
                        key: r.get(0)?,
                        value: r.get(1)?,
                        create_revision: r.get(2)?,
                        mod_revision: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(stmt);
            tx.finish()?;
            Ok((rows, rev))
        })
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let (reply, rx) = oneshot::channel();
        let key = key.to_string();
        self.write(
            WriteOp::Update {
                key,
                value,
                expected,
                reply,
            },
            rx,
        )
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let (reply, rx) = oneshot::channel();
        let key = key.to_string();
        self.write(
            WriteOp::Delete {
                key,
                expected,
                reply,
            },
            rx,
        )
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchReceiver> {
        // Subscribe before reading the log so no event falls between the replay and the live feed.
        let mut live = self.fanout.subscribe();
        let replay = {
            let prefix = prefix.to_string();
            self.readers
                .run(move |c| replay_log(c, &prefix, after))
                .await?
        };
        let (tx, rx) = mpsc::channel(256);
        let prefix = prefix.to_string();
        let readers = self.readers.clone();
        tokio::spawn(async move {
            let mut last = after;
            for ev in replay {
                last = ev.kv.mod_revision;
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    msg = live.recv() => match msg {
                        Ok(ev) => {
                            if ev.kv.mod_revision <= last || !ev.kv.key.starts_with(&prefix) {
                                continue;
                            }
                            last = ev.kv.mod_revision;
                            if tx.send(Ok((*ev).clone())).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Fell behind the fan-out: catch up from the log, then go on live.
                            let prefix2 = prefix.clone();
                            let from = last;
                            let caught = readers.run(move |c| replay_log(c, &prefix2, from)).await;
                            match caught {
                                Ok(events) => for ev in events {
                                    last = ev.kv.mod_revision;
                                    if tx.send(Ok(ev)).await.is_err() { return; }
                                },
                                Err(err) => { let _ = tx.send(Err(err)).await; return; }
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.readers.run(|c| Ok(meta(c, "revision")?)).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.write(WriteOp::Compact { revision, reply }, rx).await
    }
}

fn replay_log(conn: &Connection, prefix: &str, after: Revision) -> Result<Vec<WatchEvent>> {
    let tx = conn.unchecked_transaction()?;
    let compacted = meta(&tx, "compacted")?;
    if after + 1 < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let end = prefix_end(prefix);
    let mut stmt = tx.prepare_cached(
        "SELECT rev, key, kind, value, create_rev FROM log
         WHERE rev > ?1 AND key >= ?2 AND key < CAST(?3 AS TEXT) ORDER BY rev",
    )?;
    let events = stmt
        .query_map(params![after, prefix, end], |r| {
            Ok(WatchEvent {
                kind: kind_from_code(r.get(2)?),
                kv: KeyValue {
                    key: r.get(1)?,
                    value: r.get(3)?,
                    create_revision: r.get(4)?,
                    mod_revision: r.get(0)?,
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    drop(stmt);
    tx.finish()?;
    Ok(events)
}
