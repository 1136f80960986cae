//! Probes that can be told to fail, as kuard's are: `GET <base>` answers `200 ok`, or `500` while
//! failures are asked for; `GET <base>/api` shows the setting and the latest calls;
//! `PUT <base>/api` with `{"failNext": N}` fails the next N calls (N < 0: every call).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// How many calls the API remembers.
const HISTORY: usize = 20;

#[derive(Default)]
struct Calls {
    fail_next: i64,
    last_id: u64,
    /// Newest first: (id, wall-clock seconds, monotonic time, status code).
    history: VecDeque<(u64, u64, Instant, u16)>,
}

/// One probe's state; clones share it.
#[derive(Clone, Default)]
pub struct DebugProbe(Arc<Mutex<Calls>>);

#[derive(Deserialize)]
struct Config {
    #[serde(default, rename = "failNext")]
    fail_next: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    probe_path: String,
    fail_next: i64,
    history: Vec<Entry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    id: u64,
    when: String,
    rel_when: String,
    code: u16,
}

impl DebugProbe {
    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The probe's routes under `base` (`/healthy`, `/ready`).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, base: &str) -> Router<S> {
        Router::new()
            .route(base, get(answer))
            .route(&format!("{base}/api"), get(status).put(configure))
            .with_state(self.clone())
    }

    fn status(&self, path: &str) -> Status {
        let calls = self.calls();
        Status {
            probe_path: path.to_string(),
            fail_next: calls.fail_next,
            history: calls
                .history
                .iter()
                .map(|(id, wall, at, code)| Entry {
                    id: *id,
                    when: format!("{wall}"),
                    rel_when: format!("{} seconds ago", at.elapsed().as_secs()),
                    code: *code,
                })
                .collect(),
        }
    }
}

async fn answer(State(probe): State<DebugProbe>) -> (StatusCode, String) {
    let mut calls = probe.calls();
    let (code, body) = match calls.fail_next {
        0 => (StatusCode::OK, "ok".to_string()),
        n if n < 0 => (StatusCode::INTERNAL_SERVER_ERROR, "fail, permanent".into()),
        n => {
            calls.fail_next = n - 1;
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("fail, {} left", n - 1),
            )
        }
    };
    calls.last_id += 1;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let entry = (calls.last_id, wall, Instant::now(), code.as_u16());
    calls.history.push_front(entry);
    calls.history.truncate(HISTORY);
    (code, body)
}

async fn status(State(probe): State<DebugProbe>, uri: axum::http::Uri) -> Json<Status> {
    let path = uri.path().trim_end_matches("/api").to_string();
    Json(probe.status(&path))
}

async fn configure(
    State(probe): State<DebugProbe>,
    uri: axum::http::Uri,
    Json(config): Json<Config>,
) -> Json<Status> {
    probe.calls().fail_next = config.fail_next;
    status(State(probe), uri).await
}
