//! The cluster's certificates: a CA, the API server's serving certificate and the admin client
//! certificate, made on first start (rcgen) and reused after; plus the admin kubeconfig and the
//! node join token.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::Digest;

use crate::Error;

/// PEM files of one certificate and its key.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Everything TLS and authentication need, as loaded from (or written to) `<data-dir>/server/tls`.
#[derive(Clone, Debug)]
pub struct Pki {
    pub ca: CertPair,
    pub serving: CertPair,
    pub admin: CertPair,
    pub kubelet_client: CertPair,
    /// The token node agents join with.
    pub node_token: String,
    /// The key service-account tokens are signed with (PKCS#8 PEM), and its public half.
    pub service_account_key_pem: String,
    pub service_account_public_pem: String,
}

fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::io(path, e))
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Valid from last year for ten years, so clock skew between hosts does not matter.
fn set_validity(params: &mut CertificateParams) {
    use chrono::Datelike;
    let y = chrono::Utc::now().year();
    params.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(y + 10, 1, 1);
}

fn name(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn serving_sans(extra_ips: &[IpAddr]) -> Vec<SanType> {
    let mut sans: Vec<SanType> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .filter_map(|d| Some(SanType::DnsName((*d).try_into().ok()?)))
    .collect();
    if let Ok(host) = fs::read_to_string("/etc/hostname") {
        if let Ok(h) = host.trim().try_into() {
            sans.push(SanType::DnsName(h));
        }
    }
    let mut ips: Vec<IpAddr> = vec![
        "127.0.0.1".parse().expect("literal"),
        "::1".parse().expect("literal"),
    ];
    ips.extend(extra_ips.iter().filter(|ip| !ip.is_unspecified()));
    ips.dedup();
    sans.extend(ips.into_iter().map(SanType::IpAddress));
    sans
}

impl Pki {
    /// Loads the PKI from `dir`, creating whatever is missing. `ips` are addresses the serving
    /// certificate must be valid for besides loopback; a serving certificate that lacks one is
    /// re-issued from the same CA.
    pub fn load_or_create(dir: &Path, ips: &[IpAddr]) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let p = |f: &str| -> PathBuf { dir.join(f) };

        let ca = if p("ca.crt").exists() && p("ca.key").exists() {
            CertPair {
                cert_pem: read(&p("ca.crt"))?,
                key_pem: read(&p("ca.key"))?,
            }
        } else {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name("kubelite-ca", None);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            set_validity(&mut params);
            let cert = params.self_signed(&key)?;
            let pair = CertPair {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            write_private(&p("ca.key"), &pair.key_pem)?;
            write_private(&p("ca.crt"), &pair.cert_pem)?;
            pair
        };
        let ca_key = KeyPair::from_pem(&ca.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca_key)?;

        let wanted_ips: Vec<String> = ips
            .iter()
            .filter(|ip| !ip.is_unspecified())
            .map(|ip| ip.to_string())
            .collect();
        let recorded = fs::read_to_string(p("serving.ips")).unwrap_or_default();
        let covered = wanted_ips
            .iter()
            .all(|ip| recorded.lines().any(|l| l == ip));
        let serving = if covered && p("serving.crt").exists() && p("serving.key").exists() {
            CertPair {
                cert_pem: read(&p("serving.crt"))?,
                key_pem: read(&p("serving.key"))?,
            }
        } else {
            let mut all_ips: Vec<IpAddr> =
                recorded.lines().filter_map(|l| l.parse().ok()).collect();
            all_ips.extend(ips.iter().copied());
            all_ips.sort();
            all_ips.dedup();
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name("kube-apiserver", None);
            params.subject_alt_names = serving_sans(&all_ips);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            set_validity(&mut params);
            let cert = params.signed_by(&key, &issuer)?;
            let pair = CertPair {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            write_private(&p("serving.key"), &pair.key_pem)?;
            write_private(&p("serving.crt"), &pair.cert_pem)?;
            let list: Vec<String> = all_ips.iter().map(|ip| ip.to_string()).collect();
            write_private(&p("serving.ips"), &(list.join("\n") + "\n"))?;
            pair
        };

        let client_cert = |file: &str, cn: &str| -> Result<CertPair, Error> {
            let (crt, key_path) = (p(&format!("{file}.crt")), p(&format!("{file}.key")));
            if crt.exists() && key_path.exists() {
                return Ok(CertPair {
                    cert_pem: read(&crt)?,
                    key_pem: read(&key_path)?,
                });
            }
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name(cn, Some("system:masters"));
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            set_validity(&mut params);
            let cert = params.signed_by(&key, &issuer)?;
            let pair = CertPair {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            write_private(&key_path, &pair.key_pem)?;
            write_private(&crt, &pair.cert_pem)?;
            Ok(pair)
        };
        let admin = client_cert("admin", "system:admin")?;
        // What the API server presents to node agents when it proxies logs to them.
        let kubelet_client = client_cert("kubelet-client", "kube-apiserver-kubelet-client")?;

        let token_path = p("node-token");
        let ca_hash = hex::encode(sha2::Sha256::digest(ca.cert_pem.as_bytes()));
        let existing = if token_path.exists() {
            read(&token_path)?.trim().to_string()
        } else {
            String::new()
        };
        let node_token = if existing.starts_with(&format!("K10{ca_hash}::node:")) {
            existing
        } else {
            // k3s-style: the CA's hash lets a joining agent check the server before trusting it.
            let secret: [u8; 16] = rand::random();
            let token = format!("K10{ca_hash}::node:{}", hex::encode(secret));
            write_private(&token_path, &format!("{token}\n"))?;
            token
        };
        let sa_path = p("sa.key");
        let service_account_key_pem = if sa_path.exists() {
            read(&sa_path)?
        } else {
            let key = KeyPair::generate()?.serialize_pem();
            write_private(&sa_path, &key)?;
            key
        };
        let service_account_public_pem =
            KeyPair::from_pem(&service_account_key_pem)?.public_key_pem();
        Ok(Pki {
            ca,
            serving,
            admin,
            kubelet_client,
            node_token,
            service_account_key_pem,
            service_account_public_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::load_or_create(dir.path(), &[]).unwrap();
        let b = Pki::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(a.ca.cert_pem, b.ca.cert_pem);
        assert_eq!(a.serving.cert_pem, b.serving.cert_pem);
        assert_eq!(a.node_token, b.node_token);
        // A new address re-issues only the serving certificate.
        let c = Pki::load_or_create(dir.path(), &["10.9.8.7".parse().unwrap()]).unwrap();
        assert_eq!(a.ca.cert_pem, c.ca.cert_pem);
        assert_ne!(a.serving.cert_pem, c.serving.cert_pem);
        assert_eq!(a.admin.cert_pem, c.admin.cert_pem);
    }
}
