//! Runs the shared storage suite against both backends: SQLite on a temporary file, and a real etcd
//! started for the test.

use store::conformance::{run_all, EtcdServer};
use store::etcd::EtcdStore;
use store::sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_storage_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    run_all(&store, "/registry/test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let rev = {
        let store = SqliteStore::open(&path).unwrap();
        store.create("/k", b"v".to_vec()).await.unwrap()
    };
    let store = SqliteStore::open(&path).unwrap();
    use store::Store;
    let kv = store
        .get("/k")
        .await
        .unwrap()
        .expect("value survives reopen");
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v"[..], rev));
    assert_eq!(store.current_revision().await.unwrap(), rev);
    // New writes continue the revision sequence.
    assert!(store.create("/k2", b"v".to_vec()).await.unwrap() > rev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_passes_the_storage_suite() {
    let etcd = EtcdServer::start().expect("a real etcd is needed for this test");
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .expect("connect to etcd");
    run_all(&store, "/registry/test").await;
}

/// A write whose `log` row cannot be stored (as on a full disk) leaves no `kv` row behind and
/// takes no revision; the writes batched with it are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_are_whole_or_absent() {
    use store::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let before = store.create("/a", b"1".to_vec()).await.unwrap();
    // Every insert of the key /bad into the log fails, after its kv row was written.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_log BEFORE INSERT ON log WHEN NEW.key = '/bad'
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let (bad, good) = tokio::join!(
        store.create("/bad", b"x".to_vec()),
        store.create("/b", b"2".to_vec())
    );
    assert!(bad.is_err(), "{bad:?}");
    assert!(
        store.get("/bad").await.unwrap().is_none(),
        "a kv row without its log row"
    );
    let good = good.unwrap();
    assert_eq!(
        good,
        before + 1,
        "the failed write must not take a revision"
    );
    let next = store.create("/c", b"3".to_vec()).await.unwrap();
    assert_eq!(next, good + 1);
}
