//! kubelite's development tasks, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `demo-image`: builds the offline kuard demo image archive ([`demo_image`]).
//! - `list-strategies`: the patch strategies of the Kubernetes types' fields, from Kubernetes'
//!   OpenAPI definitions ([`list_strategies`]).

mod demo_image;
mod elf;
mod list_strategies;
mod oci;
mod tree;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "kubelite's development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build kuard statically and package it with busybox as the OCI image archive of
    /// gcr.io/kuar-demo/kuard-amd64:1, for clusters without registry access.
    DemoImage {
        /// Where to write the archive; relative paths are from the workspace root.
        #[arg(long, value_name = "PATH", default_value = demo_image::DEFAULT_OUT)]
        out: PathBuf,
        /// The statically linked busybox to install (Debian's busybox-static).
        #[arg(long, value_name = "PATH", default_value = "/bin/busybox")]
        busybox: PathBuf,
    },
    /// Write the table of list and map strategies (`x-kubernetes-patch-strategy` and friends)
    /// that strategic merge patches follow, from Kubernetes' OpenAPI definitions.
    ListStrategies {
        /// Kubernetes' OpenAPI definitions as one JSON document (`$defs` or `definitions`).
        #[arg(long, value_name = "PATH")]
        definitions: PathBuf,
        /// Where to write the table; relative paths are from the workspace root.
        #[arg(long, value_name = "PATH", default_value = list_strategies::DEFAULT_OUT)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.task {
        Task::DemoImage { out, busybox } => {
            demo_image::run(&root, &demo_image::Options { out, busybox })
        }
        Task::ListStrategies { definitions, out } => {
            list_strategies::run(&definitions, &root.join(out))
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_image_defaults() {
        let cli = Cli::try_parse_from(["xtask", "demo-image"]).expect("parse");
        let Task::DemoImage { out, busybox } = cli.task else {
            panic!("not demo-image");
        };
        assert_eq!(out, Path::new("target/images/kuard-amd64-1.tar"));
        assert_eq!(busybox, Path::new("/bin/busybox"));
    }

    #[test]
    fn out_can_be_overridden() {
        let cli =
            Cli::try_parse_from(["xtask", "demo-image", "--out", "/tmp/k.tar"]).expect("parse");
        let Task::DemoImage { out, .. } = cli.task else {
            panic!("not demo-image");
        };
        assert_eq!(out, Path::new("/tmp/k.tar"));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("demo/kuard").is_dir());
    }
}
