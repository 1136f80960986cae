//! Image references (`busybox`, `gcr.io/kuar-demo/kuard-amd64:1`, `name@sha256:…`), parsed and
//! normalized the way Docker and containerd do it.
//!
//! Normalization rules:
//! - The first path component is a registry if it contains `.` or `:`, is `localhost`, or has an
//!   uppercase letter; otherwise the registry is `docker.io`.
//! - `index.docker.io` is spelled `docker.io`; a one-component Docker Hub name gets `library/`.
//! - A reference with neither tag nor digest gets the tag `latest`.
//! - Repository path components are lowercase `[a-z0-9]` runs joined by `.`, `_`, `__` or `-`s;
//!   tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a digest is `algorithm:encoded` (and for
//!   `sha256`, exactly 64 lowercase hex characters).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The registry of names that do not name one.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag of references that name neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_NAMESPACE: &str = "library";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `gcr.io`, `localhost:5000`, …
    pub registry: String,
    /// `library/busybox`, `kuar-demo/kuard-amd64`, …
    pub repository: String,
    /// `latest` when the input named neither a tag nor a digest.
    pub tag: Option<String>,
    /// `sha256:<hex>`, when the input pinned a manifest digest.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `input`; [`Error::BadReference`] if it is not a valid reference.
    pub fn parse(input: &str) -> Result<Reference> {
        let bad = || Error::BadReference(input.to_string());

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) if is_valid_digest(digest) => (rest, Some(digest.to_string())),
            Some(_) => return Err(bad()),
            None => (input, None),
        };
        // A tag follows the last ':' after the last '/'; an earlier ':' belongs to a registry port.
        let name_start = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[name_start..].rfind(':') {
            Some(i) => {
                let (name, tag) = rest.split_at(name_start + i);
                (name, Some(&tag[1..]))
            }
            None => (rest, None),
        };
        if tag.is_some_and(|tag| !is_valid_tag(tag)) {
            return Err(bad());
        }

        let (registry, path) = split_registry(name);
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_string()
        };

        if !is_valid_registry(registry)
            || !repository.split('/').all(is_valid_path_component)
            || registry.len() + 1 + repository.len() > MAX_NAME_LEN
            // Docker refuses names that look like image ids, so ids can never be mistaken for names.
            || (registry == DEFAULT_REGISTRY && is_hex_id(path))
        {
            return Err(bad());
        }

        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

/// Splits `name` into (registry, path), using Docker's rule for when the first component is a host.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

/// `host[:port]`, where host is dot-separated DNS labels or a bracketed IPv6 address.
fn is_valid_registry(registry: &str) -> bool {
    let (host, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let Some((ip, rest)) = bracketed.split_once(']') else {
            return false;
        };
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        if rest.is_empty() {
            return true;
        }
        let Some(port) = rest.strip_prefix(':') else {
            return false;
        };
        ("", Some(port))
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = if registry.starts_with('[') {
        host.is_empty()
    } else {
        !host.is_empty() && host.split('.').all(is_valid_host_label)
    };
    port_ok && host_ok
}

fn is_valid_host_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// Lowercase alphanumeric runs separated by exactly one of `.`, `_`, `__`, or a run of `-`.
fn is_valid_path_component(component: &str) -> bool {
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        if !(matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_valid_digest(digest: &str) -> bool {
    digest.parse::<oci_spec::image::Digest>().is_ok()
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn normalized(input: &str) -> String {
        Reference::parse(input)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
            .to_string()
    }

    #[test]
    fn docker_hub_names_are_normalized() {
        assert_eq!(normalized("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalized("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(
            normalized("library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalized("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalized("index.docker.io/library/busybox:1"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            normalized("bitnami/redis:7.2"),
            "docker.io/bitnami/redis:7.2"
        );
    }

    #[test]
    fn other_registries_are_kept() {
        assert_eq!(
            normalized("gcr.io/kuar-demo/kuard-amd64:1"),
            "gcr.io/kuar-demo/kuard-amd64:1"
        );
        assert_eq!(
            normalized("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(normalized("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalized("localhost/demo:1"), "localhost/demo:1");
        assert_eq!(normalized("[::1]:5000/a/b:c"), "[::1]:5000/a/b:c");
        assert_eq!(
            normalized("Example.COM/a_b__c---d.e"),
            "Example.COM/a_b__c---d.e:latest"
        );

        let r = Reference::parse("localhost:5000/team/app:v2").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert_eq!(r.digest, None);
        assert_eq!(r.name(), "localhost:5000/team/app");
    }

    #[test]
    fn digests_replace_the_default_tag() {
        let r = Reference::parse(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(DIGEST));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{DIGEST}"));

        let both = normalized(&format!("quay.io/a/b:1@{DIGEST}"));
        assert_eq!(both, format!("quay.io/a/b:1@{DIGEST}"));
    }

    #[test]
    fn invalid_references_are_rejected() {
        let long_tag = format!("busybox:{}", "t".repeat(129));
        let long_name = format!("example.com/{}", "a".repeat(250));
        let hex_name = "a".repeat(64);
        for input in [
            "",
            "busybox:",
            ":1",
            "Busybox",
            "a//b",
            "/busybox",
            "busybox/",
            "-busybox",
            "busy..box",
            "busy box",
            "busybox:a:b",
            "busybox@sha256:xyz",
            "busybox@sha256:0123",
            "busybox@",
            "localhost:port/x",
            "exa_mple.com/x",
            long_tag.as_str(),
            long_name.as_str(),
            hex_name.as_str(),
        ] {
            assert!(
                matches!(Reference::parse(input), Err(Error::BadReference(_))),
                "{input:?} should be rejected"
            );
        }
    }
}
