//! `kubelite images import|ls|rm`: the node's image store from the command line. While a node
//! agent runs it holds the store, so imports are handed to it through its import folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use runtime::image::ImageStore;

fn store_root(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("store")
}

fn import_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

/// Whether an overlay mount still stacks `layer` (a running container uses it).
fn layer_in_use(layer: &Path) -> bool {
    let needle = layer.display().to_string();
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.starts_with("overlay ") && l.contains(&needle))
    })
}

pub fn import(data_dir: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    match ImageStore::open(&store_root(data_dir)) {
        Ok(store) => {
            for file in files {
                for image in store
                    .import_archive(file)
                    .with_context(|| format!("importing {}", file.display()))?
                {
                    let names = if image.references.is_empty() {
                        vec![image.manifest_digest.clone()]
                    } else {
                        image.references
                    };
                    for name in names {
                        println!("imported {name} ({})", image.id);
                    }
                }
            }
            Ok(())
        }
        Err(_) => {
            // The agent holds the store: hand the archives to it.
            let dir = import_dir(data_dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for file in files {
                let name = file
                    .file_name()
                    .context("an archive path needs a file name")?;
                let partial = dir.join(name).with_extension("partial");
                std::fs::copy(file, &partial)
                    .with_context(|| format!("copying {}", file.display()))?;
                std::fs::rename(&partial, dir.join(name))?;
                println!("queued {} for the running node agent", file.display());
            }
            Ok(())
        }
    }
}

pub fn list(data_dir: &Path) -> anyhow::Result<()> {
    let images = ImageStore::list_at(&store_root(data_dir))?;
    println!("{:<60} {:<20} {:>10}", "IMAGE", "IMAGE ID", "SIZE");
    for i in images {
        let id = i.id.trim_start_matches("sha256:");
        println!(
            "{:<60} {:<20} {:>10}",
            i.reference,
            &id[..id.len().min(13)],
            human_size(i.size)
        );
    }
    Ok(())
}

pub fn remove(data_dir: &Path, references: &[String]) -> anyhow::Result<()> {
    let store = match ImageStore::open(&store_root(data_dir)) {
        Ok(s) => s,
        Err(e) => bail!("the image store is in use by a running node agent; stop it first ({e})"),
    };
    for r in references {
        store
            .remove(r, &layer_in_use)
            .with_context(|| format!("removing {r}"))?;
        println!("removed {r}");
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_crictl() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_933_614), "2.9MB");
    }
}
