//! `Status` errors: the one error type every API failure becomes, worded as Kubernetes words it.

use serde_json::{json, Value};

/// One field-level cause of an `Invalid` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A failed API request, ready to be sent as a `metav1.Status` body. Boxed: errors travel through
/// every handler's `Result`, and the happy path should not pay for their size.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {}", .0.reason, .0.code, .0.message)]
pub struct ApiError(Box<Failure>);

/// The fields of an [`ApiError`] (reached through `Deref`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `details.name`, `details.group`, `details.kind`.
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

/// A resource as error messages name it: `pods`, or `deployments.apps` outside the core group.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl std::ops::Deref for ApiError {
    type Target = Failure;
    fn deref(&self) -> &Failure {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut Failure {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError(Box::new(Failure {
            code,
            reason: reason.to_string(),
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after: None,
        }))
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.group = (!group.is_empty()).then(|| group.to_string());
        self.kind = Some(kind.to_string());
        self.name = (!name.is_empty()).then(|| name.to_string());
        self
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!("{} \"{name}\" not found", qualified(resource, group));
        Self::new(404, "NotFound", msg).with_details(group, resource, name)
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!("{} \"{name}\" already exists", qualified(resource, group));
        Self::new(409, "AlreadyExists", msg).with_details(group, resource, name)
    }

    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            qualified(resource, group)
        );
        Self::new(409, "Conflict", msg).with_details(group, resource, name)
    }

    /// The optimistic-concurrency conflict of an update with a stale `resourceVersion`.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one cause per field error; `kind` is the object's Kind (`Pod`).
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        errors: &crate::validation::ErrorList,
    ) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let list = errors.summary();
        let msg = format!("{qualified_kind} \"{name}\" is invalid: {list}");
        let mut err = Self::new(422, "Invalid", msg).with_details(group, kind, name);
        err.causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.kind.cause_reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        err
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = if name.is_empty() {
            format!("{} is forbidden: {why}", qualified(resource, group))
        } else {
            format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(resource, group)
            )
        };
        Self::new(403, "Forbidden", msg).with_details(group, resource, name)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        let mut err = Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        );
        err.causes.push(Cause {
            reason: String::new(),
            message,
            field: String::new(),
        });
        err
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        let mut details = serde_json::Map::new();
        if let Some(name) = &self.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = &self.group {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &self.kind {
            details.insert("kind".into(), json!(kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| {
                    let mut cause = serde_json::Map::new();
                    if !c.reason.is_empty() {
                        cause.insert("reason".into(), json!(c.reason));
                    }
                    cause.insert("message".into(), json!(c.message));
                    if !c.field.is_empty() {
                        cause.insert("field".into(), json!(c.field));
                    }
                    Value::Object(cause)
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = self.retry_after {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status["code"] = json!(self.code);
        status
    }
}

/// A `Status` of success, as DELETE of a collection or some subresources answer.
pub fn success_status(details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_exists_reads_like_kubernetes() {
        let s = ApiError::already_exists("", "pods", "web").to_status();
        assert_eq!(s["message"], "pods \"web\" already exists");
        assert_eq!(s["reason"], "AlreadyExists");
        assert_eq!(s["details"]["kind"], "pods");
        assert_eq!(s["code"], 409);
    }

    #[test]
    fn grouped_resources_are_qualified() {
        let s = ApiError::not_found("coordination.k8s.io", "leases", "n1").to_status();
        assert_eq!(s["message"], "leases.coordination.k8s.io \"n1\" not found");
        assert_eq!(s["details"]["group"], "coordination.k8s.io");
    }

    #[test]
    fn unauthorized_has_no_details() {
        let s = ApiError::unauthorized().to_status();
        assert!(s.get("details").is_none());
        assert_eq!(s["code"], 401);
    }
}
