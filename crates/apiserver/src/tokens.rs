//! Service-account tokens: JWTs this server signs with its own key (ES256) for
//! `serviceaccounts/token`, and accepts back as bearer tokens while the service account (and the
//! pod a token is bound to) still exist, as kube-apiserver's bound tokens work.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The issuer and default audience of every token.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The shortest and longest lifetimes a TokenRequest may ask for.
pub const MIN_EXPIRATION: i64 = 600;
pub const MAX_EXPIRATION: i64 = 1 << 32;

/// A name and uid, as the claims carry objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub jti: String,
    pub nbf: i64,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: Bound,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("{0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// Signs and checks tokens with the server's service-account key.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
}

impl Tokens {
    /// From the PKCS#8 PEM private key and its public key PEM.
    pub fn new(private_pem: &str, public_pem: &str) -> Result<Self, TokenError> {
        use base64::Engine as _;
        use sha2::Digest;
        let der = rustls_pemfile::read_one_from_slice(public_pem.as_bytes())
            .ok()
            .flatten()
            .and_then(|(item, _)| match item {
                rustls_pemfile::Item::SubjectPublicKeyInfo(spki) => Some(spki.to_vec()),
                _ => None,
            })
            .ok_or_else(|| TokenError::Key("the public key is not a PEM public key".into()))?;
        let kid =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));
        Ok(Tokens {
            encoding: EncodingKey::from_ec_pem(private_pem.as_bytes())?,
            decoding: DecodingKey::from_ec_pem(public_pem.as_bytes())?,
            kid,
        })
    }

    /// A token for `bound`, valid for `lifetime` from now for `audiences`.
    pub fn issue(
        &self,
        bound: Bound,
        audiences: Vec<String>,
        lifetime: Duration,
    ) -> Result<(String, i64), TokenError> {
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let exp = now + lifetime.as_secs() as i64;
        let claims = Claims {
            aud: audiences,
            exp,
            iat: now,
            iss: ISSUER.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            sub: format!(
                "system:serviceaccount:{}:{}",
                bound.namespace, bound.serviceaccount.name
            ),
            kubernetes: bound,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok((jsonwebtoken::encode(&header, &claims, &self.encoding)?, exp))
    }

    /// The claims of a token this server signed for the API's audience, if it is valid now.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims)
    }

    /// Whether a bearer credential looks like a JWT at all (three dot-separated parts).
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let key = rcgen::KeyPair::generate().expect("key");
        Tokens::new(&key.serialize_pem(), &key.public_key_pem()).expect("tokens")
    }

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let t = tokens();
        let bound = Bound {
            namespace: "default".into(),
            serviceaccount: Ref {
                name: "default".into(),
                uid: "sa-uid".into(),
            },
            pod: Some(Ref {
                name: "p".into(),
                uid: "pod-uid".into(),
            }),
            node: None,
        };
        let (token, _) = t
            .issue(bound.clone(), vec![ISSUER.into()], Duration::from_secs(600))
            .expect("issue");
        let claims = t.verify(&token).expect("verify");
        assert_eq!(claims.sub, "system:serviceaccount:default:default");
        assert_eq!(claims.kubernetes, bound);
        assert!(tokens().verify(&token).is_err(), "another key's token");
        let (other_audience, _) = t
            .issue(bound, vec!["vault".into()], Duration::from_secs(600))
            .expect("issue");
        assert!(t.verify(&other_audience).is_err(), "not for the API");
    }
}
