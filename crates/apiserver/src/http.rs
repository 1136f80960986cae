//! HTTP plumbing shared by the handlers: JSON responses, `Status` errors, warnings, request bodies
//! with their size limit, and what the client accepts.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use api::ApiError;

/// The largest request body the server reads (kube-apiserver's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

fn base(status: u16, content_type: &'static str, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

pub fn json_bytes(status: u16, body: impl Into<Bytes>) -> Response {
    base(status, "application/json", Body::from(body.into()))
}

pub fn json(status: u16, value: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

pub fn text(status: u16, body: impl Into<String>) -> Response {
    base(status, "text/plain; charset=utf-8", Body::from(body.into()))
}

pub fn error_response(err: &ApiError) -> Response {
    json(err.code, &err.to_status())
}

/// Adds `Warning: 299 - "..."` headers, one per warning, as kubectl prints them.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// How much of an oversized body is read (and dropped) so the client can still read the 413.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a request body, refusing more than [`MAX_BODY`] bytes with 413. The rest of an oversized
/// body is drained first, so that clients which are still sending see the answer.
pub async fn read_body(mut body: Body) -> Result<Bytes, ApiError> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("error reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::too_large(format!(
            "Request entity too large: limit is {MAX_BODY}"
        )));
    }
    Ok(buf.freeze())
}

/// The request body as JSON bytes: JSON as is; YAML and Kubernetes protobuf converted; other
/// media types refused with 415. `resource` names the kind a protobuf body is expected to hold.
pub fn body_as_json(
    content_type: Option<&str>,
    body: Bytes,
    resource: &api::resource::Resource,
) -> Result<Bytes, ApiError> {
    let ct = content_type.unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or("").trim();
    match media {
        "application/json" | "" | "*/*" => Ok(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(&body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not UTF-8: {e}"))
            })?;
            let value: Value = serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("error converting YAML to JSON: {e}"))
            })?;
            Ok(Bytes::from(serde_json::to_vec(&value).unwrap_or_default()))
        }
        "application/vnd.kubernetes.protobuf" => {
            let value = crate::protobuf::decode(resource, &body)?;
            Ok(Bytes::from(serde_json::to_vec(&value).unwrap_or_default()))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// What representation the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wants {
    Object,
    Table,
    /// `PartialObjectMetadata` (`…List` for lists): each object's metadata alone.
    Metadata,
}

/// Negotiates the response: a Table when the client lists `as=Table` for `meta.k8s.io`,
/// metadata alone for `as=PartialObjectMetadata(List)`, plain JSON when it accepts JSON; 406
/// when it accepts none of them.
pub fn negotiate(accept: Option<&str>) -> Result<Wants, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Wants::Object);
    };
    let mut json_ok = false;
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let params: Vec<&str> = params.collect();
        let meta_k8s = params.contains(&"g=meta.k8s.io")
            && params.iter().any(|p| *p == "v=v1" || *p == "v=v1beta1");
        let json_like = matches!(media, "application/json" | "*/*" | "application/*");
        if meta_k8s && json_like {
            if params.contains(&"as=Table") {
                return Ok(Wants::Table);
            }
            if params.contains(&"as=PartialObjectMetadata")
                || params.contains(&"as=PartialObjectMetadataList")
            {
                return Ok(Wants::Metadata);
            }
        }
        let has_as = params.iter().any(|p| p.starts_with("as="));
        if json_like && !has_as {
            json_ok = true;
        }
    }
    if json_ok {
        Ok(Wants::Object)
    } else {
        Err(ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ))
    }
}

/// Parsed query parameters (repeated keys: the first wins).
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Query(url_pairs(q.unwrap_or("")))
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    /// Kubernetes' query booleans: absent, `0` and `false` (any case) are false; anything else true.
    pub fn flag(&self, k: &str) -> bool {
        self.get(k)
            .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
    }
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_negotiates_a_table() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(kubectl)).unwrap(), Wants::Table);
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            ))
            .unwrap(),
            Wants::Metadata
        );
        assert_eq!(negotiate(Some("application/json")).unwrap(), Wants::Object);
        assert_eq!(negotiate(None).unwrap(), Wants::Object);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"))
                .unwrap_err()
                .code,
            406
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Wants::Object
        );
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=true&x"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert!(q.flag("x"));
        assert!(!q.flag("missing"));
        assert!(Query::parse(Some("watch=True")).flag("watch"));
        assert!(!Query::parse(Some("watch=False")).flag("watch"));
        assert!(!Query::parse(Some("watch=0")).flag("watch"));
    }

    #[test]
    fn bodies_become_json() {
        let pods = api::resource::find("", "v1", "pods").unwrap();
        let yaml = Bytes::from_static(b"a: 1\nb: [x]\n");
        let out = body_as_json(Some("application/yaml"), yaml, pods).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            serde_json::json!({"a": 1, "b": ["x"]})
        );
        let other = body_as_json(Some("application/x-thing"), Bytes::new(), pods);
        assert_eq!(other.unwrap_err().code, 415);
        let bad_proto = body_as_json(
            Some("application/vnd.kubernetes.protobuf"),
            Bytes::new(),
            pods,
        );
        assert_eq!(bad_proto.unwrap_err().code, 400);
    }
}
