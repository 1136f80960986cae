//! A container's environment as the kubelet builds it: the `kubernetes` Service's variables, then
//! `envFrom` (ConfigMaps and Secrets, with prefixes), then `env` (values with `$(VAR)` expanded,
//! or taken from the pod's fields, its resources, ConfigMap and Secret keys); and `$(VAR)` in
//! `command` and `args`. A reference that cannot be resolved stops the container from starting
//! with Kubernetes' `CreateContainerConfigError` message.

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use kube::ResourceExt;

use crate::machine::{referenced, PodApi};

/// The variables, in order (later names override earlier ones), and the `envFrom` keys skipped
/// as invalid names, by source (`configMap default/app`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Environment {
    pub vars: Vec<(String, String)>,
    pub skipped: Vec<(String, Vec<String>)>,
}

impl Environment {
    fn set(&mut self, name: String, value: String) {
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn expand(&self, s: &str) -> String {
        expand(s, |name| self.get(name).map(str::to_string))
    }
}

/// Kubernetes' `$(VAR)` expansion: a defined name is replaced, an undefined one left as written,
/// `$$` is a literal `$`.
pub fn expand(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A name `envFrom` may define (`[-._a-zA-Z][-._a-zA-Z0-9]*`).
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The environment of `c` in `pod`, after `service` (the `KUBERNETES_SERVICE_*` variables).
pub async fn resolve<A: PodApi>(
    api: &A,
    pod: &Pod,
    c: &Container,
    service: &[(String, String)],
) -> Result<Environment, String> {
    let ns = pod.namespace().unwrap_or_default();
    let mut env = Environment::default();
    for (k, v) in service {
        env.set(k.clone(), v.clone());
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (source, data) = if let Some(r) = &from.config_map_ref {
            let source = format!("configMap {ns}/{}", r.name);
            let found = api.config_map(&ns, &r.name).await;
            let Some(cm) = referenced(found, "configmap", &r.name, r.optional)? else {
                continue;
            };
            (source, cm.data.unwrap_or_default())
        } else if let Some(r) = &from.secret_ref {
            let source = format!("secret {ns}/{}", r.name);
            let found = api.secret(&ns, &r.name).await;
            let Some(secret) = referenced(found, "secret", &r.name, r.optional)? else {
                continue;
            };
            let data = secret.data.unwrap_or_default().into_iter();
            (source, data.map(|(k, v)| (k, text(v))).collect())
        } else {
            continue;
        };
        let mut skipped = Vec::new();
        for (key, value) in data {
            let name = format!("{prefix}{key}");
            if is_env_name(&name) {
                env.set(name, value);
            } else {
                skipped.push(name);
            }
        }
        if !skipped.is_empty() {
            env.skipped.push((source, skipped));
        }
    }
    for var in c.env.iter().flatten() {
        if let Some(value) = value_of(api, pod, &ns, var, &env).await? {
            env.set(var.name.clone(), value);
        }
    }
    Ok(env)
}

/// One `env` entry's value; `None` for an optional reference to something absent.
async fn value_of<A: PodApi>(
    api: &A,
    pod: &Pod,
    ns: &str,
    var: &EnvVar,
    env: &Environment,
) -> Result<Option<String>, String> {
    let Some(from) = &var.value_from else {
        return Ok(Some(env.expand(var.value.as_deref().unwrap_or(""))));
    };
    if let Some(f) = &from.field_ref {
        return crate::downward::field(pod, &f.field_path).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        return crate::downward::resource(pod, r).map(Some);
    }
    if let Some(r) = &from.config_map_key_ref {
        let found = api.config_map(ns, &r.name).await;
        let Some(cm) = referenced(found, "configmap", &r.name, r.optional)? else {
            return Ok(None);
        };
        let value = cm.data.unwrap_or_default().remove(&r.key);
        return key_value(value, r.optional, &r.key, "ConfigMap", ns, &r.name);
    }
    if let Some(r) = &from.secret_key_ref {
        let found = api.secret(ns, &r.name).await;
        let Some(secret) = referenced(found, "secret", &r.name, r.optional)? else {
            return Ok(None);
        };
        let value = secret.data.unwrap_or_default().remove(&r.key).map(text);
        return key_value(value, r.optional, &r.key, "Secret", ns, &r.name);
    }
    Ok(Some(String::new()))
}

/// A Secret's value as a variable holds it.
fn text(value: k8s_openapi::ByteString) -> String {
    String::from_utf8_lossy(&value.0).into_owned()
}

/// A key's value; `None` when it is absent and the reference optional, Kubernetes' error
/// otherwise.
fn key_value(
    value: Option<String>,
    optional: Option<bool>,
    key: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<String>, String> {
    match value {
        Some(v) => Ok(Some(v)),
        None if optional == Some(true) => Ok(None),
        None => Err(format!("couldn't find key {key} in {kind} {ns}/{name}")),
    }
}

/// `c` as it runs: every variable a plain value, `$(VAR)` in its command and arguments expanded.
pub fn applied(c: &Container, env: &Environment) -> Container {
    let expand_all = |list: &Option<Vec<String>>| {
        list.as_ref()
            .map(|l| l.iter().map(|s| env.expand(s)).collect())
    };
    Container {
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        env: Some(
            env.vars
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(value.clone()),
                    value_from: None,
                })
                .collect(),
        ),
        env_from: None,
        ..c.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let vars = |n: &str| match n {
            "A" => Some("1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand("x$(A)y", vars), "x1y");
        assert_eq!(expand("$(B)", vars), "$(B)", "undefined stays as written");
        assert_eq!(expand("$$(A)", vars), "$(A)", "$$ escapes");
        assert_eq!(expand("$(EMPTY)-", vars), "-");
        assert_eq!(expand("cost $5 $(A", vars), "cost $5 $(A");
    }

    #[test]
    fn env_from_names_must_be_valid() {
        assert!(is_env_name("APP_MODE"));
        assert!(is_env_name("app.mode-1"));
        assert!(!is_env_name("1ST"));
        assert!(!is_env_name("has space"));
    }
}
