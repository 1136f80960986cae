//! What the budget and quota controllers share: caches of pods and of their own kind, kept by
//! watches, and a loop that acts once changes settle and again at a fixed period.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use serde::de::DeserializeOwned;

/// How long changes are gathered before the controller acts.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// A cache of every object of kind `K`, and a stream that yields each time one changes.
fn cached<K>(client: &kube::Client) -> (Store<K>, impl Stream<Item = ()> + Send)
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    let changes = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects()
    .map(|_| ());
    (store, changes)
}

/// Caches of pods and of `K`; `act(pods, objects)` runs after each settled change and every
/// `resync`, until the client's server goes away.
pub async fn run<K, F, Fut>(client: kube::Client, resync: Duration, mut act: F)
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    F: FnMut(Store<Pod>, Store<K>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (pods, pod_changes) = cached::<Pod>(&client);
    let (objects, object_changes) = cached::<K>(&client);
    let changes = futures::stream::select(pod_changes, object_changes);
    futures::pin_mut!(changes);
    let mut tick = tokio::time::interval(resync);
    loop {
        tokio::select! {
            change = changes.next() => {
                if change.is_none() {
                    return;
                }
                tokio::time::sleep(DEBOUNCE).await;
            }
            _ = tick.tick() => {}
        }
        act(pods.clone(), objects.clone()).await;
    }
}
