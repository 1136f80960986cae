//! `kubectl wait` (a condition, a JSONPath value, or deletion) and `kubectl events`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::args::{EventsArgs, GetArgs, WaitArgs};
use crate::config::{parse_duration, Context};
use crate::describe::{age, repeated};
use crate::discovery::Resource;
use crate::get::{self, get_value, Format};
use crate::jsonpath::{text_of, Template};
use crate::output::Table;
use crate::Error;

/// What `--for` asks.
enum Wanted {
    Condition(String, String),
    Delete,
    Create,
    Path(Template, Option<String>),
}

fn parse_for(text: &str) -> Result<Wanted, Error> {
    if text == "delete" {
        return Ok(Wanted::Delete);
    }
    if text == "create" {
        return Ok(Wanted::Create);
    }
    if let Some(cond) = text.strip_prefix("condition=") {
        let (name, value) = cond.split_once('=').unwrap_or((cond, "True"));
        return Ok(Wanted::Condition(name.to_lowercase(), value.to_lowercase()));
    }
    if let Some(rest) = text.strip_prefix("jsonpath=") {
        let (path, value) = match rest.rfind("}=") {
            Some(i) => (&rest[..=i], Some(rest[i + 2..].to_string())),
            None => (rest, None),
        };
        let path = path.trim_matches('\'');
        return Ok(Wanted::Path(Template::parse(path)?, value));
    }
    Err(Error::other(format!("unrecognized condition: \"{text}\"")))
}

fn met(wanted: &Wanted, object: &Value) -> bool {
    match wanted {
        Wanted::Condition(name, value) => object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.to_lowercase() == *name)
                    && c["status"]
                        .as_str()
                        .is_some_and(|s| s.to_lowercase() == *value)
            }),
        Wanted::Path(t, value) => {
            let found: Vec<String> = t.select(object).into_iter().map(text_of).collect();
            match value {
                Some(v) => found.iter().any(|f| f == v),
                None => !found.is_empty(),
            }
        }
        Wanted::Create => true,
        Wanted::Delete => false,
    }
}

/// `kubectl wait`
pub async fn run(ctx: &Context, args: WaitArgs) -> Result<(), Error> {
    let wanted = parse_for(&args.for_)?;
    let timeout = parse_duration(&args.timeout)?;
    let deadline = Instant::now() + timeout;
    let mut objects: Vec<(Resource, String)> = Vec::new();
    for (resource, names) in get::targets(ctx, &args.args).await? {
        if names.is_empty() {
            let mut path = resource.collection(Some(&ctx.namespace));
            if let Some(l) = &args.selector {
                path.push_str(&format!("?labelSelector={}", get::encode_query(l)));
            }
            let list = get_value(ctx, &path).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                objects.push((
                    resource.clone(),
                    item["metadata"]["name"].as_str().unwrap_or("").to_string(),
                ));
            }
        } else {
            objects.extend(names.into_iter().map(|n| (resource.clone(), n)));
        }
    }
    if objects.is_empty() {
        return Err(Error::other("no matching resources found"));
    }
    for (resource, name) in objects {
        let path = resource.object(&ctx.namespace, &name);
        let mut first = true;
        loop {
            let done = match get_value(ctx, &path).await {
                Ok(object) => met(&wanted, &object),
                // Waiting for the deletion of what is already gone succeeds without a word.
                Err(err) if err.is_not_found() && first && matches!(wanted, Wanted::Delete) => {
                    break;
                }
                Err(err) if err.is_not_found() => match wanted {
                    Wanted::Delete => true,
                    Wanted::Create => false,
                    _ => return Err(err),
                },
                Err(err) => return Err(err),
            };
            first = false;
            if done {
                println!("{}/{name} condition met", resource.type_name());
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::other(format!(
                    "timed out waiting for the condition on {}/{name}",
                    resource.qualified_plural()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// `kubectl events`
pub async fn events(ctx: &Context, args: EventsArgs) -> Result<(), Error> {
    let mut selector = Vec::new();
    if let Some(target) = &args.for_ {
        let (kind, name) = target.split_once('/').ok_or_else(|| {
            Error::other(format!(
                "--for must be in resource/name form, not {target:?}"
            ))
        })?;
        let resource = ctx.discovery.resolve(&ctx.client, kind).await?;
        selector.push(format!("involvedObject.kind={}", resource.kind));
        selector.push(format!("involvedObject.name={name}"));
    }
    let base = if args.all_namespaces {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{}/events", ctx.namespace)
    };
    let path = if selector.is_empty() {
        base
    } else {
        format!(
            "{base}?fieldSelector={}",
            get::encode_query(&selector.join(","))
        )
    };
    let list = get_value(ctx, &path).await?;
    let mut items: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            args.types.is_empty()
                || args
                    .types
                    .iter()
                    .any(|t| e["type"].as_str() == Some(t.as_str()))
        })
        .collect();
    items.sort_by_key(|e| last_seen(e).as_str().unwrap_or("").to_string());
    if let Some(o) = args.output.as_deref() {
        let printer = get::Printer::new(Format::parse(Some(o))?, &GetArgs::default(), false);
        let items = items
            .into_iter()
            .map(|mut e| {
                e["kind"] = "Event".into();
                e["apiVersion"] = "v1".into();
                e
            })
            .collect();
        print!("{}", printer.objects(items, false));
        return Ok(());
    }
    if items.is_empty() {
        if args.all_namespaces {
            eprintln!("No events found.");
        } else {
            eprintln!("No events found in {} namespace.", ctx.namespace);
        }
        return Ok(());
    }
    let now = chrono::Utc::now();
    let mut table = Table::default();
    if !args.no_headers {
        let mut head = vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
        if args.all_namespaces {
            head.insert(0, "NAMESPACE");
        }
        table.push(head.into_iter().map(String::from).collect());
    }
    for e in &items {
        let seen = repeated(e, now).unwrap_or_else(|| age(last_seen(e), now));
        let object = format!(
            "{}/{}",
            e["involvedObject"]["kind"].as_str().unwrap_or(""),
            e["involvedObject"]["name"].as_str().unwrap_or("")
        );
        let mut row = vec![
            seen,
            e["type"].as_str().unwrap_or("").to_string(),
            e["reason"].as_str().unwrap_or("").to_string(),
            object,
            e["message"].as_str().unwrap_or("").trim().to_string(),
        ];
        if args.all_namespaces {
            row.insert(
                0,
                e["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        table.push(row);
    }
    print!("{}", table.render());
    Ok(())
}

/// When an event was last seen: its series, its last timestamp, or when it happened.
fn last_seen(e: &Value) -> &Value {
    for v in [
        &e["series"]["lastObservedTime"],
        &e["lastTimestamp"],
        &e["eventTime"],
        &e["firstTimestamp"],
    ] {
        if v.is_string() {
            return v;
        }
    }
    &Value::Null
}
