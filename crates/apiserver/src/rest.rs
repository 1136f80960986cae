//! The verbs on resources: get, list, create, update, patch, delete, deletecollection, and the
//! `pods/binding` subresource. Each write runs decode → metadata → admission/defaults →
//! validation → store, and answers with the object or a `Status` as Kubernetes does.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use store::StoreError;

use api::meta;
use api::patch::{self, PatchType};
use api::registry::{self, FieldValidation};
use api::resource::{self, Resource};
use api::selector::Selector;
use api::table::{self, IncludeObject};
use api::ApiError;

use crate::cache::Cached;
use crate::http::{self, json_bytes, with_warnings, Query, Wants};
use crate::Server;

/// The object or collection a request addresses.
#[derive(Clone, Debug)]
pub struct Target {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    fn key(&self) -> String {
        self.resource.key(self.ns(), self.name())
    }
    fn not_found(&self) -> ApiError {
        ApiError::not_found(self.resource.group, self.resource.plural, self.name())
    }
}

pub type Result<T> = std::result::Result<T, ApiError>;

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(err.to_string())
}

fn store_error(target: &Target, err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound { .. } => target.not_found(),
        StoreError::AlreadyExists { .. } => {
            ApiError::already_exists(target.resource.group, target.resource.plural, target.name())
        }
        StoreError::Conflict { .. } => {
            ApiError::stale(target.resource.group, target.resource.plural, target.name())
        }
        other => internal(other),
    }
}

/// Waits until the cache has every write the store has acknowledged (a consistent read).
pub async fn consistent(server: &Server) -> Result<()> {
    let rev = server.store.current_revision().await.map_err(internal)?;
    if server.cache.wait_for(rev).await {
        Ok(())
    } else {
        Err(ApiError::timeout(format!(
            "Timeout: Too large resource version: {rev}, current: {}",
            server.cache.revision()
        )))
    }
}

fn parse_stored(target: &Target, bytes: &[u8], revision: i64) -> Result<Value> {
    let mut v: Value = serde_json::from_slice(bytes).map_err(internal)?;
    meta::meta_mut(&mut v).insert("resourceVersion".into(), json!(revision.to_string()));
    Ok(registry::from_storage(target.resource, v))
}

fn encode_for_store(resource: &Resource, obj: &Value) -> Result<Vec<u8>> {
    let mut stored = registry::to_storage(resource, obj.clone());
    meta::meta_mut(&mut stored).remove("resourceVersion");
    let bytes = serde_json::to_vec(&stored).map_err(internal)?;
    if bytes.len() > meta::MAX_STORED_OBJECT {
        // What kube-apiserver answers when etcd refuses such a write, on either store.
        return Err(ApiError::new(500, "", "etcdserver: request is too large"));
    }
    Ok(bytes)
}

/// The stored object `target` names and its revision (404 when there is none).
pub(crate) async fn read(server: &Server, target: &Target) -> Result<(Value, i64)> {
    let current = server
        .store
        .get(&target.key())
        .await
        .map_err(internal)?
        .ok_or_else(|| target.not_found())?;
    let obj = parse_stored(target, &current.value, current.mod_revision)?;
    Ok((obj, current.mod_revision))
}

/// Every stored object of `target`'s resource in its namespace, with their revisions.
pub(crate) async fn read_all(server: &Server, target: &Target) -> Result<Vec<(Value, i64)>> {
    let (listed, _) = server
        .store
        .list(&target.resource.prefix(target.ns()))
        .await
        .map_err(internal)?;
    listed
        .iter()
        .map(|kv| {
            Ok((
                parse_stored(target, &kv.value, kv.mod_revision)?,
                kv.mod_revision,
            ))
        })
        .collect()
}

/// What a write of an object read at some revision did.
pub(crate) enum Written {
    /// Stored, at this revision.
    At(i64),
    /// Someone else wrote it since it was read.
    Conflict,
}

/// Stores `obj` as `target` if it is still at `revision` (no admission or validation: for
/// writes the server makes itself, as subresources do).
pub(crate) async fn write(
    server: &Server,
    target: &Target,
    obj: &Value,
    revision: i64,
) -> Result<Written> {
    let encoded = encode_for_store(target.resource, obj)?;
    match server.store.update(&target.key(), encoded, revision).await {
        Ok(rev) => Ok(Written::At(rev)),
        Err(StoreError::Conflict { .. }) => Ok(Written::Conflict),
        Err(e) => Err(store_error(target, e)),
    }
}

fn with_revision(mut obj: Value, rev: i64) -> Value {
    meta::meta_mut(&mut obj).insert("resourceVersion".into(), json!(rev.to_string()));
    obj
}

/// One object in the representation the client asked for.
pub fn object_response(
    resource: &Resource,
    wants: Wants,
    include: IncludeObject,
    obj: &Value,
    status: u16,
) -> Response {
    match wants {
        Wants::Table => {
            let rv = meta::resource_version(obj).map(str::to_string);
            http::json(
                status,
                &table::table(resource, &[obj], rv.as_deref(), None, include, true),
            )
        }
        Wants::Object => http::json(status, obj),
        Wants::Metadata => http::json(status, &meta::partial(obj)),
    }
}

fn dry_run(q: &Query, kind: &str) -> Result<bool> {
    let values = q.all("dryRun");
    if values.is_empty() {
        return Ok(false);
    }
    if values.iter().all(|v| *v == "All") {
        return Ok(true);
    }
    let list: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    Err(ApiError::new(
        422,
        "Invalid",
        format!(
            "{kind}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{{{}}}: supported values: \"All\"",
            list.join(", ")
        ),
    ))
}

// ---------------------------------------------------------------- reads

pub async fn get(server: &Server, target: &Target, q: &Query, wants: Wants) -> Result<Response> {
    if q.get("resourceVersion") != Some("0") {
        consistent(server).await?;
    }
    let cached = server
        .cache
        .get(&target.key())
        .ok_or_else(|| target.not_found())?;
    let obj = registry::from_storage(target.resource, cached.value());
    let include = IncludeObject::parse(q.get("includeObject")).map_err(ApiError::bad_request)?;
    Ok(object_response(target.resource, wants, include, &obj, 200))
}

/// Label and field selectors from the query, checked against what the resource supports.
pub fn selectors(
    resource: &Resource,
    labels: Option<&str>,
    fields: Option<&str>,
) -> Result<(Selector, Selector)> {
    let labels = Selector::parse_labels(labels.unwrap_or("")).map_err(ApiError::bad_request)?;
    let fields = Selector::parse_fields(fields.unwrap_or("")).map_err(ApiError::bad_request)?;
    let supported = registry::fields(resource, &json!({}));
    for key in fields.keys() {
        if !supported.contains_key(key) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {key}"
            )));
        }
    }
    Ok((labels, fields))
}

pub fn matches(c: &Cached, labels: &Selector, fields: &Selector) -> bool {
    labels.matches(&c.labels) && fields.matches(&c.fields)
}

/// kube-apiserver's answer to a continue token older than what it can still serve.
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

/// The table rows of the stored objects, made in parallel when there are many (each thread
/// decodes, reads and frees its own objects).
fn rows_of(
    resource: &'static Resource,
    items: &[Arc<Cached>],
    include: IncludeObject,
) -> Vec<Value> {
    const PER_THREAD: usize = 128;
    let now = chrono::Utc::now();
    let decode = |chunk: &[Arc<Cached>]| -> Vec<Value> {
        chunk
            .iter()
            .map(|c| {
                table::row(
                    resource,
                    &registry::from_storage(resource, c.value()),
                    include,
                    now,
                )
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < 2 * PER_THREAD || threads < 2 {
        return decode(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || decode(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn list_kind(resource: &Resource) -> String {
    format!("{}List", resource.kind)
}

pub async fn list(server: &Server, target: &Target, q: &Query, wants: Wants) -> Result<Response> {
    use base64::Engine;
    let resource = target.resource;
    let (labels, fields) = selectors(resource, q.get("labelSelector"), q.get("fieldSelector"))?;
    let rv_param = q.get("resourceVersion").filter(|s| !s.is_empty());
    let continue_param = q.get("continue").filter(|s| !s.is_empty());
    if let Some(rv) = rv_param {
        if rv.parse::<i64>().is_err() {
            return Err(ApiError::bad_request(format!(
                "invalid resource version: {rv}"
            )));
        }
        if continue_param.is_some() {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
    }
    let limit: usize = match q.get("limit") {
        None | Some("") => 0,
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
            .max(0) as usize,
    };
    // rv=0 means "any state" and ignores limit, as the watch cache does.
    let limit = if rv_param == Some("0") { 0 } else { limit };
    if rv_param != Some("0") {
        consistent(server).await?;
    }
    let prefix = resource.prefix(target.ns());
    let (all, revision) = match continue_param {
        Some(token) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
            let t: ContinueToken = serde_json::from_slice(&raw)
                .map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
            let after = format!("{prefix}{}", t.start.trim_end_matches('\0'));
            // Every page is served at the first page's revision, as etcd serves them.
            let items = server
                .cache
                .list_at(&prefix, Some(&after), t.rv)
                .map_err(|_| ApiError::gone(CONTINUE_EXPIRED))?;
            (items, t.rv)
        }
        None => server.cache.list(&prefix, None),
    };
    let mut items: Vec<Arc<Cached>> = Vec::new();
    let mut more = false;
    for c in all {
        if !matches(&c, &labels, &fields) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            more = true;
            break;
        }
        items.push(c);
    }
    let continue_token = if more {
        let last = items
            .last()
            .map(|c| c.key[prefix.len()..].to_string())
            .unwrap_or_default();
        let token = ContinueToken {
            v: "meta.k8s.io/v1".into(),
            rv: revision,
            start: format!("{last}\0"),
        };
        Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&token).map_err(internal)?),
        )
    } else {
        None
    };
    let rv = revision.to_string();
    match wants {
        Wants::Table => {
            let include =
                IncludeObject::parse(q.get("includeObject")).map_err(ApiError::bad_request)?;
            // Decoding every object is the bulk of a large table: off the executor, and
            // spread over the cores.
            let table = tokio::task::spawn_blocking(move || {
                let rows = rows_of(resource, &items, include);
                table::table_of_rows(resource, rows, Some(&rv), continue_token.as_deref(), true)
            })
            .await
            .map_err(internal)?;
            Ok(http::json(200, &table))
        }
        Wants::Metadata => {
            let mut list_meta = json!({"resourceVersion": rv});
            if let Some(c) = &continue_token {
                list_meta["continue"] = json!(c);
            }
            let items: Vec<Value> = items.iter().map(|c| meta::partial(&c.value())).collect();
            Ok(http::json(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                        "metadata": list_meta, "items": items}),
            ))
        }
        Wants::Object => {
            let mut meta = json!({"resourceVersion": rv});
            if let Some(c) = &continue_token {
                meta["continue"] = json!(c);
            }
            // Splice the cached JSON of each item instead of re-serializing every object.
            let head = json!({"kind": list_kind(resource), "apiVersion": resource.api_version(), "metadata": meta});
            let mut out = serde_json::to_vec(&head).map_err(internal)?;
            out.pop();
            out.extend_from_slice(b",\"items\":[");
            let converts = resource.group == "events.k8s.io";
            for (i, c) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if converts {
                    let v = registry::from_storage(resource, c.value());
                    out.extend_from_slice(&serde_json::to_vec(&v).map_err(internal)?);
                } else {
                    out.extend_from_slice(&c.json);
                }
            }
            out.extend_from_slice(b"]}");
            Ok(json_bytes(200, out))
        }
    }
}

// ---------------------------------------------------------------- create

async fn namespace_exists(
    server: &Server,
    resource: &Resource,
    ns: &str,
    name: &str,
) -> Result<()> {
    let key = resource::find("", "v1", "namespaces")
        .expect("namespaces are served")
        .key(None, ns);
    let found = match server.cache.get(&key) {
        Some(c) => Some(c),
        None => {
            consistent(server).await?;
            server.cache.get(&key)
        }
    };
    match found {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(c) if meta::is_deleting(&c.value()) => {
            let mut err = ApiError::forbidden(
                resource.group,
                resource.plural,
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            );
            err.causes.push(api::status::Cause {
                reason: "NamespaceTerminating".into(),
                message: format!("namespace {ns} is being terminated"),
                field: "metadata.namespace".into(),
            });
            Err(err)
        }
        Some(_) => Ok(()),
    }
}

/// Creates `obj` (already decoded) through admission, validation and the store.
/// Returns the stored object with its resourceVersion (or the would-be object on dry run).
pub async fn create_object(
    server: &Server,
    target: &Target,
    mut obj: Value,
    dry: bool,
) -> Result<Value> {
    let resource = target.resource;
    // A Service's addresses are chosen and stored one Service at a time.
    let _allocating = if (resource.group, resource.kind) == ("", "Service") {
        Some(server.allocating.lock().await)
    } else {
        None
    };
    let generated = meta::name(&obj).is_empty();
    meta::prepare_create(&mut obj, target.ns())?;
    if let Some(ns) = target.ns() {
        namespace_exists(server, resource, ns, meta::name(&obj)).await?;
    }
    registry::prepare_create(resource, &mut obj)?;
    crate::admission::admit_create(server, resource, target.ns(), &mut obj, dry).await?;
    let errs = registry::validate_create(resource, &obj)?;
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            resource.group,
            resource.kind,
            meta::name(&obj),
            &errs,
        ));
    }
    for attempt in 0..8 {
        let name = meta::name(&obj).to_string();
        let key = resource.key(target.ns(), &name);
        if dry {
            if server.cache.get(&key).is_some() {
                return Err(ApiError::already_exists(
                    resource.group,
                    resource.plural,
                    &name,
                ));
            }
            return Ok(obj);
        }
        match server
            .store
            .create(&key, encode_for_store(resource, &obj)?)
            .await
        {
            Ok(rev) => return Ok(with_revision(obj, rev)),
            Err(StoreError::AlreadyExists { .. }) if generated && attempt < 7 => {
                let prefix = meta::str_field(&obj, "generateName")
                    .unwrap_or("")
                    .to_string();
                let base: String = prefix.chars().take(58).collect();
                meta::meta_mut(&mut obj).insert(
                    "name".into(),
                    json!(format!("{base}{}", meta::random_suffix())),
                );
            }
            Err(StoreError::AlreadyExists { .. }) if generated => {
                let mut err = ApiError::already_exists(resource.group, resource.plural, &name);
                err.message
                    .push_str(", the server was not able to generate a unique name for the object");
                err.retry_after = Some(1);
                return Err(err);
            }
            Err(StoreError::AlreadyExists { .. }) => {
                return Err(ApiError::already_exists(
                    resource.group,
                    resource.plural,
                    &name,
                ))
            }
            Err(e) => return Err(internal(e)),
        }
    }
    Err(internal("could not create the object"))
}

pub async fn create(
    server: &Server,
    target: &Target,
    q: &Query,
    content_type: Option<&str>,
    body: Bytes,
    wants: Wants,
) -> Result<Response> {
    let resource = target.resource;
    if !resource.has_verb("create") {
        return Err(ApiError::method_not_allowed(format!(
            "create is not supported on resources of kind \"{}\"",
            resource.plural
        )));
    }
    let dry = dry_run(q, "CreateOptions")?;
    let mode = FieldValidation::parse(q.get("fieldValidation"))?;
    let body = http::body_as_json(content_type, body, resource)?;
    let decoded = registry::decode(resource, &body, mode)?;
    let obj = create_object(server, target, decoded.object, dry).await?;
    let include = IncludeObject::parse(q.get("includeObject")).map_err(ApiError::bad_request)?;
    Ok(with_warnings(
        object_response(resource, wants, include, &obj, 201),
        &decoded.warnings,
    ))
}

// ---------------------------------------------------------------- update and patch

/// How an update body is obtained from the current object.
enum Change<'a> {
    Replace(&'a Value),
    Patch(&'a [u8], PatchType),
}

/// How long a write retries when other writers keep changing the object under it.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// The read-modify-write loop shared by PUT and PATCH: retries when another writer got in
/// between, unless the client pinned a resourceVersion.
async fn modify(
    server: &Server,
    target: &Target,
    change: Change<'_>,
    mode: FieldValidation,
    dry: bool,
) -> Result<(Value, Vec<String>)> {
    let resource = target.resource;
    let key = target.key();
    let sub = target.subresource.as_deref();
    // As Kubernetes' guaranteed update does, an unpinned write tries again for as long as other
    // writers keep getting in first (bounded by time, not by a count that many writers exhaust).
    let deadline = std::time::Instant::now() + RETRY_FOR;
    while std::time::Instant::now() < deadline {
        let current = server
            .store
            .get(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| target.not_found())?;
        let old = parse_stored(target, &current.value, current.mod_revision)?;
        let (mut new, warnings) = match &change {
            Change::Replace(body) => ((*body).clone(), Vec::new()),
            Change::Patch(bytes, kind) => {
                // The patch applies to the object without its resourceVersion: only a patch that
                // sets one (kubectl edit does) makes it a precondition. Otherwise a concurrent
                // write means applying the patch again to the newer object, as Kubernetes does.
                let mut base = old.clone();
                meta::meta_mut(&mut base).remove("resourceVersion");
                let patched = patch::apply(resource, &base, bytes, *kind)?;
                let decoded = registry::decode_value(resource, patched, Vec::new(), mode)?;
                (decoded.object, decoded.warnings)
            }
        };
        // "0", like none at all, makes an update unconditional (Kubernetes parses both as 0).
        let pinned = meta::resource_version(&new)
            .filter(|rv| *rv != "0")
            .map(str::to_string);
        if let Some(rv) = &pinned {
            if rv.parse::<i64>().ok() != Some(current.mod_revision) {
                return Err(ApiError::stale(
                    resource.group,
                    resource.plural,
                    target.name(),
                ));
            }
        }
        {
            let m = meta::meta_mut(&mut new);
            m.insert("name".into(), json!(target.name()));
            if let Some(ns) = target.ns() {
                m.insert("namespace".into(), json!(ns));
            }
        }
        let errs = registry::prepare_and_validate_update(resource, &mut new, &old, sub)?;
        crate::admission::admit_update(server, resource, &new)?;
        if !errs.is_empty() {
            return Err(ApiError::invalid(
                resource.group,
                resource.kind,
                target.name(),
                &errs,
            ));
        }
        // Deletion completes once the last finalizer is gone.
        if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() {
            let grace = new["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(0);
            if grace == 0 {
                if dry {
                    return Ok((new, warnings));
                }
                return match server.store.delete(&key, Some(current.mod_revision)).await {
                    Ok((_, rev)) => Ok((with_revision(new, rev), warnings)),
                    Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                    Err(e) => Err(store_error(target, e)),
                };
            }
        }
        let encoded = encode_for_store(resource, &new)?;
        if encoded == encode_for_store(resource, &old)? || dry {
            // Nothing changed: no write, no new resourceVersion, no watch event.
            return Ok((with_revision(new, current.mod_revision), warnings));
        }
        match server
            .store
            .update(&key, encoded, current.mod_revision)
            .await
        {
            Ok(rev) => return Ok((with_revision(new, rev), warnings)),
            Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
            Err(e) => return Err(store_error(target, e)),
        }
    }
    Err(ApiError::stale(
        resource.group,
        resource.plural,
        target.name(),
    ))
}

pub async fn update(
    server: &Server,
    target: &Target,
    q: &Query,
    content_type: Option<&str>,
    body: Bytes,
    wants: Wants,
) -> Result<Response> {
    let resource = target.resource;
    let dry = dry_run(q, "UpdateOptions")?;
    let mode = FieldValidation::parse(q.get("fieldValidation"))?;
    let body = http::body_as_json(content_type, body, resource)?;
    let decoded = registry::decode(resource, &body, mode)?;
    let obj = decoded.object;
    let body_name = meta::name(&obj);
    if !body_name.is_empty() && body_name != target.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            target.name()
        )));
    }
    if let (Some(body_ns), Some(url_ns)) = (meta::namespace(&obj), target.ns()) {
        if body_ns != url_ns {
            return Err(ApiError::bad_request(format!(
                "the namespace of the object ({body_ns}) does not match the namespace on the request ({url_ns})"
            )));
        }
    }
    let (new, _) = modify(server, target, Change::Replace(&obj), mode, dry).await?;
    let include = IncludeObject::parse(q.get("includeObject")).map_err(ApiError::bad_request)?;
    Ok(with_warnings(
        object_response(resource, wants, include, &new, 200),
        &decoded.warnings,
    ))
}

pub async fn patch(
    server: &Server,
    target: &Target,
    q: &Query,
    content_type: Option<&str>,
    body: Bytes,
    wants: Wants,
) -> Result<Response> {
    let ct = content_type.unwrap_or("");
    let kind = PatchType::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ct})"),
        )
    })?;
    let dry = dry_run(q, "PatchOptions")?;
    let mode = FieldValidation::parse(q.get("fieldValidation"))?;
    let (new, warnings) = modify(server, target, Change::Patch(&body, kind), mode, dry).await?;
    let include = IncludeObject::parse(q.get("includeObject")).map_err(ApiError::bad_request)?;
    Ok(with_warnings(
        object_response(target.resource, wants, include, &new, 200),
        &warnings,
    ))
}

// ---------------------------------------------------------------- delete

/// DeleteOptions from the body and the query.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads the query and an optional body (JSON, YAML or protobuf, as the client sent it).
    pub fn parse(
        q: &Query,
        content_type: Option<&str>,
        body: Bytes,
        resource: &Resource,
    ) -> Result<Self> {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            body
        } else {
            http::body_as_json(content_type, body, resource)?
        };
        let mut opts = DeleteOptions {
            dry_run: dry_run(q, "DeleteOptions")?,
            ..Default::default()
        };
        if let Some(g) = q.get("gracePeriodSeconds") {
            opts.grace_period =
                Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}"))
                })?);
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
            if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
                opts.grace_period = Some(g);
            }
            if let Some(uid) = v["preconditions"]["uid"].as_str() {
                opts.uid = Some(uid.to_string());
            }
            if let Some(rv) = v["preconditions"]["resourceVersion"].as_str() {
                opts.resource_version = Some(rv.to_string());
            }
            if v.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "All"))
            {
                opts.dry_run = true;
            }
        }
        if let Some(g) = opts.grace_period.filter(|g| after_grace(*g).is_none()) {
            return Err(ApiError::bad_request(format!(
                "invalid gracePeriodSeconds: {g}: the deletion time would not be a valid timestamp"
            )));
        }
        Ok(opts)
    }
}

/// The time `grace` seconds from now, when a timestamp can say it (RFC 3339 ends with 9999).
fn after_grace(grace: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    let when = chrono::Utc::now().checked_add_signed(chrono::TimeDelta::try_seconds(grace)?)?;
    (when.year() <= 9999).then_some(when)
}

/// The grace period a pod gets (`CheckGracefulDelete`): zero when no node runs it or it finished.
fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let mut grace = requested
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(0);
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty()
        || phase == "Succeeded"
        || phase == "Failed"
    {
        grace = 0;
    }
    if grace < 0 {
        grace = 1;
    }
    // A spec may ask for more than a timestamp can hold: as long as one can.
    let latest = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc() - chrono::Utc::now())
        .map_or(i64::MAX, |left| left.num_seconds());
    grace.min(latest)
}

/// What a delete did.
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Value),
    /// The object is marked for deletion and waits (grace period or finalizers).
    Pending(Value),
}

/// Deletes one object, gracefully where the resource asks for it.
pub async fn delete_object(
    server: &Arc<Server>,
    target: &Target,
    opts: &DeleteOptions,
) -> Result<Deleted> {
    let resource = target.resource;
    let key = target.key();
    for _ in 0..16 {
        let current = server
            .store
            .get(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| target.not_found())?;
        let obj = parse_stored(target, &current.value, current.mod_revision)?;
        if let Some(uid) = &opts.uid {
            let actual = meta::str_field(&obj, "uid").unwrap_or("");
            if uid != actual {
                return Err(ApiError::conflict(
                    resource.group,
                    resource.plural,
                    target.name(),
                    &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if rv != &current.mod_revision.to_string() {
                return Err(ApiError::conflict(resource.group, resource.plural, target.name(), &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.mod_revision
                )));
            }
        }
        crate::admission::refuse_delete(resource, &obj)?;
        if resource.kind == "Namespace"
            && resource.group.is_empty()
            && crate::DEFAULT_NAMESPACES.contains(&target.name())
        {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                target.name(),
                "this namespace may not be deleted",
            ));
        }
        let graceful = resource.kind == "Pod" && resource.group.is_empty();
        let grace = if graceful {
            pod_grace(&obj, opts.grace_period)
        } else {
            0
        };
        let finalizers = !meta::finalizers(&obj).is_empty();
        let waits_for_namespace_content = resource.kind == "Namespace" && resource.group.is_empty();
        // Mark the object: deletionTimestamp (+ grace), as Kubernetes writes before removing.
        let mut marked = obj.clone();
        let already = meta::is_deleting(&obj);
        if already {
            let existing = obj["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(0);
            if existing != 0 && grace < existing {
                let m = meta::meta_mut(&mut marked);
                let when = after_grace(grace).unwrap_or_else(chrono::Utc::now);
                m.insert("deletionTimestamp".into(), json!(meta::timestamp(when)));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            } else if existing != 0 || finalizers || waits_for_namespace_content {
                return Ok(Deleted::Pending(obj));
            }
        } else if graceful || finalizers || waits_for_namespace_content {
            let m = meta::meta_mut(&mut marked);
            let when = after_grace(grace).unwrap_or_else(chrono::Utc::now);
            m.insert("deletionTimestamp".into(), json!(meta::timestamp(when)));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                m.insert("generation".into(), json!(g + 1));
            }
            if waits_for_namespace_content {
                marked["status"]["phase"] = json!("Terminating");
            }
        }
        if opts.dry_run {
            return Ok(Deleted::Gone(marked));
        }
        let mut rev = current.mod_revision;
        if marked != obj {
            match server
                .store
                .update(&key, encode_for_store(resource, &marked)?, rev)
                .await
            {
                Ok(r) => rev = r,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(target, e)),
            }
            marked = with_revision(marked, rev);
        }
        let now_grace = marked["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0);
        if finalizers || waits_for_namespace_content || now_grace > 0 {
            if waits_for_namespace_content {
                spawn_namespace_cleanup(server.clone(), target.name().to_string());
            }
            return Ok(Deleted::Pending(marked));
        }
        match server.store.delete(&key, Some(rev)).await {
            Ok(_) => return Ok(Deleted::Gone(marked)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(target, e)),
        }
    }
    Err(ApiError::stale(
        resource.group,
        resource.plural,
        target.name(),
    ))
}

/// Pods and namespaces answer a delete with the object; other resources with a Status.
fn returns_object(resource: &Resource) -> bool {
    resource.group.is_empty() && matches!(resource.kind, "Pod" | "Namespace")
}

pub async fn delete(
    server: &Arc<Server>,
    target: &Target,
    q: &Query,
    content_type: Option<&str>,
    body: Bytes,
    wants: Wants,
) -> Result<Response> {
    let opts = DeleteOptions::parse(q, content_type, body, target.resource)?;
    let result = delete_object(server, target, &opts).await?;
    let resource = target.resource;
    let (obj, gone) = match result {
        Deleted::Gone(o) => (o, true),
        Deleted::Pending(o) => (o, false),
    };
    if returns_object(resource) || !gone {
        return Ok(object_response(
            resource,
            wants,
            IncludeObject::Metadata,
            &obj,
            200,
        ));
    }
    let mut details = json!({"name": target.name(), "kind": resource.plural});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    if let Some(uid) = meta::str_field(&obj, "uid") {
        details["uid"] = json!(uid);
    }
    Ok(http::json(200, &api::status::success_status(Some(details))))
}

pub async fn delete_collection(
    server: &Arc<Server>,
    target: &Target,
    q: &Query,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response> {
    let resource = target.resource;
    if !resource.has_verb("deletecollection") {
        return Err(ApiError::method_not_allowed(format!(
            "deletecollection is not supported on resources of kind \"{}\"",
            resource.plural
        )));
    }
    let opts = DeleteOptions::parse(q, content_type, body, resource)?;
    let (labels, fields) = selectors(resource, q.get("labelSelector"), q.get("fieldSelector"))?;
    consistent(server).await?;
    let (all, _) = server.cache.list(&resource.prefix(target.ns()), None);
    let mut items = Vec::new();
    for c in all.iter().filter(|c| matches(c, &labels, &fields)) {
        let v = c.value();
        let one = Target {
            resource,
            namespace: meta::namespace(&v).map(str::to_string),
            name: Some(meta::name(&v).to_string()),
            subresource: None,
        };
        match delete_object(server, &one, &opts).await {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => items.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let rv = server.cache.revision().to_string();
    Ok(http::json(
        200,
        &json!({
            "kind": list_kind(resource),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": rv},
            "items": items,
        }),
    ))
}

/// The namespace controller's job: delete everything in a terminating namespace (pods
/// gracefully, through the same delete path clients use), then the namespace itself.
pub fn spawn_namespace_cleanup(server: Arc<Server>, namespace: String) {
    tokio::spawn(async move {
        let namespaces = resource::find("", "v1", "namespaces").expect("namespaces are served");
        let opts = DeleteOptions::default();
        loop {
            let mut remaining = 0;
            // Both Event APIs share storage: visit it once, through core/v1.
            for resource in resource::RESOURCES
                .iter()
                .filter(|r| r.namespaced && r.group != "events.k8s.io")
            {
                let (items, _) = server.cache.list(&resource.prefix(Some(&namespace)), None);
                for c in items {
                    remaining += 1;
                    let v = c.value();
                    let one = Target {
                        resource,
                        namespace: Some(namespace.clone()),
                        name: Some(meta::name(&v).to_string()),
                        subresource: None,
                    };
                    if let Err(e) = delete_object(&server, &one, &opts).await {
                        if e.code != 404 {
                            tracing::warn!(%namespace, error = %e, "namespace cleanup: delete failed");
                        }
                    }
                }
            }
            if remaining == 0 {
                if let Err(e) = server
                    .store
                    .delete(&namespaces.key(None, &namespace), None)
                    .await
                {
                    tracing::warn!(%namespace, error = %e, "namespace cleanup: removing the namespace failed");
                }
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
}

// ---------------------------------------------------------------- pods/binding

/// The JSON of a subresource's request body (JSON, YAML or protobuf) of `kind`, or the 400
/// kube-apiserver answers when it does not decode.
pub(crate) fn subresource_body(
    content_type: Option<&str>,
    body: Bytes,
    resource: &Resource,
    kind: &str,
) -> Result<Value> {
    let body = http::body_as_json(content_type, body, resource)?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: {e}"
        ))
    })
}

/// The Status of a subresource create that succeeded (201).
pub(crate) fn created() -> Response {
    let mut status = api::status::success_status(None);
    status["code"] = json!(201);
    http::json(201, &status)
}

pub async fn bind(
    server: &Server,
    target: &Target,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response> {
    let binding = subresource_body(content_type, body, target.resource, "Binding")?;
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        let mut errs = api::validation::ErrorList::new();
        errs.required("target.name", "");
        return Err(ApiError::invalid("", "Binding", target.name(), &errs));
    }
    let key = target.key();
    for _ in 0..16 {
        let current = server
            .store
            .get(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| target.not_found())?;
        let mut pod = parse_stored(target, &current.value, current.mod_revision)?;
        if meta::is_deleting(&pod) {
            return Err(ApiError::conflict(
                "",
                "pods",
                target.name(),
                "pod is being deleted",
            ));
        }
        if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(
                "",
                "pods",
                target.name(),
                &format!(
                    "pod {} is already assigned to node \"{existing}\"",
                    target.name()
                ),
            ));
        }
        pod["spec"]["nodeName"] = json!(node);
        let now = meta::now();
        let conditions = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = conditions
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conditions.insert(0, json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        pod["status"]["conditions"] = json!(conditions);
        match server
            .store
            .update(
                &key,
                encode_for_store(target.resource, &pod)?,
                current.mod_revision,
            )
            .await
        {
            Ok(_) => return Ok(created()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(target, e)),
        }
    }
    Err(ApiError::stale("", "pods", target.name()))
}

// ---------------------------------------------------------------- start-up

/// Creates what every cluster has from its first start, through the same create path clients
/// use: the default namespaces and the system PriorityClasses.
pub async fn seed(server: &Server) {
    let namespaces = crate::DEFAULT_NAMESPACES
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    seed_objects(server, "", "namespaces", namespaces.collect()).await;
    let classes = api::priority::system_classes();
    seed_objects(server, "scheduling.k8s.io", "priorityclasses", classes).await;
}

/// The `kubernetes` Service in `default` (made once), and its Endpoints and EndpointSlice naming
/// the API server's address as it is now.
pub async fn seed_kubernetes_service(server: &Server, ip: std::net::Ipv4Addr, port: u16) {
    let service = api::service::kubernetes_service(server.service_range, port);
    seed_namespaced(server, "", "services", service, false).await;
    let endpoints = api::service::kubernetes_endpoints(ip, port);
    seed_namespaced(server, "", "endpoints", endpoints, true).await;
    let slice = api::service::kubernetes_endpoint_slice(ip, port);
    seed_namespaced(server, "discovery.k8s.io", "endpointslices", slice, true).await;
}

/// Creates `obj` in its namespace if it is missing; with `replace`, writes it over what is there.
async fn seed_namespaced(server: &Server, group: &str, plural: &str, obj: Value, replace: bool) {
    let Some(resource) = resource::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    else {
        return;
    };
    let target = Target {
        resource,
        namespace: meta::namespace(&obj).map(str::to_string),
        name: Some(meta::name(&obj).to_string()),
        subresource: None,
    };
    let done = match read(server, &target).await {
        Ok((current, revision)) if replace => {
            let mut updated = obj.clone();
            updated["metadata"] = current["metadata"].clone();
            if updated == current {
                return;
            }
            write(server, &target, &updated, revision).await.map(|_| ())
        }
        Ok(_) => return,
        Err(e) if e.code == 404 => {
            let collection = Target {
                name: None,
                ..target
            };
            create_object(server, &collection, obj, false)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    if let Err(error) = done {
        tracing::error!(%error, resource = plural, "could not write the kubernetes service's objects");
    }
}

/// Creates each of `objects` (cluster-scoped, of the resource `plural` of `group`) that is missing.
async fn seed_objects(server: &Server, group: &str, plural: &str, objects: Vec<Value>) {
    let Some(resource) = resource::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    else {
        return;
    };
    for obj in objects {
        let name = meta::name(&obj).to_string();
        if server.cache.get(&resource.key(None, &name)).is_some() {
            continue;
        }
        let target = Target {
            resource,
            namespace: None,
            name: None,
            subresource: None,
        };
        match create_object(server, &target, obj, false).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::error!(%name, resource = plural, error = %e, "could not create a default object")
            }
        }
    }
}
