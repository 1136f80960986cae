//! `kubectl explain`: a resource's fields and their descriptions, from the server's OpenAPI v3
//! documents, laid out as kubectl's plain-text template lays them out.

use serde_json::Value;

use crate::args::ExplainArgs;
use crate::config::Context;
use crate::get::get_value;
use crate::Error;

/// Descriptions wrap at 76 columns and are indented by 4.
const WRAP: usize = 76;

pub async fn run(ctx: &Context, args: ExplainArgs) -> Result<(), Error> {
    let mut parts = args.path.split('.');
    let word = parts.next().unwrap_or("");
    let fields: Vec<&str> = parts.collect();
    let resource = ctx.discovery.resolve(&ctx.client, word).await?;
    let key = if resource.group.is_empty() {
        format!("api/{}", resource.version)
    } else {
        format!("apis/{}/{}", resource.group, resource.version)
    };
    let index = get_value(ctx, "/openapi/v3").await?;
    let url = index["paths"][&key]["serverRelativeURL"]
        .as_str()
        .ok_or_else(|| {
            Error::other(format!(
                "couldn't find resource for \"{}\"",
                resource.qualified_plural()
            ))
        })?
        .to_string();
    let doc = get_value(ctx, &url).await?;
    let schemas = &doc["components"]["schemas"];
    let root = schemas
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| {
                    g["group"].as_str() == Some(resource.group.as_str())
                        && g["version"].as_str() == Some(resource.version.as_str())
                        && g["kind"].as_str() == Some(resource.kind.as_str())
                })
        })
        .map(|(_, s)| s.clone())
        .ok_or_else(|| {
            Error::other(format!(
                "GVR ({}) not found in OpenAPI schema",
                resource.qualified_plural()
            ))
        })?;
    let mut out = String::new();
    if !resource.group.is_empty() {
        out.push_str(&format!("GROUP:      {}\n", resource.group));
    }
    out.push_str(&format!(
        "KIND:       {}\nVERSION:    {}\n\n",
        resource.kind, resource.version
    ));
    let mut schema = root;
    let mut descriptions = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let resolved = resolve(schemas, &schema);
        let Some(prop) = resolved["properties"].get(*field).cloned() else {
            return Err(Error::other(format!("field \"{field}\" does not exist")));
        };
        if i + 1 == fields.len() {
            out.push_str(&format!("FIELD: {field} <{}>\n", type_of(schemas, &prop)));
            if let Some(values) = prop["enum"].as_array() {
                out.push_str("ENUM:");
                for v in values {
                    out.push_str(&format!("\n    {}", v.as_str().unwrap_or("")));
                }
                out.push('\n');
            } else {
                out.push_str("\n\n");
            }
            if let Some(d) = prop["description"].as_str() {
                descriptions.push(d.to_string());
            }
        }
        schema = element(schemas, &prop);
    }
    let resolved = resolve(schemas, &schema);
    // An inline field (a string, a number) has only its own description, already taken.
    let inline = !fields.is_empty() && schema["$ref"].is_null() && schema["allOf"].is_null();
    if let Some(d) = resolved["description"].as_str().filter(|_| !inline) {
        descriptions.push(d.to_string());
    }
    out.push_str("DESCRIPTION:\n");
    let text = if descriptions.is_empty() {
        "<empty>\n".to_string()
    } else {
        descriptions.iter().map(|d| format!("{d}\n")).collect()
    };
    out.push_str(&indent(&wrap(&text, WRAP), 4));
    out.push('\n');
    if let Some(props) = resolved["properties"].as_object().filter(|p| !p.is_empty()) {
        out.push_str("FIELDS:\n");
        let required: Vec<&str> = resolved["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut names: Vec<&String> = props.keys().collect();
        names.sort();
        for name in names {
            let prop = &props[name];
            out.push_str(&format!("  {name}\t<{}>", type_of(schemas, prop)));
            if required.contains(&name.as_str()) {
                out.push_str(" -required-");
            }
            out.push('\n');
            let d = prop["description"].as_str().unwrap_or("<no description>");
            out.push_str(&indent(&wrap(d, WRAP), 4));
            out.push_str("\n\n");
        }
    }
    out.push('\n');
    print!("{out}");
    Ok(())
}

/// Follows `$ref` and a lone `allOf` to the schema itself.
fn resolve(schemas: &Value, schema: &Value) -> Value {
    let mut current = schema.clone();
    for _ in 0..10 {
        if let Some(r) = current["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap_or("");
            current = schemas[name].clone();
        } else if let Some([only]) = current["allOf"].as_array().map(Vec::as_slice) {
            let description = current["description"].clone();
            current = only.clone();
            if current["description"].is_null() && !description.is_null() {
                current["description"] = description;
            }
        } else {
            break;
        }
    }
    current
}

/// What a field holds, to walk into: the item of a list, the value of a map, else the field.
fn element(schemas: &Value, prop: &Value) -> Value {
    let resolved = resolve(schemas, prop);
    if resolved["type"] == "array" {
        return resolved["items"].clone();
    }
    if resolved["type"] == "object"
        && resolved["additionalProperties"].is_object()
        && resolved["properties"].is_null()
    {
        return resolved["additionalProperties"].clone();
    }
    prop.clone()
}

fn type_of(schemas: &Value, prop: &Value) -> String {
    let reference = prop["$ref"].as_str().or_else(|| {
        prop["allOf"]
            .as_array()
            .filter(|a| a.len() == 1)
            .and_then(|a| a[0]["$ref"].as_str())
    });
    if let Some(r) = reference {
        let name = r.rsplit('/').next().unwrap_or("");
        let target = &schemas[name];
        return match target["type"].as_str() {
            Some("object") | None => name.rsplit('.').next().unwrap_or(name).to_string(),
            Some(t) => t.to_string(),
        };
    }
    match prop["type"].as_str() {
        Some("array") => format!("[]{}", type_of(schemas, &prop["items"])),
        Some("object") if prop["additionalProperties"].is_object() => {
            format!(
                "map[string]{}",
                type_of(schemas, &prop["additionalProperties"])
            )
        }
        Some("object") | None => "Object".to_string(),
        Some(t) => t.to_string(),
    }
}

/// Word-wraps at `limit` runes, keeping existing newlines; long words are never split.
pub fn wrap(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut len = 0;
        for (j, word) in line.split(' ').enumerate() {
            let w = word.chars().count();
            if j > 0 {
                if len + 1 + w > limit {
                    out.push('\n');
                    len = 0;
                } else {
                    out.push(' ');
                    len += 1;
                }
            }
            out.push_str(word);
            len += w;
        }
    }
    out
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.split('\n')
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
