//! `kubelite kubectl`: the Kubernetes command line, built into the kubelite binary so that a
//! machine without a kubectl can still follow the tutorial. Output, errors and exit codes are
//! kubectl's, so that scripts written for one work with the other.
//!
//! Start at [`main`]: it parses the command line ([`args`]), loads the kubeconfig as kubectl does
//! ([`config`]), resolves resource names through discovery ([`discovery`]) and runs one command
//! (`get`, `create`, `describe`, …, one module each). Printing lives in [`output`] (tables, YAML,
//! JSON, names, JSONPath) so every command prints the same way.
//!
//! **Boundary:** an ordinary API client (kube-rs); it knows nothing of kubelite's internals.

pub mod args;
pub mod completion;
pub mod config;
pub mod describe;
pub mod discovery;
pub mod drain;
pub mod edit;
pub mod error;
pub mod explain;
pub mod get;
pub mod jsonpath;
pub mod logs;
pub mod mutate;
pub mod output;
pub mod streams;
pub mod wait;

use std::ffi::OsString;

use clap::Parser;

pub use error::Error;

/// Runs one kubectl command line (`args[0]` is the program name) and returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    // What the completion scripts call on TAB: the words so far, the last one partial.
    if args.get(1).is_some_and(|a| a == "__complete") {
        let words = args[2..]
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        return block_on(async { completion::complete(words).await.map(|_| 0) });
    }
    let parsed = match args::Kubectl::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return code;
        }
    };
    block_on(run(parsed))
}

/// Runs a command on a single-threaded runtime and turns its result into an exit code.
fn block_on(command: impl std::future::Future<Output = Result<i32, Error>>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: {err}");
            return 1;
        }
    };
    let result = runtime.block_on(command);
    // A read of the terminal may still be blocked in its thread (exec, attach): it must not keep
    // the command from ending.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            err.print();
            err.exit_code()
        }
    }
}

async fn run(cli: args::Kubectl) -> Result<i32, Error> {
    use args::Command as C;
    let global = cli.global;
    match cli.command {
        C::Version(a) => get::version(&global, a).await.map(|_| 0),
        C::Config(a) => config::command(&global, a).map(|_| 0),
        C::Completion { shell } => completion::script(&shell).map(|_| 0),
        command => {
            let ctx = config::Context::connect(&global).await?;
            match command {
                C::Get(a) => get::run(&ctx, a).await.map(|_| 0),
                C::Create(a) => mutate::create(&ctx, a).await.map(|_| 0),
                C::Apply(a) => mutate::apply(&ctx, a).await.map(|_| 0),
                C::Delete(a) => mutate::delete(&ctx, a).await.map(|_| 0),
                C::Label(a) => mutate::label(&ctx, a, "labels").await.map(|_| 0),
                C::Annotate(a) => mutate::label(&ctx, a, "annotations").await.map(|_| 0),
                C::Patch(a) => mutate::patch(&ctx, a).await.map(|_| 0),
                C::Run(a) => mutate::run(&ctx, a).await.map(|_| 0),
                C::Describe(a) => describe::run(&ctx, a).await.map(|_| 0),
                C::Logs(a) => logs::run(&ctx, a).await.map(|_| 0),
                C::Exec(a) => streams::exec(&ctx, a).await,
                C::Attach(a) => streams::attach(&ctx, a).await,
                C::Wait(a) => wait::run(&ctx, a).await.map(|_| 0),
                C::Events(a) => wait::events(&ctx, a).await.map(|_| 0),
                C::PortForward(a) => streams::port_forward(&ctx, a).await.map(|_| 0),
                C::Edit(a) => edit::run(&ctx, a).await.map(|_| 0),
                C::Explain(a) => explain::run(&ctx, a).await.map(|_| 0),
                C::Cordon(a) => drain::cordon(&ctx, a, true).await.map(|_| 0),
                C::Uncordon(a) => drain::cordon(&ctx, a, false).await.map(|_| 0),
                C::Drain(a) => drain::drain(&ctx, a).await,
                C::ApiResources(a) => discovery::api_resources(&ctx, a).await.map(|_| 0),
                C::ApiVersions => discovery::api_versions(&ctx).await.map(|_| 0),
                C::ClusterInfo => get::cluster_info(&ctx).await.map(|_| 0),
                C::Version(_) | C::Config(_) | C::Completion { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
