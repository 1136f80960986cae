//! The kubeconfig as kubectl reads it: `--kubeconfig`, else every file in `$KUBECONFIG` merged
//! (the first file to set a value wins), else `~/.kube/config`; with none of them, the local
//! kubelite server's admin kubeconfig when it is readable (as `k3s kubectl` does).

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::args::{ConfigCommand, Global};
use crate::Error;

/// Where `kubelite server` writes the admin kubeconfig by default.
pub const SERVER_KUBECONFIG: &str = "/etc/kubelite/kubelite.yaml";

/// A connection to the cluster and the namespace commands work in.
pub struct Context {
    pub client: kube::Client,
    pub namespace: String,
    pub cluster_url: String,
    pub discovery: crate::discovery::Cache,
}

impl Context {
    pub async fn connect(global: &Global) -> Result<Self, Error> {
        let (kubeconfig, _) = load(global)?;
        let options = KubeConfigOptions {
            context: global.context.clone(),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::other(e.to_string()))?;
        match global.request_timeout.as_deref().map(parse_duration) {
            Some(Ok(t)) if t.is_zero() => {
                config.read_timeout = None;
                config.write_timeout = None;
            }
            Some(Ok(t)) => {
                config.read_timeout = Some(t);
                config.write_timeout = Some(t);
            }
            Some(Err(e)) => return Err(e),
            None => {
                // kubectl waits as long as a command takes (watches, logs -f, exec).
                config.read_timeout = None;
            }
        }
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        // kubectl shows a 429 or 503 as it comes (drain retries evictions itself, every 5 s);
        // kube's own retry would hide it behind minutes of back-off.
        config.default_retry = false;
        let cluster_url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(Error::from)?;
        Ok(Context {
            client,
            namespace,
            cluster_url: cluster_url.trim_end_matches('/').to_string(),
            discovery: Default::default(),
        })
    }
}

/// Reads `5s`, `2m`, `1h30m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, Error> {
    let bad = || Error::other(format!("invalid duration {text:?}"));
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(bad()),
        };
        total += value * unit;
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// The merged kubeconfig and the file a change to it is written to.
pub fn load(global: &Global) -> Result<(Kubeconfig, PathBuf), Error> {
    let read = |path: &Path| {
        Kubeconfig::read_from(path).map_err(|e| Error::other(format!("{}: {e}", path.display())))
    };
    if let Some(path) = &global.kubeconfig {
        return Ok((read(path)?, path.clone()));
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let mut merged: Option<Kubeconfig> = None;
        for path in paths.iter().filter(|p| p.exists()) {
            let next = read(path)?;
            merged = Some(match merged {
                None => next,
                Some(m) => m.merge(next).map_err(|e| Error::other(e.to_string()))?,
            });
        }
        if let (Some(config), Some(first)) = (merged, paths.first()) {
            return Ok((config, first.clone()));
        }
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
    if let Some(path) = home.filter(|p| p.exists()) {
        return Ok((read(&path)?, path));
    }
    let server = PathBuf::from(SERVER_KUBECONFIG);
    if std::fs::metadata(&server).is_ok() {
        return Ok((read(&server)?, server));
    }
    Err(Error::other(
        "no kubeconfig: give --kubeconfig, set KUBECONFIG, or start `kubelite server` (which \
         writes /etc/kubelite/kubelite.yaml)",
    ))
}

fn save(config: &Kubeconfig, path: &Path) -> Result<(), Error> {
    let yaml = serde_saphyr::to_string(config).map_err(Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, yaml.as_bytes())?;
    // Keep the original file's permissions: a kubeconfig holds credentials.
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(file.path(), meta.permissions())?;
    }
    file.persist(path).map_err(|e| Error::other(e.error))?;
    Ok(())
}

/// `kubectl config …`
pub fn command(global: &Global, command: ConfigCommand) -> Result<(), Error> {
    let (mut config, path) = load(global)?;
    match command {
        ConfigCommand::CurrentContext => match &config.current_context {
            Some(name) if !name.is_empty() => println!("{name}"),
            _ => return Err(Error::other("current-context is not set")),
        },
        ConfigCommand::UseContext { name } => {
            if !config.contexts.iter().any(|c| c.name == name) {
                return Err(Error::other(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            config.current_context = Some(name.clone());
            save(&config, &path)?;
            println!("Switched to context \"{name}\".");
        }
        ConfigCommand::SetContext {
            name,
            current,
            cluster,
            user,
        } => {
            let name = match (name, current) {
                (Some(n), false) => n,
                (None, true) => config
                    .current_context
                    .clone()
                    .ok_or_else(|| Error::other("no current context is set"))?,
                _ => return Err(Error::other("give a context name or --current, not both")),
            };
            let existed = config.contexts.iter().any(|c| c.name == name);
            if !existed {
                config.contexts.push(kube::config::NamedContext {
                    name: name.clone(),
                    context: Some(Default::default()),
                    other: Default::default(),
                });
            }
            let entry = config
                .contexts
                .iter_mut()
                .find(|c| c.name == name)
                .and_then(|c| {
                    if c.context.is_none() {
                        c.context = Some(Default::default());
                    }
                    c.context.as_mut()
                })
                .ok_or_else(|| Error::other("context vanished"))?;
            if let Some(ns) = &global.namespace {
                entry.namespace = Some(ns.clone());
            }
            if let Some(cluster) = cluster {
                entry.cluster = cluster;
            }
            if let Some(user) = user {
                entry.user = Some(user);
            }
            save(&config, &path)?;
            let verb = if existed { "modified" } else { "created" };
            println!("Context \"{name}\" {verb}.");
        }
        ConfigCommand::GetContexts => {
            let current = config.current_context.clone().unwrap_or_default();
            let mut rows = vec![vec![
                "CURRENT".to_string(),
                "NAME".into(),
                "CLUSTER".into(),
                "AUTHINFO".into(),
                "NAMESPACE".into(),
            ]];
            for c in &config.contexts {
                let ctx = c.context.clone().unwrap_or_default();
                rows.push(vec![
                    if c.name == current {
                        "*".into()
                    } else {
                        String::new()
                    },
                    c.name.clone(),
                    ctx.cluster,
                    ctx.user.unwrap_or_default(),
                    ctx.namespace.unwrap_or_default(),
                ]);
            }
            let mut table = crate::output::Table::default();
            for row in rows {
                table.push(row);
            }
            print!("{}", table.render());
        }
        ConfigCommand::View {
            raw,
            minify,
            output,
        } => {
            if minify {
                minify_config(&mut config);
            }
            let mut value = serde_json::to_value(&config).map_err(Error::other)?;
            if value.get("preferences").is_none_or(Value::is_null) {
                value["preferences"] = serde_json::json!({});
            }
            if !raw {
                redact(&mut value);
            }
            let text = match output.as_deref() {
                Some("json") => crate::output::json(&value),
                _ => crate::output::yaml(&value),
            };
            print!("{text}");
        }
    }
    Ok(())
}

fn minify_config(config: &mut Kubeconfig) {
    let current = config.current_context.clone().unwrap_or_default();
    config.contexts.retain(|c| c.name == current);
    let ctx = config.contexts.first().and_then(|c| c.context.clone());
    let cluster = ctx.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let user = ctx.and_then(|c| c.user).unwrap_or_default();
    config.clusters.retain(|c| c.name == cluster);
    config.auth_infos.retain(|a| a.name == user);
}

/// kubectl prints `DATA+OMITTED` and `REDACTED` in place of certificates and keys.
fn redact(value: &mut serde_json::Value) {
    for cluster in value["clusters"].as_array_mut().into_iter().flatten() {
        if cluster["cluster"]
            .get("certificate-authority-data")
            .is_some()
        {
            cluster["cluster"]["certificate-authority-data"] = "DATA+OMITTED".into();
        }
    }
    for user in value["users"].as_array_mut().into_iter().flatten() {
        for key in ["client-certificate-data", "client-key-data", "token"] {
            if user["user"].get(key).is_some() {
                user["user"][key] = if key == "token" {
                    "REDACTED".into()
                } else {
                    "DATA+OMITTED".into()
                };
            }
        }
    }
}
