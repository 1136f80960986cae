//! `imagePullSecrets`: registry credentials from the pod's `kubernetes.io/dockerconfigjson` and
//! `kubernetes.io/dockercfg` Secrets, as the kubelet reads them.

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use runtime::image::pull::Credential;
use serde_json::Value;

use crate::machine::PodApi;

/// The credentials one Secret holds (none when it is of another type or unreadable).
pub fn from_secret(secret: &Secret) -> Vec<Credential> {
    let data = secret.data.clone().unwrap_or_default();
    let (key, nested) = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => (".dockerconfigjson", true),
        Some("kubernetes.io/dockercfg") => (".dockercfg", false),
        _ => return Vec::new(),
    };
    let Some(config) = data
        .get(key)
        .and_then(|b| serde_json::from_slice::<Value>(&b.0).ok())
    else {
        return Vec::new();
    };
    let auths = if nested { &config["auths"] } else { &config };
    auths
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(registry, entry)| {
            let (username, password) = user_and_password(entry)?;
            Some(Credential {
                registry: registry.clone(),
                username,
                password,
            })
        })
        .collect()
}

/// `username`/`password`, or `auth` as base64 of `user:password`.
fn user_and_password(entry: &Value) -> Option<(String, String)> {
    if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Some((u.to_string(), p.to_string()));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str()?)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Every credential the pod's pull secrets give, and the names of those that do not exist.
pub async fn credentials<A: PodApi>(api: &A, pod: &Pod) -> (Vec<Credential>, Vec<String>) {
    let ns = pod.namespace().unwrap_or_default();
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    let names = pod
        .spec
        .iter()
        .flat_map(|s| s.image_pull_secrets.iter().flatten())
        .map(|r| r.name.clone());
    for name in names {
        match api.secret(&ns, &name).await {
            Ok(Some(secret)) => found.extend(from_secret(&secret)),
            _ => missing.push(name),
        }
    }
    (found, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(type_: &str, key: &str, json: Value) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some(
                [(
                    key.to_string(),
                    k8s_openapi::ByteString(json.to_string().into_bytes()),
                )]
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn docker_configs_give_their_credentials() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let json = serde_json::json!({"auths": {"registry.example:5000": {"auth": auth}}});
        let found = from_secret(&secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            json,
        ));
        assert_eq!(
            found,
            [Credential {
                registry: "registry.example:5000".into(),
                username: "alice".into(),
                password: "s3cret".into()
            }]
        );
        let old = serde_json::json!({"docker.io": {"username": "bob", "password": "pw"}});
        let found = from_secret(&secret("kubernetes.io/dockercfg", ".dockercfg", old));
        assert_eq!(found[0].username, "bob");
        let opaque = secret("Opaque", ".dockerconfigjson", serde_json::json!({}));
        assert!(from_secret(&opaque).is_empty());
    }
}
