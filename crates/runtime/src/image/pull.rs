//! Pulls from any registry v2 (oci-client). A pulled image is written as an OCI image archive and
//! imported through the same verified path as archives from disk, so a pull and an import can
//! never store different things. Registries on `localhost`/`127.0.0.1` are spoken to over plain
//! HTTP, as containerd does.

use std::io::Write;
use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest;
use oci_client::secrets::RegistryAuth;
use sha2::Digest;

use super::Reference;
use crate::{Error, Result};

fn pull_error(reference: &str, e: impl std::fmt::Display) -> Error {
    Error::Command {
        command: format!("pull {reference}"),
        message: e.to_string(),
    }
}

fn is_local(registry: &str) -> bool {
    let host = registry.split(':').next().unwrap_or("");
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn append(tar: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, data)
}

/// A user name and password for one registry (`docker.io`, `registry.example:5000`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// The registry a credential key names: `https://index.docker.io/v1/`, `docker.io` and
/// `index.docker.io` all mean Docker Hub; a scheme or path is ignored.
fn registry_of(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// The credential for `registry` among `credentials`, if any.
pub fn credential_for<'a>(registry: &str, credentials: &'a [Credential]) -> Option<&'a Credential> {
    let wanted = registry_of(registry);
    credentials
        .iter()
        .find(|c| registry_of(&c.registry) == wanted)
}

/// Pulls `reference` and writes it as an OCI image archive at `dest`, authenticating with the
/// credential for its registry when `credentials` has one; returns the normalized name.
pub async fn pull_to_archive(
    reference: &str,
    dest: &Path,
    credentials: &[Credential],
) -> Result<String> {
    let parsed = Reference::parse(reference)?;
    let name = parsed.to_string();
    let oci_ref: oci_client::Reference = name.parse().map_err(|e| pull_error(reference, e))?;
    let protocol = if is_local(&parsed.registry) {
        ClientProtocol::HttpsExcept(vec![parsed.registry.clone()])
    } else {
        ClientProtocol::Https
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let accepted = vec![
        manifest::IMAGE_LAYER_MEDIA_TYPE,
        manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE,
        manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
        manifest::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
    ];
    let auth = match credential_for(&parsed.registry, credentials) {
        Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
        None => RegistryAuth::Anonymous,
    };
    let image = client
        .pull(&oci_ref, &auth, accepted)
        .await
        .map_err(|e| pull_error(reference, e))?;
    let pulled_manifest = image
        .manifest
        .as_ref()
        .ok_or_else(|| pull_error(reference, "the registry sent no manifest"))?;

    // Re-describe what was pulled as an OCI layout; the importer verifies every digest.
    let mut manifest = pulled_manifest.clone();
    manifest.media_type = Some(manifest::OCI_IMAGE_MEDIA_TYPE.to_string());
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_digest = sha256(&manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": manifest::OCI_IMAGE_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
        }],
    });
    let file = std::fs::File::create(dest).map_err(|e| Error::io(dest, e))?;
    let mut tar = tar::Builder::new(file);
    let io = |e: std::io::Error| Error::io(dest, e);
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    append(&mut tar, "index.json", &serde_json::to_vec(&index)?).map_err(io)?;
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    append(&mut tar, &blob(&manifest_digest), &manifest_bytes).map_err(io)?;
    append(&mut tar, &blob(&manifest.config.digest), &image.config.data).map_err(io)?;
    for (layer, descriptor) in image.layers.iter().zip(&manifest.layers) {
        append(&mut tar, &blob(&descriptor.digest), &layer.data).map_err(io)?;
    }
    let mut file = tar.into_inner().map_err(io)?;
    file.flush().map_err(io)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_by_registry_whatever_their_key_looks_like() {
        let c = |r: &str| Credential {
            registry: r.into(),
            username: "u".into(),
            password: "p".into(),
        };
        let list = [c("https://index.docker.io/v1/"), c("127.0.0.1:5000")];
        assert_eq!(credential_for("docker.io", &list), Some(&list[0]));
        assert_eq!(credential_for("127.0.0.1:5000", &list), Some(&list[1]));
        assert_eq!(credential_for("gcr.io", &list), None);
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(is_local("localhost:5000"));
        assert!(is_local("127.0.0.1:5000"));
        assert!(!is_local("gcr.io"));
        assert!(!is_local("registry.example.com:443"));
    }
}
