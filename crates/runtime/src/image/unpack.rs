//! Unpacking one layer into a directory of its own, in the form overlayfs expects of a lower layer.
//!
//! - The blob may be a plain or gzip-compressed tar, told apart by magic bytes; zstd is refused.
//! - OCI whiteouts become overlayfs whiteouts: `.wh.<name>` is a character device 0/0 named
//!   `<name>`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory. Both need root
//!   (`CAP_MKNOD`, `CAP_SYS_ADMIN`); without it unpacking fails with a permission error that says so.
//! - Entries never escape the layer: absolute paths and `..` are refused, and no entry is written
//!   through a symlink (parents must be real directories, an existing entry is replaced, not followed).
//! - Modes (with setuid/setgid/sticky), mtimes, `SCHILY.xattr.*` extended attributes, symlinks,
//!   hard links within the layer, devices and FIFOs are kept. Ownership is kept when running as root
//!   (like `tar --same-owner`); otherwise files belong to the caller.
//! - The uncompressed stream must hash to the layer's diff id.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::MultiGzDecoder;
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeVal;
use tar::EntryType;
use tracing::debug;

use super::blobs::DigestReader;
use crate::{Error, Result};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// What follows [`WHITEOUT_PREFIX`] in an opaque-directory marker (`.wh..wh..opq`).
const OPAQUE_SUFFIX: &[u8] = b".wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// How a blob is compressed, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub(crate) fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub(crate) fn of_file(path: &Path) -> Result<Compression> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut head = Vec::with_capacity(4);
        file.take(4)
            .read_to_end(&mut head)
            .map_err(|e| Error::io(path, e))?;
        Ok(Compression::detect(&head))
    }
}

/// Unpacks the layer blob at `blob` into the existing, empty directory `dest`, checking that the
/// uncompressed tar hashes to `diff_id` (`sha256:<hex>`).
///
/// On error `dest` is left half-written; the caller unpacks into a scratch directory and renames it
/// into place only on success.
pub(crate) fn unpack_layer(blob: &Path, dest: &Path, diff_id: &str) -> Result<()> {
    let file = File::open(blob).map_err(|e| Error::io(blob, e))?;
    let room = room(dest);
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf().map_err(|e| Error::io(blob, e))?;
    let stream: Box<dyn Read> = match Compression::detect(head) {
        Compression::Gzip => Box::new(Bounded::new(MultiGzDecoder::new(reader), room)),
        Compression::None => Box::new(reader),
        Compression::Zstd => {
            return Err(bad_layer(
                blob,
                "zstd-compressed layers are not supported (re-export the image with gzip or uncompressed layers)",
            ))
        }
    };

    let mut archive = tar::Archive::new(DigestReader::new(stream));
    let mut unpacker = Unpacker {
        root: dest,
        blob,
        preserve_owner: nix::unistd::geteuid().is_root(),
        dirs: Vec::new(),
        room: std::cell::Cell::new(room),
    };
    let entries = archive
        .entries()
        .map_err(|e| bad_layer(blob, format!("reading tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad_layer(blob, format!("reading tar: {e}")))?;
        unpacker.apply(&mut entry)?;
    }
    unpacker.finish()?;

    // The diff id covers the whole uncompressed stream, including the tar's end-of-archive padding.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| bad_layer(blob, format!("reading layer: {e}")))?;
    let (actual, _) = rest.finish();
    if actual != diff_id {
        return Err(Error::DigestMismatch {
            expected: diff_id.to_string(),
            actual,
        });
    }
    Ok(())
}

/// How much a layer may unpack to: the free space of `dest`'s filesystem less the share the
/// kubelet's default eviction threshold keeps free (`nodefs.available<10%`). A compressed layer
/// that inflates past it (a "gzip bomb") fails instead of filling the disk.
fn room(dest: &Path) -> u64 {
    match nix::sys::statvfs::statvfs(dest) {
        Ok(fs) => {
            let block = fs.fragment_size();
            let free = fs.blocks_available() * block;
            free.saturating_sub(fs.blocks() * block / 10)
        }
        Err(_) => u64::MAX,
    }
}

/// A reader that fails once more than `limit` bytes came through it.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R> Bounded<R> {
    fn new(inner: R, limit: u64) -> Self {
        Bounded { inner, left: limit }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other("the layer unpacks to more than the disk has room for")
        })?;
        Ok(n)
    }
}

fn bad_layer(blob: &Path, reason: impl Into<String>) -> Error {
    Error::BadArchive {
        path: blob.to_path_buf(),
        reason: reason.into(),
    }
}

/// Mode and mtime of a directory, applied once all entries are in (a read-only directory must not
/// stop its own children from being written, and writing children changes the mtime).
struct DirAttrs {
    rel: PathBuf,
    mode: u32,
    mtime: u64,
}

/// The header fields applied to an entry.
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

struct Unpacker<'a> {
    root: &'a Path,
    blob: &'a Path,
    preserve_owner: bool,
    dirs: Vec<DirAttrs>,
    /// What the files may still take of the disk (sparse entries included, whose holes would be
    /// written out).
    room: std::cell::Cell<u64>,
}

impl Unpacker<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let rel = self.relative(&raw_path)?;
        if rel.as_os_str().is_empty() && kind != EntryType::Directory {
            debug!(layer = %self.blob.display(), ?kind, "skipping a non-directory entry for the layer root");
            return Ok(());
        }

        if let Some(hidden) = rel
            .file_name()
            .and_then(|n| n.as_bytes().strip_prefix(WHITEOUT_PREFIX))
        {
            return self.whiteout(&rel, hidden);
        }

        let attrs = self.attrs(entry.header(), &rel)?;
        let xattrs = pax_xattrs(entry)
            .map_err(|e| self.bad(format!("{}: pax header: {e}", rel.display())))?;
        match kind {
            EntryType::Directory => self.directory(rel, &attrs, &xattrs),
            // Old (pre-POSIX) archives mark directories with a trailing slash only.
            EntryType::Regular if raw_path.ends_with(b"/") => self.directory(rel, &attrs, &xattrs),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(&rel, &attrs, &xattrs, entry)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.symlink(&rel, &attrs, &target)
            }
            EntryType::Link => {
                let source = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hard_link(&rel, &source)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let (kind, dev) = match kind {
                    EntryType::Char => (SFlag::S_IFCHR, stat::makedev(major.into(), minor.into())),
                    EntryType::Block => (SFlag::S_IFBLK, stat::makedev(major.into(), minor.into())),
                    _ => (SFlag::S_IFIFO, 0),
                };
                self.special(&rel, &attrs, kind, dev)
            }
            other => {
                debug!(layer = %self.blob.display(), entry = %rel.display(), ?other, "skipping tar entry of unsupported type");
                Ok(())
            }
        }
    }

    /// The entry's path inside the layer; empty for the layer root itself (`./`).
    fn relative(&self, raw: &[u8]) -> Result<PathBuf> {
        let mut rel = PathBuf::new();
        for component in Path::new(OsStr::from_bytes(raw)).components() {
            match component {
                Component::CurDir => {}
                Component::Normal(part) => rel.push(part),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.bad(format!("entry {:?} has an absolute path", lossy(raw))))
                }
                Component::ParentDir => {
                    return Err(self.bad(format!(
                        "entry {:?} climbs out of the layer with '..'",
                        lossy(raw)
                    )))
                }
            }
        }
        Ok(rel)
    }

    fn attrs(&self, header: &tar::Header, rel: &Path) -> Result<Attrs> {
        let field = |what: &str, e: io::Error| {
            self.bad(format!("{}: bad {what} in tar header: {e}", rel.display()))
        };
        let id = |what: &str, value: u64| {
            u32::try_from(value)
                .map_err(|_| self.bad(format!("{}: {what} {value} is out of range", rel.display())))
        };
        Ok(Attrs {
            mode: header.mode().map_err(|e| field("mode", e))? & 0o7777,
            uid: id("uid", header.uid().map_err(|e| field("uid", e))?)?,
            gid: id("gid", header.gid().map_err(|e| field("gid", e))?)?,
            mtime: header.mtime().map_err(|e| field("mtime", e))?,
        })
    }

    fn directory(
        &mut self,
        rel: PathBuf,
        attrs: &Attrs,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        let target = self.root.join(&rel);
        if !rel.as_os_str().is_empty() {
            self.ensure_parents(&rel)?;
            if !self.clear(&target, true)? {
                DirBuilder::new()
                    .mode(0o700)
                    .create(&target)
                    .map_err(|e| Error::io(&target, e))?;
            }
        }
        self.chown(&target, attrs)?;
        self.set_xattrs(&target, xattrs)?;
        self.dirs.push(DirAttrs {
            rel,
            mode: attrs.mode,
            mtime: attrs.mtime,
        });
        Ok(())
    }

    fn regular(
        &self,
        rel: &Path,
        attrs: &Attrs,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        data: &mut dyn Read,
    ) -> Result<()> {
        let target = self.file_target(rel)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(|e| Error::io(&target, e))?;
        {
            let mut out = BufWriter::with_capacity(128 * 1024, &file);
            let mut bounded = Bounded::new(data, self.room.get());
            io::copy(&mut bounded, &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io(&target, e))?;
            self.room.set(bounded.left);
        }
        if self.preserve_owner {
            std::os::unix::fs::fchown(&file, Some(attrs.uid), Some(attrs.gid))
                .map_err(|e| Error::io(&target, e))?;
        }
        // After chown (which clears setuid bits and file capabilities), before chmod (a read-only
        // file would refuse a non-root caller's xattrs).
        self.set_xattrs(&target, xattrs)?;
        file.set_permissions(Permissions::from_mode(attrs.mode))
            .map_err(|e| Error::io(&target, e))?;
        let time = unix_time(attrs.mtime);
        file.set_times(FileTimes::new().set_accessed(time).set_modified(time))
            .map_err(|e| Error::io(&target, e))
    }

    fn symlink(&self, rel: &Path, attrs: &Attrs, link: &[u8]) -> Result<()> {
        if link.is_empty() {
            return Err(self.bad(format!("symlink {} has no target", rel.display())));
        }
        let target = self.file_target(rel)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(link), &target)
            .map_err(|e| Error::io(&target, e))?;
        self.chown(&target, attrs)?;
        set_link_mtime(&target, attrs.mtime)
    }

    fn hard_link(&self, rel: &Path, link: &[u8]) -> Result<()> {
        let source_rel = self.relative(link)?;
        if source_rel.as_os_str().is_empty() {
            return Err(self.bad(format!("hard link {} has no target", rel.display())));
        }
        let source = self.root.join(&source_rel);
        let not_in_layer = || {
            self.bad(format!(
                "hard link {} points at {}, which is not in this layer",
                rel.display(),
                source_rel.display()
            ))
        };
        if !self.parents_are_real_dirs(&source_rel)? {
            return Err(not_in_layer());
        }
        let source_meta = match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_dir() => {
                return Err(self.bad(format!("hard link {} points at a directory", rel.display())))
            }
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_in_layer()),
            Err(e) => return Err(Error::io(&source, e)),
        };
        let target = self.root.join(rel);
        if let Ok(existing) = fs::symlink_metadata(&target) {
            if existing.dev() == source_meta.dev() && existing.ino() == source_meta.ino() {
                return Ok(());
            }
        }
        let target = self.file_target(rel)?;
        // linkat(2) without AT_SYMLINK_FOLLOW: a symlink source is linked itself, never followed.
        fs::hard_link(&source, &target).map_err(|e| Error::io(&target, e))
    }

    fn special(&self, rel: &Path, attrs: &Attrs, kind: SFlag, dev: u64) -> Result<()> {
        let target = self.file_target(rel)?;
        stat::mknod(&target, kind, Mode::from_bits_truncate(0o600), dev).map_err(|errno| {
            privileged(
                &target,
                errno.into(),
                "creating device nodes needs root (CAP_MKNOD)",
            )
        })?;
        self.chown(&target, attrs)?;
        // The path is the node just made, never a symlink, so following it is harmless.
        fs::set_permissions(&target, Permissions::from_mode(attrs.mode))
            .map_err(|e| Error::io(&target, e))?;
        set_link_mtime(&target, attrs.mtime)
    }

    fn whiteout(&self, rel: &Path, hidden: &[u8]) -> Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if hidden == OPAQUE_SUFFIX {
            let dir = self.ensure_dirs(parent)?;
            return xattr::set(&dir, OVERLAY_OPAQUE_XATTR, b"y").map_err(|e| {
                privileged(&dir, e, "marking an opaque directory (xattr trusted.overlay.opaque) needs root (CAP_SYS_ADMIN)")
            });
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            // Other `.wh..wh.*` names are aufs bookkeeping with no meaning for overlayfs.
            debug!(layer = %self.blob.display(), entry = %rel.display(), "skipping aufs metadata entry");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.bad(format!("whiteout {} names no file", rel.display())));
        }
        let target = self.file_target(&parent.join(OsStr::from_bytes(hidden)))?;
        stat::mknod(&target, SFlag::S_IFCHR, Mode::empty(), stat::makedev(0, 0)).map_err(|errno| {
            privileged(
                &target,
                errno.into(),
                "creating an overlay whiteout (character device 0/0) needs root (CAP_MKNOD)",
            )
        })
    }

    /// Applies directory modes and mtimes once nothing more is written inside: deepest (latest)
    /// first, so a read-only parent cannot get in the way, and the last entry for a path wins.
    fn finish(&self) -> Result<()> {
        let mut done = HashSet::new();
        for dir in self.dirs.iter().rev() {
            if !done.insert(dir.rel.as_path()) {
                continue;
            }
            // A later entry may have replaced the directory (or a parent) with a symlink: never
            // chmod through one.
            let target = self.root.join(&dir.rel);
            let still_dir = fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
            if !still_dir || !self.parents_are_real_dirs(&dir.rel)? {
                continue;
            }
            fs::set_permissions(&target, Permissions::from_mode(dir.mode))
                .map_err(|e| Error::io(&target, e))?;
            set_link_mtime(&target, dir.mtime)?;
        }
        Ok(())
    }

    /// Makes the parents of `rel` real directories and removes whatever is at `rel`, returning the
    /// absolute path where a new non-directory entry can be created.
    fn file_target(&self, rel: &Path) -> Result<PathBuf> {
        self.ensure_parents(rel)?;
        let target = self.root.join(rel);
        self.clear(&target, false)?;
        Ok(target)
    }

    fn ensure_parents(&self, rel: &Path) -> Result<()> {
        self.ensure_dirs(rel.parent().unwrap_or(Path::new("")))
            .map(drop)
    }

    /// Walks `rel_dir` from the layer root, creating missing directories (0755) and refusing to pass
    /// through anything that is not a real directory. Returns the absolute path of `rel_dir`.
    fn ensure_dirs(&self, rel_dir: &Path) -> Result<PathBuf> {
        let mut current = self.root.to_path_buf();
        for part in rel_dir.components() {
            current.push(part);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) => {
                    let what = if meta.file_type().is_symlink() {
                        "a symlink"
                    } else {
                        "not a directory"
                    };
                    return Err(self.bad(format!(
                        "cannot write below {}: it is {what} (refusing to follow it)",
                        current
                            .strip_prefix(self.root)
                            .unwrap_or(&current)
                            .display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&current)
                        .map_err(|e| Error::io(&current, e))?;
                }
                Err(e) => return Err(Error::io(&current, e)),
            }
        }
        Ok(current)
    }

    /// True if every parent of `rel` exists and is a real directory (no symlink on the way).
    fn parents_are_real_dirs(&self, rel: &Path) -> Result<bool> {
        let mut current = self.root.to_path_buf();
        for part in rel.parent().unwrap_or(Path::new("")).components() {
            current.push(part);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(Error::io(&current, e)),
            }
        }
        Ok(true)
    }

    /// Removes what is at `target` (never following a symlink). With `keep_dir`, an existing
    /// directory stays and `true` is returned.
    fn clear(&self, target: &Path, keep_dir: bool) -> Result<bool> {
        let result = match fs::symlink_metadata(target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => Err(e),
            Ok(meta) if meta.is_dir() && keep_dir => return Ok(true),
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(target),
            Ok(_) => fs::remove_file(target),
        };
        result.map(|()| false).map_err(|e| Error::io(target, e))
    }

    fn chown(&self, target: &Path, attrs: &Attrs) -> Result<()> {
        if !self.preserve_owner {
            return Ok(());
        }
        std::os::unix::fs::lchown(target, Some(attrs.uid), Some(attrs.gid))
            .map_err(|e| Error::io(target, e))
    }

    fn set_xattrs(&self, target: &Path, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (name, value) in xattrs {
            let privileged_namespace =
                name.starts_with(b"trusted.") || name.starts_with(b"security.");
            if privileged_namespace && !self.preserve_owner {
                debug!(entry = %target.display(), name = %lossy(name), "not root: skipping privileged xattr");
                continue;
            }
            if let Err(e) = xattr::set(target, OsStr::from_bytes(name), value) {
                if e.raw_os_error() == Some(nix::errno::Errno::EOPNOTSUPP as i32) {
                    debug!(entry = %target.display(), name = %lossy(name), "filesystem has no xattrs: skipping");
                    continue;
                }
                return Err(Error::io(target, e));
            }
        }
        Ok(())
    }

    fn bad(&self, reason: String) -> Error {
        bad_layer(self.blob, reason)
    }
}

/// `SCHILY.xattr.<name>` records of the entry's PAX header, as (name, value).
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            if let Some(name) = extension.key_bytes().strip_prefix(PAX_XATTR_PREFIX) {
                out.push((name.to_vec(), extension.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Turns EPERM into an error that says which privilege was missing.
fn privileged(path: &Path, error: io::Error, hint: &str) -> Error {
    if error.kind() == io::ErrorKind::PermissionDenied {
        Error::io(
            path,
            io::Error::new(io::ErrorKind::PermissionDenied, format!("{hint}: {error}")),
        )
    } else {
        Error::io(path, error)
    }
}

/// The latest mtime kept (the end of the year 9999); a layer may claim any 64-bit time.
const LATEST_MTIME: u64 = 253_402_300_799;

fn unix_time(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.min(LATEST_MTIME))
}

/// Sets atime and mtime of `path` itself (a symlink is not followed).
fn set_link_mtime(path: &Path, mtime: u64) -> Result<()> {
    let time = TimeVal::new(mtime.min(LATEST_MTIME) as i64, 0);
    stat::lutimes(path, &time, &time).map_err(|errno| Error::io(path, errno.into()))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_claiming_any_mtime_unpacks() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, mtime) in [("far", u64::MAX), ("near", 1_700_000_000)] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(1);
            header.set_mtime(mtime);
            header.set_uid(0);
            header.set_gid(0);
            builder
                .append_data(&mut header, name, &b"x"[..])
                .expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let dir = tempfile::tempdir().expect("tempdir");
        let blob = dir.path().join("blob");
        std::fs::write(&blob, &tar).expect("write");
        let dest = dir.path().join("root");
        std::fs::create_dir(&dest).expect("dest");
        let diff_id = super::super::blobs::digest_of(&tar);
        unpack_layer(&blob, &dest, &diff_id).expect("unpacked");
        let far = std::fs::metadata(dest.join("far")).expect("far").mtime();
        assert!(far > 1_700_000_000, "{far}");
        let near = std::fs::metadata(dest.join("near")).expect("near").mtime();
        assert_eq!(near, 1_700_000_000);
    }

    #[test]
    fn a_stream_past_its_bound_fails() {
        let mut out = Vec::new();
        let mut small = Bounded::new(&[7u8; 100][..], 10);
        let err = small.read_to_end(&mut out).expect_err("bounded");
        assert!(
            err.to_string().contains("more than the disk has room for"),
            "{err}"
        );
        let mut fits = Bounded::new(&[7u8; 100][..], 100);
        out.clear();
        assert_eq!(fits.read_to_end(&mut out).expect("fits"), 100);
        assert!(room(Path::new("/")) > 0);
    }
}
