//! `cargo xtask demo-image`: the offline stand-in for `gcr.io/kuar-demo/kuard-amd64:1`.
//!
//! Builds `demo/kuard` as a static executable (in its own target directory, so the main build
//! cache is left alone), lays out a small root filesystem around it — Debian's static busybox with
//! a symlink per applet, `/etc/passwd` and `/etc/group`, and empty `/tmp`, `/proc`, `/sys`, `/dev`
//! (`/etc/hosts` and friends are bind-mounted by the runtime) — and writes it as a reproducible
//! one-layer OCI image archive tagged with the upstream name.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};

use crate::elf;
use crate::oci::{Image, RunConfig};
use crate::tree::{Content, FileTree};

/// The name the image is tagged with, as the tutorials spell it.
pub const REFERENCE: &str = "gcr.io/kuar-demo/kuard-amd64:1";

/// The archive's default location, relative to the workspace root.
pub const DEFAULT_OUT: &str = "target/images/kuard-amd64-1.tar";

const TARGET: &str = "x86_64-unknown-linux-gnu";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CREATED_BY: &str = "cargo xtask demo-image (kuard-compatible rebuild for offline use)";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\n";

/// Options of the task.
#[derive(Debug, Clone)]
pub struct Options {
    /// The archive to write; relative paths are taken from the workspace root.
    pub out: PathBuf,
    /// The busybox executable to install; must be statically linked.
    pub busybox: PathBuf,
}

/// Runs the task from the workspace at `root`, printing the archive path and image digest.
pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    // Check busybox first: it is quick, and the kuard build is not.
    let applets = busybox_applets(&options.busybox)?;
    let kuard = build_static_kuard(root)?;
    let layer = rootfs(&kuard, &options.busybox, &applets)
        .to_tar()
        .context("writing the image layer")?;
    let image = Image::build(REFERENCE, &layer, &run_config(), CREATED_BY)?;
    let out = root.join(&options.out);
    write_atomically(&out, &image.to_archive()?)?;
    println!("wrote {}", out.display());
    println!("{REFERENCE} {}", image.digest());
    Ok(())
}

/// What the image runs: `/kuard`, on port 8080, from `/`.
fn run_config() -> RunConfig {
    RunConfig {
        entrypoint: vec!["/kuard".to_owned()],
        env: vec![PATH_ENV.to_owned()],
        working_dir: "/".to_owned(),
        exposed_ports: vec!["8080/tcp".to_owned()],
    }
}

/// Checks that `busybox` is there and static, and asks it for its applet names.
fn busybox_applets(busybox: &Path) -> anyhow::Result<Vec<String>> {
    if !busybox.is_file() {
        bail!(
            "{} not found: install Debian's static busybox (apt-get install busybox-static)",
            busybox.display()
        );
    }
    elf::ensure_static(busybox).context(
        "the image has no shared libraries, so busybox must be static: \
         install busybox-static (it replaces the dynamic busybox package)",
    )?;
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("running {} --list", busybox.display()))?;
    ensure!(
        output.status.success(),
        "{} --list failed ({})",
        busybox.display(),
        output.status
    );
    let applets = parse_applets(&String::from_utf8_lossy(&output.stdout));
    ensure!(
        !applets.is_empty(),
        "{} --list printed no applets",
        busybox.display()
    );
    Ok(applets)
}

/// Applet names from `busybox --list`, sorted, keeping only plain file names.
fn parse_applets(list: &str) -> Vec<String> {
    let mut applets: Vec<String> = list
        .lines()
        .map(str::trim)
        .filter(|name| {
            !name.is_empty() && !name.contains('/') && !matches!(*name, "." | ".." | "busybox")
        })
        .map(str::to_owned)
        .collect();
    applets.sort();
    applets.dedup();
    applets
}

/// Builds kuard with a static C runtime into `target/static` and returns the executable's path.
fn build_static_kuard(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let target_dir = root.join("target/static");
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "kuard", "--target", TARGET])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // This one would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .context("running cargo build for kuard")?;
    ensure!(status.success(), "cargo build of kuard failed ({status})");
    let kuard = target_dir.join(TARGET).join("release/kuard");
    elf::ensure_static(&kuard)?;
    Ok(kuard)
}

/// The image's root filesystem.
fn rootfs(kuard: &Path, busybox: &Path, applets: &[String]) -> FileTree {
    let mut tree = FileTree::new();
    tree.dir("bin", 0o755)
        .file("bin/busybox", 0o755, Content::HostFile(busybox.to_owned()))
        .file("kuard", 0o755, Content::HostFile(kuard.to_owned()))
        .dir("etc", 0o755)
        .file("etc/passwd", 0o644, Content::Inline(PASSWD.into()))
        .file("etc/group", 0o644, Content::Inline(GROUP.into()))
        .dir("root", 0o700)
        .dir("tmp", 0o1777)
        .dir("proc", 0o555)
        .dir("sys", 0o555)
        .dir("dev", 0o755);
    for applet in applets {
        tree.symlink(&format!("bin/{applet}"), "busybox");
    }
    tree
}

/// Writes `bytes` to `path` through a temporary sibling, creating parent directories.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn applet_list_is_cleaned_and_sorted() {
        let list = "sh\nls\n\nwget\n[\n[[\nbusybox\nusr/bin/odd\nls\n  cat  \n";
        assert_eq!(parse_applets(list), ["[", "[[", "cat", "ls", "sh", "wget"]);
    }

    #[test]
    fn a_missing_busybox_says_what_to_install() {
        let err = busybox_applets(Path::new("/nonexistent/busybox")).expect_err("missing");
        assert!(err.to_string().contains("busybox-static"), "{err}");
    }

    #[test]
    fn rootfs_has_kuard_busybox_applets_and_system_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kuard, busybox) = (dir.path().join("kuard"), dir.path().join("busybox"));
        std::fs::write(&kuard, b"kuard").expect("write");
        std::fs::write(&busybox, b"busybox").expect("write");
        let applets = ["sh".to_owned(), "wget".to_owned()];
        let layer = rootfs(&kuard, &busybox, &applets).to_tar().expect("tar");

        let mut entries = BTreeMap::new();
        for entry in tar::Archive::new(layer.as_slice())
            .entries()
            .expect("entries")
        {
            let entry = entry.expect("entry");
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let link = entry
                .link_name()
                .expect("link")
                .map(|l| l.to_string_lossy().into_owned());
            entries.insert(path, (entry.header().mode().expect("mode"), link));
        }
        assert_eq!(entries["kuard"], (0o755, None));
        assert_eq!(entries["bin/busybox"], (0o755, None));
        assert_eq!(entries["bin/sh"].1.as_deref(), Some("busybox"));
        assert_eq!(entries["bin/wget"].1.as_deref(), Some("busybox"));
        assert_eq!(entries["tmp/"].0, 0o1777);
        for path in ["proc/", "sys/", "dev/", "etc/passwd", "etc/group"] {
            assert!(entries.contains_key(path), "{path}");
        }
        assert!(
            !entries.contains_key("etc/hosts"),
            "the runtime provides /etc/hosts"
        );
    }

    #[test]
    fn run_config_matches_the_upstream_image() {
        let run = run_config();
        assert_eq!(run.entrypoint, ["/kuard"]);
        assert_eq!(run.exposed_ports, ["8080/tcp"]);
        assert_eq!(run.working_dir, "/");
        assert!(run.env[0].starts_with("PATH=/usr/local/sbin:"));
    }
}
