//! `kubectl edit`: the object opens in your editor as YAML; what you save is sent back as a
//! strategic merge patch. When the server refuses it, the file re-opens with the reasons as
//! comments at the top; leaving it unchanged then gives up and keeps a copy.

use serde_json::Value;

use crate::args::EditArgs;
use crate::config::Context;
use crate::get::{self, get_value, name_of};
use crate::output;
use crate::Error;
use api::patch::diff::three_way;
use api::patch::schema::Types;
use api::validation::go_quote;

const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit. If an error occurs while saving this file will be\n# reopened with the relevant failures.\n#\n";

/// The editor command: `KUBE_EDITOR`, then `EDITOR`, then `vi`.
fn editor_command(file: &std::path::Path) -> Vec<String> {
    let editor = ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    let path = file.display().to_string();
    if !editor.contains(' ') {
        return vec![editor, path];
    }
    if !editor.contains(['"', '\'', '\\']) {
        let mut parts: Vec<String> = editor.split(' ').map(str::to_string).collect();
        parts.push(path);
        return parts;
    }
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/bash".to_string());
    vec![shell, "-c".into(), format!("{editor} {}", go_quote(&path))]
}

fn launch(file: &std::path::Path) -> Result<(), Error> {
    let cmd = editor_command(file);
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .map_err(|_| {
            Error::other(format!(
                "unable to launch the editor {}",
                go_quote(&cmd.join(" "))
            ))
        })?;
    if !status.success() {
        return Err(Error::other(format!(
            "there was a problem with the editor {}",
            go_quote(&cmd.join(" "))
        )));
    }
    Ok(())
}

/// The file's text without comment lines.
fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with('#') || t.starts_with("#!")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes the header, the reasons and the body to a new temporary file.
fn write_file(reasons: &str, body: &str) -> Result<tempfile::TempPath, Error> {
    let file = tempfile::Builder::new()
        .prefix("kubectl-edit-")
        .suffix(".yaml")
        .tempfile()?;
    std::fs::write(file.path(), format!("{HEADER}{reasons}{body}"))?;
    Ok(file.into_temp_path())
}

fn comment(text: &str) -> String {
    text.replace('\n', "\n# ")
}

pub async fn run(ctx: &Context, args: EditArgs) -> Result<(), Error> {
    let targets = get::targets(ctx, &args.args).await?;
    let Some((resource, names)) = targets.into_iter().next() else {
        return Err(Error::other("edit cancelled, no objects found"));
    };
    let Some(name) = names.first() else {
        return Err(Error::other("edit cancelled, no objects found"));
    };
    let path = resource.object(&ctx.namespace, name);
    let mut original = get_value(ctx, &path).await?;
    if let Some(meta) = original["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let mut body = output::yaml(&original);
    let mut reasons = String::new();
    let mut previous: Option<String> = None;
    loop {
        let file = write_file(&reasons, &body)?;
        launch(&file)?;
        let text = std::fs::read_to_string(&file)?;
        let stripped = strip_comments(&text);
        if let Some(prev) = &previous {
            if *prev == stripped {
                let kept = file.keep().map_err(|e| Error::other(e.error))?;
                eprintln!(
                    "A copy of your changes has been stored to {}",
                    go_quote(&kept.display().to_string())
                );
                return Err(Error::other("Edit cancelled, no valid changes were saved."));
            }
        }
        if stripped.trim().is_empty() {
            eprintln!("Edit cancelled, saved file was empty.");
            return Ok(());
        }
        let edited: Value = match serde_saphyr::from_str(&stripped) {
            Ok(v) => v,
            Err(err) => {
                reasons = format!(
                    "# The edited file had a syntax error: {}\n#\n",
                    comment(&err.to_string())
                );
                body = stripped.clone();
                previous = Some(stripped);
                continue;
            }
        };
        if edited == original && previous.is_none() {
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        }
        for key in ["apiVersion", "kind"] {
            if edited[key] != original[key] {
                return Err(Error::other(
                    "At least one of apiVersion, kind and name was changed",
                ));
            }
        }
        if edited["metadata"]["name"] != original["metadata"]["name"] {
            return Err(Error::other(
                "At least one of apiVersion, kind and name was changed",
            ));
        }
        let types = Types::of_kind(&resource.group, &resource.kind);
        let patch = three_way(types, &original, &edited, &original);
        let req = http::Request::patch(format!("{path}?fieldManager=kubectl-edit"))
            .header(
                http::header::CONTENT_TYPE,
                "application/strategic-merge-patch+json",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(serde_json::to_vec(&patch).map_err(Error::other)?)
            .map_err(Error::other)?;
        match ctx.client.request::<Value>(req).await {
            Ok(saved) => {
                println!("{} edited", name_of(&saved));
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let what = format!("{} \"{name}\"", resource.qualified_plural());
                eprintln!("error: {what} is invalid");
                let causes: Vec<String> = status
                    .details
                    .as_ref()
                    .map(|d| d.causes.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect();
                let mut r = format!("# {what} was not valid:\n");
                if causes.is_empty() {
                    r.push_str(&format!("# * {}\n", comment(&status.message)));
                }
                for c in causes {
                    r.push_str(&format!("# * {}\n", comment(&c)));
                }
                r.push_str("#\n");
                reasons = r;
                body = stripped.clone();
                previous = Some(stripped);
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                let kept = file.keep().map_err(|e| Error::other(e.error))?;
                eprintln!(
                    "error: {} \"{name}\" could not be found on the server",
                    resource.qualified_plural()
                );
                eprintln!(
                    "The edits you made on deleted resources have been saved to {}",
                    go_quote(&kept.display().to_string())
                );
                return Err(Error::Reported(1));
            }
            Err(err) => {
                let kept = file.keep().map_err(|e| Error::other(e.error))?;
                eprintln!(
                    "error: {} \"{name}\" could not be patched: {err}",
                    resource.qualified_plural()
                );
                eprintln!(
                    "You can run `kubectl replace -f {}` to try this update again.",
                    kept.display()
                );
                return Err(Error::Reported(1));
            }
        }
    }
}
