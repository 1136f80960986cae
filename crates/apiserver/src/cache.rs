//! The watch cache: every stored object in memory, kept current by one store watch, serving gets,
//! lists and watches so that reads and watch fan-out never touch the store (as kube-apiserver's
//! cacher does).
//!
//! **Invariant:** events reach the cache in store-revision order, and `revision()` is the revision
//! of the last applied event; a consistent read waits until it reaches the store's revision.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use store::{DynStore, EventKind, KeyValue, Revision, StoreError};
use tokio::sync::{broadcast, watch};

use api::resource::{Resource, RESOURCES};

/// How many past events the cache keeps, by default, for watches that start at an older revision.
pub const DEFAULT_HISTORY: usize = 20_000;
const FANOUT: usize = 16_384;

/// One object as the cache holds it: its JSON (with `resourceVersion` set) and the labels and
/// selectable fields, extracted once.
#[derive(Debug)]
pub struct Cached {
    pub key: String,
    pub json: Bytes,
    pub revision: Revision,
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
}

impl Cached {
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// A change as watchers see it: the object after the change (for a delete, its last state) and,
/// for updates and deletes, the state before.
#[derive(Debug)]
pub struct Change {
    pub kind: EventKind,
    pub revision: Revision,
    pub object: Arc<Cached>,
    pub previous: Option<Arc<Cached>>,
}

/// Live changes as they are applied.
pub type Subscription = broadcast::Receiver<Arc<Change>>;

struct State {
    objects: BTreeMap<String, Arc<Cached>>,
    history: VecDeque<Arc<Change>>,
    revision: Revision,
    /// Watches may start at any revision >= this one (every later event is in `history`).
    oldest: Revision,
    capacity: usize,
    /// Live changes; replaced (ending every subscription) when the cache is reloaded.
    changes: broadcast::Sender<Arc<Change>>,
}

pub struct Cache {
    state: RwLock<State>,
    revision_tx: watch::Sender<Revision>,
}

/// The resource whose storage prefix a key is under, for its selectable fields.
fn resource_of(key: &str) -> Option<&'static Resource> {
    let storage = key.strip_prefix("/registry/")?.split('/').next()?;
    // Events are stored in their core/v1 form, so prefer the core group when two share storage.
    RESOURCES
        .iter()
        .filter(|r| r.storage == storage)
        .min_by_key(|r| !r.group.is_empty())
}

/// Parses a stored value and stamps its `resourceVersion`.
pub fn decode_stored(kv: &KeyValue) -> Option<Arc<Cached>> {
    let mut value: Value = serde_json::from_slice(&kv.value).ok()?;
    let resource = resource_of(&kv.key)?;
    api::meta::meta_mut(&mut value).insert(
        "resourceVersion".into(),
        Value::String(kv.mod_revision.to_string()),
    );
    let labels = api::meta::labels(&value);
    let fields = api::registry::fields(resource, &value);
    let json = Bytes::from(serde_json::to_vec(&value).ok()?);
    Some(Arc::new(Cached {
        key: kv.key.clone(),
        json,
        revision: kv.mod_revision,
        labels,
        fields,
    }))
}

impl Cache {
    /// Loads every object and starts following the store.
    pub async fn start(store: DynStore, history: usize) -> Result<Arc<Cache>, StoreError> {
        let (kvs, revision) = store.list("/registry/").await?;
        let mut objects = BTreeMap::new();
        for kv in &kvs {
            if let Some(c) = decode_stored(kv) {
                objects.insert(kv.key.clone(), c);
            }
        }
        let (revision_tx, _) = watch::channel(revision);
        let (changes, _) = broadcast::channel(FANOUT);
        let cache = Arc::new(Cache {
            state: RwLock::new(State {
                objects,
                history: VecDeque::new(),
                revision,
                oldest: revision,
                capacity: history.max(1),
                changes,
            }),
            revision_tx,
        });
        let rx = store.watch("/registry/", revision).await?;
        tokio::spawn(follow(cache.clone(), store, rx));
        Ok(cache)
    }

    pub fn revision(&self) -> Revision {
        self.state.read().map(|s| s.revision).unwrap_or(0)
    }

    /// Waits until the cache has applied `revision` (a consistent read of the store).
    pub async fn wait_for(&self, revision: Revision) -> bool {
        let mut rx = self.revision_tx.subscribe();
        let wait = rx.wait_for(|r| *r >= revision);
        tokio::time::timeout(Duration::from_secs(3), wait)
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.state.read().ok()?.objects.get(key).cloned()
    }

    /// The objects under `prefix` whose keys sort after `after`, in key order, and the revision.
    pub fn list(&self, prefix: &str, after: Option<&str>) -> (Vec<Arc<Cached>>, Revision) {
        let Ok(state) = self.state.read() else {
            return (Vec::new(), 0);
        };
        let start = match after {
            Some(k) if k >= prefix => std::ops::Bound::Excluded(k.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let items = state
            .objects
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, state.revision)
    }

    /// The objects under `prefix` whose keys sort after `after`, as they were at `revision`:
    /// every page of a paginated list shows the first page's snapshot. `Err(oldest)` when the
    /// history no longer reaches back to `revision`.
    pub fn list_at(
        &self,
        prefix: &str,
        after: Option<&str>,
        revision: Revision,
    ) -> Result<Vec<Arc<Cached>>, Revision> {
        let state = self.state.read().map_err(|_| 0)?;
        if revision < state.oldest {
            return Err(state.oldest);
        }
        let start = match after {
            Some(k) if k >= prefix => std::ops::Bound::Excluded(k.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let in_range = |k: &String| match &start {
            std::ops::Bound::Excluded(a) => k > a,
            _ => k.starts_with(prefix),
        };
        // Undo the changes made since, newest first: what the earliest of them found is what
        // was there at `revision` (nothing, for a creation).
        let mut then: BTreeMap<&String, Option<Arc<Cached>>> = BTreeMap::new();
        for change in state.history.iter().rev() {
            if change.revision <= revision {
                break;
            }
            let key = &change.object.key;
            if key.starts_with(prefix) && in_range(key) {
                let before = match change.kind {
                    EventKind::Created => None,
                    _ => change.previous.clone(),
                };
                then.insert(key, before);
            }
        }
        let mut items: BTreeMap<&String, Arc<Cached>> = state
            .objects
            .range((start.clone(), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k, v.clone()))
            .collect();
        for (key, before) in then {
            match before {
                Some(object) => items.insert(key, object),
                None => items.remove(key),
            };
        }
        Ok(items.into_values().collect())
    }

    /// Subscribes to changes after `from`: the past ones still in history, then live ones.
    /// `Err(oldest)` when `from` is older than the history reaches.
    pub fn watch_from(&self, from: Revision) -> Result<(Vec<Arc<Change>>, Subscription), Revision> {
        let state = self.state.read().map_err(|_| 0)?;
        if from < state.oldest {
            return Err(state.oldest);
        }
        let rx = state.changes.subscribe();
        let past = state
            .history
            .iter()
            .filter(|c| c.revision > from)
            .cloned()
            .collect();
        Ok((past, rx))
    }

    /// A snapshot of the objects under `prefix` plus a live subscription from that point.
    pub fn snapshot_and_watch(
        &self,
        prefix: &str,
    ) -> (Vec<Arc<Cached>>, Revision, broadcast::Receiver<Arc<Change>>) {
        let state = self.state.read().expect("cache lock poisoned");
        let rx = state.changes.subscribe();
        let items = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, state.revision, rx)
    }

    fn apply(&self, kind: EventKind, kv: &KeyValue) {
        let Some(object) = decode_stored(kv) else {
            tracing::warn!(key = %kv.key, "skipping an undecodable stored object");
            return;
        };
        let Ok(mut state) = self.state.write() else {
            return;
        };
        let previous = match kind {
            EventKind::Deleted => state.objects.remove(&kv.key),
            _ => state.objects.insert(kv.key.clone(), object.clone()),
        };
        let change = Arc::new(Change {
            kind,
            revision: kv.mod_revision,
            object,
            previous,
        });
        state.revision = kv.mod_revision;
        state.history.push_back(change.clone());
        if state.history.len() > state.capacity {
            if let Some(dropped) = state.history.pop_front() {
                state.oldest = dropped.revision;
            }
        }
        let _ = state.changes.send(change);
        drop(state);
        self.revision_tx.send_replace(kv.mod_revision);
    }

    /// After the store watch broke and could not resume (its history was compacted): reload
    /// everything. What changed meanwhile cannot be told as an ordered stream of events, so, as
    /// kube-apiserver's cacher does, every watch is ended and the history starts again at
    /// `revision`: watchers resume at their last revision, get 410 Gone, and list again.
    fn resync(&self, kvs: Vec<KeyValue>, revision: Revision) {
        let objects: BTreeMap<String, Arc<Cached>> = kvs
            .iter()
            .filter_map(|kv| decode_stored(kv).map(|c| (kv.key.clone(), c)))
            .collect();
        let Ok(mut state) = self.state.write() else {
            return;
        };
        state.objects = objects;
        state.history.clear();
        state.revision = revision;
        state.oldest = revision;
        // Dropping the old sender ends every live subscription.
        state.changes = broadcast::channel(FANOUT).0;
        drop(state);
        tracing::warn!(revision, "the watch cache was reloaded; watches were ended");
        self.revision_tx.send_replace(revision);
    }
}

async fn follow(cache: Arc<Cache>, store: DynStore, mut rx: store::WatchReceiver) {
    loop {
        match rx.recv().await {
            Some(Ok(ev)) => cache.apply(ev.kind, &ev.kv),
            Some(Err(StoreError::Compacted { .. })) => rx = relist(&cache, &store).await,
            other => {
                if let Some(Err(err)) = other {
                    tracing::warn!(%err, "store watch ended; resuming");
                }
                rx = resume(&cache, &store).await;
            }
        }
    }
}

/// Re-opens the store watch where the cache stopped.
async fn resume(cache: &Cache, store: &DynStore) -> store::WatchReceiver {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match store.watch("/registry/", cache.revision()).await {
            Ok(rx) => return rx,
            Err(StoreError::Compacted { .. }) => return relist(cache, store).await,
            Err(err) => tracing::warn!(%err, "store watch failed; retrying"),
        }
    }
}

/// Reloads everything when the history the cache needs is gone.
async fn relist(cache: &Cache, store: &DynStore) -> store::WatchReceiver {
    loop {
        match store.list("/registry/").await {
            Ok((kvs, rev)) => {
                cache.resync(kvs, rev);
                match store.watch("/registry/", rev).await {
                    Ok(rx) => return rx,
                    Err(err) => tracing::warn!(%err, "store watch failed; retrying"),
                }
            }
            Err(err) => tracing::warn!(%err, "store list failed; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(name: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
        }))
        .expect("json")
    }

    #[tokio::test]
    async fn a_reload_ends_every_watch_and_older_revisions_are_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: DynStore =
            Arc::new(store::sqlite::SqliteStore::open(&dir.path().join("db")).expect("open"));
        let key = |n: &str| format!("/registry/configmaps/default/{n}");
        let first = store.create(&key("a"), config_map("a")).await.expect("a");
        let cache = Cache::start(store.clone(), 100).await.expect("cache");
        let (_, mut live) = cache.watch_from(first).expect("a watch");
        // Meanwhile (as if the cache's store watch had been down past a compaction): one
        // object deleted, one created.
        store.delete(&key("a"), None).await.expect("delete");
        let last = store.create(&key("b"), config_map("b")).await.expect("b");
        let (kvs, revision) = store.list("/registry/").await.expect("list");
        assert_eq!(revision, last);
        cache.resync(kvs, revision);
        // Every watch drains what it had and then ends (no made-up order of events).
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match live.recv().await {
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Closed) => return true,
                    Err(_) => return false,
                }
            }
        });
        assert_eq!(ended.await.ok(), Some(true), "the watch ends");
        assert_eq!(
            cache.watch_from(first).err(),
            Some(revision),
            "410 for older ones"
        );
        assert!(cache.watch_from(revision).is_ok());
        let (items, at) = cache.list("/registry/configmaps/", None);
        let keys: Vec<&str> = items.iter().map(|c| c.key.as_str()).collect();
        assert_eq!((keys, at), (vec![key("b").as_str()], revision));
    }
}
