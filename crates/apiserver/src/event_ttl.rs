//! Events expire (`--event-ttl`, one hour by default): kube-apiserver stores each event under an
//! etcd lease renewed on every write, so an event no one has touched for the TTL disappears, and
//! watchers see it deleted. Here a sweep does the same on either datastore.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::Server;

/// Where both event APIs keep their objects.
const EVENTS: &str = "/registry/events/";

/// Deletes, every `ttl / 10` (at most a minute), the events last written more than `ttl` ago.
pub async fn run(server: Arc<Server>, ttl: Duration) {
    let period = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::time::sleep(period).await;
        let expired = expired(&server, ttl);
        for (key, revision) in expired {
            // A write since the list renews the event: the delete then conflicts, as it should.
            if let Err(err) = server.store.delete(&key, Some(revision)).await {
                tracing::debug!(%key, %err, "an expired event was not deleted");
            }
        }
    }
}

/// The keys and revisions of the events whose last write is older than `ttl`.
fn expired(server: &Server, ttl: Duration) -> Vec<(String, i64)> {
    let Ok(ttl) = chrono::TimeDelta::from_std(ttl) else {
        return Vec::new();
    };
    let now = chrono::Utc::now();
    let (events, _) = server.cache.list(EVENTS, None);
    events
        .iter()
        .filter(|e| last_write(&e.value()).is_some_and(|at| now - at > ttl))
        .map(|e| (e.key.clone(), e.revision))
        .collect()
}

/// When an event was last written: the latest of the times it carries.
fn last_write(event: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    [
        &event["metadata"]["creationTimestamp"],
        &event["lastTimestamp"],
        &event["eventTime"],
        &event["series"]["lastObservedTime"],
    ]
    .into_iter()
    .filter_map(|t| t.as_str())
    .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    .map(|t| t.with_timezone(&chrono::Utc))
    .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_write_is_the_latest_time_an_event_carries() {
        let event = serde_json::json!({
            "metadata": {"creationTimestamp": "2026-12-01T10:00:00Z"},
            "lastTimestamp": "2026-12-01T10:30:00Z",
            "eventTime": null,
            "series": {"lastObservedTime": "2026-12-01T10:45:00.123456Z"},
        });
        let at = last_write(&event).expect("a time");
        assert_eq!(at.to_rfc3339(), "2026-12-01T10:45:00.123456+00:00");
        assert_eq!(last_write(&serde_json::json!({})), None);
    }
}
