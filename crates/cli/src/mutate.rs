//! Commands that change objects: `create`, `apply`, `delete`, `label`, `annotate`, `patch` and
//! `run`. Manifests come from files, directories or standard input; YAML (several documents)
//! and JSON, and `List`s, are all read the same way.

use std::path::Path;
use std::time::Duration;

use api::patch::diff::three_way;
use api::patch::schema::Types;
use serde_json::{json, Value};

use crate::args::{DeleteArgs, FileArgs, LabelArgs, PatchArgs, RunArgs};
use crate::config::Context;
use crate::discovery::Resource;
use crate::get::{self, get_value, name_of, Format};
use crate::Error;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One object read from a manifest, and the file it came from (as kubectl names it).
pub struct Manifest {
    pub source: String,
    pub object: Value,
}

/// Every object in the files, directories (their .yaml, .yml and .json files) and `-`.
pub fn read_manifests(filenames: &[String]) -> Result<Vec<Manifest>, Error> {
    let mut out = Vec::new();
    for name in filenames {
        if name == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            parse_into(&text, "STDIN", &mut out)?;
            continue;
        }
        let path = Path::new(name);
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            entries.sort();
            for entry in entries {
                let text = std::fs::read_to_string(&entry)?;
                parse_into(&text, &entry.display().to_string(), &mut out)?;
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::other(format!("the path \"{name}\" does not exist"))
                }
                _ => Error::other(e),
            })?;
            parse_into(&text, name, &mut out)?;
        }
    }
    Ok(out)
}

fn parse_into(text: &str, source: &str, out: &mut Vec<Manifest>) -> Result<(), Error> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| Error::other(format!("error parsing {source}: {e}")))?;
    for doc in documents {
        if doc.is_null() {
            continue;
        }
        let is_list =
            doc["kind"].as_str().is_some_and(|k| k.ends_with("List")) && doc["items"].is_array();
        if is_list {
            for item in doc["items"].as_array().into_iter().flatten() {
                out.push(Manifest {
                    source: source.to_string(),
                    object: item.clone(),
                });
            }
        } else {
            out.push(Manifest {
                source: source.to_string(),
                object: doc,
            });
        }
    }
    Ok(())
}

/// The resource and namespace a manifest's object goes to.
async fn place(ctx: &Context, object: &Value) -> Result<(Resource, String), Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    if kind.is_empty() || api_version.is_empty() {
        let missing = if api_version.is_empty() {
            "apiVersion"
        } else {
            "kind"
        };
        return Err(Error::other(format!(
            "error validating data: [{missing} not set]"
        )));
    }
    let resource = ctx
        .discovery
        .for_kind(&ctx.client, api_version, kind)
        .await?;
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| ctx.namespace.clone());
    Ok((resource, namespace))
}

fn json_body(
    method: http::Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<http::Request<Vec<u8>>, Error> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(serde_json::to_vec(body).map_err(Error::other)?)
        .map_err(Error::other)
}

async fn send(ctx: &Context, req: http::Request<Vec<u8>>) -> Result<Value, Error> {
    Ok(ctx.client.request::<Value>(req).await?)
}

/// Prints what a write did: `pod/web created`, or the object in the chosen format.
fn report(object: &Value, verb: &str, output: Option<&str>) -> Result<(), Error> {
    match output {
        None | Some("") => println!("{} {verb}", name_of(object)),
        Some(o) => {
            let format = Format::parse(Some(o))?;
            let printer = get::Printer::new(format, &Default::default(), false);
            print!("{}", printer.objects(vec![object.clone()], true));
        }
    }
    Ok(())
}

/// `kubectl create -f`
pub async fn create(ctx: &Context, args: FileArgs) -> Result<(), Error> {
    let manifests = read_manifests(&args.filenames)?;
    let mut failed = false;
    for m in manifests {
        let result = async {
            let (resource, namespace) = place(ctx, &m.object).await?;
            let path = resource.collection(Some(&namespace));
            let created = send(
                ctx,
                json_body(http::Method::POST, &path, "application/json", &m.object)?,
            )
            .await
            .map_err(|e| e.with_context(format!("error when creating \"{}\"", m.source)))?;
            report(&created, "created", args.output.as_deref())
        }
        .await;
        if let Err(err) = result {
            err.print();
            failed = true;
        }
    }
    if failed {
        return Err(Error::Reported(1));
    }
    Ok(())
}

/// `kubectl apply -f` (client-side): creates what is missing, and patches what exists with the
/// difference between the manifest and the live object, removing what the previous apply set
/// and this manifest no longer has.
pub async fn apply(ctx: &Context, args: FileArgs) -> Result<(), Error> {
    let manifests = read_manifests(&args.filenames)?;
    let mut failed = false;
    for m in manifests {
        if let Err(err) = apply_one(ctx, &m, args.output.as_deref()).await {
            err.print();
            failed = true;
        }
    }
    if failed {
        return Err(Error::Reported(1));
    }
    Ok(())
}

async fn apply_one(ctx: &Context, m: &Manifest, output: Option<&str>) -> Result<(), Error> {
    let (resource, namespace) = place(ctx, &m.object).await?;
    let name = m.object["metadata"]["name"].as_str().ok_or_else(|| {
        Error::other("error when retrieving current configuration: the object has no name")
    })?;
    // What is recorded as applied is the manifest as sent: in its namespace, with its own
    // annotations (an empty map when it has none), as Go encodes it (sorted, newline).
    let mut modified = m.object.clone();
    if resource.namespaced {
        modified["metadata"]["namespace"] = Value::String(namespace.clone());
    }
    if !modified["metadata"]["annotations"].is_object() {
        modified["metadata"]["annotations"] = serde_json::json!({});
    }
    if let Some(annotations) = modified["metadata"]["annotations"].as_object_mut() {
        annotations.remove(LAST_APPLIED);
    }
    let applied = format!("{}\n", crate::output::json_compact(&modified));
    modified["metadata"]["annotations"][LAST_APPLIED] = Value::String(applied);
    let path = resource.object(&namespace, name);
    let current = match get_value(ctx, &path).await {
        Ok(v) => v,
        Err(err) if err.is_not_found() => {
            let created = send(
                ctx,
                json_body(
                    http::Method::POST,
                    &resource.collection(Some(&namespace)),
                    "application/json",
                    &modified,
                )?,
            )
            .await
            .map_err(|e| e.with_context(format!("error when creating \"{}\"", m.source)))?;
            return report(&created, "created", output);
        }
        Err(err) => return Err(err),
    };
    let original: Value = current["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let types = Types::of_kind(&resource.group, &resource.kind);
    let patch = three_way(types, &original, &modified, &current);
    if patch.as_object().is_none_or(|p| p.is_empty()) {
        return report(&current, "unchanged", output);
    }
    let patched = send(
        ctx,
        json_body(
            http::Method::PATCH,
            &path,
            "application/strategic-merge-patch+json",
            &patch,
        )?,
    )
    .await
    .map_err(|e| e.with_context(format!("error when applying patch:\n{}\n\nto:\nResource: \"{}\", GroupVersionKind: \"{}\"\nName: \"{name}\", Namespace: \"{namespace}\"\nfor: \"{}\"", crate::output::json_compact(&patch), resource.qualified_plural(), resource.kind, m.source)))?;
    report(&patched, "configured", output)
}

/// `kubectl delete`
pub async fn delete(ctx: &Context, args: DeleteArgs) -> Result<(), Error> {
    let mut doomed: Vec<(Resource, String, String)> = Vec::new();
    if !args.filenames.is_empty() {
        for m in read_manifests(&args.filenames)? {
            let (resource, namespace) = place(ctx, &m.object).await?;
            let name = m.object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            doomed.push((resource, namespace, name));
        }
    } else {
        let namespace = (!args.all_namespaces).then_some(ctx.namespace.as_str());
        for (resource, names) in get::targets(ctx, &args.args).await? {
            if names.is_empty() {
                if !args.all && args.selector.is_none() {
                    return Err(Error::other(
                        "resource(s) were provided, but no name was specified",
                    ));
                }
                let mut path = resource.collection(namespace);
                if let Some(l) = &args.selector {
                    path.push_str(&format!("?labelSelector={}", get::encode_query(l)));
                }
                let list = get_value(ctx, &path).await?;
                for item in list["items"].as_array().into_iter().flatten() {
                    let ns = item["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
                    doomed.push((resource.clone(), ns, name));
                }
            } else {
                for name in names {
                    doomed.push((resource.clone(), ctx.namespace.clone(), name));
                }
            }
        }
        if doomed.is_empty() {
            eprintln!("No resources found");
            return Ok(());
        }
    }
    let mut options =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
    if args.force {
        eprintln!("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.");
        options["gracePeriodSeconds"] = json!(if args.grace_period < 0 {
            0
        } else {
            args.grace_period
        });
    } else if args.grace_period >= 0 {
        options["gracePeriodSeconds"] = json!(args.grace_period.max(1));
    }
    let mut failed = false;
    let mut deleted = Vec::new();
    for (resource, namespace, name) in doomed {
        let path = resource.object(&namespace, &name);
        match send(
            ctx,
            json_body(http::Method::DELETE, &path, "application/json", &options)?,
        )
        .await
        {
            Ok(_) => {
                if args.output.as_deref() == Some("name") {
                    println!("{}/{name}", resource.type_name());
                } else {
                    println!("{} \"{name}\" deleted", resource.type_name());
                }
                deleted.push(path);
            }
            Err(err) if err.is_not_found() && args.ignore_not_found => {}
            Err(err) => {
                err.print();
                failed = true;
            }
        }
    }
    if args.wait {
        for path in deleted {
            wait_gone(ctx, &path).await?;
        }
    }
    if failed {
        return Err(Error::Reported(1));
    }
    Ok(())
}

/// Waits until the object at `path` is gone, as `kubectl delete --wait` does.
async fn wait_gone(ctx: &Context, path: &str) -> Result<(), Error> {
    loop {
        match get_value(ctx, path).await {
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err),
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `kubectl label` and `kubectl annotate` (`field` is `labels` or `annotations`).
pub async fn label(ctx: &Context, args: LabelArgs, field: &str) -> Result<(), Error> {
    let split = args
        .args
        .iter()
        .position(|a| a.contains('=') || a.ends_with('-'))
        .ok_or_else(|| Error::other("at least one label update is required"))?;
    let (objects, changes) = args.args.split_at(split);
    let mut changes_map = serde_json::Map::new();
    for change in changes {
        if let Some((k, v)) = change.split_once('=') {
            changes_map.insert(k.to_string(), Value::String(v.to_string()));
        } else if let Some(k) = change.strip_suffix('-') {
            changes_map.insert(k.to_string(), Value::Null);
        }
    }
    let verb = if field == "labels" {
        "labeled"
    } else {
        "annotated"
    };
    for (resource, names) in get::targets(ctx, objects).await? {
        for name in names {
            let path = resource.object(&ctx.namespace, &name);
            let current = get_value(ctx, &path).await?;
            let existing = &current["metadata"][field];
            if !args.overwrite {
                for (k, v) in &changes_map {
                    if let (Some(old), Some(new)) = (existing[k].as_str(), v.as_str()) {
                        if old != new {
                            return Err(Error::other(format!(
                                "'{k}' already has a value ({old}), and --overwrite is false"
                            )));
                        }
                    }
                }
            }
            let unchanged = changes_map.iter().all(|(k, v)| &existing[k] == v);
            if unchanged {
                println!("{}/{name} not {verb}", resource.type_name());
                continue;
            }
            let patch = json!({"metadata": {field: changes_map.clone()}});
            let patched = send(
                ctx,
                json_body(
                    http::Method::PATCH,
                    &path,
                    "application/merge-patch+json",
                    &patch,
                )?,
            )
            .await?;
            // kubectl says "unlabeled" when, without --overwrite, the object only lost labels.
            let count = |v: &Value| v.as_object().map_or(0, |m| m.len());
            let shrank = count(&patched["metadata"][field]) < count(existing);
            let verb = if field == "labels" && shrank && !args.overwrite {
                "unlabeled"
            } else {
                verb
            };
            report(&patched, verb, None)?;
        }
    }
    Ok(())
}

/// `kubectl patch`
pub async fn patch(ctx: &Context, args: PatchArgs) -> Result<(), Error> {
    let text = match (&args.patch, &args.patch_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)?,
        (None, None) => {
            return Err(Error::other(
                "must specify --patch or --patch-file containing the contents of the patch",
            ))
        }
    };
    let body: Value = serde_saphyr::from_str(&text)
        .map_err(|e| Error::other(format!("unable to parse \"{text}\": {e}")))?;
    let content_type = match args.patch_type.as_str() {
        "strategic" => "application/strategic-merge-patch+json",
        "merge" => "application/merge-patch+json",
        "json" => "application/json-patch+json",
        other => {
            return Err(Error::other(format!(
                "--type must be one of [json merge strategic], not \"{other}\""
            )))
        }
    };
    for (resource, names) in get::targets(ctx, &args.args).await? {
        for name in names {
            let mut path = resource.object(&ctx.namespace, &name);
            if let Some(sub) = &args.subresource {
                path = format!("{path}/{sub}");
            }
            let before = get_value(ctx, &path).await?;
            let patched = send(
                ctx,
                json_body(http::Method::PATCH, &path, content_type, &body)?,
            )
            .await?;
            let same =
                before["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"];
            report(
                &patched,
                if same {
                    "patched (no change)"
                } else {
                    "patched"
                },
                args.output.as_deref(),
            )?;
        }
    }
    Ok(())
}

/// `kubectl run NAME --image=IMAGE [-- ARGS]`
pub async fn run(ctx: &Context, args: RunArgs) -> Result<(), Error> {
    let mut labels = serde_json::Map::new();
    match &args.labels {
        Some(l) => {
            for pair in l.split(',') {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| Error::other(format!("invalid label spec: {pair}")))?;
                labels.insert(k.to_string(), v.into());
            }
        }
        None => {
            labels.insert("run".into(), args.name.clone().into());
        }
    }
    let mut container = json!({"name": args.name, "image": args.image, "resources": {}});
    if !args.command.is_empty() {
        container["args"] = json!(args.command);
    }
    if !args.env.is_empty() {
        let env: Vec<Value> = args
            .env
            .iter()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                json!({"name": k, "value": v})
            })
            .collect();
        container["env"] = json!(env);
    }
    if let Some(port) = args.port {
        container["ports"] = json!([{"containerPort": port}]);
    }
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": args.name, "labels": labels},
        "spec": {"containers": [container], "dnsPolicy": "ClusterFirst", "restartPolicy": args.restart},
        "status": {},
    });
    if args.dry_run.as_deref() == Some("client") {
        return report(&pod, "created (dry run)", args.output.as_deref());
    }
    let mut path = format!("/api/v1/namespaces/{}/pods", ctx.namespace);
    if args.dry_run.as_deref() == Some("server") {
        path.push_str("?dryRun=All");
    }
    let created = send(
        ctx,
        json_body(http::Method::POST, &path, "application/json", &pod)?,
    )
    .await?;
    let verb = if args.dry_run.is_some() {
        "created (server dry run)"
    } else {
        "created"
    };
    report(&created, verb, args.output.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_patches_what_changed_and_removes_what_was_dropped() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let modified = json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"x": 1}});
        let current = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "uid": "u"}, "spec": {"x": 1, "y": 2}});
        assert_eq!(
            three_way(None, &original, &modified, &current),
            json!({"metadata": {"labels": {"b": null, "c": "3"}}})
        );
        assert_eq!(
            three_way(
                None,
                &modified,
                &modified,
                &json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"x": 1}})
            ),
            json!({})
        );
    }

    #[test]
    fn manifests_read_documents_and_lists() {
        let mut out = Vec::new();
        parse_into(
            "a: 1\n---\nkind: List\napiVersion: v1\nitems:\n- b: 2\n- c: 3\n---\n",
            "f",
            &mut out,
        )
        .unwrap();
        let objects: Vec<Value> = out.into_iter().map(|m| m.object).collect();
        assert_eq!(
            objects,
            vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})]
        );
    }
}
