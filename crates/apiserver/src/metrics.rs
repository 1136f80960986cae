//! `/metrics`: request counters and latencies per verb, resource and code, object counts, and
//! process figures, in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
struct Series {
    count: u64,
    seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn record(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            let s = m
                .entry((verb.to_string(), resource.to_string(), code))
                .or_default();
            s.count += 1;
            s.seconds += took.as_secs_f64();
        }
    }

    /// The exposition text. `objects` counts stored objects per resource.
    pub fn render(&self, objects: &BTreeMap<String, usize>, uptime: Duration) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        let requests = self
            .requests
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((v, r, c), s)| (v.clone(), r.clone(), *c, s.count, s.seconds))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for (verb, resource, code, count, _) in &requests {
            out.push_str(&format!("apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {count}\n"));
        }
        out.push_str("# HELP apiserver_request_duration_seconds_sum Total time spent serving requests.\n# TYPE apiserver_request_duration_seconds_sum counter\n");
        for (verb, resource, code, _, secs) in &requests {
            out.push_str(&format!("apiserver_request_duration_seconds_sum{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {secs}\n"));
        }
        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n# TYPE apiserver_storage_objects gauge\n");
        for (resource, n) in objects {
            out.push_str(&format!(
                "apiserver_storage_objects{{resource=\"{resource}\"}} {n}\n"
            ));
        }
        out.push_str(&format!("# HELP process_uptime_seconds Seconds since the server started.\n# TYPE process_uptime_seconds gauge\nprocess_uptime_seconds {}\n", uptime.as_secs_f64()));
        if let Some(rss) = resident_bytes() {
            out.push_str(&format!("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n"));
        }
        out
    }
}

/// Resident memory of this process, from /proc.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
