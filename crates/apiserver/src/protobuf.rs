//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded into the JSON object
//! the JSON API would have received.
//!
//! kubectl 1.32+ sends typed-client writes (`create namespace|serviceaccount|configmap|service`,
//! `debug`, …) as protobuf, and kubelets, schedulers and controllers default to it; a 415 is not
//! retried, so these bodies must be understood. A body is the magic `k8s\0` followed by a
//! `runtime.Unknown` envelope (`typeMeta{apiVersion, kind}`, `raw`, `contentEncoding`,
//! `contentType`) whose `raw` holds the object's own message, numbered as in
//! `k8s.io/api/**/generated.proto`. [`decode`] unwraps the envelope and walks `raw` with the tables
//! in `schema`, writing Kubernetes' JSON mapping (not proto3 JSON): `Time` as RFC 3339 seconds,
//! `MicroTime` with microseconds, `Quantity` and `IntOrString` as their JSON scalars, `bytes` as
//! base64, `FieldsV1` as the JSON it carries, embedded structs inlined, and a Go field's zero value
//! dropped unless the field is a pointer. The result is what a Go client would have sent as JSON,
//! so the rest of the write path (apiVersion/kind checks, typed round trip, validation) is the
//! JSON one.
//!
//! Covered: every field, recursively, of core/v1 Namespace, ServiceAccount, ConfigMap, Secret,
//! Service, Pod, Node, Event and Binding (`pods/binding`), authentication.k8s.io/v1 TokenRequest
//! (`serviceaccounts/token`), events.k8s.io/v1 Event, coordination.k8s.io/v1 Lease, policy/v1
//! PodDisruptionBudget and Eviction (`pods/eviction`), scheduling.k8s.io/v1 PriorityClass, core/v1 ResourceQuota and LimitRange, the
//! authentication.k8s.io and authorization.k8s.io reviews (their specs), and meta/v1 DeleteOptions under any apiVersion (typed clients send delete options as
//! protobuf too). The envelope's kind picks the table. Field numbers unknown to the tables (newer
//! than Kubernetes 1.33) are skipped, as Go's decoder skips them.

use base64::Engine as _;
use serde_json::{Map, Value};

use api::resource::Resource;
use api::ApiError;

/// What precedes every Kubernetes protobuf message.
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a Kubernetes protobuf request body (the `k8s\0` magic + runtime.Unknown envelope) of one of the
/// kinds below into the JSON object (serde_json::Value) the JSON API would have received, with apiVersion/kind set.
///
/// The kinds are those of the module documentation; the envelope's `typeMeta` selects one, and an
/// empty `typeMeta` means `resource`'s own. Errors are 400s worded as kube-apiserver words them:
/// `the object provided is unrecognized (must be of type Namespace): …` when the envelope is
/// unreadable, `Namespace in version "v1" cannot be handled as a Namespace: …` when the object is.
pub fn decode(resource: &Resource, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(unrecognized(resource, body, "empty data"));
    }
    let Some(envelope) = body.strip_prefix(MAGIC) else {
        return Err(unrecognized(
            resource,
            body,
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ));
    };
    if envelope.is_empty() {
        return Err(unrecognized(resource, body, "empty body"));
    }
    let unknown = Unknown::parse(envelope).map_err(|e| unrecognized(resource, body, e))?;
    let api_version = if unknown.api_version.is_empty() {
        resource.api_version()
    } else {
        unknown.api_version
    };
    let kind = if unknown.kind.is_empty() {
        resource.kind.to_string()
    } else {
        unknown.kind
    };
    let cannot_handle = |why: &dyn std::fmt::Display| {
        let version = api_version
            .rsplit_once('/')
            .map_or(api_version.as_str(), |(_, v)| v);
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {}: {why}",
            resource.kind
        ))
    };
    let Some(message) = schema_for(&api_version, &kind) else {
        return Err(cannot_handle(&format_args!(
            "no kind {kind:?} is registered for version {api_version:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    };
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version.clone()));
    object.insert("kind".into(), Value::String(kind.clone()));
    decode_message(message, unknown.raw, &mut object).map_err(|e| cannot_handle(&e))?;
    Ok(Value::Object(object))
}

/// The table for a kind, by the envelope's apiVersion and kind.
fn schema_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    use schema::*;
    let message = match (api_version, kind) {
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("authentication.k8s.io/v1", "TokenRequest") => &AUTHENTICATION_TOKEN_REQUEST,
        ("v1", "Service") => &SERVICE,
        ("v1", "Pod") => &POD,
        ("v1", "Node") => &NODE,
        ("v1", "Event") => &EVENT,
        ("v1", "Binding") => &BINDING,
        ("events.k8s.io/v1", "Event") => &EVENTS_EVENT,
        ("coordination.k8s.io/v1", "Lease") => &COORDINATION_LEASE,
        ("policy/v1", "PodDisruptionBudget") => &POLICY_POD_DISRUPTION_BUDGET,
        ("policy/v1", "Eviction") => &POLICY_EVICTION,
        ("scheduling.k8s.io/v1", "PriorityClass") => &SCHEDULING_PRIORITY_CLASS,
        ("v1", "ResourceQuota") => &RESOURCE_QUOTA,
        ("authentication.k8s.io/v1", "TokenReview") => &AUTHENTICATION_TOKEN_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => &AUTHENTICATION_SELF_SUBJECT_REVIEW,
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            &AUTHORIZATION_SUBJECT_ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            &AUTHORIZATION_SELF_SUBJECT_ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => {
            &AUTHORIZATION_SELF_SUBJECT_RULES_REVIEW
        }
        ("v1", "LimitRange") => &LIMIT_RANGE,
        (_, "DeleteOptions") => &META_DELETE_OPTIONS,
        _ => return None,
    };
    Some(message)
}

/// `the object provided is unrecognized (must be of type Pod): why (summary)`: a body whose
/// envelope cannot be read.
fn unrecognized(resource: &Resource, body: &[u8], why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "the object provided is unrecognized (must be of type {}): {why} ({})",
        resource.kind,
        summary(body)
    ))
}

/// How kube-apiserver quotes an undecodable body: `<empty>`, the text of a short `{…}` body (its
/// first 30 bytes and ` ...` when longer), otherwise the hex of its first 30 bytes.
fn summary(body: &[u8]) -> String {
    const MAX: usize = 30;
    let head = &body[..body.len().min(MAX)];
    let more = if body.len() > MAX { " ..." } else { "" };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

// ---------------------------------------------------------------- schema model

/// One protobuf message: its Go type name (for error messages) and its fields.
struct Message {
    name: &'static str,
    fields: &'static [Field],
}

/// One field: its number, its JSON name and how its value is written.
struct Field {
    num: u32,
    json: &'static str,
    shape: Shape,
}

#[derive(Clone, Copy)]
enum Shape {
    /// A plain Go field: a zero value is dropped, as `omitempty` would.
    One(Ty),
    /// A Go pointer: present means set, so zero values are kept (`replicas: 0`, `optional: false`).
    Ptr(Ty),
    /// A list; varint elements may come packed or one per tag.
    List(Ty),
    /// A `map<string, Ty>`, sent as repeated `{1: key, 2: value}` entries.
    Map(Ty),
    /// An embedded struct (`json:",inline"`): a message on the wire whose fields JSON writes into
    /// the enclosing object (`Volume.volumeSource`, `Probe.handler`).
    Inline(&'static Message),
}

/// How a value is read from the wire and written in JSON.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// Base64, as Go's JSON writes `[]byte`.
    Bytes,
    Bool,
    I32,
    I64,
    /// `metav1.Time`: `{1: seconds, 2: nanos}`, whole seconds in RFC 3339; empty is the zero time.
    Time,
    /// `metav1.MicroTime`: as `Time`, with six fractional digits.
    MicroTime,
    /// `resource.Quantity`: `{1: string}`, written as the string.
    Quantity,
    /// `intstr.IntOrString`: `{1: type, 2: intVal, 3: strVal}`, written as a number or a string.
    IntOrString,
    /// `metav1.FieldsV1` and `runtime.RawExtension`: `{1: raw}`, raw JSON written as is.
    RawJson,
    Msg(&'static Message),
}

const fn one(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        shape: Shape::One(ty),
    }
}
const fn ptr(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        shape: Shape::Ptr(ty),
    }
}
const fn list(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        shape: Shape::List(ty),
    }
}
const fn map(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        shape: Shape::Map(ty),
    }
}
const fn inline(num: u32, proto_name: &'static str, message: &'static Message) -> Field {
    Field {
        num,
        json: proto_name,
        shape: Shape::Inline(message),
    }
}

// ---------------------------------------------------------------- wire format

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// A malformed message, in the words of the Go (gogo-protobuf) decoder.
#[derive(Debug, thiserror::Error)]
enum WireError {
    #[error("unexpected EOF")]
    UnexpectedEof,
    #[error("proto: integer overflow")]
    IntegerOverflow,
    #[error("proto: negative length found during unmarshaling")]
    NegativeLength,
    #[error("proto: {message}: wiretype end group for non-group")]
    EndGroup { message: String },
    #[error("proto: {message}: illegal tag 0 (wire type {wire})")]
    IllegalTag { message: String, wire: u8 },
    #[error("proto: wrong wireType = {wire} for field {field}")]
    WrongWireType { wire: u8, field: String },
    #[error("proto: illegal wireType {0}")]
    IllegalWireType(u8),
    #[error("proto: unexpected end of group")]
    UnexpectedEndOfGroup,
    /// A well-formed value with no JSON form (a time out of range, `FieldsV1` that is not JSON).
    #[error("{0}")]
    Value(String),
}

impl WireError {
    /// Go names the field by its Go name; the JSON name capitalized is that name or close to it.
    fn wrong_wire_type(wire: u8, json: &str) -> Self {
        let mut chars = json.chars();
        let field = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        WireError::WrongWireType { wire, field }
    }
}

/// The unread rest of a message.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err(WireError::UnexpectedEof);
            };
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::IntegerOverflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::UnexpectedEof);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A length-delimited payload.
    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        if len > i64::MAX as u64 {
            return Err(WireError::NegativeLength);
        }
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// A varint field's value, after checking the field's wire type.
    fn varint_of(&mut self, wire: u8, json: &str) -> Result<u64, WireError> {
        if wire != VARINT {
            return Err(WireError::wrong_wire_type(wire, json));
        }
        self.varint()
    }

    /// A length-delimited field's payload, after checking the field's wire type.
    fn bytes_of(&mut self, wire: u8, json: &str) -> Result<&'a [u8], WireError> {
        if wire != LEN {
            return Err(WireError::wrong_wire_type(wire, json));
        }
        self.bytes()
    }

    /// Skips a field this decoder does not know, groups included (iteratively: a body of nested
    /// start-group tags must not exhaust the stack).
    fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        let mut depth = 0usize;
        let mut wire = wire;
        loop {
            match wire {
                VARINT => {
                    self.varint()?;
                }
                FIXED64 => {
                    self.take(8)?;
                }
                LEN => {
                    self.bytes()?;
                }
                START_GROUP => depth += 1,
                END_GROUP => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or(WireError::UnexpectedEndOfGroup)?;
                }
                FIXED32 => {
                    self.take(4)?;
                }
                other => return Err(WireError::IllegalWireType(other)),
            }
            if depth == 0 {
                return Ok(());
            }
            wire = (self.varint()? & 7) as u8;
        }
    }
}

/// Calls `f` with each field's number, wire type and reader positioned at its value; fields for
/// which `f` returns `false` (not read) are skipped.
fn each_field<'a>(
    buf: &'a [u8],
    message: &str,
    mut f: impl FnMut(u64, u8, &mut Reader<'a>) -> Result<bool, WireError>,
) -> Result<(), WireError> {
    let mut r = Reader { buf };
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        let (num, wire) = (tag >> 3, (tag & 7) as u8);
        if wire == END_GROUP {
            return Err(WireError::EndGroup {
                message: message.into(),
            });
        }
        if num == 0 {
            return Err(WireError::IllegalTag {
                message: message.into(),
                wire,
            });
        }
        if !f(num, wire, &mut r)? {
            r.skip(wire)?;
        }
    }
    Ok(())
}

/// The parts of a `runtime.Unknown` envelope the decoder needs.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

impl<'a> Unknown<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut out = Unknown {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
        };
        each_field(buf, "Unknown", |num, wire, r| {
            match num {
                1 => {
                    let type_meta = r.bytes_of(wire, "typeMeta")?;
                    each_field(type_meta, "TypeMeta", |num, wire, r| {
                        match num {
                            1 => out.api_version = text(r.bytes_of(wire, "apiVersion")?),
                            2 => out.kind = text(r.bytes_of(wire, "kind")?),
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                }
                2 => out.raw = r.bytes_of(wire, "raw")?,
                // contentEncoding and contentType: empty for objects clients send.
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(out)
    }
}

/// Go strings need not be UTF-8; Go's JSON writes invalid bytes as U+FFFD, and so does this.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------- messages to JSON

/// Decodes the fields of `message` from `buf` into `out` (the enclosing object when inlined).
fn decode_message(
    message: &Message,
    buf: &[u8],
    out: &mut Map<String, Value>,
) -> Result<(), WireError> {
    each_field(buf, message.name, |num, wire, r| {
        let Some(field) = message.fields.iter().find(|f| u64::from(f.num) == num) else {
            return Ok(false);
        };
        decode_field(field, wire, r, out)?;
        Ok(true)
    })
}

fn decode_field(
    field: &Field,
    wire: u8,
    r: &mut Reader<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), WireError> {
    match field.shape {
        Shape::Inline(message) => decode_message(message, r.bytes_of(wire, field.json)?, out),
        Shape::One(Ty::Msg(message)) | Shape::Ptr(Ty::Msg(message)) => {
            // A message field seen twice is merged, as protobuf specifies.
            let bytes = r.bytes_of(wire, field.json)?;
            let slot = out
                .entry(field.json)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(object) = slot {
                decode_message(message, bytes, object)?;
            }
            Ok(())
        }
        Shape::One(ty) | Shape::Ptr(ty) => {
            let decoded = value(ty, wire, r, field.json)?;
            let keep = match field.shape {
                Shape::Ptr(_) => !decoded.is_null(),
                _ => !is_zero(&decoded),
            };
            if keep {
                out.insert(field.json.into(), decoded);
            } else {
                out.remove(field.json);
            }
            Ok(())
        }
        Shape::List(ty) => {
            let mut values = Vec::new();
            if wire == LEN && matches!(ty, Ty::Bool | Ty::I32 | Ty::I64) {
                let mut packed = Reader { buf: r.bytes()? };
                while !packed.buf.is_empty() {
                    values.push(value(ty, VARINT, &mut packed, field.json)?);
                }
            } else {
                values.push(value(ty, wire, r, field.json)?);
            }
            match out
                .entry(field.json)
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(list) => list.extend(values),
                slot => *slot = Value::Array(values),
            }
            Ok(())
        }
        Shape::Map(ty) => {
            let (key, entry) = map_entry(ty, r.bytes_of(wire, field.json)?, field.json)?;
            match out
                .entry(field.json)
                .or_insert_with(|| Value::Object(Map::new()))
            {
                Value::Object(entries) => {
                    entries.insert(key, entry);
                }
                slot => *slot = Value::Object(Map::from_iter([(key, entry)])),
            }
            Ok(())
        }
    }
}

/// One value of type `ty` (a fresh object for a message).
fn value(ty: Ty, wire: u8, r: &mut Reader<'_>, json: &str) -> Result<Value, WireError> {
    // Go reads int32 fields from the low 32 bits of the varint, as these casts do.
    Ok(match ty {
        Ty::Bool => Value::Bool(r.varint_of(wire, json)? != 0),
        Ty::I32 => Value::from(r.varint_of(wire, json)? as i32),
        Ty::I64 => Value::from(r.varint_of(wire, json)? as i64),
        Ty::Str => Value::String(text(r.bytes_of(wire, json)?)),
        Ty::Bytes => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes_of(wire, json)?))
        }
        Ty::Time => time(r.bytes_of(wire, json)?, false)?,
        Ty::MicroTime => time(r.bytes_of(wire, json)?, true)?,
        Ty::Quantity => quantity(r.bytes_of(wire, json)?)?,
        Ty::IntOrString => int_or_string(r.bytes_of(wire, json)?)?,
        Ty::RawJson => raw_json(r.bytes_of(wire, json)?)?,
        Ty::Msg(message) => {
            let mut object = Map::new();
            decode_message(message, r.bytes_of(wire, json)?, &mut object)?;
            Value::Object(object)
        }
    })
}

/// What a Go zero value looks like in JSON, for `omitempty`. Objects and lists are never zero:
/// a message on the wire is a struct Go's JSON always writes.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// The zero value of a map entry that carries no value.
fn zero(ty: Ty) -> Value {
    match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Quantity => Value::String("0".into()),
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 | Ty::IntOrString => Value::from(0),
        Ty::Time | Ty::MicroTime | Ty::RawJson => Value::Null,
        Ty::Msg(_) => Value::Object(Map::new()),
    }
}

/// A map entry `{1: key, 2: value}`.
fn map_entry(ty: Ty, buf: &[u8], json: &str) -> Result<(String, Value), WireError> {
    let mut key = String::new();
    let mut entry = None;
    each_field(buf, json, |num, wire, r| {
        match num {
            1 => key = text(r.bytes_of(wire, "key")?),
            2 => entry = Some(value(ty, wire, r, "value")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((key, entry.unwrap_or_else(|| zero(ty))))
}

/// `metav1.Time` (whole seconds: Go drops the nanoseconds) or `metav1.MicroTime`; an empty message
/// is Go's zero time, JSON `null`.
fn time(buf: &[u8], micro: bool) -> Result<Value, WireError> {
    if buf.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i64);
    each_field(buf, "Timestamp", |num, wire, r| {
        match num {
            1 => seconds = r.varint_of(wire, "seconds")? as i64,
            2 => nanos = i64::from(r.varint_of(wire, "nanos")? as i32),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    // Time keeps whole seconds; MicroTime truncates to microseconds (toward zero, as Go does).
    nanos = if micro { nanos / 1000 * 1000 } else { 0 };
    let out_of_range = || {
        WireError::Value(format!(
            "time out of range: {seconds}s since the epoch is not in the years 0 to 9999"
        ))
    };
    // Like Go's time.Unix, nanoseconds outside [0, 1e9) carry into the seconds.
    let whole = seconds
        .checked_add(nanos.div_euclid(1_000_000_000))
        .ok_or_else(out_of_range)?;
    let nanos = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| out_of_range())?;
    let at = chrono::DateTime::from_timestamp(whole, nanos).ok_or_else(out_of_range)?;
    if !(0..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(out_of_range());
    }
    Ok(Value::String(if micro {
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        api::meta::timestamp(at)
    }))
}

/// `resource.Quantity`: its string, checked later like a JSON body's.
fn quantity(buf: &[u8]) -> Result<Value, WireError> {
    let mut string = String::new();
    each_field(buf, "Quantity", |num, wire, r| {
        if num != 1 {
            return Ok(false);
        }
        string = text(r.bytes_of(wire, "string")?);
        Ok(true)
    })?;
    Ok(Value::String(string))
}

/// `intstr.IntOrString`: type 1 is a string, anything else an int.
fn int_or_string(buf: &[u8]) -> Result<Value, WireError> {
    let (mut is_string, mut int, mut string) = (false, 0i32, String::new());
    each_field(buf, "IntOrString", |num, wire, r| {
        match num {
            1 => is_string = r.varint_of(wire, "type")? == 1,
            2 => int = r.varint_of(wire, "intVal")? as i32,
            3 => string = text(r.bytes_of(wire, "strVal")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(if is_string {
        Value::String(string)
    } else {
        Value::from(int)
    })
}

/// `metav1.FieldsV1` / `runtime.RawExtension`: the JSON document in field 1.
fn raw_json(buf: &[u8]) -> Result<Value, WireError> {
    let mut raw: &[u8] = &[];
    each_field(buf, "FieldsV1", |num, wire, r| {
        if num != 1 {
            return Ok(false);
        }
        raw = r.bytes_of(wire, "raw")?;
        Ok(true)
    })?;
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| WireError::Value(format!("invalid raw JSON: {e}")))
}

/// The message tables: for every message reachable from the kinds [`schema_for`] knows, one row
/// per field with its number, JSON name and type. Taken from k8s.io/api and k8s.io/apimachinery
/// v0.33.13 (Kubernetes 1.33): numbers and types from `generated.proto`, JSON names, pointers
/// (`ptr`) and inlined embedded structs (`inline`) from the Go struct tags in `types.go`, the two
/// cross-checked field by field. Rows follow the Go struct order.
#[rustfmt::skip]
mod schema {
    use super::{inline, list, map, one, ptr, Message, Ty::*};

    pub(super) static AFFINITY: Message = Message { name: "Affinity", fields: &[
        ptr(1, "nodeAffinity", Msg(&NODE_AFFINITY)),
        ptr(2, "podAffinity", Msg(&POD_AFFINITY)),
        ptr(3, "podAntiAffinity", Msg(&POD_ANTI_AFFINITY)),
    ] };
    pub(super) static APP_ARMOR_PROFILE: Message = Message { name: "AppArmorProfile", fields: &[
        one(1, "type", Str),
        ptr(2, "localhostProfile", Str),
    ] };
    pub(super) static ATTACHED_VOLUME: Message = Message { name: "AttachedVolume", fields: &[
        one(1, "name", Str),
        one(2, "devicePath", Str),
    ] };
    pub(super) static AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Message = Message { name: "AWSElasticBlockStoreVolumeSource", fields: &[
        one(1, "volumeID", Str),
        one(2, "fsType", Str),
        one(3, "partition", I32),
        one(4, "readOnly", Bool),
    ] };
    pub(super) static AZURE_DISK_VOLUME_SOURCE: Message = Message { name: "AzureDiskVolumeSource", fields: &[
        one(1, "diskName", Str),
        one(2, "diskURI", Str),
        ptr(3, "cachingMode", Str),
        ptr(4, "fsType", Str),
        ptr(5, "readOnly", Bool),
        ptr(6, "kind", Str),
    ] };
    pub(super) static AZURE_FILE_VOLUME_SOURCE: Message = Message { name: "AzureFileVolumeSource", fields: &[
        one(1, "secretName", Str),
        one(2, "shareName", Str),
        one(3, "readOnly", Bool),
    ] };
    pub(super) static AUTHENTICATION_BOUND_OBJECT_REFERENCE: Message = Message { name: "BoundObjectReference", fields: &[
        one(1, "kind", Str),
        one(2, "apiVersion", Str),
        one(3, "name", Str),
        one(4, "uid", Str),
    ] };
    pub(super) static AUTHENTICATION_TOKEN_REQUEST: Message = Message { name: "TokenRequest", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&AUTHENTICATION_TOKEN_REQUEST_SPEC)),
        one(3, "status", Msg(&AUTHENTICATION_TOKEN_REQUEST_STATUS)),
    ] };
    pub(super) static AUTHENTICATION_TOKEN_REQUEST_SPEC: Message = Message { name: "TokenRequestSpec", fields: &[
        list(1, "audiences", Str),
        ptr(4, "expirationSeconds", I64),
        ptr(3, "boundObjectRef", Msg(&AUTHENTICATION_BOUND_OBJECT_REFERENCE)),
    ] };
    pub(super) static AUTHENTICATION_TOKEN_REQUEST_STATUS: Message = Message { name: "TokenRequestStatus", fields: &[
        one(1, "token", Str),
        one(2, "expirationTimestamp", Time),
    ] };
    pub(super) static BINDING: Message = Message { name: "Binding", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "target", Msg(&OBJECT_REFERENCE)),
    ] };
    pub(super) static CAPABILITIES: Message = Message { name: "Capabilities", fields: &[
        list(1, "add", Str),
        list(2, "drop", Str),
    ] };
    pub(super) static CEPH_FS_VOLUME_SOURCE: Message = Message { name: "CephFSVolumeSource", fields: &[
        list(1, "monitors", Str),
        one(2, "path", Str),
        one(3, "user", Str),
        one(4, "secretFile", Str),
        ptr(5, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
        one(6, "readOnly", Bool),
    ] };
    pub(super) static CINDER_VOLUME_SOURCE: Message = Message { name: "CinderVolumeSource", fields: &[
        one(1, "volumeID", Str),
        one(2, "fsType", Str),
        one(3, "readOnly", Bool),
        ptr(4, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
    ] };
    pub(super) static CLIENT_IP_CONFIG: Message = Message { name: "ClientIPConfig", fields: &[
        ptr(1, "timeoutSeconds", I32),
    ] };
    pub(super) static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = Message { name: "ClusterTrustBundleProjection", fields: &[
        ptr(1, "name", Str),
        ptr(2, "signerName", Str),
        ptr(3, "labelSelector", Msg(&META_LABEL_SELECTOR)),
        ptr(5, "optional", Bool),
        one(4, "path", Str),
    ] };
    pub(super) static CONFIG_MAP: Message = Message { name: "ConfigMap", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        ptr(4, "immutable", Bool),
        map(2, "data", Str),
        map(3, "binaryData", Bytes),
    ] };
    pub(super) static CONFIG_MAP_ENV_SOURCE: Message = Message { name: "ConfigMapEnvSource", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        ptr(2, "optional", Bool),
    ] };
    pub(super) static CONFIG_MAP_KEY_SELECTOR: Message = Message { name: "ConfigMapKeySelector", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        one(2, "key", Str),
        ptr(3, "optional", Bool),
    ] };
    pub(super) static CONFIG_MAP_NODE_CONFIG_SOURCE: Message = Message { name: "ConfigMapNodeConfigSource", fields: &[
        one(1, "namespace", Str),
        one(2, "name", Str),
        one(3, "uid", Str),
        one(4, "resourceVersion", Str),
        one(5, "kubeletConfigKey", Str),
    ] };
    pub(super) static CONFIG_MAP_PROJECTION: Message = Message { name: "ConfigMapProjection", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        list(2, "items", Msg(&KEY_TO_PATH)),
        ptr(4, "optional", Bool),
    ] };
    pub(super) static CONFIG_MAP_VOLUME_SOURCE: Message = Message { name: "ConfigMapVolumeSource", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        list(2, "items", Msg(&KEY_TO_PATH)),
        ptr(3, "defaultMode", I32),
        ptr(4, "optional", Bool),
    ] };
    pub(super) static CONTAINER: Message = Message { name: "Container", fields: &[
        one(1, "name", Str),
        one(2, "image", Str),
        list(3, "command", Str),
        list(4, "args", Str),
        one(5, "workingDir", Str),
        list(6, "ports", Msg(&CONTAINER_PORT)),
        list(19, "envFrom", Msg(&ENV_FROM_SOURCE)),
        list(7, "env", Msg(&ENV_VAR)),
        one(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        list(23, "resizePolicy", Msg(&CONTAINER_RESIZE_POLICY)),
        ptr(24, "restartPolicy", Str),
        list(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        list(21, "volumeDevices", Msg(&VOLUME_DEVICE)),
        ptr(10, "livenessProbe", Msg(&PROBE)),
        ptr(11, "readinessProbe", Msg(&PROBE)),
        ptr(22, "startupProbe", Msg(&PROBE)),
        ptr(12, "lifecycle", Msg(&LIFECYCLE)),
        one(13, "terminationMessagePath", Str),
        one(20, "terminationMessagePolicy", Str),
        one(14, "imagePullPolicy", Str),
        ptr(15, "securityContext", Msg(&SECURITY_CONTEXT)),
        one(16, "stdin", Bool),
        one(17, "stdinOnce", Bool),
        one(18, "tty", Bool),
    ] };
    pub(super) static CONTAINER_IMAGE: Message = Message { name: "ContainerImage", fields: &[
        list(1, "names", Str),
        one(2, "sizeBytes", I64),
    ] };
    pub(super) static CONTAINER_PORT: Message = Message { name: "ContainerPort", fields: &[
        one(1, "name", Str),
        one(2, "hostPort", I32),
        one(3, "containerPort", I32),
        one(4, "protocol", Str),
        one(5, "hostIP", Str),
    ] };
    pub(super) static CONTAINER_RESIZE_POLICY: Message = Message { name: "ContainerResizePolicy", fields: &[
        one(1, "resourceName", Str),
        one(2, "restartPolicy", Str),
    ] };
    pub(super) static CONTAINER_STATE: Message = Message { name: "ContainerState", fields: &[
        ptr(1, "waiting", Msg(&CONTAINER_STATE_WAITING)),
        ptr(2, "running", Msg(&CONTAINER_STATE_RUNNING)),
        ptr(3, "terminated", Msg(&CONTAINER_STATE_TERMINATED)),
    ] };
    pub(super) static CONTAINER_STATE_RUNNING: Message = Message { name: "ContainerStateRunning", fields: &[
        one(1, "startedAt", Time),
    ] };
    pub(super) static CONTAINER_STATE_TERMINATED: Message = Message { name: "ContainerStateTerminated", fields: &[
        one(1, "exitCode", I32),
        one(2, "signal", I32),
        one(3, "reason", Str),
        one(4, "message", Str),
        one(5, "startedAt", Time),
        one(6, "finishedAt", Time),
        one(7, "containerID", Str),
    ] };
    pub(super) static CONTAINER_STATE_WAITING: Message = Message { name: "ContainerStateWaiting", fields: &[
        one(1, "reason", Str),
        one(2, "message", Str),
    ] };
    pub(super) static CONTAINER_STATUS: Message = Message { name: "ContainerStatus", fields: &[
        one(1, "name", Str),
        one(2, "state", Msg(&CONTAINER_STATE)),
        one(3, "lastState", Msg(&CONTAINER_STATE)),
        one(4, "ready", Bool),
        one(5, "restartCount", I32),
        one(6, "image", Str),
        one(7, "imageID", Str),
        one(8, "containerID", Str),
        ptr(9, "started", Bool),
        map(10, "allocatedResources", Quantity),
        ptr(11, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        list(12, "volumeMounts", Msg(&VOLUME_MOUNT_STATUS)),
        ptr(13, "user", Msg(&CONTAINER_USER)),
        list(14, "allocatedResourcesStatus", Msg(&RESOURCE_STATUS)),
        ptr(15, "stopSignal", Str),
    ] };
    pub(super) static CONTAINER_USER: Message = Message { name: "ContainerUser", fields: &[
        ptr(1, "linux", Msg(&LINUX_CONTAINER_USER)),
    ] };
    pub(super) static COORDINATION_LEASE: Message = Message { name: "Lease", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&COORDINATION_LEASE_SPEC)),
    ] };
    pub(super) static COORDINATION_LEASE_SPEC: Message = Message { name: "LeaseSpec", fields: &[
        ptr(1, "holderIdentity", Str),
        ptr(2, "leaseDurationSeconds", I32),
        ptr(3, "acquireTime", MicroTime),
        ptr(4, "renewTime", MicroTime),
        ptr(5, "leaseTransitions", I32),
        ptr(6, "strategy", Str),
        ptr(7, "preferredHolder", Str),
    ] };
    pub(super) static CSI_VOLUME_SOURCE: Message = Message { name: "CSIVolumeSource", fields: &[
        one(1, "driver", Str),
        ptr(2, "readOnly", Bool),
        ptr(3, "fsType", Str),
        map(4, "volumeAttributes", Str),
        ptr(5, "nodePublishSecretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
    ] };
    pub(super) static DAEMON_ENDPOINT: Message = Message { name: "DaemonEndpoint", fields: &[
        one(1, "Port", I32),
    ] };
    pub(super) static DOWNWARD_API_PROJECTION: Message = Message { name: "DownwardAPIProjection", fields: &[
        list(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE)),
    ] };
    pub(super) static DOWNWARD_API_VOLUME_FILE: Message = Message { name: "DownwardAPIVolumeFile", fields: &[
        one(1, "path", Str),
        ptr(2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        ptr(3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        ptr(4, "mode", I32),
    ] };
    pub(super) static DOWNWARD_API_VOLUME_SOURCE: Message = Message { name: "DownwardAPIVolumeSource", fields: &[
        list(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE)),
        ptr(2, "defaultMode", I32),
    ] };
    pub(super) static EMPTY_DIR_VOLUME_SOURCE: Message = Message { name: "EmptyDirVolumeSource", fields: &[
        one(1, "medium", Str),
        ptr(2, "sizeLimit", Quantity),
    ] };
    pub(super) static ENV_FROM_SOURCE: Message = Message { name: "EnvFromSource", fields: &[
        one(1, "prefix", Str),
        ptr(2, "configMapRef", Msg(&CONFIG_MAP_ENV_SOURCE)),
        ptr(3, "secretRef", Msg(&SECRET_ENV_SOURCE)),
    ] };
    pub(super) static ENV_VAR: Message = Message { name: "EnvVar", fields: &[
        one(1, "name", Str),
        one(2, "value", Str),
        ptr(3, "valueFrom", Msg(&ENV_VAR_SOURCE)),
    ] };
    pub(super) static ENV_VAR_SOURCE: Message = Message { name: "EnvVarSource", fields: &[
        ptr(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        ptr(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        ptr(3, "configMapKeyRef", Msg(&CONFIG_MAP_KEY_SELECTOR)),
        ptr(4, "secretKeyRef", Msg(&SECRET_KEY_SELECTOR)),
    ] };
    pub(super) static EPHEMERAL_CONTAINER: Message = Message { name: "EphemeralContainer", fields: &[
        inline(1, "ephemeralContainerCommon", &EPHEMERAL_CONTAINER_COMMON),
        one(2, "targetContainerName", Str),
    ] };
    pub(super) static EPHEMERAL_CONTAINER_COMMON: Message = Message { name: "EphemeralContainerCommon", fields: &[
        one(1, "name", Str),
        one(2, "image", Str),
        list(3, "command", Str),
        list(4, "args", Str),
        one(5, "workingDir", Str),
        list(6, "ports", Msg(&CONTAINER_PORT)),
        list(19, "envFrom", Msg(&ENV_FROM_SOURCE)),
        list(7, "env", Msg(&ENV_VAR)),
        one(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        list(23, "resizePolicy", Msg(&CONTAINER_RESIZE_POLICY)),
        ptr(24, "restartPolicy", Str),
        list(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        list(21, "volumeDevices", Msg(&VOLUME_DEVICE)),
        ptr(10, "livenessProbe", Msg(&PROBE)),
        ptr(11, "readinessProbe", Msg(&PROBE)),
        ptr(22, "startupProbe", Msg(&PROBE)),
        ptr(12, "lifecycle", Msg(&LIFECYCLE)),
        one(13, "terminationMessagePath", Str),
        one(20, "terminationMessagePolicy", Str),
        one(14, "imagePullPolicy", Str),
        ptr(15, "securityContext", Msg(&SECURITY_CONTEXT)),
        one(16, "stdin", Bool),
        one(17, "stdinOnce", Bool),
        one(18, "tty", Bool),
    ] };
    pub(super) static EPHEMERAL_VOLUME_SOURCE: Message = Message { name: "EphemeralVolumeSource", fields: &[
        ptr(1, "volumeClaimTemplate", Msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE)),
    ] };
    pub(super) static EVENT: Message = Message { name: "Event", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "involvedObject", Msg(&OBJECT_REFERENCE)),
        one(3, "reason", Str),
        one(4, "message", Str),
        one(5, "source", Msg(&EVENT_SOURCE)),
        one(6, "firstTimestamp", Time),
        one(7, "lastTimestamp", Time),
        one(8, "count", I32),
        one(9, "type", Str),
        one(10, "eventTime", MicroTime),
        ptr(11, "series", Msg(&EVENT_SERIES)),
        one(12, "action", Str),
        ptr(13, "related", Msg(&OBJECT_REFERENCE)),
        one(14, "reportingComponent", Str),
        one(15, "reportingInstance", Str),
    ] };
    pub(super) static EVENTS_EVENT: Message = Message { name: "Event", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "eventTime", MicroTime),
        ptr(3, "series", Msg(&EVENTS_EVENT_SERIES)),
        one(4, "reportingController", Str),
        one(5, "reportingInstance", Str),
        one(6, "action", Str),
        one(7, "reason", Str),
        one(8, "regarding", Msg(&OBJECT_REFERENCE)),
        ptr(9, "related", Msg(&OBJECT_REFERENCE)),
        one(10, "note", Str),
        one(11, "type", Str),
        one(12, "deprecatedSource", Msg(&EVENT_SOURCE)),
        one(13, "deprecatedFirstTimestamp", Time),
        one(14, "deprecatedLastTimestamp", Time),
        one(15, "deprecatedCount", I32),
    ] };
    pub(super) static EVENTS_EVENT_SERIES: Message = Message { name: "EventSeries", fields: &[
        one(1, "count", I32),
        one(2, "lastObservedTime", MicroTime),
    ] };
    pub(super) static EVENT_SERIES: Message = Message { name: "EventSeries", fields: &[
        one(1, "count", I32),
        one(2, "lastObservedTime", MicroTime),
    ] };
    pub(super) static EVENT_SOURCE: Message = Message { name: "EventSource", fields: &[
        one(1, "component", Str),
        one(2, "host", Str),
    ] };
    pub(super) static EXEC_ACTION: Message = Message { name: "ExecAction", fields: &[
        list(1, "command", Str),
    ] };
    pub(super) static FC_VOLUME_SOURCE: Message = Message { name: "FCVolumeSource", fields: &[
        list(1, "targetWWNs", Str),
        ptr(2, "lun", I32),
        one(3, "fsType", Str),
        one(4, "readOnly", Bool),
        list(5, "wwids", Str),
    ] };
    pub(super) static FLEX_VOLUME_SOURCE: Message = Message { name: "FlexVolumeSource", fields: &[
        one(1, "driver", Str),
        one(2, "fsType", Str),
        ptr(3, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
        one(4, "readOnly", Bool),
        map(5, "options", Str),
    ] };
    pub(super) static FLOCKER_VOLUME_SOURCE: Message = Message { name: "FlockerVolumeSource", fields: &[
        one(1, "datasetName", Str),
        one(2, "datasetUUID", Str),
    ] };
    pub(super) static GCE_PERSISTENT_DISK_VOLUME_SOURCE: Message = Message { name: "GCEPersistentDiskVolumeSource", fields: &[
        one(1, "pdName", Str),
        one(2, "fsType", Str),
        one(3, "partition", I32),
        one(4, "readOnly", Bool),
    ] };
    pub(super) static GIT_REPO_VOLUME_SOURCE: Message = Message { name: "GitRepoVolumeSource", fields: &[
        one(1, "repository", Str),
        one(2, "revision", Str),
        one(3, "directory", Str),
    ] };
    pub(super) static GLUSTERFS_VOLUME_SOURCE: Message = Message { name: "GlusterfsVolumeSource", fields: &[
        one(1, "endpoints", Str),
        one(2, "path", Str),
        one(3, "readOnly", Bool),
    ] };
    pub(super) static GRPC_ACTION: Message = Message { name: "GRPCAction", fields: &[
        one(1, "port", I32),
        ptr(2, "service", Str),
    ] };
    pub(super) static HOST_ALIAS: Message = Message { name: "HostAlias", fields: &[
        one(1, "ip", Str),
        list(2, "hostnames", Str),
    ] };
    pub(super) static HOST_IP: Message = Message { name: "HostIP", fields: &[
        one(1, "ip", Str),
    ] };
    pub(super) static HOST_PATH_VOLUME_SOURCE: Message = Message { name: "HostPathVolumeSource", fields: &[
        one(1, "path", Str),
        ptr(2, "type", Str),
    ] };
    pub(super) static HTTP_GET_ACTION: Message = Message { name: "HTTPGetAction", fields: &[
        one(1, "path", Str),
        one(2, "port", IntOrString),
        one(3, "host", Str),
        one(4, "scheme", Str),
        list(5, "httpHeaders", Msg(&HTTP_HEADER)),
    ] };
    pub(super) static HTTP_HEADER: Message = Message { name: "HTTPHeader", fields: &[
        one(1, "name", Str),
        one(2, "value", Str),
    ] };
    pub(super) static IMAGE_VOLUME_SOURCE: Message = Message { name: "ImageVolumeSource", fields: &[
        one(1, "reference", Str),
        one(2, "pullPolicy", Str),
    ] };
    pub(super) static ISCSI_VOLUME_SOURCE: Message = Message { name: "ISCSIVolumeSource", fields: &[
        one(1, "targetPortal", Str),
        one(2, "iqn", Str),
        one(3, "lun", I32),
        one(4, "iscsiInterface", Str),
        one(5, "fsType", Str),
        one(6, "readOnly", Bool),
        list(7, "portals", Str),
        one(8, "chapAuthDiscovery", Bool),
        one(11, "chapAuthSession", Bool),
        ptr(10, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
        ptr(12, "initiatorName", Str),
    ] };
    pub(super) static KEY_TO_PATH: Message = Message { name: "KeyToPath", fields: &[
        one(1, "key", Str),
        one(2, "path", Str),
        ptr(3, "mode", I32),
    ] };
    pub(super) static LIFECYCLE: Message = Message { name: "Lifecycle", fields: &[
        ptr(1, "postStart", Msg(&LIFECYCLE_HANDLER)),
        ptr(2, "preStop", Msg(&LIFECYCLE_HANDLER)),
        ptr(3, "stopSignal", Str),
    ] };
    pub(super) static LIFECYCLE_HANDLER: Message = Message { name: "LifecycleHandler", fields: &[
        ptr(1, "exec", Msg(&EXEC_ACTION)),
        ptr(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        ptr(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        ptr(4, "sleep", Msg(&SLEEP_ACTION)),
    ] };
    pub(super) static LINUX_CONTAINER_USER: Message = Message { name: "LinuxContainerUser", fields: &[
        one(1, "uid", I64),
        one(2, "gid", I64),
        list(3, "supplementalGroups", I64),
    ] };
    pub(super) static LOAD_BALANCER_INGRESS: Message = Message { name: "LoadBalancerIngress", fields: &[
        one(1, "ip", Str),
        one(2, "hostname", Str),
        ptr(3, "ipMode", Str),
        list(4, "ports", Msg(&PORT_STATUS)),
    ] };
    pub(super) static LOAD_BALANCER_STATUS: Message = Message { name: "LoadBalancerStatus", fields: &[
        list(1, "ingress", Msg(&LOAD_BALANCER_INGRESS)),
    ] };
    pub(super) static LOCAL_OBJECT_REFERENCE: Message = Message { name: "LocalObjectReference", fields: &[
        one(1, "name", Str),
    ] };
    pub(super) static META_CONDITION: Message = Message { name: "Condition", fields: &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "observedGeneration", I64),
        one(4, "lastTransitionTime", Time),
        one(5, "reason", Str),
        one(6, "message", Str),
    ] };
    pub(super) static META_DELETE_OPTIONS: Message = Message { name: "DeleteOptions", fields: &[
        ptr(1, "gracePeriodSeconds", I64),
        ptr(2, "preconditions", Msg(&META_PRECONDITIONS)),
        ptr(3, "orphanDependents", Bool),
        ptr(4, "propagationPolicy", Str),
        list(5, "dryRun", Str),
        ptr(6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
    ] };
    pub(super) static META_LABEL_SELECTOR: Message = Message { name: "LabelSelector", fields: &[
        map(1, "matchLabels", Str),
        list(2, "matchExpressions", Msg(&META_LABEL_SELECTOR_REQUIREMENT)),
    ] };
    pub(super) static META_LABEL_SELECTOR_REQUIREMENT: Message = Message { name: "LabelSelectorRequirement", fields: &[
        one(1, "key", Str),
        one(2, "operator", Str),
        list(3, "values", Str),
    ] };
    pub(super) static META_MANAGED_FIELDS_ENTRY: Message = Message { name: "ManagedFieldsEntry", fields: &[
        one(1, "manager", Str),
        one(2, "operation", Str),
        one(3, "apiVersion", Str),
        ptr(4, "time", Time),
        one(6, "fieldsType", Str),
        ptr(7, "fieldsV1", RawJson),
        one(8, "subresource", Str),
    ] };
    pub(super) static META_OBJECT_META: Message = Message { name: "ObjectMeta", fields: &[
        one(1, "name", Str),
        one(2, "generateName", Str),
        one(3, "namespace", Str),
        one(4, "selfLink", Str),
        one(5, "uid", Str),
        one(6, "resourceVersion", Str),
        one(7, "generation", I64),
        one(8, "creationTimestamp", Time),
        ptr(9, "deletionTimestamp", Time),
        ptr(10, "deletionGracePeriodSeconds", I64),
        map(11, "labels", Str),
        map(12, "annotations", Str),
        list(13, "ownerReferences", Msg(&META_OWNER_REFERENCE)),
        list(14, "finalizers", Str),
        list(17, "managedFields", Msg(&META_MANAGED_FIELDS_ENTRY)),
    ] };
    pub(super) static META_OWNER_REFERENCE: Message = Message { name: "OwnerReference", fields: &[
        one(5, "apiVersion", Str),
        one(1, "kind", Str),
        one(3, "name", Str),
        one(4, "uid", Str),
        ptr(6, "controller", Bool),
        ptr(7, "blockOwnerDeletion", Bool),
    ] };
    pub(super) static META_PRECONDITIONS: Message = Message { name: "Preconditions", fields: &[
        ptr(1, "uid", Str),
        ptr(2, "resourceVersion", Str),
    ] };
    pub(super) static NAMESPACE: Message = Message { name: "Namespace", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&NAMESPACE_SPEC)),
        one(3, "status", Msg(&NAMESPACE_STATUS)),
    ] };
    pub(super) static NAMESPACE_CONDITION: Message = Message { name: "NamespaceCondition", fields: &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(4, "lastTransitionTime", Time),
        one(5, "reason", Str),
        one(6, "message", Str),
    ] };
    pub(super) static NAMESPACE_SPEC: Message = Message { name: "NamespaceSpec", fields: &[
        list(1, "finalizers", Str),
    ] };
    pub(super) static NAMESPACE_STATUS: Message = Message { name: "NamespaceStatus", fields: &[
        one(1, "phase", Str),
        list(2, "conditions", Msg(&NAMESPACE_CONDITION)),
    ] };
    pub(super) static NFS_VOLUME_SOURCE: Message = Message { name: "NFSVolumeSource", fields: &[
        one(1, "server", Str),
        one(2, "path", Str),
        one(3, "readOnly", Bool),
    ] };
    pub(super) static NODE: Message = Message { name: "Node", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&NODE_SPEC)),
        one(3, "status", Msg(&NODE_STATUS)),
    ] };
    pub(super) static NODE_ADDRESS: Message = Message { name: "NodeAddress", fields: &[
        one(1, "type", Str),
        one(2, "address", Str),
    ] };
    pub(super) static NODE_AFFINITY: Message = Message { name: "NodeAffinity", fields: &[
        ptr(1, "requiredDuringSchedulingIgnoredDuringExecution", Msg(&NODE_SELECTOR)),
        list(2, "preferredDuringSchedulingIgnoredDuringExecution", Msg(&PREFERRED_SCHEDULING_TERM)),
    ] };
    pub(super) static NODE_CONDITION: Message = Message { name: "NodeCondition", fields: &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastHeartbeatTime", Time),
        one(4, "lastTransitionTime", Time),
        one(5, "reason", Str),
        one(6, "message", Str),
    ] };
    pub(super) static NODE_CONFIG_SOURCE: Message = Message { name: "NodeConfigSource", fields: &[
        ptr(2, "configMap", Msg(&CONFIG_MAP_NODE_CONFIG_SOURCE)),
    ] };
    pub(super) static NODE_CONFIG_STATUS: Message = Message { name: "NodeConfigStatus", fields: &[
        ptr(1, "assigned", Msg(&NODE_CONFIG_SOURCE)),
        ptr(2, "active", Msg(&NODE_CONFIG_SOURCE)),
        ptr(3, "lastKnownGood", Msg(&NODE_CONFIG_SOURCE)),
        one(4, "error", Str),
    ] };
    pub(super) static NODE_DAEMON_ENDPOINTS: Message = Message { name: "NodeDaemonEndpoints", fields: &[
        one(1, "kubeletEndpoint", Msg(&DAEMON_ENDPOINT)),
    ] };
    pub(super) static NODE_FEATURES: Message = Message { name: "NodeFeatures", fields: &[
        ptr(1, "supplementalGroupsPolicy", Bool),
    ] };
    pub(super) static NODE_RUNTIME_HANDLER: Message = Message { name: "NodeRuntimeHandler", fields: &[
        one(1, "name", Str),
        ptr(2, "features", Msg(&NODE_RUNTIME_HANDLER_FEATURES)),
    ] };
    pub(super) static NODE_RUNTIME_HANDLER_FEATURES: Message = Message { name: "NodeRuntimeHandlerFeatures", fields: &[
        ptr(1, "recursiveReadOnlyMounts", Bool),
        ptr(2, "userNamespaces", Bool),
    ] };
    pub(super) static NODE_SELECTOR: Message = Message { name: "NodeSelector", fields: &[
        list(1, "nodeSelectorTerms", Msg(&NODE_SELECTOR_TERM)),
    ] };
    pub(super) static NODE_SELECTOR_REQUIREMENT: Message = Message { name: "NodeSelectorRequirement", fields: &[
        one(1, "key", Str),
        one(2, "operator", Str),
        list(3, "values", Str),
    ] };
    pub(super) static NODE_SELECTOR_TERM: Message = Message { name: "NodeSelectorTerm", fields: &[
        list(1, "matchExpressions", Msg(&NODE_SELECTOR_REQUIREMENT)),
        list(2, "matchFields", Msg(&NODE_SELECTOR_REQUIREMENT)),
    ] };
    pub(super) static NODE_SPEC: Message = Message { name: "NodeSpec", fields: &[
        one(1, "podCIDR", Str),
        list(7, "podCIDRs", Str),
        one(3, "providerID", Str),
        one(4, "unschedulable", Bool),
        list(5, "taints", Msg(&TAINT)),
        ptr(6, "configSource", Msg(&NODE_CONFIG_SOURCE)),
        one(2, "externalID", Str),
    ] };
    pub(super) static NODE_STATUS: Message = Message { name: "NodeStatus", fields: &[
        map(1, "capacity", Quantity),
        map(2, "allocatable", Quantity),
        one(3, "phase", Str),
        list(4, "conditions", Msg(&NODE_CONDITION)),
        list(5, "addresses", Msg(&NODE_ADDRESS)),
        one(6, "daemonEndpoints", Msg(&NODE_DAEMON_ENDPOINTS)),
        one(7, "nodeInfo", Msg(&NODE_SYSTEM_INFO)),
        list(8, "images", Msg(&CONTAINER_IMAGE)),
        list(9, "volumesInUse", Str),
        list(10, "volumesAttached", Msg(&ATTACHED_VOLUME)),
        ptr(11, "config", Msg(&NODE_CONFIG_STATUS)),
        list(12, "runtimeHandlers", Msg(&NODE_RUNTIME_HANDLER)),
        ptr(13, "features", Msg(&NODE_FEATURES)),
    ] };
    pub(super) static NODE_SWAP_STATUS: Message = Message { name: "NodeSwapStatus", fields: &[
        ptr(1, "capacity", I64),
    ] };
    pub(super) static NODE_SYSTEM_INFO: Message = Message { name: "NodeSystemInfo", fields: &[
        one(1, "machineID", Str),
        one(2, "systemUUID", Str),
        one(3, "bootID", Str),
        one(4, "kernelVersion", Str),
        one(5, "osImage", Str),
        one(6, "containerRuntimeVersion", Str),
        one(7, "kubeletVersion", Str),
        one(8, "kubeProxyVersion", Str),
        one(9, "operatingSystem", Str),
        one(10, "architecture", Str),
        ptr(11, "swap", Msg(&NODE_SWAP_STATUS)),
    ] };
    pub(super) static OBJECT_FIELD_SELECTOR: Message = Message { name: "ObjectFieldSelector", fields: &[
        one(1, "apiVersion", Str),
        one(2, "fieldPath", Str),
    ] };
    pub(super) static OBJECT_REFERENCE: Message = Message { name: "ObjectReference", fields: &[
        one(1, "kind", Str),
        one(2, "namespace", Str),
        one(3, "name", Str),
        one(4, "uid", Str),
        one(5, "apiVersion", Str),
        one(6, "resourceVersion", Str),
        one(7, "fieldPath", Str),
    ] };
    pub(super) static PERSISTENT_VOLUME_CLAIM_SPEC: Message = Message { name: "PersistentVolumeClaimSpec", fields: &[
        list(1, "accessModes", Str),
        ptr(4, "selector", Msg(&META_LABEL_SELECTOR)),
        one(2, "resources", Msg(&VOLUME_RESOURCE_REQUIREMENTS)),
        one(3, "volumeName", Str),
        ptr(5, "storageClassName", Str),
        ptr(6, "volumeMode", Str),
        ptr(7, "dataSource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        ptr(8, "dataSourceRef", Msg(&TYPED_OBJECT_REFERENCE)),
        ptr(9, "volumeAttributesClassName", Str),
    ] };
    pub(super) static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Message = Message { name: "PersistentVolumeClaimTemplate", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&PERSISTENT_VOLUME_CLAIM_SPEC)),
    ] };
    pub(super) static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message = Message { name: "PersistentVolumeClaimVolumeSource", fields: &[
        one(1, "claimName", Str),
        one(2, "readOnly", Bool),
    ] };
    pub(super) static PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Message = Message { name: "PhotonPersistentDiskVolumeSource", fields: &[
        one(1, "pdID", Str),
        one(2, "fsType", Str),
    ] };
    pub(super) static POLICY_EVICTION: Message = Message { name: "Eviction", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        ptr(2, "deleteOptions", Msg(&META_DELETE_OPTIONS)),
    ] };
    pub(super) static POLICY_POD_DISRUPTION_BUDGET: Message = Message { name: "PodDisruptionBudget", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&POLICY_POD_DISRUPTION_BUDGET_SPEC)),
        one(3, "status", Msg(&POLICY_POD_DISRUPTION_BUDGET_STATUS)),
    ] };
    pub(super) static POLICY_POD_DISRUPTION_BUDGET_SPEC: Message = Message { name: "PodDisruptionBudgetSpec", fields: &[
        ptr(1, "minAvailable", IntOrString),
        ptr(2, "selector", Msg(&META_LABEL_SELECTOR)),
        ptr(3, "maxUnavailable", IntOrString),
        ptr(4, "unhealthyPodEvictionPolicy", Str),
    ] };
    pub(super) static POLICY_POD_DISRUPTION_BUDGET_STATUS: Message = Message { name: "PodDisruptionBudgetStatus", fields: &[
        one(1, "observedGeneration", I64),
        map(2, "disruptedPods", Time),
        one(3, "disruptionsAllowed", I32),
        one(4, "currentHealthy", I32),
        one(5, "desiredHealthy", I32),
        one(6, "expectedPods", I32),
        list(7, "conditions", Msg(&META_CONDITION)),
    ] };
    pub(super) static AUTHENTICATION_TOKEN_REVIEW: Message = Message { name: "TokenReview", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&AUTHENTICATION_TOKEN_REVIEW_SPEC)),
    ] };
    pub(super) static AUTHENTICATION_TOKEN_REVIEW_SPEC: Message = Message { name: "TokenReviewSpec", fields: &[
        one(1, "token", Str),
        list(2, "audiences", Str),
    ] };
    pub(super) static AUTHENTICATION_SELF_SUBJECT_REVIEW: Message = Message { name: "SelfSubjectReview", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
    ] };
    pub(super) static AUTHORIZATION_SUBJECT_ACCESS_REVIEW: Message = Message { name: "SubjectAccessReview", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&AUTHORIZATION_SUBJECT_ACCESS_REVIEW_SPEC)),
    ] };
    pub(super) static AUTHORIZATION_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message { name: "SubjectAccessReviewSpec", fields: &[
        ptr(1, "resourceAttributes", Msg(&AUTHORIZATION_RESOURCE_ATTRIBUTES)),
        ptr(2, "nonResourceAttributes", Msg(&AUTHORIZATION_NON_RESOURCE_ATTRIBUTES)),
        one(3, "user", Str),
        list(4, "groups", Str),
        one(6, "uid", Str),
    ] };
    pub(super) static AUTHORIZATION_SELF_SUBJECT_ACCESS_REVIEW: Message = Message { name: "SelfSubjectAccessReview", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&AUTHORIZATION_SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
    ] };
    pub(super) static AUTHORIZATION_SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message { name: "SelfSubjectAccessReviewSpec", fields: &[
        ptr(1, "resourceAttributes", Msg(&AUTHORIZATION_RESOURCE_ATTRIBUTES)),
        ptr(2, "nonResourceAttributes", Msg(&AUTHORIZATION_NON_RESOURCE_ATTRIBUTES)),
    ] };
    pub(super) static AUTHORIZATION_SELF_SUBJECT_RULES_REVIEW: Message = Message { name: "SelfSubjectRulesReview", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&AUTHORIZATION_SELF_SUBJECT_RULES_REVIEW_SPEC)),
    ] };
    pub(super) static AUTHORIZATION_SELF_SUBJECT_RULES_REVIEW_SPEC: Message = Message { name: "SelfSubjectRulesReviewSpec", fields: &[
        one(1, "namespace", Str),
    ] };
    pub(super) static AUTHORIZATION_RESOURCE_ATTRIBUTES: Message = Message { name: "ResourceAttributes", fields: &[
        one(1, "namespace", Str),
        one(2, "verb", Str),
        one(3, "group", Str),
        one(4, "version", Str),
        one(5, "resource", Str),
        one(6, "subresource", Str),
        one(7, "name", Str),
    ] };
    pub(super) static AUTHORIZATION_NON_RESOURCE_ATTRIBUTES: Message = Message { name: "NonResourceAttributes", fields: &[
        one(1, "path", Str),
        one(2, "verb", Str),
    ] };
    pub(super) static RESOURCE_QUOTA: Message = Message { name: "ResourceQuota", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&RESOURCE_QUOTA_SPEC)),
        one(3, "status", Msg(&RESOURCE_QUOTA_STATUS)),
    ] };
    pub(super) static RESOURCE_QUOTA_SPEC: Message = Message { name: "ResourceQuotaSpec", fields: &[
        map(1, "hard", Quantity),
        list(2, "scopes", Str),
        ptr(3, "scopeSelector", Msg(&SCOPE_SELECTOR)),
    ] };
    pub(super) static RESOURCE_QUOTA_STATUS: Message = Message { name: "ResourceQuotaStatus", fields: &[
        map(1, "hard", Quantity),
        map(2, "used", Quantity),
    ] };
    pub(super) static SCOPE_SELECTOR: Message = Message { name: "ScopeSelector", fields: &[
        list(1, "matchExpressions", Msg(&SCOPED_RESOURCE_SELECTOR_REQUIREMENT)),
    ] };
    pub(super) static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Message = Message { name: "ScopedResourceSelectorRequirement", fields: &[
        one(1, "scopeName", Str),
        one(2, "operator", Str),
        list(3, "values", Str),
    ] };
    pub(super) static LIMIT_RANGE: Message = Message { name: "LimitRange", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&LIMIT_RANGE_SPEC)),
    ] };
    pub(super) static LIMIT_RANGE_SPEC: Message = Message { name: "LimitRangeSpec", fields: &[
        list(1, "limits", Msg(&LIMIT_RANGE_ITEM)),
    ] };
    pub(super) static LIMIT_RANGE_ITEM: Message = Message { name: "LimitRangeItem", fields: &[
        one(1, "type", Str),
        map(2, "max", Quantity),
        map(3, "min", Quantity),
        map(4, "default", Quantity),
        map(5, "defaultRequest", Quantity),
        map(6, "maxLimitRequestRatio", Quantity),
    ] };
    pub(super) static SCHEDULING_PRIORITY_CLASS: Message = Message { name: "PriorityClass", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "value", I32),
        one(3, "globalDefault", Bool),
        one(4, "description", Str),
        ptr(5, "preemptionPolicy", Str),
    ] };
    pub(super) static POD: Message = Message { name: "Pod", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&POD_SPEC)),
        one(3, "status", Msg(&POD_STATUS)),
    ] };
    pub(super) static POD_AFFINITY: Message = Message { name: "PodAffinity", fields: &[
        list(1, "requiredDuringSchedulingIgnoredDuringExecution", Msg(&POD_AFFINITY_TERM)),
        list(2, "preferredDuringSchedulingIgnoredDuringExecution", Msg(&WEIGHTED_POD_AFFINITY_TERM)),
    ] };
    pub(super) static POD_AFFINITY_TERM: Message = Message { name: "PodAffinityTerm", fields: &[
        ptr(1, "labelSelector", Msg(&META_LABEL_SELECTOR)),
        list(2, "namespaces", Str),
        one(3, "topologyKey", Str),
        ptr(4, "namespaceSelector", Msg(&META_LABEL_SELECTOR)),
        list(5, "matchLabelKeys", Str),
        list(6, "mismatchLabelKeys", Str),
    ] };
    pub(super) static POD_ANTI_AFFINITY: Message = Message { name: "PodAntiAffinity", fields: &[
        list(1, "requiredDuringSchedulingIgnoredDuringExecution", Msg(&POD_AFFINITY_TERM)),
        list(2, "preferredDuringSchedulingIgnoredDuringExecution", Msg(&WEIGHTED_POD_AFFINITY_TERM)),
    ] };
    pub(super) static POD_CONDITION: Message = Message { name: "PodCondition", fields: &[
        one(1, "type", Str),
        one(7, "observedGeneration", I64),
        one(2, "status", Str),
        one(3, "lastProbeTime", Time),
        one(4, "lastTransitionTime", Time),
        one(5, "reason", Str),
        one(6, "message", Str),
    ] };
    pub(super) static POD_DNS_CONFIG: Message = Message { name: "PodDNSConfig", fields: &[
        list(1, "nameservers", Str),
        list(2, "searches", Str),
        list(3, "options", Msg(&POD_DNS_CONFIG_OPTION)),
    ] };
    pub(super) static POD_DNS_CONFIG_OPTION: Message = Message { name: "PodDNSConfigOption", fields: &[
        one(1, "name", Str),
        ptr(2, "value", Str),
    ] };
    pub(super) static POD_IP: Message = Message { name: "PodIP", fields: &[
        one(1, "ip", Str),
    ] };
    pub(super) static POD_OS: Message = Message { name: "PodOS", fields: &[
        one(1, "name", Str),
    ] };
    pub(super) static POD_READINESS_GATE: Message = Message { name: "PodReadinessGate", fields: &[
        one(1, "conditionType", Str),
    ] };
    pub(super) static POD_RESOURCE_CLAIM: Message = Message { name: "PodResourceClaim", fields: &[
        one(1, "name", Str),
        ptr(3, "resourceClaimName", Str),
        ptr(4, "resourceClaimTemplateName", Str),
    ] };
    pub(super) static POD_RESOURCE_CLAIM_STATUS: Message = Message { name: "PodResourceClaimStatus", fields: &[
        one(1, "name", Str),
        ptr(2, "resourceClaimName", Str),
    ] };
    pub(super) static POD_SCHEDULING_GATE: Message = Message { name: "PodSchedulingGate", fields: &[
        one(1, "name", Str),
    ] };
    pub(super) static POD_SECURITY_CONTEXT: Message = Message { name: "PodSecurityContext", fields: &[
        ptr(1, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS)),
        ptr(8, "windowsOptions", Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        ptr(2, "runAsUser", I64),
        ptr(6, "runAsGroup", I64),
        ptr(3, "runAsNonRoot", Bool),
        list(4, "supplementalGroups", I64),
        ptr(12, "supplementalGroupsPolicy", Str),
        ptr(5, "fsGroup", I64),
        list(7, "sysctls", Msg(&SYSCTL)),
        ptr(9, "fsGroupChangePolicy", Str),
        ptr(10, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        ptr(11, "appArmorProfile", Msg(&APP_ARMOR_PROFILE)),
        ptr(13, "seLinuxChangePolicy", Str),
    ] };
    pub(super) static POD_SPEC: Message = Message { name: "PodSpec", fields: &[
        list(1, "volumes", Msg(&VOLUME)),
        list(20, "initContainers", Msg(&CONTAINER)),
        list(2, "containers", Msg(&CONTAINER)),
        list(34, "ephemeralContainers", Msg(&EPHEMERAL_CONTAINER)),
        one(3, "restartPolicy", Str),
        ptr(4, "terminationGracePeriodSeconds", I64),
        ptr(5, "activeDeadlineSeconds", I64),
        one(6, "dnsPolicy", Str),
        map(7, "nodeSelector", Str),
        one(8, "serviceAccountName", Str),
        one(9, "serviceAccount", Str),
        ptr(21, "automountServiceAccountToken", Bool),
        one(10, "nodeName", Str),
        one(11, "hostNetwork", Bool),
        one(12, "hostPID", Bool),
        one(13, "hostIPC", Bool),
        ptr(27, "shareProcessNamespace", Bool),
        ptr(14, "securityContext", Msg(&POD_SECURITY_CONTEXT)),
        list(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        one(16, "hostname", Str),
        one(17, "subdomain", Str),
        ptr(18, "affinity", Msg(&AFFINITY)),
        one(19, "schedulerName", Str),
        list(22, "tolerations", Msg(&TOLERATION)),
        list(23, "hostAliases", Msg(&HOST_ALIAS)),
        one(24, "priorityClassName", Str),
        ptr(25, "priority", I32),
        ptr(26, "dnsConfig", Msg(&POD_DNS_CONFIG)),
        list(28, "readinessGates", Msg(&POD_READINESS_GATE)),
        ptr(29, "runtimeClassName", Str),
        ptr(30, "enableServiceLinks", Bool),
        ptr(31, "preemptionPolicy", Str),
        map(32, "overhead", Quantity),
        list(33, "topologySpreadConstraints", Msg(&TOPOLOGY_SPREAD_CONSTRAINT)),
        ptr(35, "setHostnameAsFQDN", Bool),
        ptr(36, "os", Msg(&POD_OS)),
        ptr(37, "hostUsers", Bool),
        list(38, "schedulingGates", Msg(&POD_SCHEDULING_GATE)),
        list(39, "resourceClaims", Msg(&POD_RESOURCE_CLAIM)),
        ptr(40, "resources", Msg(&RESOURCE_REQUIREMENTS)),
    ] };
    pub(super) static POD_STATUS: Message = Message { name: "PodStatus", fields: &[
        one(17, "observedGeneration", I64),
        one(1, "phase", Str),
        list(2, "conditions", Msg(&POD_CONDITION)),
        one(3, "message", Str),
        one(4, "reason", Str),
        one(11, "nominatedNodeName", Str),
        one(5, "hostIP", Str),
        list(16, "hostIPs", Msg(&HOST_IP)),
        one(6, "podIP", Str),
        list(12, "podIPs", Msg(&POD_IP)),
        ptr(7, "startTime", Time),
        list(10, "initContainerStatuses", Msg(&CONTAINER_STATUS)),
        list(8, "containerStatuses", Msg(&CONTAINER_STATUS)),
        one(9, "qosClass", Str),
        list(13, "ephemeralContainerStatuses", Msg(&CONTAINER_STATUS)),
        one(14, "resize", Str),
        list(15, "resourceClaimStatuses", Msg(&POD_RESOURCE_CLAIM_STATUS)),
    ] };
    pub(super) static PORTWORX_VOLUME_SOURCE: Message = Message { name: "PortworxVolumeSource", fields: &[
        one(1, "volumeID", Str),
        one(2, "fsType", Str),
        one(3, "readOnly", Bool),
    ] };
    pub(super) static PORT_STATUS: Message = Message { name: "PortStatus", fields: &[
        one(1, "port", I32),
        one(2, "protocol", Str),
        ptr(3, "error", Str),
    ] };
    pub(super) static PREFERRED_SCHEDULING_TERM: Message = Message { name: "PreferredSchedulingTerm", fields: &[
        one(1, "weight", I32),
        one(2, "preference", Msg(&NODE_SELECTOR_TERM)),
    ] };
    pub(super) static PROBE: Message = Message { name: "Probe", fields: &[
        inline(1, "handler", &PROBE_HANDLER),
        one(2, "initialDelaySeconds", I32),
        one(3, "timeoutSeconds", I32),
        one(4, "periodSeconds", I32),
        one(5, "successThreshold", I32),
        one(6, "failureThreshold", I32),
        ptr(7, "terminationGracePeriodSeconds", I64),
    ] };
    pub(super) static PROBE_HANDLER: Message = Message { name: "ProbeHandler", fields: &[
        ptr(1, "exec", Msg(&EXEC_ACTION)),
        ptr(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        ptr(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        ptr(4, "grpc", Msg(&GRPC_ACTION)),
    ] };
    pub(super) static PROJECTED_VOLUME_SOURCE: Message = Message { name: "ProjectedVolumeSource", fields: &[
        list(1, "sources", Msg(&VOLUME_PROJECTION)),
        ptr(2, "defaultMode", I32),
    ] };
    pub(super) static QUOBYTE_VOLUME_SOURCE: Message = Message { name: "QuobyteVolumeSource", fields: &[
        one(1, "registry", Str),
        one(2, "volume", Str),
        one(3, "readOnly", Bool),
        one(4, "user", Str),
        one(5, "group", Str),
        one(6, "tenant", Str),
    ] };
    pub(super) static RBD_VOLUME_SOURCE: Message = Message { name: "RBDVolumeSource", fields: &[
        list(1, "monitors", Str),
        one(2, "image", Str),
        one(3, "fsType", Str),
        one(4, "pool", Str),
        one(5, "user", Str),
        one(6, "keyring", Str),
        ptr(7, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
        one(8, "readOnly", Bool),
    ] };
    pub(super) static RESOURCE_CLAIM: Message = Message { name: "ResourceClaim", fields: &[
        one(1, "name", Str),
        one(2, "request", Str),
    ] };
    pub(super) static RESOURCE_FIELD_SELECTOR: Message = Message { name: "ResourceFieldSelector", fields: &[
        one(1, "containerName", Str),
        one(2, "resource", Str),
        one(3, "divisor", Quantity),
    ] };
    pub(super) static RESOURCE_HEALTH: Message = Message { name: "ResourceHealth", fields: &[
        one(1, "resourceID", Str),
        one(2, "health", Str),
    ] };
    pub(super) static RESOURCE_REQUIREMENTS: Message = Message { name: "ResourceRequirements", fields: &[
        map(1, "limits", Quantity),
        map(2, "requests", Quantity),
        list(3, "claims", Msg(&RESOURCE_CLAIM)),
    ] };
    pub(super) static RESOURCE_STATUS: Message = Message { name: "ResourceStatus", fields: &[
        one(1, "name", Str),
        list(2, "resources", Msg(&RESOURCE_HEALTH)),
    ] };
    pub(super) static SCALE_IO_VOLUME_SOURCE: Message = Message { name: "ScaleIOVolumeSource", fields: &[
        one(1, "gateway", Str),
        one(2, "system", Str),
        ptr(3, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
        one(4, "sslEnabled", Bool),
        one(5, "protectionDomain", Str),
        one(6, "storagePool", Str),
        one(7, "storageMode", Str),
        one(8, "volumeName", Str),
        one(9, "fsType", Str),
        one(10, "readOnly", Bool),
    ] };
    pub(super) static SECCOMP_PROFILE: Message = Message { name: "SeccompProfile", fields: &[
        one(1, "type", Str),
        ptr(2, "localhostProfile", Str),
    ] };
    pub(super) static SECRET: Message = Message { name: "Secret", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        ptr(5, "immutable", Bool),
        map(2, "data", Bytes),
        map(4, "stringData", Str),
        one(3, "type", Str),
    ] };
    pub(super) static SECRET_ENV_SOURCE: Message = Message { name: "SecretEnvSource", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        ptr(2, "optional", Bool),
    ] };
    pub(super) static SECRET_KEY_SELECTOR: Message = Message { name: "SecretKeySelector", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        one(2, "key", Str),
        ptr(3, "optional", Bool),
    ] };
    pub(super) static SECRET_PROJECTION: Message = Message { name: "SecretProjection", fields: &[
        inline(1, "localObjectReference", &LOCAL_OBJECT_REFERENCE),
        list(2, "items", Msg(&KEY_TO_PATH)),
        ptr(4, "optional", Bool),
    ] };
    pub(super) static SECRET_VOLUME_SOURCE: Message = Message { name: "SecretVolumeSource", fields: &[
        one(1, "secretName", Str),
        list(2, "items", Msg(&KEY_TO_PATH)),
        ptr(3, "defaultMode", I32),
        ptr(4, "optional", Bool),
    ] };
    pub(super) static SECURITY_CONTEXT: Message = Message { name: "SecurityContext", fields: &[
        ptr(1, "capabilities", Msg(&CAPABILITIES)),
        ptr(2, "privileged", Bool),
        ptr(3, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS)),
        ptr(10, "windowsOptions", Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        ptr(4, "runAsUser", I64),
        ptr(8, "runAsGroup", I64),
        ptr(5, "runAsNonRoot", Bool),
        ptr(6, "readOnlyRootFilesystem", Bool),
        ptr(7, "allowPrivilegeEscalation", Bool),
        ptr(9, "procMount", Str),
        ptr(11, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        ptr(12, "appArmorProfile", Msg(&APP_ARMOR_PROFILE)),
    ] };
    pub(super) static SERVICE: Message = Message { name: "Service", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        one(2, "spec", Msg(&SERVICE_SPEC)),
        one(3, "status", Msg(&SERVICE_STATUS)),
    ] };
    pub(super) static SERVICE_ACCOUNT: Message = Message { name: "ServiceAccount", fields: &[
        one(1, "metadata", Msg(&META_OBJECT_META)),
        list(2, "secrets", Msg(&OBJECT_REFERENCE)),
        list(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        ptr(4, "automountServiceAccountToken", Bool),
    ] };
    pub(super) static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = Message { name: "ServiceAccountTokenProjection", fields: &[
        one(1, "audience", Str),
        ptr(2, "expirationSeconds", I64),
        one(3, "path", Str),
    ] };
    pub(super) static SERVICE_PORT: Message = Message { name: "ServicePort", fields: &[
        one(1, "name", Str),
        one(2, "protocol", Str),
        ptr(6, "appProtocol", Str),
        one(3, "port", I32),
        one(4, "targetPort", IntOrString),
        one(5, "nodePort", I32),
    ] };
    pub(super) static SERVICE_SPEC: Message = Message { name: "ServiceSpec", fields: &[
        list(1, "ports", Msg(&SERVICE_PORT)),
        map(2, "selector", Str),
        one(3, "clusterIP", Str),
        list(18, "clusterIPs", Str),
        one(4, "type", Str),
        list(5, "externalIPs", Str),
        one(7, "sessionAffinity", Str),
        one(8, "loadBalancerIP", Str),
        list(9, "loadBalancerSourceRanges", Str),
        one(10, "externalName", Str),
        one(11, "externalTrafficPolicy", Str),
        one(12, "healthCheckNodePort", I32),
        one(13, "publishNotReadyAddresses", Bool),
        ptr(14, "sessionAffinityConfig", Msg(&SESSION_AFFINITY_CONFIG)),
        list(19, "ipFamilies", Str),
        ptr(17, "ipFamilyPolicy", Str),
        ptr(20, "allocateLoadBalancerNodePorts", Bool),
        ptr(21, "loadBalancerClass", Str),
        ptr(22, "internalTrafficPolicy", Str),
        ptr(23, "trafficDistribution", Str),
    ] };
    pub(super) static SERVICE_STATUS: Message = Message { name: "ServiceStatus", fields: &[
        one(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS)),
        list(2, "conditions", Msg(&META_CONDITION)),
    ] };
    pub(super) static SESSION_AFFINITY_CONFIG: Message = Message { name: "SessionAffinityConfig", fields: &[
        ptr(1, "clientIP", Msg(&CLIENT_IP_CONFIG)),
    ] };
    pub(super) static SE_LINUX_OPTIONS: Message = Message { name: "SELinuxOptions", fields: &[
        one(1, "user", Str),
        one(2, "role", Str),
        one(3, "type", Str),
        one(4, "level", Str),
    ] };
    pub(super) static SLEEP_ACTION: Message = Message { name: "SleepAction", fields: &[
        one(1, "seconds", I64),
    ] };
    pub(super) static STORAGE_OS_VOLUME_SOURCE: Message = Message { name: "StorageOSVolumeSource", fields: &[
        one(1, "volumeName", Str),
        one(2, "volumeNamespace", Str),
        one(3, "fsType", Str),
        one(4, "readOnly", Bool),
        ptr(5, "secretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
    ] };
    pub(super) static SYSCTL: Message = Message { name: "Sysctl", fields: &[
        one(1, "name", Str),
        one(2, "value", Str),
    ] };
    pub(super) static TAINT: Message = Message { name: "Taint", fields: &[
        one(1, "key", Str),
        one(2, "value", Str),
        one(3, "effect", Str),
        ptr(4, "timeAdded", Time),
    ] };
    pub(super) static TCP_SOCKET_ACTION: Message = Message { name: "TCPSocketAction", fields: &[
        one(1, "port", IntOrString),
        one(2, "host", Str),
    ] };
    pub(super) static TOLERATION: Message = Message { name: "Toleration", fields: &[
        one(1, "key", Str),
        one(2, "operator", Str),
        one(3, "value", Str),
        one(4, "effect", Str),
        ptr(5, "tolerationSeconds", I64),
    ] };
    pub(super) static TOPOLOGY_SPREAD_CONSTRAINT: Message = Message { name: "TopologySpreadConstraint", fields: &[
        one(1, "maxSkew", I32),
        one(2, "topologyKey", Str),
        one(3, "whenUnsatisfiable", Str),
        ptr(4, "labelSelector", Msg(&META_LABEL_SELECTOR)),
        ptr(5, "minDomains", I32),
        ptr(6, "nodeAffinityPolicy", Str),
        ptr(7, "nodeTaintsPolicy", Str),
        list(8, "matchLabelKeys", Str),
    ] };
    pub(super) static TYPED_LOCAL_OBJECT_REFERENCE: Message = Message { name: "TypedLocalObjectReference", fields: &[
        ptr(1, "apiGroup", Str),
        one(2, "kind", Str),
        one(3, "name", Str),
    ] };
    pub(super) static TYPED_OBJECT_REFERENCE: Message = Message { name: "TypedObjectReference", fields: &[
        ptr(1, "apiGroup", Str),
        one(2, "kind", Str),
        one(3, "name", Str),
        ptr(4, "namespace", Str),
    ] };
    pub(super) static VOLUME: Message = Message { name: "Volume", fields: &[
        one(1, "name", Str),
        inline(2, "volumeSource", &VOLUME_SOURCE),
    ] };
    pub(super) static VOLUME_DEVICE: Message = Message { name: "VolumeDevice", fields: &[
        one(1, "name", Str),
        one(2, "devicePath", Str),
    ] };
    pub(super) static VOLUME_MOUNT: Message = Message { name: "VolumeMount", fields: &[
        one(1, "name", Str),
        one(2, "readOnly", Bool),
        ptr(7, "recursiveReadOnly", Str),
        one(3, "mountPath", Str),
        one(4, "subPath", Str),
        ptr(5, "mountPropagation", Str),
        one(6, "subPathExpr", Str),
    ] };
    pub(super) static VOLUME_MOUNT_STATUS: Message = Message { name: "VolumeMountStatus", fields: &[
        one(1, "name", Str),
        one(2, "mountPath", Str),
        one(3, "readOnly", Bool),
        ptr(4, "recursiveReadOnly", Str),
    ] };
    pub(super) static VOLUME_PROJECTION: Message = Message { name: "VolumeProjection", fields: &[
        ptr(1, "secret", Msg(&SECRET_PROJECTION)),
        ptr(2, "downwardAPI", Msg(&DOWNWARD_API_PROJECTION)),
        ptr(3, "configMap", Msg(&CONFIG_MAP_PROJECTION)),
        ptr(4, "serviceAccountToken", Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION)),
        ptr(5, "clusterTrustBundle", Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION)),
    ] };
    pub(super) static VOLUME_RESOURCE_REQUIREMENTS: Message = Message { name: "VolumeResourceRequirements", fields: &[
        map(1, "limits", Quantity),
        map(2, "requests", Quantity),
    ] };
    pub(super) static VOLUME_SOURCE: Message = Message { name: "VolumeSource", fields: &[
        ptr(1, "hostPath", Msg(&HOST_PATH_VOLUME_SOURCE)),
        ptr(2, "emptyDir", Msg(&EMPTY_DIR_VOLUME_SOURCE)),
        ptr(3, "gcePersistentDisk", Msg(&GCE_PERSISTENT_DISK_VOLUME_SOURCE)),
        ptr(4, "awsElasticBlockStore", Msg(&AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE)),
        ptr(5, "gitRepo", Msg(&GIT_REPO_VOLUME_SOURCE)),
        ptr(6, "secret", Msg(&SECRET_VOLUME_SOURCE)),
        ptr(7, "nfs", Msg(&NFS_VOLUME_SOURCE)),
        ptr(8, "iscsi", Msg(&ISCSI_VOLUME_SOURCE)),
        ptr(9, "glusterfs", Msg(&GLUSTERFS_VOLUME_SOURCE)),
        ptr(10, "persistentVolumeClaim", Msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE)),
        ptr(11, "rbd", Msg(&RBD_VOLUME_SOURCE)),
        ptr(12, "flexVolume", Msg(&FLEX_VOLUME_SOURCE)),
        ptr(13, "cinder", Msg(&CINDER_VOLUME_SOURCE)),
        ptr(14, "cephfs", Msg(&CEPH_FS_VOLUME_SOURCE)),
        ptr(15, "flocker", Msg(&FLOCKER_VOLUME_SOURCE)),
        ptr(16, "downwardAPI", Msg(&DOWNWARD_API_VOLUME_SOURCE)),
        ptr(17, "fc", Msg(&FC_VOLUME_SOURCE)),
        ptr(18, "azureFile", Msg(&AZURE_FILE_VOLUME_SOURCE)),
        ptr(19, "configMap", Msg(&CONFIG_MAP_VOLUME_SOURCE)),
        ptr(20, "vsphereVolume", Msg(&VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE)),
        ptr(21, "quobyte", Msg(&QUOBYTE_VOLUME_SOURCE)),
        ptr(22, "azureDisk", Msg(&AZURE_DISK_VOLUME_SOURCE)),
        ptr(23, "photonPersistentDisk", Msg(&PHOTON_PERSISTENT_DISK_VOLUME_SOURCE)),
        ptr(26, "projected", Msg(&PROJECTED_VOLUME_SOURCE)),
        ptr(24, "portworxVolume", Msg(&PORTWORX_VOLUME_SOURCE)),
        ptr(25, "scaleIO", Msg(&SCALE_IO_VOLUME_SOURCE)),
        ptr(27, "storageos", Msg(&STORAGE_OS_VOLUME_SOURCE)),
        ptr(28, "csi", Msg(&CSI_VOLUME_SOURCE)),
        ptr(29, "ephemeral", Msg(&EPHEMERAL_VOLUME_SOURCE)),
        ptr(30, "image", Msg(&IMAGE_VOLUME_SOURCE)),
    ] };
    pub(super) static VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Message = Message { name: "VsphereVirtualDiskVolumeSource", fields: &[
        one(1, "volumePath", Str),
        one(2, "fsType", Str),
        one(3, "storagePolicyName", Str),
        one(4, "storagePolicyID", Str),
    ] };
    pub(super) static WEIGHTED_POD_AFFINITY_TERM: Message = Message { name: "WeightedPodAffinityTerm", fields: &[
        one(1, "weight", I32),
        one(2, "podAffinityTerm", Msg(&POD_AFFINITY_TERM)),
    ] };
    pub(super) static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = Message { name: "WindowsSecurityContextOptions", fields: &[
        ptr(1, "gmsaCredentialSpecName", Str),
        ptr(2, "gmsaCredentialSpec", Str),
        ptr(3, "runAsUserName", Str),
        ptr(4, "hostProcess", Bool),
    ] };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A minimal encoder, to write bodies the way Go's generated marshallers do.

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }

    fn tag(num: u32, wire: u8) -> Vec<u8> {
        varint((u64::from(num) << 3) | u64::from(wire))
    }

    /// A length-delimited field: a string, bytes or an embedded message.
    fn ld(num: u32, payload: &[u8]) -> Vec<u8> {
        [
            tag(num, LEN),
            varint(payload.len() as u64),
            payload.to_vec(),
        ]
        .concat()
    }

    /// A varint field.
    fn vi(num: u32, v: u64) -> Vec<u8> {
        [tag(num, VARINT), varint(v)].concat()
    }

    fn msg(fields: &[Vec<u8>]) -> Vec<u8> {
        fields.concat()
    }

    /// A `map<string, …>` entry.
    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        msg(&[ld(1, key.as_bytes()), ld(2, value)])
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = msg(&[ld(1, api_version.as_bytes()), ld(2, kind.as_bytes())]);
        [
            MAGIC.to_vec(),
            ld(1, &type_meta),
            ld(2, raw),
            ld(3, b""),
            ld(4, b""),
        ]
        .concat()
    }

    fn served(group: &str, plural: &str) -> &'static Resource {
        api::resource::find(group, "v1", plural).unwrap()
    }

    fn named(name: &str) -> Vec<u8> {
        msg(&[ld(1, name.as_bytes())])
    }

    #[test]
    fn namespace_as_kubectl_sends_it() {
        // ObjectMeta as Go marshals it: every non-pointer field written, zero or not.
        let metadata = msg(&[
            ld(1, b"x"),
            ld(2, b""),
            ld(3, b""),
            ld(4, b""),
            ld(5, b""),
            ld(6, b""),
            vi(7, 0),
            ld(8, b""), // creationTimestamp: the zero time is an empty message
            ld(11, &entry("team", b"a")),
        ]);
        let raw = msg(&[ld(1, &metadata), ld(2, b""), ld(3, &ld(1, b""))]);
        // The envelope as observed from kubectl 1.33: typeMeta, raw, empty contentEncoding and contentType.
        let mut body = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace".to_vec();
        body.extend([ld(2, &raw), ld(3, b""), ld(4, b"")].concat());
        assert_eq!(body, envelope("v1", "Namespace", &raw));

        let decoded = decode(served("", "namespaces"), &body).unwrap();
        assert_eq!(
            decoded,
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "x", "labels": {"team": "a"}},
                "spec": {},
                "status": {}
            })
        );
        let keys: Vec<&String> = decoded.as_object().unwrap().keys().collect();
        assert_eq!(keys[..2], ["apiVersion", "kind"]);
    }

    #[test]
    fn an_empty_type_meta_means_the_endpoint_kind() {
        let raw = msg(&[ld(1, &named("x"))]);
        let body = [MAGIC.to_vec(), ld(1, b""), ld(2, &raw)].concat();
        assert_eq!(
            decode(served("", "namespaces"), &body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        );
    }

    #[test]
    fn service_ports_selector_and_int_or_string() {
        let port = |name: &str, number: u64, target: Vec<u8>| {
            msg(&[
                ld(1, name.as_bytes()),
                ld(2, b"TCP"),
                vi(3, number),
                ld(4, &target),
                vi(5, 0),
            ])
        };
        let spec = msg(&[
            ld(
                1,
                &port("80-8080", 80, msg(&[vi(1, 0), vi(2, 8080), ld(3, b"")])),
            ),
            ld(
                1,
                &port("metrics", 9090, msg(&[vi(1, 1), vi(2, 0), ld(3, b"http")])),
            ),
            ld(2, &entry("app", b"web")),
            ld(3, b""),
            ld(4, b"ClusterIP"),
            ld(19, b"IPv4"),
        ]);
        let metadata = msg(&[ld(1, b"web"), ld(3, b"default")]);
        let raw = msg(&[ld(1, &metadata), ld(2, &spec), ld(3, &ld(1, b""))]);
        assert_eq!(
            decode(served("", "services"), &envelope("v1", "Service", &raw)).unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "ports": [
                        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                        {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "http"}
                    ],
                    "selector": {"app": "web"},
                    "type": "ClusterIP",
                    "ipFamilies": ["IPv4"]
                },
                "status": {"loadBalancer": {}}
            })
        );
    }

    #[test]
    fn configmap_bytes_and_pointer_zeroes() {
        let raw = msg(&[
            ld(1, &named("cfg")),
            ld(2, &entry("k", b"v")),
            ld(3, &entry("b", &[0, 1, 2])),
            vi(4, 0), // immutable: a *bool, so false is kept
        ]);
        assert_eq!(
            decode(served("", "configmaps"), &envelope("v1", "ConfigMap", &raw)).unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg"},
                "data": {"k": "v"},
                "binaryData": {"b": "AAEC"},
                "immutable": false
            })
        );
        let raw = msg(&[ld(1, &named("builder")), vi(4, 0)]);
        let sa = decode(
            served("", "serviceaccounts"),
            &envelope("v1", "ServiceAccount", &raw),
        );
        assert_eq!(sa.unwrap()["automountServiceAccountToken"], json!(false));
    }

    #[test]
    fn lease_times() {
        let metadata = msg(&[
            ld(1, b"node-1"),
            ld(3, b"kube-node-lease"),
            ld(8, &msg(&[vi(1, 1_700_000_000), vi(2, 5)])), // Time drops the nanoseconds
        ]);
        let spec = msg(&[
            ld(1, b"node-1"),
            vi(2, 0),
            ld(4, &msg(&[vi(1, 1_700_000_000), vi(2, 123_456_789)])),
        ]);
        let raw = msg(&[ld(1, &metadata), ld(2, &spec)]);
        let body = envelope("coordination.k8s.io/v1", "Lease", &raw);
        assert_eq!(
            decode(served("coordination.k8s.io", "leases"), &body).unwrap(),
            json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": "node-1",
                    "namespace": "kube-node-lease",
                    "creationTimestamp": "2023-11-14T22:13:20Z"
                },
                "spec": {
                    "holderIdentity": "node-1",
                    "leaseDurationSeconds": 0,
                    "renewTime": "2023-11-14T22:13:20.123456Z"
                }
            })
        );
    }

    #[test]
    fn pod_inlined_structs_quantities_and_lists() {
        let probe = msg(&[
            ld(
                1,
                &ld(
                    2,
                    &msg(&[ld(1, b"/healthz"), ld(2, &msg(&[vi(1, 0), vi(2, 8080)]))]),
                ),
            ),
            vi(4, 10),
        ]);
        let container = msg(&[
            ld(1, b"c"),
            ld(2, b"busybox"),
            ld(6, &vi(3, 80)),
            ld(8, &ld(1, &entry("cpu", &ld(1, b"500m")))),
            ld(10, &probe),
        ]);
        let volume = msg(&[ld(1, b"scratch"), ld(2, &ld(2, b""))]);
        let packed = [varint(1000), varint(2000)].concat();
        let security = msg(&[ld(4, &packed), vi(4, 3000)]);
        let spec = msg(&[
            ld(1, &volume),
            ld(2, &container),
            ld(14, &security),
            ld(999, b"a field from the future"),
        ]);
        let raw = msg(&[ld(1, &named("p")), ld(2, &spec)]);
        assert_eq!(
            decode(served("", "pods"), &envelope("v1", "Pod", &raw)).unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                    "containers": [{
                        "name": "c",
                        "image": "busybox",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "500m"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
                    }],
                    "securityContext": {"supplementalGroups": [1000, 2000, 3000]}
                }
            })
        );
    }

    #[test]
    fn binding_and_delete_options_follow_the_envelope() {
        let raw = msg(&[
            ld(1, &named("p")),
            ld(2, &msg(&[ld(1, b"Node"), ld(3, b"n1")])),
        ]);
        assert_eq!(
            decode(served("", "pods"), &envelope("v1", "Binding", &raw)).unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": "p"},
                "target": {"kind": "Node", "name": "n1"}
            })
        );
        let raw = msg(&[vi(1, 0), ld(4, b"Background")]);
        assert_eq!(
            decode(served("", "pods"), &envelope("v1", "DeleteOptions", &raw)).unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Background"
            })
        );
    }

    #[test]
    fn unreadable_envelopes_are_unrecognized() {
        let ns = served("", "namespaces");
        let message = |body: &[u8]| {
            let err = decode(ns, body).unwrap_err();
            assert_eq!(err.code, 400);
            err.message.clone()
        };
        let prefix = "the object provided is unrecognized (must be of type Namespace): ";
        assert_eq!(message(b""), format!("{prefix}empty data (<empty>)"));
        assert_eq!(
            message(b"{}"),
            format!("{prefix}provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] ({{}})")
        );
        assert_eq!(message(MAGIC), format!("{prefix}empty body (6b387300)"));
        assert_eq!(
            message(b"k8s\0\x0a\x05\x0a\x02v1"),
            format!("{prefix}unexpected EOF (6b3873000a050a027631)")
        );
    }

    #[test]
    fn undecodable_objects_cannot_be_handled() {
        let ns = served("", "namespaces");
        let message = |body: &[u8]| decode(ns, body).unwrap_err().message.clone();
        let prefix = "Namespace in version \"v1\" cannot be handled as a Namespace: ";
        // metadata claims ten bytes and has two
        let truncated = [tag(1, LEN), varint(10), b"ab".to_vec()].concat();
        assert_eq!(
            message(&envelope("v1", "Namespace", &truncated)),
            format!("{prefix}unexpected EOF")
        );
        assert_eq!(
            message(&envelope("v1", "Namespace", &vi(1, 5))),
            format!("{prefix}proto: wrong wireType = 0 for field Metadata")
        );
        assert_eq!(
            message(&envelope("v1", "Namespace", &vi(0, 5))),
            format!("{prefix}proto: Namespace: illegal tag 0 (wire type 0)")
        );
        assert_eq!(
            message(&envelope("v1", "Foo", b"")),
            "Foo in version \"v1\" cannot be handled as a Namespace: no kind \"Foo\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
        let leases = served("coordination.k8s.io", "leases");
        let err = decode(leases, &envelope("coordination.k8s.io/v1", "Foo", b"")).unwrap_err();
        assert!(
            err.message.starts_with("Foo in version \"v1\" cannot be handled as a Lease: no kind \"Foo\" is registered for version \"coordination.k8s.io/v1\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        // An unknown field opening a hundred thousand groups that never close.
        let groups = tag(100, START_GROUP).repeat(100_000);
        let err = decode(
            served("", "namespaces"),
            &envelope("v1", "Namespace", &groups),
        )
        .unwrap_err();
        assert!(err.message.ends_with("unexpected EOF"), "{}", err.message);
        let closed = [tag(100, START_GROUP), vi(1, 7), tag(100, END_GROUP)].concat();
        let raw = [closed, ld(1, &named("x"))].concat();
        let decoded = decode(served("", "namespaces"), &envelope("v1", "Namespace", &raw)).unwrap();
        assert_eq!(decoded["metadata"]["name"], "x");
    }
}
