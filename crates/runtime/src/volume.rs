//! Pod volumes on the host: directories of projected files written atomically (so a reader never
//! sees half of an update), memory-backed `emptyDir`s, and the checks a `hostPath` type asks for.
//!
//! A projected directory holds a timestamped directory with the files, a `..data` symlink to it,
//! and one symlink per top-level entry into `..data`. An update writes a new timestamped
//! directory and renames a new `..data` link over the old one: one atomic step.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// One file of a projected volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Relative path inside the volume.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

const DATA_LINK: &str = "..data";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Whether `path` is relative and stays below where it is joined (no `..`, not absolute).
pub fn is_contained(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Makes `dir` hold exactly `files`, switching from the old contents in one rename; with a
/// `group` (the pod's `fsGroup`) what is written belongs to that group and is readable by it, as
/// the kubelet sets up volume ownership. Returns whether anything changed.
pub fn write_atomic(dir: &Path, files: &[File], group: Option<u32>) -> Result<bool> {
    let files: Vec<File> = files
        .iter()
        .map(|f| File {
            mode: if group.is_some() {
                f.mode | 0o440
            } else {
                f.mode
            },
            ..f.clone()
        })
        .collect();
    let files = &files[..];
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if let Some(bad) = files.iter().find(|f| !is_contained(&f.path)) {
        return Err(Error::Command {
            command: "volume".into(),
            message: format!(
                "invalid path {:?}: must be relative and may not contain '..'",
                bad.path
            ),
        });
    }
    let current = std::fs::read_link(dir.join(DATA_LINK)).ok();
    if let Some(cur) = &current {
        if same_contents(&dir.join(cur), files, group) {
            return Ok(false);
        }
    }
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir(&fresh).map_err(io(&fresh))?;
    for f in files {
        let path = fresh.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &f.data).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(io(&path))?;
    }
    if let Some(gid) = group {
        give_to_group(&fresh, gid)?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&stamp, &tmp_link).map_err(io(&tmp_link))?;
    std::fs::rename(&tmp_link, dir.join(DATA_LINK)).map_err(io(dir))?;
    link_top_level(dir, files)?;
    if let Some(old) = current {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

/// One link per top-level entry into `..data`; links to entries that are gone are removed.
fn link_top_level(dir: &Path, files: &[File]) -> Result<()> {
    let top: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|f| Path::new(&f.path).components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !top.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for name in top {
        let link = dir.join(&name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_LINK).join(&name), &link)
                .map_err(io(&link))?;
        }
    }
    Ok(())
}

fn same_contents(current: &Path, files: &[File], group: Option<u32>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let count = walk_files(current).len();
    count == files.len()
        && files.iter().all(|f| {
            let path = current.join(&f.path);
            std::fs::read(&path).is_ok_and(|d| d == f.data)
                && std::fs::metadata(&path).is_ok_and(|m| {
                    m.permissions().mode() & 0o7777 == f.mode & 0o7777
                        && group.is_none_or(|gid| m.gid() == gid)
                })
        })
}

/// Gives `dir` and everything in it to group `gid`; directories get the setgid bit, so that
/// what is made in them later belongs to the group too.
fn give_to_group(dir: &Path, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(dir, None, Some(gid)).map_err(io(dir))?;
    let mode = std::fs::metadata(dir)
        .map_err(io(dir))?
        .permissions()
        .mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o2000))
        .map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            give_to_group(&path, gid)?;
        } else {
            std::os::unix::fs::lchown(&path, None, Some(gid)).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Makes `dir` a tmpfs (`emptyDir` with `medium: Memory`) of at most `size` bytes, unless it is
/// one already.
pub fn mount_tmpfs(dir: &Path, size: Option<u64>) -> Result<()> {
    let mut options = "mode=0777".to_string();
    if let Some(size) = size {
        options.push_str(&format!(",size={size}"));
    }
    mount_tmpfs_with(dir, &options)
}

/// Makes `dir` a tmpfs only root may enter, unless it is a mount already: for state that must
/// not outlive a boot (the runtime's, which describes processes a reboot ends).
pub fn mount_private_tmpfs(dir: &Path) -> Result<()> {
    mount_tmpfs_with(dir, "mode=0700")
}

fn mount_tmpfs_with(dir: &Path, options: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if is_mount_point(dir) {
        return Ok(());
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|e| Error::io(dir, e.into()))
}

fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(Ok(parent))) = (std::fs::metadata(dir), dir.parent().map(std::fs::metadata))
    else {
        return false;
    };
    me.dev() != parent.dev()
}

/// Unmounts every mount at or below `dir` (deepest first), before the directory is removed.
pub fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Err(err) = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %p.display(), %err, "unmounting a volume failed");
        }
    }
}

/// Makes sure a `hostPath` is what its `type` says, creating it for the `…OrCreate` types, with
/// the kubelet's messages.
pub fn check_host_path(path: &Path, kind: &str) -> std::result::Result<(), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path);
    let failed = |what: &str| {
        Err(format!(
            "hostPath type check failed: {shown} is not a {what}"
        ))
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => failed("directory"),
            Err(_) => std::fs::create_dir_all(path)
                .and_then(|_| {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|e| format!("{shown}: {e}")),
        },
        "FileOrCreate" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => failed("file"),
            Err(_) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("{shown}: {e}"))?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|_| {
                        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                    })
                    .map_err(|e| format!("{shown}: {e}"))
            }
        },
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => failed("directory"),
            Err(_) => Err(format!(
                "hostPath type check failed: {shown} is not a directory"
            )),
        },
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => failed("file"),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => failed("socket file"),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => failed("character device"),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => failed("block device"),
        },
        other => Err(format!("unsupported hostPath type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str) -> File {
        File {
            path: path.into(),
            data: data.into(),
            mode: 0o644,
        }
    }

    #[test]
    fn updates_swap_the_whole_directory_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = dir.path().join("cfg");
        assert!(write_atomic(&v, &[file("a", "1"), file("sub/b", "2")], None).expect("write"));
        assert_eq!(std::fs::read_to_string(v.join("a")).expect("a"), "1");
        assert_eq!(std::fs::read_to_string(v.join("sub/b")).expect("b"), "2");
        assert_eq!(
            std::fs::read_link(v.join("a")).expect("link"),
            Path::new("..data/a")
        );
        let first = std::fs::read_link(v.join("..data")).expect("data");
        assert!(!write_atomic(&v, &[file("a", "1"), file("sub/b", "2")], None).expect("same"));
        assert!(write_atomic(&v, &[file("a", "3")], None).expect("update"));
        assert_eq!(std::fs::read_to_string(v.join("a")).expect("a"), "3");
        assert!(
            std::fs::symlink_metadata(v.join("sub")).is_err(),
            "gone entries go"
        );
        assert!(!v.join(first).exists(), "the old version is removed");
        let mode = std::fs::metadata(v.join("a"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn paths_may_not_leave_the_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(write_atomic(dir.path(), &[file("../x", "1")], None).is_err());
        assert!(write_atomic(dir.path(), &[file("/etc/x", "1")], None).is_err());
        assert!(is_contained("a/b.txt"));
        assert!(!is_contained("a/../../b"));
    }

    #[test]
    fn host_path_types_are_checked_with_the_kubelets_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("made");
        check_host_path(&d, "DirectoryOrCreate").expect("created");
        assert!(d.is_dir());
        let f = dir.path().join("deep/file");
        check_host_path(&f, "FileOrCreate").expect("created");
        assert!(f.is_file());
        check_host_path(&f, "File").expect("a file");
        assert_eq!(
            check_host_path(&f, "Directory"),
            Err(format!(
                "hostPath type check failed: {} is not a directory",
                f.display()
            ))
        );
        assert_eq!(
            check_host_path(&d, "File"),
            Err(format!(
                "hostPath type check failed: {} is not a file",
                d.display()
            ))
        );
        assert!(check_host_path(&dir.path().join("absent"), "Directory").is_err());
        check_host_path(&dir.path().join("absent"), "").expect("no type, no check");
    }
}
