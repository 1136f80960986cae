//! The reviews, answered and never stored: `TokenReview` (who a bearer token names, as this
//! server authenticates it), `SelfSubjectReview` (`kubectl auth whoami`), and the access reviews
//! (`SubjectAccessReview`, `LocalSubjectAccessReview`, `SelfSubjectAccessReview` for
//! `kubectl auth can-i`, `SelfSubjectRulesReview` for `can-i --list`). kubelite has no
//! authorization yet (docs/SECURITY.md): every authenticated user may do everything, and the
//! access reviews say exactly that.

use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};

use api::ApiError;

use crate::auth::User;
use crate::rest::{self, Result, Target};
use crate::Server;

/// Why every access review is allowed.
pub const NO_AUTHORIZATION: &str =
    "kubelite has no authorization yet: every authenticated user may do everything";

/// The audience of the tokens this server issues and accepts.
const AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// POST of a review: the object sent, with its `status` filled in (201).
pub async fn create(
    server: &Server,
    target: &Target,
    user: Option<&User>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response> {
    let resource = target.resource;
    let mut review = rest::subresource_body(content_type, body, resource, resource.kind)?;
    let kind = review["kind"].as_str().unwrap_or(resource.kind);
    if kind != resource.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    review["apiVersion"] = json!(resource.api_version());
    review["kind"] = json!(resource.kind);
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = match resource.kind {
        "TokenReview" => token_review(server, &review["spec"]),
        "SelfSubjectReview" => json!({"userInfo": user_info(user)}),
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        _ => access_review(&review["spec"])?,
    };
    Ok(crate::http::json(201, &review))
}

/// `status` of a TokenReview: the user the token names, or not authenticated.
fn token_review(server: &Server, spec: &Value) -> Value {
    let token = spec["token"].as_str().unwrap_or_default();
    let user = crate::auth::identify_token(server, token);
    let wanted: Vec<&str> = spec["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let audience_ok = wanted.is_empty() || wanted.contains(&AUDIENCE);
    match user {
        Some(user) if audience_ok => json!({
            "authenticated": true,
            "user": user_info(Some(&user)),
            "audiences": [AUDIENCE],
        }),
        Some(_) => json!({"authenticated": false, "error": "token audiences do not match"}),
        None => json!({"authenticated": false}),
    }
}

/// `status` of an access review: allowed, and why; a spec that names nothing is refused.
fn access_review(spec: &Value) -> Result<Value> {
    let asks = spec.get("resourceAttributes").is_some_and(Value::is_object)
        || spec
            .get("nonResourceAttributes")
            .is_some_and(Value::is_object);
    if !asks {
        let mut errs = api::validation::ErrorList::new();
        errs.invalid(
            "spec.resourceAttributes",
            api::validation::BadValue::Raw("null".into()),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        );
        return Err(ApiError::invalid(
            "authorization.k8s.io",
            "SubjectAccessReview",
            "",
            &errs,
        ));
    }
    Ok(json!({"allowed": true, "reason": NO_AUTHORIZATION}))
}

/// A `UserInfo` as reviews carry it.
fn user_info(user: Option<&User>) -> Value {
    let (username, groups) = crate::auth::identity(user);
    let mut info = json!({"username": username, "groups": groups});
    if let Some(User::ServiceAccount(sa)) = user {
        if let Some(pod) = &sa.pod {
            info["extra"] = json!({"authentication.kubernetes.io/pod-name": [pod]});
        }
    }
    info
}
