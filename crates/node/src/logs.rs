//! Container logs as `kubectl logs` shows them, read from the CRI-format files conmon writes:
//! one `<RFC 3339 time> <stream> <F|P> <text>` line per write, `P` marking a partial line.

use std::path::{Path, PathBuf};

/// `?tailLines=`, `?timestamps=`, `?limitBytes=` and friends.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
    pub since_seconds: Option<i64>,
    /// `?sinceTime=` (RFC 3339): lines written before it are left out.
    pub since_time: Option<k8s_openapi::jiff::Timestamp>,
}

/// Renders CRI log content as the user sees it.
pub fn render(content: &str, opts: &Options) -> String {
    let since = opts
        .since_seconds
        // Further back than a timestamp can go is everything: no line is left out.
        .and_then(|s| {
            k8s_openapi::jiff::Timestamp::now()
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(s))
                .ok()
        })
        .or(opts.since_time);
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for raw in content.lines() {
        let mut parts = raw.splitn(4, ' ');
        let (Some(ts), Some(_stream), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let text = parts.next().unwrap_or("");
        if let Some(since) = since {
            if ts
                .parse::<k8s_openapi::jiff::Timestamp>()
                .is_ok_and(|t| t < since)
            {
                continue;
            }
        }
        if partial.is_empty() && opts.timestamps {
            partial.push_str(ts);
            partial.push(' ');
        }
        partial.push_str(text);
        if tag != "P" {
            partial.push('\n');
            lines.push(std::mem::take(&mut partial));
        }
    }
    if !partial.is_empty() {
        lines.push(partial);
    }
    let start = opts
        .tail_lines
        .map(|n| lines.len().saturating_sub(n))
        .unwrap_or(0);
    let mut out: String = lines[start..].concat();
    if let Some(limit) = opts.limit_bytes {
        if out.len() > limit {
            let mut cut = limit;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
    }
    out
}

/// The log directory of a pod's container: `<logs>/<ns>_<pod>_<uid>/<container>`, the newest if
/// the name was reused.
pub fn container_dir(
    logs: &Path,
    namespace: &str,
    pod: &str,
    uid: Option<&str>,
    container: &str,
) -> Option<PathBuf> {
    let prefix = format!("{namespace}_{pod}_");
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(logs)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && uid.is_none_or(|u| name.ends_with(u))
        })
        .filter_map(|e| {
            Some((
                e.metadata().ok()?.modified().ok()?,
                e.path().join(container),
            ))
        })
        .filter(|(_, p)| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, p)| p)
}

/// The instances' log files, oldest first, as (restart number, path).
pub fn instances(dir: &Path) -> Vec<(i32, PathBuf)> {
    let mut out: Vec<(i32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n: i32 = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-11-25T15:38:45.273613822+00:00 stdout F Serving on HTTP on :8080\n\
2026-11-25T15:38:45.273669254+00:00 stderr F listen tcp :8080: bind: address already in use\n\
2026-11-25T15:38:46.000000000+00:00 stdout P part one \n\
2026-11-25T15:38:46.100000000+00:00 stdout F and two\n";

    #[test]
    fn since_further_back_than_time_goes_is_everything() {
        for since in [i64::MAX, i64::MIN] {
            let opts = Options {
                since_seconds: Some(since),
                ..Default::default()
            };
            assert_eq!(render(LOG, &opts).lines().count(), 3, "{since}");
        }
    }

    #[test]
    fn renders_lines_and_joins_partials() {
        let out = render(LOG, &Options::default());
        assert_eq!(out, "Serving on HTTP on :8080\nlisten tcp :8080: bind: address already in use\npart one and two\n");
    }

    #[test]
    fn tail_and_timestamps() {
        let out = render(
            LOG,
            &Options {
                tail_lines: Some(1),
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(
            out,
            "2026-11-25T15:38:46.000000000+00:00 part one and two\n"
        );
        let limited = render(
            LOG,
            &Options {
                limit_bytes: Some(7),
                ..Default::default()
            },
        );
        assert_eq!(limited, "Serving");
    }

    #[test]
    fn finds_instances_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("default_p_uid1").join("two");
        std::fs::create_dir_all(&c).unwrap();
        for n in [0, 2, 1] {
            std::fs::write(c.join(format!("{n}.log")), "").unwrap();
        }
        let found = container_dir(dir.path(), "default", "p", None, "two").unwrap();
        assert_eq!(found, c);
        let ns: Vec<i32> = instances(&found).into_iter().map(|(n, _)| n).collect();
        assert_eq!(ns, [0, 1, 2]);
        assert!(container_dir(dir.path(), "default", "q", None, "two").is_none());
    }
}
