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

fn kubeconfig_yaml(server: &str, tls: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{tls}contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n{user}"
    )
}

async fn client_from(yaml: &str) -> Result<kube::Client, JoinError> {
    let kc =
        kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| JoinError::Config(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| JoinError::Config(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| JoinError::Config(e.to_string()))
}

/// A client for `server` (`https://host:port`) authenticated by `token`, and the cluster CA.
pub async fn client(server: &str, token: &str) -> Result<(kube::Client, String), JoinError> {
    let hash = token
        .strip_prefix("K10")
        .and_then(|t| t.split_once("::"))
        .map(|(h, _)| h.to_string())
        .filter(|h| h.len() == 64)
        .ok_or(JoinError::BadToken)?;
    let insecure = client_from(&kubeconfig_yaml(
        server,
        "    insecure-skip-tls-verify: true\n",
        "    {}\n",
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
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
    let tls = format!("    certificate-authority-data: {ca_b64}\n");
    let client = client_from(&kubeconfig_yaml(
        server,
        &tls,
        &format!("    token: {token}\n"),
    ))
    .await?;
    Ok((client, ca))
}
