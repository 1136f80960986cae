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
