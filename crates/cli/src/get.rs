//! `kubectl get`: the server's own tables (as kubectl asks for them), or the objects as YAML,
//! JSON, names, JSONPath or custom columns; `-w` keeps printing the changes.

use futures::{AsyncBufReadExt, TryStreamExt};
use serde_json::Value;

use crate::args::{GetArgs, Global, VersionArgs};
use crate::config::Context;
use crate::discovery::Resource;
use crate::jsonpath::Template;
use crate::output::{self, Table};
use crate::Error;

/// What kubectl sends to get a table back.
const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// The version this command line speaks.
pub const CLIENT_VERSION: &str = "v1.33.0";

/// How objects are printed.
#[derive(Clone, Debug)]
pub enum Format {
    Table { wide: bool },
    Yaml,
    Json,
    Name,
    JsonPath(Template),
    CustomColumns(Vec<(String, Template)>),
}

impl Format {
    pub fn parse(output: Option<&str>) -> Result<Self, Error> {
        Ok(match output {
            None | Some("") => Format::Table { wide: false },
            Some("wide") => Format::Table { wide: true },
            Some("yaml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("name") => Format::Name,
            Some(o) => {
                if let Some(t) = o
                    .strip_prefix("jsonpath=")
                    .or_else(|| o.strip_prefix("jsonpath-as-json="))
                {
                    Format::JsonPath(Template::parse(t)?)
                } else if let Some(spec) = o.strip_prefix("custom-columns=") {
                    Format::CustomColumns(custom_columns(spec)?)
                } else {
                    return Err(Error::other(format!(
                        "unable to match a printer suitable for the output format \"{o}\", \
                         allowed formats are: custom-columns,custom-columns-file,go-template,\
                         go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,\
                         template,templatefile,wide,yaml"
                    )));
                }
            }
        })
    }
}

fn custom_columns(spec: &str) -> Result<Vec<(String, Template)>, Error> {
    spec.split(',')
        .map(|col| {
            let (name, path) = col.split_once(':').ok_or_else(|| {
                Error::other(format!(
                    "unexpected custom-columns spec: {col}, expected <header>:<json-path-expr>"
                ))
            })?;
            Ok((name.to_string(), path_template(path.trim())?))
        })
        .collect()
}

/// What the command line asks for: each resource with the names given (none: all of them).
pub async fn targets(
    ctx: &Context,
    args: &[String],
) -> Result<Vec<(Resource, Vec<String>)>, Error> {
    let Some(first) = args.first() else {
        return Err(Error::other(
            "You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.",
        ));
    };
    let mut out: Vec<(Resource, Vec<String>)> = Vec::new();
    if first.contains('/') {
        for arg in args {
            let (kind, name) = arg.split_once('/').ok_or_else(|| {
                Error::other(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'",
                )
            })?;
            let resource = ctx.discovery.resolve(&ctx.client, kind).await?;
            match out.iter_mut().find(|(r, _)| *r == resource) {
                Some((_, names)) => names.push(name.to_string()),
                None => out.push((resource, vec![name.to_string()])),
            }
        }
        return Ok(out);
    }
    let names: Vec<String> = args[1..].to_vec();
    for kind in first.split(',') {
        let resource = ctx.discovery.resolve(&ctx.client, kind).await?;
        out.push((resource, names.clone()));
    }
    Ok(out)
}

pub(crate) fn request(path: &str, accept: &str) -> Result<http::Request<Vec<u8>>, Error> {
    http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(Error::other)
}

pub(crate) async fn get_value(ctx: &Context, path: &str) -> Result<Value, Error> {
    Ok(ctx
        .client
        .request(request(path, "application/json")?)
        .await?)
}

fn query(args: &GetArgs, extra: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = &args.selector {
        q.append_pair("labelSelector", l);
    }
    if let Some(f) = &args.field_selector {
        q.append_pair("fieldSelector", f);
    }
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{q}")
    }
}

/// One query parameter value, form-encoded.
pub(crate) fn encode_query(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `kubectl get`
pub async fn run(ctx: &Context, args: GetArgs) -> Result<(), Error> {
    let format = Format::parse(args.output.as_deref())?;
    if !args.filenames.is_empty() {
        return Err(Error::other(
            "get -f is not supported yet; name the objects instead",
        ));
    }
    let targets = targets(ctx, &args.args).await?;
    let namespace = (!args.all_namespaces).then_some(ctx.namespace.as_str());
    let several_kinds = targets.len() > 1;
    let mut failed = false;
    let mut printer = Printer::new(format.clone(), &args, several_kinds);
    let mut collected: Vec<Value> = Vec::new();
    let mut single = false;
    for (resource, names) in &targets {
        if names.is_empty() {
            if args.watch_only {
                continue;
            }
            match &format {
                Format::Table { .. } => {
                    let path = format!(
                        "{}{}",
                        resource.collection(namespace),
                        query(&args, &table_params(&args))
                    );
                    let table: Value = ctx.client.request(request(&path, TABLE_ACCEPT)?).await?;
                    printer.table(resource, &table, !several_kinds || printer.is_first());
                }
                _ => {
                    let path = format!("{}{}", resource.collection(namespace), query(&args, &[]));
                    let list = get_value(ctx, &path).await?;
                    let items = list["items"].as_array().cloned().unwrap_or_default();
                    for mut item in items {
                        add_type(&mut item, resource);
                        collected.push(item);
                    }
                }
            }
        } else {
            single = names.len() == 1 && targets.len() == 1;
            for name in names {
                let ns = namespace.unwrap_or(&ctx.namespace);
                let path = resource.object(ns, name);
                let result = match &format {
                    Format::Table { .. } => {
                        let path =
                            format!("{path}{}", query(&GetArgs::default(), &table_params(&args)));
                        ctx.client
                            .request::<Value>(request(&path, TABLE_ACCEPT)?)
                            .await
                            .map(|t| printer.table(resource, &t, printer.is_first()))
                    }
                    _ => ctx
                        .client
                        .request::<Value>(request(&path, "application/json")?)
                        .await
                        .map(|mut v| {
                            add_type(&mut v, resource);
                            collected.push(v)
                        }),
                };
                if let Err(err) = result {
                    Error::from(err).print();
                    failed = true;
                }
            }
        }
    }
    if !matches!(format, Format::Table { .. }) {
        if let Some(sort) = &args.sort_by {
            sort_values(&mut collected, sort)?;
        }
        print!("{}", printer.objects(collected, single));
    } else if printer.rows_printed == 0 && !failed && !args.watch && !args.watch_only {
        match namespace {
            Some(ns) if targets.iter().all(|(r, _)| r.namespaced) => {
                eprintln!("No resources found in {ns} namespace.")
            }
            _ => eprintln!("No resources found"),
        }
    }
    if args.watch || args.watch_only {
        if let Some((resource, names)) = targets.first() {
            watch(ctx, &args, resource, names, namespace, &mut printer).await?;
        }
    }
    if failed {
        return Err(Error::Reported(1));
    }
    Ok(())
}

/// How much of each object a table row carries: all of it to sort by a field, its metadata for
/// the namespace and labels columns, else nothing (a quarter of the bytes to send and read).
fn table_params(args: &GetArgs) -> Vec<(&'static str, String)> {
    let include = if args.sort_by.is_some() {
        "Object"
    } else if args.all_namespaces || args.show_labels {
        "Metadata"
    } else {
        "None"
    };
    vec![("includeObject", include.to_string())]
}

fn add_type(item: &mut Value, resource: &Resource) {
    if let Value::Object(map) = item {
        if !map.contains_key("kind") {
            map.insert("kind".into(), resource.kind.clone().into());
        }
        if !map.contains_key("apiVersion") {
            map.insert("apiVersion".into(), resource.api_version().into());
        }
        // kubectl hides managed fields unless asked.
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
}

/// A bare JSONPath (`.metadata.name`, as `--sort-by` and custom columns take it) or a
/// template (`{.metadata.name}`).
fn path_template(sort_by: &str) -> Result<Template, Error> {
    if sort_by.starts_with('{') {
        Template::parse(sort_by)
    } else {
        Template::parse(&format!("{{{sort_by}}}"))
    }
}

fn sort_values(items: &mut [Value], sort_by: &str) -> Result<(), Error> {
    let template = path_template(sort_by)?;
    items.sort_by(|a, b| compare(template.select(a).first(), template.select(b).first()));
    Ok(())
}

fn compare(a: Option<&&Value>, b: Option<&&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Some(x), Some(y)) => crate::jsonpath::text_of(x).cmp(&crate::jsonpath::text_of(y)),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Prints rows and objects, keeping column widths across a watch.
pub struct Printer {
    format: Format,
    all_namespaces: bool,
    show_labels: bool,
    no_headers: bool,
    watch_events: bool,
    sort_by: Option<String>,
    prefix_type: bool,
    table: Table,
    header_printed: bool,
    pub rows_printed: usize,
    tables: usize,
}

impl Printer {
    pub fn new(format: Format, args: &GetArgs, prefix_type: bool) -> Self {
        Printer {
            format,
            all_namespaces: args.all_namespaces,
            show_labels: args.show_labels,
            no_headers: args.no_headers,
            watch_events: args.output_watch_events,
            sort_by: args.sort_by.clone(),
            prefix_type,
            table: Table::default(),
            header_printed: false,
            rows_printed: 0,
            tables: 0,
        }
    }

    fn is_first(&self) -> bool {
        self.tables == 0
    }

    /// Prints a server table (the header once per table).
    fn table(&mut self, resource: &Resource, table: &Value, header: bool) {
        let columns = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let shown = self.shown_columns(&columns);
        let mut rows = table["rows"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            return;
        }
        if let Some(sort) = &self.sort_by {
            if let Ok(t) = path_template(sort) {
                rows.sort_by(|a, b| {
                    compare(
                        t.select(&a["object"]).first(),
                        t.select(&b["object"]).first(),
                    )
                });
            }
        }
        // A blank line between the tables of different kinds.
        if self.tables > 0 && header {
            print!("{}", self.table.render());
            println!();
            self.table = Table::default();
        }
        self.tables += 1;
        if header && !self.no_headers && !self.header_printed {
            let head = self.header(resource, &columns, &shown);
            self.table.push(head);
            self.header_printed = !self.prefix_type;
        }
        for row in rows {
            self.table.push(self.row(resource, &row, &shown, None));
            self.rows_printed += 1;
        }
        print!("{}", self.table.render());
    }

    /// The server's columns this table prints: all with `-o wide`, else those of priority 0.
    fn shown_columns(&self, columns: &[Value]) -> Vec<usize> {
        let wide = matches!(self.format, Format::Table { wide: true });
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| wide || c["priority"].as_i64().unwrap_or(0) == 0)
            .map(|(i, _)| i)
            .collect()
    }

    /// The header row: the shown columns' names, with the columns kubectl adds around them.
    fn header(&self, resource: &Resource, columns: &[Value], shown: &[usize]) -> Vec<String> {
        let mut head = Vec::new();
        if self.watch_events {
            head.push("EVENT".to_string());
        }
        if self.all_namespaces && resource.namespaced {
            head.push("NAMESPACE".to_string());
        }
        for i in shown {
            head.push(columns[*i]["name"].as_str().unwrap_or("").to_uppercase());
        }
        if self.show_labels {
            head.push("LABELS".to_string());
        }
        head
    }

    fn row(
        &self,
        resource: &Resource,
        row: &Value,
        shown: &[usize],
        event: Option<&str>,
    ) -> Vec<String> {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        if let Some(e) = event {
            out.push(e.to_string());
        }
        if self.all_namespaces && resource.namespaced {
            out.push(
                row["object"]["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        for (n, i) in shown.iter().enumerate() {
            let mut text = cell_text(cells.get(*i).unwrap_or(&Value::Null));
            if n == 0 && self.prefix_type {
                text = format!("{}/{text}", resource.type_name());
            }
            out.push(text);
        }
        if self.show_labels {
            out.push(labels_text(&row["object"]["metadata"]["labels"]));
        }
        out
    }

    /// Prints objects in the non-table formats.
    pub fn objects(&self, items: Vec<Value>, single: bool) -> String {
        match &self.format {
            Format::Yaml | Format::Json => {
                let value = if single && items.len() == 1 {
                    items.into_iter().next().unwrap_or(Value::Null)
                } else {
                    output::as_list(items)
                };
                if matches!(self.format, Format::Yaml) {
                    output::yaml(&value)
                } else {
                    output::json(&value)
                }
            }
            Format::Name => items.iter().map(|v| format!("{}\n", name_of(v))).collect(),
            Format::JsonPath(t) => {
                if single && items.len() == 1 {
                    t.render(&items[0])
                } else {
                    t.render(&output::as_list(items))
                }
            }
            Format::CustomColumns(cols) => {
                let mut table = Table::default();
                if !self.no_headers {
                    table.push(cols.iter().map(|(n, _)| n.clone()).collect());
                }
                for item in &items {
                    table.push(
                        cols.iter()
                            .map(|(_, t)| {
                                let text = t.render(item);
                                if text.is_empty() {
                                    "<none>".to_string()
                                } else {
                                    text
                                }
                            })
                            .collect(),
                    );
                }
                table.render()
            }
            Format::Table { .. } => String::new(),
        }
    }
}

/// `kind/name` as kubectl prints it (`pod/web`, `deployment.apps/web`).
pub fn name_of(v: &Value) -> String {
    let kind = v["kind"].as_str().unwrap_or("").to_lowercase();
    let group = v["apiVersion"]
        .as_str()
        .and_then(|a| a.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or("");
    let name = v["metadata"]["name"].as_str().unwrap_or("");
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn labels_text(labels: &Value) -> String {
    let Some(map) = labels.as_object().filter(|m| !m.is_empty()) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

async fn watch(
    ctx: &Context,
    args: &GetArgs,
    resource: &Resource,
    names: &[String],
    namespace: Option<&str>,
    printer: &mut Printer,
) -> Result<(), Error> {
    let mut args_for_query = GetArgs {
        selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
        ..Default::default()
    };
    if let [name] = names {
        let by_name = format!("metadata.name={name}");
        args_for_query.field_selector = Some(match &args.field_selector {
            Some(f) => format!("{f},{by_name}"),
            None => by_name,
        });
    }
    let table = matches!(printer.format, Format::Table { .. });
    let accept = if table {
        TABLE_ACCEPT
    } else {
        "application/json"
    };
    // The list printed above was as of "now"; start the watch from the current state.
    let list_path = format!(
        "{}{}",
        resource.collection(namespace),
        query(&args_for_query, &[("limit", "1".to_string())])
    );
    let list = get_value(ctx, &list_path).await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut extra = vec![("watch", "1".to_string()), ("resourceVersion", rv)];
    if args.watch_only {
        extra.retain(|(k, _)| *k != "resourceVersion");
    }
    let path = format!(
        "{}{}",
        resource.collection(namespace),
        query(&args_for_query, &extra)
    );
    let stream = ctx.client.request_stream(request(&path, accept)?).await?;
    let mut lines = stream.lines();
    let mut columns: Option<Vec<usize>> = None;
    // The stream ends when the server (or --request-timeout) closes it: that ends the command.
    while let Ok(Some(line)) = lines.try_next().await {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let kind = event["type"].as_str().unwrap_or("").to_string();
        if kind == "ERROR" || kind == "BOOKMARK" {
            continue;
        }
        let object = &event["object"];
        if table {
            let defs = object["columnDefinitions"].as_array();
            if let Some(defs) = defs.filter(|d| !d.is_empty()) {
                let shown = printer.shown_columns(defs);
                if !printer.header_printed && !printer.no_headers && printer.rows_printed == 0 {
                    let head = printer.header(resource, defs, &shown);
                    printer.table.push(head);
                    printer.header_printed = true;
                }
                columns = Some(shown);
            }
            let shown = columns.clone().unwrap_or_default();
            for row in object["rows"].as_array().into_iter().flatten() {
                let event_name = printer.watch_events.then_some(kind.as_str());
                let cells = printer.row(resource, row, &shown, event_name);
                printer.table.push(cells);
            }
            print!("{}", printer.table.render());
        } else {
            let mut object = object.clone();
            add_type(&mut object, resource);
            print!("{}", printer.objects(vec![object], true));
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// `kubectl version`
pub async fn version(global: &Global, args: VersionArgs) -> Result<(), Error> {
    let client = serde_json::json!({
        "major": "1", "minor": "33", "gitVersion": CLIENT_VERSION,
        "goVersion": "", "compiler": "rustc", "platform": "linux/amd64",
    });
    let server = if args.client {
        None
    } else {
        let ctx = Context::connect(global).await?;
        Some(get_value(&ctx, "/version").await?)
    };
    match args.output.as_deref() {
        Some(o @ ("json" | "yaml")) => {
            let mut v = serde_json::json!({"clientVersion": client});
            if let Some(s) = server {
                v["serverVersion"] = s;
            }
            print!(
                "{}",
                if o == "json" {
                    output::json(&v)
                } else {
                    output::yaml(&v)
                }
            );
        }
        _ => {
            println!("Client Version: {CLIENT_VERSION}");
            if let Some(s) = server {
                println!("Server Version: {}", s["gitVersion"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// `kubectl cluster-info`
pub async fn cluster_info(ctx: &Context) -> Result<(), Error> {
    get_value(ctx, "/version").await?;
    println!("Kubernetes control plane is running at {}", ctx.cluster_url);
    Ok(())
}
