//! Shell completion: `completion bash|zsh|fish` prints a script that, on TAB, asks the binary
//! itself (`kubectl __complete WORDS… PARTIAL`) what may come next; that asks the server for the
//! names it knows — resource types, objects, containers of the pod named, namespaces.

use serde_json::Value;

use crate::args::Global;
use crate::config::Context;
use crate::discovery::Resource;
use crate::get::get_value;
use crate::Error;

/// The commands offered after `kubectl`.
const COMMANDS: &[&str] = &[
    "annotate",
    "api-resources",
    "api-versions",
    "apply",
    "cluster-info",
    "completion",
    "config",
    "create",
    "delete",
    "describe",
    "edit",
    "exec",
    "explain",
    "get",
    "label",
    "logs",
    "patch",
    "port-forward",
    "run",
    "version",
];

/// Commands whose first argument is a resource type and second an object of it.
const TYPED: &[&str] = &[
    "get", "describe", "delete", "edit", "label", "annotate", "patch", "explain",
];

/// Commands whose first argument is a pod.
const POD_FIRST: &[&str] = &["logs", "exec", "port-forward", "attach"];

const BASH: &str = r#"# bash completion for kubectl (kubelite)
_kubectl_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
}
complete -o default -F _kubectl_complete kubectl
"#;

const ZSH: &str = r#"#compdef kubectl
# zsh completion for kubectl (kubelite)
_kubectl() {
    local -a candidates
    candidates=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    compadd -a candidates
}
compdef _kubectl kubectl
"#;

const FISH: &str = r#"# fish completion for kubectl (kubelite)
complete -c kubectl -f -a '(kubectl __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
"#;

/// `kubectl completion SHELL`
pub fn script(shell: &str) -> Result<(), Error> {
    let text = match shell {
        "bash" => BASH,
        "zsh" => ZSH,
        "fish" => FISH,
        other => return Err(Error::other(format!("Unsupported shell type \"{other}\"."))),
    };
    print!("{text}");
    Ok(())
}

/// The global flags among the words, so completion asks the cluster the command would.
fn global_of(words: &[String]) -> Global {
    let mut global = Global::default();
    let mut iter = words.iter();
    while let Some(w) = iter.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (w.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| iter.next().cloned());
        match flag {
            "-n" | "--namespace" => global.namespace = value(),
            "--context" => global.context = value(),
            "--kubeconfig" => global.kubeconfig = value().map(Into::into),
            _ => {}
        }
    }
    global
}

/// The words that are not flags (nor a flag's value).
fn positional(words: &[String]) -> Vec<&str> {
    const WITH_VALUE: &[&str] = &[
        "-n",
        "--namespace",
        "--context",
        "--kubeconfig",
        "-c",
        "--container",
        "-o",
        "--output",
        "-l",
        "--selector",
        "-f",
        "--filename",
    ];
    let mut out = Vec::new();
    let mut skip = false;
    for w in words {
        if skip {
            skip = false;
            continue;
        }
        if w == "--" {
            break;
        }
        if w.starts_with('-') {
            skip = WITH_VALUE.contains(&w.as_str());
            continue;
        }
        out.push(w.as_str());
    }
    out
}

/// `kubectl __complete WORDS… PARTIAL`: one candidate per line.
pub async fn complete(words: Vec<String>) -> Result<(), Error> {
    let Some((partial, before)) = words.split_last() else {
        return Ok(());
    };
    let candidates = candidates(before, partial).await.unwrap_or_default();
    for c in candidates
        .into_iter()
        .filter(|c| c.starts_with(partial.as_str()))
    {
        println!("{c}");
    }
    Ok(())
}

async fn candidates(before: &[String], _partial: &str) -> Result<Vec<String>, Error> {
    let args = positional(before);
    let previous = before.last().map(String::as_str);
    let Some(command) = args.first().copied() else {
        return Ok(COMMANDS.iter().map(|c| c.to_string()).collect());
    };
    if command == "completion" {
        return Ok(vec!["bash".into(), "zsh".into(), "fish".into()]);
    }
    let ctx = Context::connect(&global_of(before)).await?;
    match previous {
        Some("-n" | "--namespace") => return names(&ctx, "/api/v1/namespaces").await,
        Some("-c" | "--container") => {
            let Some(pod) = args.get(1) else {
                return Ok(Vec::new());
            };
            let pod = pod.rsplit('/').next().unwrap_or(pod);
            let value = get_value(
                &ctx,
                &format!("/api/v1/namespaces/{}/pods/{pod}", ctx.namespace),
            )
            .await?;
            return Ok(containers(&value));
        }
        _ => {}
    }
    let pods = format!("/api/v1/namespaces/{}/pods", ctx.namespace);
    if POD_FIRST.contains(&command) {
        return match args.len() {
            1 => names(&ctx, &pods).await,
            2 if command == "logs" => {
                let pod = args[1];
                let value = get_value(&ctx, &format!("{pods}/{pod}")).await?;
                Ok(containers(&value))
            }
            _ => Ok(Vec::new()),
        };
    }
    if TYPED.contains(&command) {
        let all = ctx.discovery.all(&ctx.client).await?;
        return match args.len() {
            // As kubectl completes them: `api-resources -o name --verbs=get`.
            1 => Ok(crate::discovery::one_per_resource(all)
                .iter()
                .filter(|r| r.verbs.iter().any(|v| v == "get"))
                .map(Resource::qualified_plural)
                .collect()),
            _ if command != "explain" => {
                let resource = ctx.discovery.resolve(&ctx.client, args[1]).await?;
                names(&ctx, &resource.collection(Some(&ctx.namespace))).await
            }
            _ => Ok(Vec::new()),
        };
    }
    Ok(Vec::new())
}

async fn names(ctx: &Context, path: &str) -> Result<Vec<String>, Error> {
    let list = get_value(ctx, path).await?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

fn containers(pod: &Value) -> Vec<String> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_their_values_are_not_positional() {
        let words: Vec<String> = ["logs", "-n", "team", "web", "-c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(positional(&words), vec!["logs", "web"]);
        assert_eq!(global_of(&words).namespace.as_deref(), Some("team"));
    }
}
