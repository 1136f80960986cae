//! Joining a cluster with a token, as k3s agents do: the token `K10<sha256 of the CA>::node:<secret>`
//! lets the agent fetch the server's CA without trusting it, check the hash, and then talk to the
//! server with verified TLS and the token as its bearer credential.

use base64::Engine;
use sha2::Digest;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the token is not of the form K10<ca-hash>::node:<secret>")]
    BadToken,
    #[error("fetching the server's CA: {0}")]
    Fetch(#[source] kube::Error),
    #[error("the server's CA does not match the token (got sha256 {0})")]
    CaMismatch(String),
    #[error("client configuration: {0}")]
    Config(String),
}

/// A kubeconfig with one cluster, one user and one context, built as data (never spliced into
/// YAML text, so no value can change its structure).
pub fn kubeconfig(
    server: &str,
    cluster: kube::config::Cluster,
    user: kube::config::AuthInfo,
) -> kube::config::Kubeconfig {
    use kube::config::{Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
    let name = "default".to_string();
    Kubeconfig {
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(server.into()),
                ..cluster
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.clone(),
            auth_info: Some(user),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(Context {
                cluster: name.clone(),
                user: Some(name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(name),
        ..Default::default()
    }
}

async fn client_from(kc: kube::config::Kubeconfig) -> Result<kube::Client, JoinError> {
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| JoinError::Config(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| JoinError::Config(e.to_string()))
}

/// A client for `server` (`https://host:port`) authenticated by `token`, and the cluster CA.
/// (A token that does not fit the K10 form is refused before anything is sent.)
pub async fn client(server: &str, token: &str) -> Result<(kube::Client, String), JoinError> {
    let hash = token
        .strip_prefix("K10")
        .and_then(|t| t.split_once("::"))
        .map(|(h, _)| h.to_string())
        .filter(|h| h.len() == 64)
        .ok_or(JoinError::BadToken)?;
    let insecure = client_from(kubeconfig(
        server,
        kube::config::Cluster {
            insecure_skip_tls_verify: Some(true),
            ..Default::default()
        },
        Default::default(),
    ))
    .await?;
    let request = http::Request::get("/cacerts")
        .body(Vec::new())
        .map_err(|e| JoinError::Config(e.to_string()))?;
    let ca = insecure
        .request_text(request)
        .await
        .map_err(JoinError::Fetch)?;
    let got = hex::encode(sha2::Sha256::digest(ca.as_bytes()));
    if got != hash {
        return Err(JoinError::CaMismatch(got));
    }
    let cluster = kube::config::Cluster {
        certificate_authority_data: Some(
            base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()),
        ),
        ..Default::default()
    };
    let user = kube::config::AuthInfo {
        token: Some(secrecy::SecretString::from(token.to_string())),
        ..Default::default()
    };
    let client = client_from(kubeconfig(server, cluster, user)).await?;
    Ok((client, ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubeconfig_keeps_hostile_values_as_values() {
        let user = kube::config::AuthInfo {
            token: Some(secrecy::SecretString::from(
                "K10x::node:a\nusers: []\n- name: evil".to_string(),
            )),
            ..Default::default()
        };
        let kc = kubeconfig("https://127.0.0.1:6443", Default::default(), user);
        let yaml = serde_saphyr::to_string(&kc).unwrap();
        let back = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(back.auth_infos.len(), 1);
        let token = back.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .token
            .as_ref();
        use secrecy::ExposeSecret;
        assert_eq!(
            token.unwrap().expose_secret(),
            "K10x::node:a\nusers: []\n- name: evil"
        );
    }
}
