//! The one behaviour suite every backend must pass, and a throwaway etcd server to run it against.
//!
//! Each check takes a fresh `prefix` so that runs against one shared server do not see each other.
//! Backends call [`run_all`] from their integration tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::time::timeout;

use crate::{EventKind, Store, StoreError, WatchReceiver};

/// Runs every check against `store`, keeping all keys under `prefix`.
pub async fn run_all(store: &dyn Store, prefix: &str) {
    create_get_and_already_exists(store, &format!("{prefix}/a/")).await;
    update_is_compare_and_swap(store, &format!("{prefix}/b/")).await;
    delete_with_and_without_precondition(store, &format!("{prefix}/c/")).await;
    list_sees_only_its_prefix_at_one_revision(store, &format!("{prefix}/d/")).await;
    watch_replays_then_follows(store, &format!("{prefix}/e/")).await;
    watch_from_compacted_revision_fails(store, &format!("{prefix}/f/")).await;
    concurrent_creates_get_distinct_revisions(store, &format!("{prefix}/g/")).await;
}

async fn next_event(rx: &mut WatchReceiver) -> crate::WatchEvent {
    match timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(Ok(ev))) => ev,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

pub async fn create_get_and_already_exists(store: &dyn Store, p: &str) {
    let key = format!("{p}x");
    assert_eq!(store.get(&key).await.unwrap(), None);
    let rev = store.create(&key, b"one".to_vec()).await.unwrap();
    assert!(rev > 0);
    let kv = store
        .get(&key)
        .await
        .unwrap()
        .expect("created key is readable");
    assert_eq!(kv.value, b"one");
    assert_eq!(kv.mod_revision, rev);
    assert_eq!(kv.create_revision, rev);
    match store.create(&key, b"two".to_vec()).await {
        Err(StoreError::AlreadyExists { key: k }) => assert_eq!(k, key),
        other => panic!("second create must fail with AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, b"one");
    assert!(store.current_revision().await.unwrap() >= rev);
}

pub async fn update_is_compare_and_swap(store: &dyn Store, p: &str) {
    let key = format!("{p}x");
    let r1 = store.create(&key, b"v1".to_vec()).await.unwrap();
    let r2 = store.update(&key, b"v2".to_vec(), r1).await.unwrap();
    assert!(r2 > r1);
    match store.update(&key, b"stale".to_vec(), r1).await {
        Err(StoreError::Conflict { current, .. }) => {
            let current = current.expect("conflict carries the current value");
            assert_eq!(current.value, b"v2");
            assert_eq!(current.mod_revision, r2);
            assert_eq!(current.create_revision, r1);
        }
        other => panic!("stale update must conflict, got {other:?}"),
    }
    let kv = store.get(&key).await.unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v2"[..], r2));
    match store.update(&format!("{p}missing"), b"v".to_vec(), 1).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("update of a missing key must be NotFound, got {other:?}"),
    }
}

pub async fn delete_with_and_without_precondition(store: &dyn Store, p: &str) {
    let key = format!("{p}x");
    let r1 = store.create(&key, b"v1".to_vec()).await.unwrap();
    let r2 = store.update(&key, b"v2".to_vec(), r1).await.unwrap();
    match store.delete(&key, Some(r1)).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("delete with a stale revision must conflict, got {other:?}"),
    }
    let (last, rev) = store.delete(&key, Some(r2)).await.unwrap();
    assert_eq!(last.value, b"v2");
    assert!(rev > r2);
    assert_eq!(store.get(&key).await.unwrap(), None);
    match store.delete(&key, None).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("deleting a missing key must be NotFound, got {other:?}"),
    }
    // A key created again starts a new life.
    let r3 = store.create(&key, b"v3".to_vec()).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().create_revision, r3);
    store.delete(&key, None).await.unwrap();
}

pub async fn list_sees_only_its_prefix_at_one_revision(store: &dyn Store, p: &str) {
    for name in ["c", "a", "b"] {
        store
            .create(&format!("{p}in/{name}"), name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    store
        .create(&format!("{p}inx"), b"no".to_vec())
        .await
        .unwrap();
    store
        .create(&format!("{p}out/a"), b"no".to_vec())
        .await
        .unwrap();
    let (kvs, rev) = store.list(&format!("{p}in/")).await.unwrap();
    let keys: Vec<_> = kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(
        keys,
        [format!("{p}in/a"), format!("{p}in/b"), format!("{p}in/c")]
    );
    assert!(kvs.iter().all(|kv| kv.mod_revision <= rev));
    assert!(rev <= store.current_revision().await.unwrap());
    let (empty, _) = store.list(&format!("{p}nothing/")).await.unwrap();
    assert!(empty.is_empty());
}

pub async fn watch_replays_then_follows(store: &dyn Store, p: &str) {
    let key = format!("{p}x");
    let start = store.current_revision().await.unwrap();
    let r1 = store.create(&key, b"v1".to_vec()).await.unwrap();
    let outside = format!("{}-other", p.trim_end_matches('/'));
    store.create(&outside, b"z".to_vec()).await.unwrap();
    let mut rx = store.watch(p, start).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!((ev.kind, ev.kv.mod_revision), (EventKind::Created, r1));
    // Live events after the replay, in order.
    let r2 = store.update(&key, b"v2".to_vec(), r1).await.unwrap();
    let (_, r3) = store.delete(&key, None).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!((ev.kind, ev.kv.mod_revision), (EventKind::Updated, r2));
    assert_eq!(ev.kv.value, b"v2");
    let ev = next_event(&mut rx).await;
    assert_eq!((ev.kind, ev.kv.mod_revision), (EventKind::Deleted, r3));
    assert_eq!(ev.kv.value, b"v2", "a delete event carries the last value");
    // A watch from r2 sees only what came after r2.
    let mut rx2 = store.watch(p, r2).await.unwrap();
    let ev = next_event(&mut rx2).await;
    assert_eq!((ev.kind, ev.kv.mod_revision), (EventKind::Deleted, r3));
    // Keys outside the prefix are not delivered.
    store
        .update(
            &outside,
            b"z2".to_vec(),
            store.get(&outside).await.unwrap().unwrap().mod_revision,
        )
        .await
        .unwrap();
    store.create(&format!("{p}y"), b"y".to_vec()).await.unwrap();
    let ev = next_event(&mut rx2).await;
    assert_eq!(ev.kv.key, format!("{p}y"));
}

pub async fn watch_from_compacted_revision_fails(store: &dyn Store, p: &str) {
    let key = format!("{p}x");
    let r1 = store.create(&key, b"v1".to_vec()).await.unwrap();
    let r2 = store.update(&key, b"v2".to_vec(), r1).await.unwrap();
    let r3 = store.update(&key, b"v3".to_vec(), r2).await.unwrap();
    store.compact(r3).await.unwrap();
    // The current value survives compaction.
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, b"v3");
    let failed = match store.watch(p, r1 - 1).await {
        Err(err) => Some(err),
        Ok(mut rx) => match timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Err(err))) => Some(err),
            other => panic!("watch from a compacted revision must fail, got {other:?}"),
        },
    };
    assert!(
        matches!(failed, Some(StoreError::Compacted { .. })),
        "got {failed:?}"
    );
    // Watching from the compaction point still works.
    let mut rx = store.watch(p, r3).await.unwrap();
    let r4 = store.update(&key, b"v4".to_vec(), r3).await.unwrap();
    assert_eq!(next_event(&mut rx).await.kv.mod_revision, r4);
}

pub async fn concurrent_creates_get_distinct_revisions(store: &dyn Store, p: &str) {
    let futures = (0..64).map(|i| {
        let key = format!("{p}k{i:03}");
        async move { store.create(&key, vec![i as u8]).await.unwrap() }
    });
    let mut revs = futures::future::join_all(futures).await;
    revs.sort();
    revs.dedup();
    assert_eq!(revs.len(), 64);
    let (kvs, _) = store.list(p).await.unwrap();
    assert_eq!(kvs.len(), 64);
}

/// A throwaway etcd server on free loopback ports, with its own data dir; killed on drop.
pub struct EtcdServer {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdServer {
    /// Starts `etcd` (from PATH or /usr/bin) and waits until it answers.
    pub fn start() -> std::io::Result<Self> {
        EtcdServer::start_at(free_port()?)
    }

    /// Starts `etcd` serving clients on `client` (a port chosen beforehand).
    pub fn start_at(client: u16) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let peer = free_port()?;
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let binary = which_etcd().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "etcd is not installed (the project's setup installs Debian's etcd-server)",
            )
        })?;
        let child = Command::new(binary)
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("etcd").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .arg("--log-level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = EtcdServer {
            child,
            _dir: dir,
            endpoint,
        };
        // Listening is not serving: wait until etcd has elected itself leader and says it is healthy.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !healthy(client) {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("etcd did not become healthy"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl EtcdServer {
    /// The etcd process, for tests that pause it (SIGSTOP) to see who notices.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// etcd's `/health` endpoint answers `"health":"true"` once it can serve writes.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

fn which_etcd() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
