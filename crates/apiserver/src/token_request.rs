//! `serviceaccounts/token` (authentication.k8s.io/v1 TokenRequest): tokens for a service
//! account, optionally bound to a pod; and the reverse, the identity a bearer token names while
//! everything it is bound to still exists.

use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use api::resource;
use api::validation::{BadValue, ErrorList};
use api::ApiError;

use crate::rest::{Result, Target};
use crate::tokens::{Bound, Ref, ISSUER, MAX_EXPIRATION, MIN_EXPIRATION};
use crate::Server;

/// The lifetime kube-api-access volumes ask for: such pod-bound tokens are valid a year, while
/// the answer says an hour, so clients renew them without failing when they are late.
const WARN_ONLY_EXPIRATION: i64 = 3607;
const EXTENDED_EXPIRATION: Duration = Duration::from_secs(365 * 24 * 3600);

fn cached(server: &Server, plural: &str, namespace: &str, name: &str) -> Option<Value> {
    let r = resource::find("", "v1", plural)?;
    Some(server.cache.get(&r.key(Some(namespace), name))?.value())
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

fn invalid(errs: &ErrorList) -> ApiError {
    ApiError::invalid("authentication.k8s.io", "TokenRequest", "", errs)
}

/// POST `.../serviceaccounts/NAME/token`.
pub async fn create(
    server: &Server,
    target: &Target,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<axum::response::Response> {
    let body = crate::http::body_as_json(content_type, body, target.resource)?;
    let cannot = |e: serde_json::Error| {
        ApiError::bad_request(format!(
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {e}"
        ))
    };
    let mut value: Value = serde_json::from_slice(&body).map_err(cannot)?;
    // The status is the server's to write (clients send an empty one).
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    let mut request: TokenRequest = serde_json::from_value(value).map_err(cannot)?;
    let (namespace, name) = (
        target.namespace.clone().unwrap_or_default(),
        target.name.clone().unwrap_or_default(),
    );
    check(&request, &name)?;
    crate::rest::consistent(server).await?;
    let account = cached(server, "serviceaccounts", &namespace, &name)
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", &name))?;
    let pod = bound_pod(server, &request, &namespace, &name)?;
    let spec = &mut request.spec;
    if spec.audiences.is_empty() {
        spec.audiences = vec![ISSUER.into()];
    }
    let seconds = *spec.expiration_seconds.get_or_insert(3600);
    let lifetime = match &pod {
        Some(_) if seconds == WARN_ONLY_EXPIRATION => EXTENDED_EXPIRATION,
        _ => Duration::from_secs(seconds as u64),
    };
    let bound = Bound {
        namespace: namespace.clone(),
        serviceaccount: Ref {
            name: name.clone(),
            uid: uid(&account),
        },
        node: pod
            .as_ref()
            .and_then(|p| p["spec"]["nodeName"].as_str())
            .map(|n| Ref {
                name: n.to_string(),
                uid: String::new(),
            }),
        pod: pod.as_ref().map(|p| Ref {
            name: p["metadata"]["name"].as_str().unwrap_or("").to_string(),
            uid: uid(p),
        }),
    };
    let (token, _) = server
        .tokens
        .issue(bound, spec.audiences.clone(), lifetime)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let reported = now
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(now);
    request.metadata.name = Some(name);
    request.metadata.namespace = Some(namespace);
    request.metadata.creation_timestamp = Some(Time(now));
    request.status = Some(TokenRequestStatus {
        token,
        expiration_timestamp: Time(reported),
    });
    let mut answer =
        serde_json::to_value(&request).map_err(|e| ApiError::internal(e.to_string()))?;
    answer["apiVersion"] = "authentication.k8s.io/v1".into();
    answer["kind"] = "TokenRequest".into();
    Ok(crate::http::json(201, &answer))
}

fn check(request: &TokenRequest, name: &str) -> Result<()> {
    let mut errs = ErrorList::new();
    if let Some(given) = request
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty() && *n != name)
    {
        errs.invalid(
            "metadata.name",
            BadValue::Str(given.into()),
            "must match the service account name if specified",
        );
    }
    if let Some(secs) = request.spec.expiration_seconds {
        if secs < MIN_EXPIRATION {
            errs.invalid(
                "spec.expirationSeconds",
                BadValue::Int(secs),
                "may not specify a duration less than 10 minutes",
            );
        } else if secs > MAX_EXPIRATION {
            errs.invalid(
                "spec.expirationSeconds",
                BadValue::Int(secs),
                "may not specify a duration larger than 2^32 seconds",
            );
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid(&errs))
    }
}

/// The pod a request binds its token to, after checking it is that pod and runs as `account`.
fn bound_pod(
    server: &Server,
    request: &TokenRequest,
    namespace: &str,
    account: &str,
) -> Result<Option<Value>> {
    let Some(reference) = &request.spec.bound_object_ref else {
        return Ok(None);
    };
    let kind = reference.kind.as_deref().unwrap_or("");
    if kind != "Pod" {
        let version = reference.api_version.as_deref().unwrap_or("");
        return Err(ApiError::bad_request(format!(
            "cannot bind token to object of type {version}, Kind={kind}"
        )));
    }
    let name = reference.name.as_deref().unwrap_or("");
    let pod = cached(server, "pods", namespace, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    if let Some(wanted) = reference.uid.as_deref().filter(|u| !u.is_empty()) {
        if wanted != uid(&pod) {
            let why = format!("the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated");
            return Err(ApiError::conflict("", "pods", name, &why));
        }
    }
    if pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default")
        != account
    {
        return Err(ApiError::bad_request(format!(
            "cannot bind token for serviceaccount \"{account}\" to pod running with different serviceaccount name."
        )));
    }
    Ok(Some(pod))
}

/// Who a bearer token names: `None` unless this server signed it for the API and its service
/// account, and the pod it is bound to, are still the ones it was issued for.
pub fn authenticate(server: &Server, token: &str) -> Option<crate::auth::ServiceAccountUser> {
    let claims = server.tokens.verify(token).ok()?;
    let bound = claims.kubernetes;
    let account = cached(
        server,
        "serviceaccounts",
        &bound.namespace,
        &bound.serviceaccount.name,
    )?;
    if uid(&account) != bound.serviceaccount.uid {
        return None;
    }
    if let Some(pod_ref) = &bound.pod {
        let pod = cached(server, "pods", &bound.namespace, &pod_ref.name)?;
        if uid(&pod) != pod_ref.uid {
            return None;
        }
    }
    Some(crate::auth::ServiceAccountUser {
        namespace: bound.namespace,
        name: bound.serviceaccount.name,
        pod: bound.pod.map(|p| p.name),
    })
}
