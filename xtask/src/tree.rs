//! An in-memory description of a file tree, written out as a reproducible tar archive.
//!
//! The same tree always gives the same bytes: entries are sorted by path (so a directory always
//! comes before what it holds), every entry is owned by 0:0 with mtime 0, and modes come from the
//! description, never from the host. Missing parent directories are added with mode 0755.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;

use tar::{Builder, EntryType, Header};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// These bytes.
    Inline(Vec<u8>),
    /// The current contents of a file on the host (only its bytes are used, not its metadata).
    HostFile(PathBuf),
}

#[derive(Debug, Clone)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, content: Content },
    Symlink { target: String },
}

/// A file tree keyed by relative path (`bin/sh`, no leading or trailing `/`).
#[derive(Debug, Clone, Default)]
pub struct FileTree {
    nodes: BTreeMap<String, Node>,
}

impl FileTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or re-modes) a directory.
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.insert(path, Node::Dir { mode })
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, content: Content) -> &mut Self {
        self.insert(path, Node::File { mode, content })
    }

    /// Adds a symbolic link to `target` (taken literally, usually relative to the link).
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.insert(
            path,
            Node::Symlink {
                target: target.to_owned(),
            },
        )
    }

    fn insert(&mut self, path: &str, node: Node) -> &mut Self {
        let path = path.trim_matches('/');
        for (at, _) in path.match_indices('/') {
            self.nodes
                .entry(path[..at].to_owned())
                .or_insert(Node::Dir { mode: 0o755 });
        }
        self.nodes.insert(path.to_owned(), node);
        self
    }

    /// The tree as an uncompressed tar archive.
    pub fn to_tar(&self) -> io::Result<Vec<u8>> {
        let mut builder = Builder::new(Vec::new());
        for (path, node) in &self.nodes {
            append_node(&mut builder, path, node)?;
        }
        builder.into_inner()
    }
}

fn append_node(builder: &mut Builder<Vec<u8>>, path: &str, node: &Node) -> io::Result<()> {
    match node {
        Node::Dir { mode } => {
            let mut header = header(EntryType::Directory, *mode, 0);
            builder.append_data(&mut header, format!("{path}/"), io::empty())
        }
        Node::Symlink { target } => {
            let mut header = header(EntryType::Symlink, 0o777, 0);
            builder.append_link(&mut header, path, target)
        }
        Node::File {
            mode,
            content: Content::Inline(bytes),
        } => {
            let mut header = header(EntryType::Regular, *mode, bytes.len() as u64);
            builder.append_data(&mut header, path, bytes.as_slice())
        }
        Node::File {
            mode,
            content: Content::HostFile(source),
        } => {
            let with_source =
                |err: io::Error| io::Error::new(err.kind(), format!("{}: {err}", source.display()));
            let file = File::open(source).map_err(with_source)?;
            let size = file.metadata().map_err(with_source)?.len();
            let mut header = header(EntryType::Regular, *mode, size);
            builder
                .append_data(&mut header, path, file)
                .map_err(with_source)
        }
    }
}

/// A POSIX (ustar) header with everything that could vary between hosts or runs pinned.
fn header(entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    /// One archive entry as read back: path, type, mode, link target, contents.
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        path: String,
        kind: EntryType,
        mode: u32,
        link: Option<String>,
        data: Vec<u8>,
    }

    fn read_back(archive: &[u8]) -> Vec<Seen> {
        let mut archive = tar::Archive::new(archive);
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let header = entry.header();
            assert_eq!(header.mtime().expect("mtime"), 0);
            assert_eq!(
                (header.uid().expect("uid"), header.gid().expect("gid")),
                (0, 0)
            );
            let kind = header.entry_type();
            let mode = header.mode().expect("mode");
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let link = entry
                .link_name()
                .expect("link")
                .map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("data");
            seen.push(Seen {
                path,
                kind,
                mode,
                link,
                data,
            });
        }
        seen
    }

    fn sample_tree(host_file: PathBuf) -> FileTree {
        let mut tree = FileTree::new();
        tree.symlink("bin/sh", "busybox")
            .file("bin/busybox", 0o755, Content::HostFile(host_file))
            .file(
                "/etc/passwd",
                0o644,
                Content::Inline(b"root:x:0:0::/root:/bin/sh\n".to_vec()),
            )
            .dir("tmp/", 0o1777)
            .dir("bin", 0o711);
        tree
    }

    #[test]
    fn entries_are_sorted_with_parents_first_and_metadata_pinned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host_file = dir.path().join("busybox");
        std::fs::write(&host_file, b"#!fake busybox").expect("write");

        let seen = read_back(&sample_tree(host_file).to_tar().expect("tar"));
        let summary: Vec<(&str, EntryType, u32)> = seen
            .iter()
            .map(|s| (s.path.as_str(), s.kind, s.mode))
            .collect();
        assert_eq!(
            summary,
            [
                ("bin/", EntryType::Directory, 0o711),
                ("bin/busybox", EntryType::Regular, 0o755),
                ("bin/sh", EntryType::Symlink, 0o777),
                ("etc/", EntryType::Directory, 0o755),
                ("etc/passwd", EntryType::Regular, 0o644),
                ("tmp/", EntryType::Directory, 0o1777),
            ]
        );
        assert_eq!(seen[1].data, b"#!fake busybox");
        assert_eq!(seen[2].link.as_deref(), Some("busybox"));
        assert_eq!(seen[4].data, b"root:x:0:0::/root:/bin/sh\n");
    }

    #[test]
    fn the_same_tree_gives_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host_file = dir.path().join("busybox");
        std::fs::write(&host_file, b"x").expect("write");
        let first = sample_tree(host_file.clone()).to_tar().expect("tar");
        // Host metadata must not leak in: change the file's mode and mtime, not its bytes.
        std::fs::write(&host_file, b"x").expect("rewrite");
        std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let second = sample_tree(host_file).to_tar().expect("tar");
        assert_eq!(first, second);
    }

    #[test]
    fn a_missing_host_file_is_named_in_the_error() {
        let mut tree = FileTree::new();
        tree.file(
            "kuard",
            0o755,
            Content::HostFile(PathBuf::from("/nonexistent/kuard")),
        );
        let err = tree.to_tar().expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/kuard"), "{err}");
    }
}
