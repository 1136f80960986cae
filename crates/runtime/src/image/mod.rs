//! The node's OCI image store on disk.
//!
//! ```text
//! <root>/blobs/sha256/<hex>     content-addressed blobs: manifests, configs, layer tars (verified on write)
//! <root>/layers/<diff-id hex>/  one unpacked layer, shared by every image and container that uses it
//! <root>/images.json            the catalog: name -> manifest, config and layers (replaced atomically)
//! <root>/tmp/                   writes in progress; emptied by `ImageStore::open`
//! <root>/lock                   locked while a store is open: one root, one owner
//! ```
//!
//! Start at [`ImageStore`]. [`ImageStore::import_archive`] reads OCI image archives and `docker save`
//! archives; [`ImageStore::resolve`] turns a reference into an [`Image`]: its config, and its unpacked
//! layer directories, lowest first, ready to be stacked as overlayfs `lowerdir`s;
//! [`ImageStore::remove`] drops a name and collects the blobs and layers nothing references any more.
//!
//! - **Names** are normalized references ([`Reference`]: `busybox` is
//!   `docker.io/library/busybox:latest`). An image that its archive does not name (an OCI
//!   `ref.name` that is only a tag) is kept under its manifest digest, `sha256:…`. Images can also be
//!   found by id (the config digest) or by manifest digest.
//! - **Layers are unpacked lazily**, by the first `resolve` that needs them: importing stays quick and
//!   an image that never runs costs no unpacked copy. A layer is unpacked under `tmp/`, checked
//!   against its diff id and only then renamed into `layers/`; removal renames it out of `layers/`
//!   before deleting it. So a crash never leaves half a layer where a whole one is expected.
//! - **Whiteouts** are stored the way overlayfs reads them (a 0/0 character device for `.wh.<name>`,
//!   `trusted.overlay.opaque=y` for `.wh..wh..opq`), so unpacking them needs root; without it,
//!   `resolve` fails with a permission error that says so. Ownership is kept only when running as
//!   root; entries are never written outside the layer or through a symlink.
//! - **Blocking and serialized:** every method does blocking filesystem work under one lock. Call them
//!   from `tokio::task::spawn_blocking` in async code.
//!
//! **Invariant:** unpacked layers are read-only inputs; nothing may write into `layers/`, and a
//! layer directory is only removed when no image references it and the caller says no container
//! uses it.

mod archive;
mod blobs;
pub mod pull;
mod reference;
mod unpack;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;
use tracing::{debug, info, warn};

pub use reference::Reference;

use blobs::BlobStore;

use crate::{Error, Result};

/// An image ready to run: what the runtime needs to build a container's rootfs and process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The image id: the digest of its config, `sha256:…`.
    pub id: String,
    /// The catalog name the image was found under: a normalized reference, or the manifest digest
    /// of an unnamed image.
    pub reference: String,
    pub manifest_digest: String,
    pub config: ImageConfig,
    /// Unpacked layer directories, lowest first.
    pub layers: Vec<PathBuf>,
}

/// The parts of an image config a container's process is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `port/protocol`, sorted.
    pub exposed_ports: Vec<String>,
}

impl From<&ImageConfiguration> for ImageConfig {
    fn from(image: &ImageConfiguration) -> Self {
        let Some(config) = image.config() else {
            return ImageConfig::default();
        };
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let mut exposed_ports = config.exposed_ports().clone().unwrap_or_default();
        exposed_ports.sort();
        ImageConfig {
            entrypoint: config.entrypoint().clone().unwrap_or_default(),
            cmd: config.cmd().clone().unwrap_or_default(),
            env: config.env().clone().unwrap_or_default(),
            working_dir: non_empty(config.working_dir()),
            user: non_empty(config.user()),
            exposed_ports,
        }
    }
}

/// One catalog name, for `crictl images`-style listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// A normalized reference, or the manifest digest of an unnamed image.
    pub reference: String,
    /// The config digest.
    pub id: String,
    pub manifest_digest: String,
    /// Sum of the layer blobs' sizes as stored (compressed, where the layers are).
    pub size: u64,
}

/// One image an archive brought in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedImage {
    /// Normalized references; empty if the archive names the image only by a bare tag, in which
    /// case it is kept under `manifest_digest`.
    pub references: Vec<String>,
    pub id: String,
    pub manifest_digest: String,
    pub size: u64,
}

/// What the catalog knows of one image (the same record under each of its names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageRecord {
    manifest_digest: String,
    config_digest: String,
    size: u64,
    /// Lowest first.
    layers: Vec<LayerRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LayerRecord {
    /// The stored blob.
    digest: String,
    /// The digest of the uncompressed tar; names the unpacked directory.
    diff_id: String,
    media_type: String,
    size: u64,
}

/// The contents of `images.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Catalog {
    images: BTreeMap<String, ImageRecord>,
}

impl Catalog {
    /// Records an imported image under `names`, or under its manifest digest if it has none.
    fn add(&mut self, names: &[String], record: &ImageRecord) {
        if names.is_empty() {
            let known = self
                .images
                .values()
                .any(|r| r.manifest_digest == record.manifest_digest);
            if !known {
                self.images
                    .insert(record.manifest_digest.clone(), record.clone());
            }
            return;
        }
        // A name makes the digest entry of the same image redundant.
        self.images.remove(&record.manifest_digest);
        for name in names {
            self.images.insert(name.clone(), record.clone());
        }
    }

    /// The catalog names `reference` means: itself if it is one; every name of the image if it is an
    /// image id or manifest digest; the normalized reference; or, for `name@sha256:…`, the names of
    /// that repository whose manifest has that digest.
    fn find(&self, reference: &str) -> Result<Vec<String>> {
        if self.images.contains_key(reference) {
            return Ok(vec![reference.to_string()]);
        }
        let not_found = || Error::ImageNotFound(reference.to_string());
        let digest = if blobs::is_sha256_hex(reference) {
            Some(format!("{}{reference}", blobs::SHA256_PREFIX))
        } else {
            blobs::sha256_hex(reference).map(|_| reference.to_string())
        };
        if let Some(digest) = digest {
            let keys: Vec<String> = self
                .images
                .iter()
                .filter(|(_, r)| r.config_digest == digest || r.manifest_digest == digest)
                .map(|(name, _)| name.clone())
                .collect();
            return if keys.is_empty() {
                Err(not_found())
            } else {
                Ok(keys)
            };
        }

        let parsed = Reference::parse(reference)?;
        let normalized = parsed.to_string();
        if self.images.contains_key(&normalized) {
            return Ok(vec![normalized]);
        }
        if let Some(digest) = &parsed.digest {
            let repository = parsed.name();
            let keys: Vec<String> = self
                .images
                .iter()
                .filter(|(name, r)| {
                    r.manifest_digest == *digest
                        && Reference::parse(name).is_ok_and(|named| named.name() == repository)
                })
                .map(|(name, _)| name.clone())
                .collect();
            if !keys.is_empty() {
                return Ok(keys);
            }
        }
        Err(not_found())
    }

    /// Hex digests of every blob an image in the catalog needs.
    fn referenced_blobs(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for record in self.images.values() {
            let digests = [&record.manifest_digest, &record.config_digest]
                .into_iter()
                .chain(record.layers.iter().map(|layer| &layer.digest));
            out.extend(
                digests
                    .filter_map(|d| blobs::sha256_hex(d))
                    .map(str::to_string),
            );
        }
        out
    }

    /// Hex diff ids of every layer an image in the catalog needs.
    fn referenced_layers(&self) -> HashSet<String> {
        self.images
            .values()
            .flat_map(|record| &record.layers)
            .filter_map(|layer| blobs::sha256_hex(&layer.diff_id))
            .map(str::to_string)
            .collect()
    }
}

fn summaries(catalog: &Catalog) -> Vec<ImageSummary> {
    catalog
        .images
        .iter()
        .map(|(name, record)| ImageSummary {
            reference: name.clone(),
            id: record.config_digest.clone(),
            manifest_digest: record.manifest_digest.clone(),
            size: record.size,
        })
        .collect()
}

/// The image store of one node. See the [module docs](self) for layout and rules.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    layers: PathBuf,
    tmp: PathBuf,
    catalog_path: PathBuf,
    catalog: Mutex<Catalog>,
    /// Holds the `lock` file's lock for as long as the store is open.
    _lock: File,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`.
    ///
    /// Fails if another `ImageStore`, in this process or another, has `root` open. Leftovers of
    /// interrupted writes in `tmp/` are removed.
    pub fn open(root: &Path) -> Result<ImageStore> {
        let blobs_dir = root.join("blobs").join("sha256");
        let layers = root.join("layers");
        let tmp = root.join("tmp");
        for dir in [&blobs_dir, &layers, &tmp] {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }

        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::io(
                    &lock_path,
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "the image store is already open elsewhere",
                    ),
                ))
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }

        empty_dir(&tmp)?;

        let catalog_path = root.join("images.json");
        let catalog = match fs::read(&catalog_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::io(&catalog_path, io::Error::new(io::ErrorKind::InvalidData, e))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Catalog::default(),
            Err(e) => return Err(Error::io(&catalog_path, e)),
        };

        Ok(ImageStore {
            root: root.to_path_buf(),
            blobs: BlobStore::new(blobs_dir, tmp.clone()),
            layers,
            tmp,
            catalog_path,
            catalog: Mutex::new(catalog),
            _lock: lock,
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports every image of an OCI image archive or `docker save` archive (plain or gzip).
    ///
    /// Blobs are verified against their digests as they are stored. Names replace earlier images of
    /// the same name; blobs no image references afterwards (other platforms' manifests, indexes, the
    /// leftovers of a failed import) are removed. Layers are not unpacked here but by
    /// [`resolve`](Self::resolve).
    pub fn import_archive(&self, path: &Path) -> Result<Vec<ImportedImage>> {
        let mut catalog = self.lock_catalog();
        let result = archive::read_archive(path, &self.blobs).and_then(|images| {
            let mut next = catalog.clone();
            for image in &images {
                next.add(&image.names, &image.record);
            }
            self.save(&next)?;
            *catalog = next;
            Ok(images)
        });
        if let Err(e) = self.collect_blobs(&catalog) {
            warn!(error = %e, "removing unreferenced blobs after an import");
        }

        let images = result?;
        for image in &images {
            info!(archive = %path.display(), names = ?image.names, id = %image.record.config_digest, "imported image");
        }
        Ok(images
            .into_iter()
            .map(|image| ImportedImage {
                references: image.names,
                id: image.record.config_digest,
                manifest_digest: image.record.manifest_digest,
                size: image.record.size,
            })
            .collect())
    }

    /// Finds an image by reference (normalized as Docker does), id or manifest digest, and unpacks
    /// the layers that are not unpacked yet.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let catalog = self.lock_catalog();
        let name = catalog
            .find(reference)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::ImageNotFound(reference.to_string()))?;
        let record = catalog
            .images
            .get(&name)
            .ok_or_else(|| Error::ImageNotFound(reference.to_string()))?;

        let config = self.read_config(record)?;
        let layers = record
            .layers
            .iter()
            .map(|layer| self.unpacked_layer(layer))
            .collect::<Result<Vec<_>>>()?;
        Ok(Image {
            id: record.config_digest.clone(),
            reference: name,
            manifest_digest: record.manifest_digest.clone(),
            config,
            layers,
        })
    }

    /// Every catalog name, sorted.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        Ok(summaries(&self.lock_catalog()))
    }

    /// The catalog of the store at `root` without opening it: `images.json` is replaced
    /// atomically, so this is safe while a node agent holds the store.
    pub fn list_at(root: &Path) -> Result<Vec<ImageSummary>> {
        let path = root.join("images.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(summaries(&serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Drops `reference` from the catalog, then collects garbage (see
    /// [`collect_garbage`](Self::collect_garbage)).
    ///
    /// An id or manifest digest drops every name of that image. `in_use` is asked about each
    /// unpacked layer directory that would be deleted; one it reports in use (because a container's
    /// overlay still stacks it) is kept, and a later `remove` or `collect_garbage` deletes it.
    pub fn remove(&self, reference: &str, in_use: &dyn Fn(&Path) -> bool) -> Result<()> {
        let mut catalog = self.lock_catalog();
        let names = catalog.find(reference)?;
        let mut next = catalog.clone();
        for name in &names {
            next.images.remove(name);
        }
        self.save(&next)?;
        *catalog = next;
        info!(reference, removed = ?names, "removed image");
        self.collect_blobs(&catalog)?;
        self.collect_layers(&catalog, in_use)
    }

    /// Deletes blobs no image references, and unpacked layers no image references that `in_use`
    /// does not claim.
    pub fn collect_garbage(&self, in_use: &dyn Fn(&Path) -> bool) -> Result<()> {
        let catalog = self.lock_catalog();
        self.collect_blobs(&catalog)?;
        self.collect_layers(&catalog, in_use)
    }

    fn lock_catalog(&self) -> MutexGuard<'_, Catalog> {
        // The in-memory catalog only changes after images.json was written, so it is consistent
        // even if a holder panicked.
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `catalog` to images.json through a temporary file and a rename.
    fn save(&self, catalog: &Catalog) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(catalog)?;
        let mut tmp = NamedTempFile::new_in(&self.tmp).map_err(|e| Error::io(&self.tmp, e))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&self.catalog_path)
            .map_err(|e| Error::io(&self.catalog_path, e.error))?;
        File::open(&self.root)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| Error::io(&self.root, e))
    }

    fn read_config(&self, record: &ImageRecord) -> Result<ImageConfig> {
        let hex = blobs::sha256_hex(&record.config_digest).ok_or_else(|| {
            self.corrupt_catalog(format!("config digest {:?}", record.config_digest))
        })?;
        let config: ImageConfiguration = serde_json::from_slice(&self.blobs.read(hex)?)?;
        Ok(ImageConfig::from(&config))
    }

    /// The unpacked directory of `layer`, unpacking it first if needed.
    fn unpacked_layer(&self, layer: &LayerRecord) -> Result<PathBuf> {
        let diff_hex = blobs::sha256_hex(&layer.diff_id)
            .ok_or_else(|| self.corrupt_catalog(format!("diff id {:?}", layer.diff_id)))?;
        let blob_hex = blobs::sha256_hex(&layer.digest)
            .ok_or_else(|| self.corrupt_catalog(format!("layer digest {:?}", layer.digest)))?;
        let dir = self.layers.join(diff_hex);
        if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(dir);
        }

        let scratch = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&self.tmp)
            .map_err(|e| Error::io(&self.tmp, e))?;
        fs::set_permissions(scratch.path(), Permissions::from_mode(0o755))
            .map_err(|e| Error::io(scratch.path(), e))?;
        unpack::unpack_layer(&self.blobs.path(blob_hex), scratch.path(), &layer.diff_id)?;
        fs::rename(scratch.path(), &dir).map_err(|e| Error::io(&dir, e))?;
        // Renamed away: there is nothing left for the guard to clean up.
        let _ = scratch.keep();
        debug!(diff_id = %layer.diff_id, dir = %dir.display(), "unpacked layer");
        Ok(dir)
    }

    fn collect_blobs(&self, catalog: &Catalog) -> Result<()> {
        let keep = catalog.referenced_blobs();
        for hex in self.blobs.list()? {
            if !keep.contains(&hex) {
                self.blobs.remove(&hex)?;
                debug!(blob = %hex, "removed unreferenced blob");
            }
        }
        Ok(())
    }

    fn collect_layers(&self, catalog: &Catalog, in_use: &dyn Fn(&Path) -> bool) -> Result<()> {
        let keep = catalog.referenced_layers();
        let entries = fs::read_dir(&self.layers).map_err(|e| Error::io(&self.layers, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.layers, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().filter(|name| blobs::is_sha256_hex(name)) else {
                continue;
            };
            if keep.contains(name) {
                continue;
            }
            let dir = entry.path();
            if in_use(&dir) {
                debug!(dir = %dir.display(), "unreferenced layer is still in use; keeping it");
                continue;
            }
            // Out of layers/ first, so an interrupted delete never leaves a partial layer in place.
            let grave = tempfile::Builder::new()
                .prefix("gc-")
                .tempdir_in(&self.tmp)
                .map_err(|e| Error::io(&self.tmp, e))?;
            fs::rename(&dir, grave.path().join(name)).map_err(|e| Error::io(&dir, e))?;
            let grave_path = grave.path().to_path_buf();
            grave.close().map_err(|e| Error::io(grave_path, e))?;
            debug!(dir = %dir.display(), "removed unreferenced layer");
        }
        Ok(())
    }

    fn corrupt_catalog(&self, what: String) -> Error {
        Error::io(
            &self.catalog_path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid {what} in the image catalog"),
            ),
        )
    }
}

/// Removes everything inside `dir`.
fn empty_dir(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let is_dir = entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir();
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use flate2::write::GzEncoder;
    use serde_json::{json, Value};

    use super::archive::{HOST_ARCH, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
    use super::*;

    const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const MTIME: u64 = 1_700_000_000;

    /// One member of a test layer tar.
    enum Member {
        Dir(&'static str),
        File(&'static str, &'static [u8], u32),
        Symlink(&'static str, String),
        HardLink(&'static str, &'static str),
        /// A regular file whose header name is written raw, past the `tar` crate's path checks.
        RawPath(&'static [u8]),
    }

    fn tar_of(members: &[Member]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for member in members {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(0);
            let mut data: &[u8] = &[];
            match member {
                Member::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_path(path).unwrap();
                }
                Member::File(path, contents, mode) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_path(path).unwrap();
                    header.set_size(contents.len() as u64);
                    data = *contents;
                }
                Member::Symlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_path(path).unwrap();
                    header.set_link_name(target).unwrap();
                }
                Member::HardLink(path, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_mode(0o644);
                    header.set_path(path).unwrap();
                    header.set_link_name(target).unwrap();
                }
                Member::RawPath(raw) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
                }
            }
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Regular files with the given paths and contents, then symlinks (path, target).
    fn tar_files(files: &[(String, Vec<u8>)], symlinks: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(contents.len() as u64);
            builder
                .append_data(&mut header, path, contents.as_slice())
                .unwrap();
        }
        for (path, target) in symlinks {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn sha(bytes: &[u8]) -> String {
        blobs::digest_of(bytes)
    }

    fn hex_of(bytes: &[u8]) -> String {
        sha(bytes)[blobs::SHA256_PREFIX.len()..].to_string()
    }

    /// A layer as stored, with the digest of its uncompressed tar.
    #[derive(Clone)]
    struct Layer {
        blob: Vec<u8>,
        diff_id: String,
        media_type: &'static str,
    }

    fn plain(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: sha(&tar),
            blob: tar,
            media_type: OCI_LAYER,
        }
    }

    fn gzipped(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: sha(&tar),
            blob: gzip(&tar),
            media_type: OCI_LAYER_GZIP,
        }
    }

    fn base_layer() -> Vec<u8> {
        tar_of(&[
            Member::Dir("etc"),
            Member::File("etc/hello", b"hello\n", 0o644),
            Member::File("etc/gone", b"bye\n", 0o644),
            Member::HardLink("etc/hello-again", "etc/hello"),
            Member::Symlink("etc/greeting", "hello".to_string()),
            Member::Dir("var"),
            Member::Dir("var/cache"),
            Member::File("var/cache/old", b"old\n", 0o644),
            // No entry for bin/: parents are created as needed.
            Member::File("bin/tool", b"#!/bin/sh\n", 0o4755),
        ])
    }

    fn upper_layer() -> Vec<u8> {
        tar_of(&[Member::File("etc/extra", b"extra\n", 0o600)])
    }

    fn whiteout_layer() -> Vec<u8> {
        tar_of(&[
            Member::File("etc/.wh.gone", b"", 0o644),
            Member::File("var/cache/.wh..wh..opq", b"", 0o644),
            Member::File("var/cache/new", b"new\n", 0o644),
        ])
    }

    fn config_json(diff_ids: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "architecture": HOST_ARCH,
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/tool"],
                "Cmd": ["--serve"],
                "Env": ["PATH=/bin", "MODE=test"],
                "WorkingDir": "/srv",
                "User": "1000:1000",
                "ExposedPorts": { "8080/tcp": {}, "53/udp": {} },
                "Labels": null
            },
            "rootfs": { "type": "layers", "diff_ids": diff_ids }
        }))
        .unwrap()
    }

    fn expected_config() -> ImageConfig {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ImageConfig {
            entrypoint: strings(&["/bin/tool"]),
            cmd: strings(&["--serve"]),
            env: strings(&["PATH=/bin", "MODE=test"]),
            working_dir: Some("/srv".to_string()),
            user: Some("1000:1000".to_string()),
            exposed_ports: strings(&["53/udp", "8080/tcp"]),
        }
    }

    /// The blobs of an OCI image (config first, manifest last) and its manifest.
    struct OciImage {
        blobs: Vec<Vec<u8>>,
        config: Vec<u8>,
        manifest: Vec<u8>,
    }

    fn oci_image(layers: &[Layer]) -> OciImage {
        let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.diff_id.as_str()).collect();
        let config = config_json(&diff_ids);
        // Like umoci's: no top-level mediaType.
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(&config),
                "size": config.len()
            },
            "layers": layers
                .iter()
                .map(|l| json!({ "mediaType": l.media_type, "digest": sha(&l.blob), "size": l.blob.len() }))
                .collect::<Vec<_>>()
        }))
        .unwrap();
        let mut blobs = vec![config.clone()];
        blobs.extend(layers.iter().map(|layer| layer.blob.clone()));
        blobs.push(manifest.clone());
        OciImage {
            blobs,
            config,
            manifest,
        }
    }

    fn manifest_descriptor(manifest: &[u8], annotations: Value) -> Value {
        json!({
            "mediaType": MEDIA_OCI_MANIFEST,
            "digest": sha(manifest),
            "size": manifest.len(),
            "annotations": annotations
        })
    }

    /// An OCI image archive whose `blobs/sha256/<name>` members are given explicitly.
    fn oci_archive_named(blobs: &[(String, Vec<u8>)], manifests: Vec<Value>) -> Vec<u8> {
        let index =
            json!({ "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests });
        let mut files = vec![
            (
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            (
                "index.json".to_string(),
                serde_json::to_vec(&index).unwrap(),
            ),
        ];
        files.extend(
            blobs
                .iter()
                .map(|(hex, blob)| (format!("blobs/sha256/{hex}"), blob.clone())),
        );
        tar_files(&files, &[])
    }

    fn oci_archive(blobs: &[Vec<u8>], manifests: Vec<Value>) -> Vec<u8> {
        let named: Vec<(String, Vec<u8>)> = blobs
            .iter()
            .map(|blob| (hex_of(blob), blob.clone()))
            .collect();
        oci_archive_named(&named, manifests)
    }

    struct Fixture {
        dir: tempfile::TempDir,
        root: PathBuf,
        store: ImageStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = ImageStore::open(&root).unwrap();
        Fixture { dir, root, store }
    }

    impl Fixture {
        fn import(&self, file_name: &str, archive: &[u8]) -> Result<Vec<ImportedImage>> {
            let path = self.dir.path().join(file_name);
            fs::write(&path, archive).unwrap();
            self.store.import_archive(&path)
        }

        fn blob_path(&self, bytes: &[u8]) -> PathBuf {
            self.root.join("blobs/sha256").join(hex_of(bytes))
        }

        fn layer_dir(&self, layer: &Layer) -> PathBuf {
            self.root
                .join("layers")
                .join(&layer.diff_id[blobs::SHA256_PREFIX.len()..])
        }

        fn count(&self, sub: &str) -> usize {
            fs::read_dir(self.root.join(sub)).unwrap().count()
        }
    }

    #[test]
    fn oci_archive_is_imported_and_resolved() {
        let f = fixture();
        let layers = [gzipped(base_layer()), plain(upper_layer())];
        let image = oci_image(&layers);
        let annotations = json!({
            "io.containerd.image.name": "example.com/team/app:1",
            "org.opencontainers.image.ref.name": "1"
        });
        // The outer archive is gzip-compressed too.
        let archive = gzip(&oci_archive(
            &image.blobs,
            vec![manifest_descriptor(&image.manifest, annotations)],
        ));

        let imported = f.import("app.tar.gz", &archive).unwrap();
        let size = (layers[0].blob.len() + layers[1].blob.len()) as u64;
        assert_eq!(
            imported,
            vec![ImportedImage {
                references: vec!["example.com/team/app:1".to_string()],
                id: sha(&image.config),
                manifest_digest: sha(&image.manifest),
                size,
            }]
        );

        let resolved = f.store.resolve("example.com/team/app:1").unwrap();
        let layer_dirs: Vec<PathBuf> = layers.iter().map(|layer| f.layer_dir(layer)).collect();
        assert_eq!(resolved.id, sha(&image.config));
        assert_eq!(resolved.reference, "example.com/team/app:1");
        assert_eq!(resolved.manifest_digest, sha(&image.manifest));
        assert_eq!(resolved.config, expected_config());
        assert_eq!(resolved.layers, layer_dirs);

        let base = &resolved.layers[0];
        assert_eq!(fs::read(base.join("etc/hello")).unwrap(), b"hello\n");
        let hello = fs::symlink_metadata(base.join("etc/hello")).unwrap();
        assert_eq!(
            hello.ino(),
            fs::symlink_metadata(base.join("etc/hello-again"))
                .unwrap()
                .ino()
        );
        assert_eq!(hello.mtime(), MTIME as i64);
        assert_eq!(
            fs::read_link(base.join("etc/greeting")).unwrap(),
            PathBuf::from("hello")
        );
        assert_eq!(
            fs::metadata(base.join("bin/tool"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o4755
        );
        assert_eq!(
            fs::read(resolved.layers[1].join("etc/extra")).unwrap(),
            b"extra\n"
        );

        // By id, by manifest digest, and pinned by digest under its repository.
        assert_eq!(
            f.store.resolve(&sha(&image.config)).unwrap().reference,
            "example.com/team/app:1"
        );
        assert_eq!(
            f.store.resolve(&sha(&image.manifest)).unwrap().id,
            sha(&image.config)
        );
        let pinned = format!("example.com/team/app@{}", sha(&image.manifest));
        assert_eq!(
            f.store.resolve(&pinned).unwrap().reference,
            "example.com/team/app:1"
        );
        let elsewhere = format!("example.com/other@{}", sha(&image.manifest));
        assert!(matches!(
            f.store.resolve(&elsewhere),
            Err(Error::ImageNotFound(_))
        ));

        let summaries = f.store.list().unwrap();
        assert_eq!(
            summaries,
            vec![ImageSummary {
                reference: "example.com/team/app:1".to_string(),
                id: sha(&image.config),
                manifest_digest: sha(&image.manifest),
                size,
            }]
        );

        // The catalog survives a restart, and the layers are not unpacked twice.
        let Fixture { dir, root, store } = f;
        drop(store);
        let store = ImageStore::open(&root).unwrap();
        assert_eq!(store.list().unwrap(), summaries);
        assert_eq!(
            store.resolve("example.com/team/app:1").unwrap().layers,
            layer_dirs
        );
        drop(dir);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let f = fixture();
        let layers = [plain(base_layer()), plain(whiteout_layer())];
        let image = oci_image(&layers);
        let annotations = json!({ "io.containerd.image.name": "docker.io/library/wh:1" });
        let archive = oci_archive(
            &image.blobs,
            vec![manifest_descriptor(&image.manifest, annotations)],
        );
        f.import("wh.tar", &archive).unwrap();

        let result = f.store.resolve("wh:1");
        if nix::unistd::geteuid().is_root() {
            let resolved = result.unwrap();
            let (lower, upper) = (&resolved.layers[0], &resolved.layers[1]);
            assert!(fs::symlink_metadata(lower.join("etc/gone"))
                .unwrap()
                .is_file());

            let gone = fs::symlink_metadata(upper.join("etc/gone")).unwrap();
            assert!(gone.file_type().is_char_device(), "{gone:?}");
            assert_eq!(gone.rdev(), 0);
            assert!(fs::symlink_metadata(upper.join("etc/.wh.gone")).is_err());

            let opaque = xattr::get(upper.join("var/cache"), "trusted.overlay.opaque").unwrap();
            assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
            assert!(fs::symlink_metadata(upper.join("var/cache/.wh..wh..opq")).is_err());
            assert_eq!(fs::read(upper.join("var/cache/new")).unwrap(), b"new\n");
        } else {
            match result {
                Err(Error::Io { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
                    assert!(source.to_string().contains("needs root"), "{source}");
                }
                other => {
                    panic!("unpacking whiteouts without root must fail clearly, got {other:?}")
                }
            }
            assert!(
                !f.layer_dir(&layers[1]).exists(),
                "no half-unpacked layer may be left behind"
            );
            assert_eq!(f.count("tmp"), 0);
        }
    }

    #[test]
    fn a_tag_only_ref_name_imports_the_image_unnamed() {
        let f = fixture();
        let image = oci_image(&[gzipped(upper_layer())]);
        let tag_only = json!({ "org.opencontainers.image.ref.name": "1" });
        let archive = oci_archive(
            &image.blobs,
            vec![manifest_descriptor(&image.manifest, tag_only)],
        );

        let imported = f.import("unnamed.tar", &archive).unwrap();
        assert!(imported[0].references.is_empty());
        let digest = sha(&image.manifest);
        assert_eq!(f.store.list().unwrap()[0].reference, digest);
        assert_eq!(f.store.resolve(&digest).unwrap().reference, digest);
        assert_eq!(
            f.store.resolve(&sha(&image.config)).unwrap().config,
            expected_config()
        );

        // A ref.name that is a full reference names the image, replacing the digest entry.
        let named = json!({ "org.opencontainers.image.ref.name": "localhost/demo:2" });
        let archive = oci_archive(
            &image.blobs,
            vec![manifest_descriptor(&image.manifest, named)],
        );
        f.import("named.tar", &archive).unwrap();
        let names: Vec<String> = f
            .store
            .list()
            .unwrap()
            .into_iter()
            .map(|s| s.reference)
            .collect();
        assert_eq!(names, vec!["localhost/demo:2".to_string()]);
    }

    #[test]
    fn a_manifest_list_contributes_the_host_platform() {
        let f = fixture();
        let image = oci_image(&[gzipped(upper_layer())]);
        let other_arch = if HOST_ARCH == "s390x" {
            "ppc64le"
        } else {
            "s390x"
        };
        let absent = b"not in the archive";
        let list = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_OCI_MANIFEST, "digest": sha(absent), "size": absent.len(),
                    "platform": { "architecture": other_arch, "os": "linux" }
                },
                {
                    "mediaType": MEDIA_OCI_MANIFEST, "digest": sha(&image.manifest), "size": image.manifest.len(),
                    "platform": { "architecture": HOST_ARCH, "os": "linux" }
                }
            ]
        }))
        .unwrap();
        let mut blobs = image.blobs.clone();
        blobs.push(list.clone());
        let top = json!({
            "mediaType": MEDIA_OCI_INDEX,
            "digest": sha(&list),
            "size": list.len(),
            "annotations": { "io.containerd.image.name": "example.com/multi:1" }
        });

        let imported = f
            .import("multi.tar", &oci_archive(&blobs, vec![top]))
            .unwrap();
        assert_eq!(
            imported[0].references,
            vec!["example.com/multi:1".to_string()]
        );
        assert_eq!(imported[0].manifest_digest, sha(&image.manifest));
        // Only what the chosen image references is kept.
        assert!(!f.blob_path(&list).exists());
        assert_eq!(f.count("blobs/sha256"), 3);
    }

    #[test]
    fn docker_save_archive_is_imported() {
        let f = fixture();
        let (base, upper) = (base_layer(), upper_layer());
        let config = config_json(&[sha(&base).as_str(), sha(&upper).as_str()]);
        let config_name = format!("{}.json", hex_of(&config));
        let upper_name = format!("blobs/sha256/{}", hex_of(&upper));
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": ["localhost:5000/demo:1", "demo"],
            "Layers": ["0123abcd/layer.tar", upper_name]
        }]);
        let files = [
            (
                "manifest.json".to_string(),
                serde_json::to_vec(&manifest).unwrap(),
            ),
            ("repositories".to_string(), b"{}".to_vec()),
            ("0123abcd/VERSION".to_string(), b"1.0".to_vec()),
            ("0123abcd/json".to_string(), b"{}".to_vec()),
            ("4567cdef/layer.tar".to_string(), base.clone()),
            (config_name.clone(), config.clone()),
            (upper_name, upper.clone()),
        ];
        // moby writes a layer it has already written as a symlink to the first copy.
        let archive = tar_files(&files, &[("0123abcd/layer.tar", "../4567cdef/layer.tar")]);

        let imported = f.import("demo.tar", &archive).unwrap();
        assert_eq!(imported.len(), 1);
        assert_eq!(
            imported[0].references,
            vec![
                "localhost:5000/demo:1".to_string(),
                "docker.io/library/demo:latest".to_string()
            ]
        );
        assert_eq!(imported[0].id, sha(&config));
        assert_eq!(imported[0].size, (base.len() + upper.len()) as u64);
        let names: Vec<String> = f
            .store
            .list()
            .unwrap()
            .into_iter()
            .map(|s| s.reference)
            .collect();
        assert_eq!(
            names,
            vec![
                "docker.io/library/demo:latest".to_string(),
                "localhost:5000/demo:1".to_string()
            ]
        );

        let resolved = f.store.resolve("localhost:5000/demo:1").unwrap();
        assert_eq!(resolved.config, expected_config());
        assert_eq!(
            resolved.layers,
            vec![f.layer_dir(&plain(base)), f.layer_dir(&plain(upper))]
        );
        assert_eq!(
            fs::read(resolved.layers[1].join("etc/extra")).unwrap(),
            b"extra\n"
        );
        assert_eq!(f.store.resolve("demo").unwrap().id, sha(&config));
        // A written manifest, the config and two layers; the legacy files were never stored.
        assert_eq!(f.count("blobs/sha256"), 4);
    }

    #[test]
    fn a_corrupted_blob_fails_verification() {
        let f = fixture();
        let layers = [gzipped(base_layer())];
        let image = oci_image(&layers);
        let mut named: Vec<(String, Vec<u8>)> =
            image.blobs.iter().map(|b| (hex_of(b), b.clone())).collect();
        named[1].1[20] ^= 0xff; // the layer, under its original name
        let annotations = json!({ "io.containerd.image.name": "example.com/bad:1" });
        let archive = oci_archive_named(
            &named,
            vec![manifest_descriptor(&image.manifest, annotations)],
        );

        match f.import("bad.tar", &archive) {
            Err(Error::DigestMismatch { expected, actual }) => {
                assert_eq!(expected, sha(&layers[0].blob));
                assert_eq!(actual, sha(&named[1].1));
            }
            other => panic!("expected a digest mismatch, got {other:?}"),
        }
        assert!(f.store.list().unwrap().is_empty());
        assert_eq!(
            f.count("blobs/sha256"),
            0,
            "a failed import leaves no blobs behind"
        );
        assert_eq!(f.count("tmp"), 0);
    }

    #[test]
    fn a_wrong_diff_id_fails_unpacking() {
        let f = fixture();
        let mut layer = gzipped(upper_layer());
        layer.diff_id = sha(b"something else");
        let image = oci_image(std::slice::from_ref(&layer));
        let annotations = json!({ "io.containerd.image.name": "example.com/diff:1" });
        f.import(
            "diff.tar",
            &oci_archive(
                &image.blobs,
                vec![manifest_descriptor(&image.manifest, annotations)],
            ),
        )
        .unwrap();

        match f.store.resolve("example.com/diff:1") {
            Err(Error::DigestMismatch { expected, .. }) => assert_eq!(expected, layer.diff_id),
            other => panic!("expected a diff id mismatch, got {other:?}"),
        }
        assert_eq!(f.count("layers"), 0);
        assert_eq!(f.count("tmp"), 0);
    }

    #[test]
    fn unsafe_layer_entries_are_refused() {
        let f = fixture();
        let outside = f.dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let cases = [
            ("dotdot", tar_of(&[Member::RawPath(b"../escaped")])),
            ("absolute", tar_of(&[Member::RawPath(b"/escaped")])),
            (
                "symlink",
                tar_of(&[
                    Member::Symlink("link", outside.display().to_string()),
                    Member::File("link/escaped", b"x", 0o644),
                ]),
            ),
            (
                "hardlink",
                tar_of(&[Member::HardLink("stolen", "../../../etc/passwd")]),
            ),
        ];
        for (case, tar) in cases {
            let image = oci_image(&[plain(tar)]);
            let name = format!("example.com/unsafe/{case}:1");
            let annotations = json!({ "io.containerd.image.name": name });
            let archive = oci_archive(
                &image.blobs,
                vec![manifest_descriptor(&image.manifest, annotations)],
            );
            f.import(&format!("{case}.tar"), &archive).unwrap();
            match f.store.resolve(&name) {
                Err(Error::BadArchive { reason, .. }) => {
                    assert!(!reason.is_empty(), "{case}");
                }
                other => panic!("{case}: expected the layer to be refused, got {other:?}"),
            }
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(f.count("layers"), 0);
    }

    #[test]
    fn zstd_layers_are_refused() {
        let f = fixture();
        // Declared by media type: refused at import.
        let mut declared = plain(upper_layer());
        declared.media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
        let image = oci_image(&[declared]);
        let annotations = json!({ "io.containerd.image.name": "example.com/zstd:1" });
        let archive = oci_archive(
            &image.blobs,
            vec![manifest_descriptor(&image.manifest, annotations.clone())],
        );
        match f.import("declared.tar", &archive) {
            Err(Error::BadArchive { reason, .. }) => assert!(reason.contains("zstd"), "{reason}"),
            other => panic!("expected zstd to be refused, got {other:?}"),
        }

        // Mislabelled as gzip: refused by its magic bytes when unpacking.
        let fake = vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0];
        let disguised = Layer {
            diff_id: sha(&fake),
            blob: fake,
            media_type: OCI_LAYER_GZIP,
        };
        let image = oci_image(&[disguised]);
        let archive = oci_archive(
            &image.blobs,
            vec![manifest_descriptor(&image.manifest, annotations)],
        );
        f.import("disguised.tar", &archive).unwrap();
        match f.store.resolve("example.com/zstd:1") {
            Err(Error::BadArchive { reason, .. }) => assert!(reason.contains("zstd"), "{reason}"),
            other => panic!("expected zstd to be refused, got {other:?}"),
        }
    }

    #[test]
    fn remove_collects_what_nothing_references() {
        let f = fixture();
        let shared = gzipped(base_layer());
        let only_a = plain(upper_layer());
        let a = oci_image(&[shared.clone(), only_a.clone()]);
        let b = oci_image(std::slice::from_ref(&shared));
        let mut blobs = a.blobs.clone();
        blobs.extend(b.blobs.iter().cloned());
        let archive = oci_archive(
            &blobs,
            vec![
                manifest_descriptor(
                    &a.manifest,
                    json!({ "io.containerd.image.name": "example.com/a:1" }),
                ),
                manifest_descriptor(
                    &b.manifest,
                    json!({ "io.containerd.image.name": "example.com/b:1" }),
                ),
            ],
        );
        assert_eq!(f.import("ab.tar", &archive).unwrap().len(), 2);
        let resolved_a = f.store.resolve("example.com/a:1").unwrap();
        let resolved_b = f.store.resolve("example.com/b:1").unwrap();
        let shared_dir = f.layer_dir(&shared);
        assert_eq!(resolved_a.layers[0], shared_dir);
        assert_eq!(resolved_b.layers[0], shared_dir);

        f.store.remove("example.com/a:1", &|_| false).unwrap();
        assert!(matches!(
            f.store.resolve("example.com/a:1"),
            Err(Error::ImageNotFound(_))
        ));
        assert!(!f.layer_dir(&only_a).exists());
        assert!(!f.blob_path(&only_a.blob).exists());
        assert!(!f.blob_path(&a.manifest).exists());
        assert!(!f.blob_path(&a.config).exists());
        assert!(shared_dir.is_dir());
        assert!(f.blob_path(&shared.blob).exists());

        // By id: every name of the image goes; a layer a container still uses stays.
        f.store
            .remove(&resolved_b.id, &|dir: &Path| dir == shared_dir.as_path())
            .unwrap();
        assert!(f.store.list().unwrap().is_empty());
        assert_eq!(f.count("blobs/sha256"), 0);
        assert!(shared_dir.is_dir());

        f.store.collect_garbage(&|_| false).unwrap();
        assert_eq!(f.count("layers"), 0);
        assert_eq!(f.count("tmp"), 0);
        assert!(matches!(
            f.store.remove("example.com/a:1", &|_| false),
            Err(Error::ImageNotFound(_))
        ));
    }

    #[test]
    fn a_store_root_has_one_owner() {
        let f = fixture();
        assert!(matches!(ImageStore::open(&f.root), Err(Error::Io { .. })));
        let Fixture { dir, root, store } = f;
        drop(store);
        ImageStore::open(&root).unwrap();
        drop(dir);
    }
}
