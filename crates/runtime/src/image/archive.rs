//! Reading image archives into the blob store: OCI image archives (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and `docker save` archives (`manifest.json`), either optionally gzip-compressed.
//!
//! The archive is read in one streaming pass. Every regular file goes straight into the blob store:
//! files under `blobs/sha256/` are verified against their names, others (a `docker save` archive's
//! `<id>.json` configs and `<id>/layer.tar` layers) are stored under the digest of their content and
//! remembered by path. Only the small metadata files (`index.json`, `manifest.json`) are held in
//! memory. Once the pass is over, the images are assembled from the stored blobs.
//!
//! OCI archives: each `index.json` entry is one image, named by its `io.containerd.image.name`
//! annotation or, failing that, an `org.opencontainers.image.ref.name` that is a full reference (one
//! that is only a tag, like `1`, cannot name an image: it is imported unnamed). Entries for another
//! platform are skipped; a nested index (manifest list) contributes its `linux/<host arch>` manifest.
//!
//! `docker save` archives have no manifest blob: one is written in Docker's v2 schema 2 form, so every
//! image in the store is a manifest, a config and layers. Uncompressed layers must hash to the config's
//! diff ids.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use flate2::read::MultiGzDecoder;
use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os, Platform, ANNOTATION_REF_NAME,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tracing::{debug, warn};

use super::blobs::{self, BlobStore, StoredBlob};
use super::reference::Reference;
use super::unpack::Compression;
use super::{ImageRecord, LayerRecord};
use crate::{Error, Result};

/// The architecture this binary runs on, in OCI (Go) spelling: images are chosen for it.
#[cfg(target_arch = "x86_64")]
pub(crate) const HOST_ARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
pub(crate) const HOST_ARCH: &str = "arm64";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) const HOST_ARCH: &str = std::env::consts::ARCH;

pub(crate) const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// Archive members read into memory rather than stored as blobs.
const METADATA_FILES: [&str; 3] = ["index.json", "manifest.json", "oci-layout"];
const METADATA_LIMIT: u64 = 16 << 20;
const MAX_INDEX_DEPTH: usize = 4;
const MAX_LINK_HOPS: usize = 8;

/// One image found in an archive; its blobs are in the store.
#[derive(Debug)]
pub(crate) struct ArchiveImage {
    /// Normalized references; empty if the archive gives the image no usable name.
    pub(crate) names: Vec<String>,
    pub(crate) record: ImageRecord,
}

/// What the streaming pass leaves behind.
struct Contents {
    /// `index.json` and `manifest.json`, if present.
    metadata: HashMap<String, Vec<u8>>,
    /// Every other regular file, by normalized path, now a blob.
    files: HashMap<String, StoredBlob>,
    /// Symlink and hard link members, by normalized path, with the member they point at (`docker
    /// save` writes a layer that repeats as a symlink to its first copy).
    aliases: HashMap<String, String>,
}

/// Stores the blobs of the archive at `path` and returns the images it holds.
pub(crate) fn read_archive(path: &Path, blobs: &BlobStore) -> Result<Vec<ArchiveImage>> {
    let contents = scan(path, blobs)?;
    let images = if let Some(index) = contents.metadata.get("index.json") {
        oci_images(path, blobs, index)?
    } else if let Some(manifest) = contents.metadata.get("manifest.json") {
        docker_images(path, blobs, &contents, manifest)?
    } else {
        return Err(bad(
            path,
            "neither an OCI image archive (no index.json) nor a `docker save` archive (no manifest.json)",
        ));
    };
    Ok(merge_by_manifest(images))
}

fn scan(path: &Path, blobs: &BlobStore) -> Result<Contents> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    let stream: Box<dyn Read> = match Compression::detect(head) {
        Compression::Gzip => Box::new(MultiGzDecoder::new(reader)),
        Compression::None => Box::new(reader),
        Compression::Zstd => return Err(bad(path, "zstd-compressed archives are not supported")),
    };

    let mut archive = tar::Archive::new(stream);
    let mut contents = Contents {
        metadata: HashMap::new(),
        files: HashMap::new(),
        aliases: HashMap::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| bad(path, format!("reading tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(path, format!("reading tar: {e}")))?;
        let kind = entry.header().entry_type();
        let is_link = matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link);
        if !is_link && !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
            continue;
        }
        let Some(name) = normalize(&entry.path_bytes()) else {
            debug!(archive = %path.display(), "skipping member with an unusable path");
            continue;
        };
        if is_link {
            let symlink = kind == tar::EntryType::Symlink;
            let target = entry
                .link_name_bytes()
                .and_then(|link| link_target(&name, &link, symlink));
            if let Some(target) = target {
                contents.aliases.insert(name, target);
            }
            continue;
        }

        if METADATA_FILES.contains(&name.as_str()) {
            let mut buf = Vec::new();
            (&mut entry)
                .take(METADATA_LIMIT + 1)
                .read_to_end(&mut buf)
                .map_err(|e| bad(path, format!("reading {name}: {e}")))?;
            if buf.len() as u64 > METADATA_LIMIT {
                return Err(bad(
                    path,
                    format!("{name} is larger than {} MiB", METADATA_LIMIT >> 20),
                ));
            }
            contents.metadata.insert(name, buf);
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            if !blobs::is_sha256_hex(hex) {
                debug!(archive = %path.display(), member = %name, "skipping blob with an invalid digest name");
                continue;
            }
            let stored = if blobs.contains(hex) {
                StoredBlob {
                    hex: hex.to_string(),
                    size: blobs.size(hex)?,
                }
            } else {
                blobs.write(&mut entry, Some(hex), path)?
            };
            contents.files.insert(name, stored);
        } else if name.starts_with("blobs/") || is_legacy_docker_file(&name) {
            debug!(archive = %path.display(), member = %name, "skipping member the store does not use");
        } else {
            let stored = blobs.write(&mut entry, None, path)?;
            contents.files.insert(name, stored);
        }
    }
    Ok(contents)
}

/// `docker save`'s pre-1.10 leftovers, which describe nothing the manifest does not.
fn is_legacy_docker_file(name: &str) -> bool {
    name == "repositories" || name.ends_with("/json") || name.ends_with("/VERSION")
}

/// The member path as `a/b/c` (no `.`, no leading `/`); `None` for `..`, non-UTF-8 or empty paths.
fn normalize(raw: &[u8]) -> Option<String> {
    let raw = std::str::from_utf8(raw).ok()?;
    let mut parts = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The member a link member points at: a symlink's target is relative to the member's directory,
/// a hard link's to the archive root. `None` if it leaves the archive.
fn link_target(member: &str, link: &[u8], symlink: bool) -> Option<String> {
    let link = std::str::from_utf8(link).ok()?;
    let mut parts: Vec<&str> = Vec::new();
    if symlink && !link.starts_with('/') {
        parts.extend(member.split('/'));
        parts.pop();
    }
    for component in link.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn oci_images(archive: &Path, blobs: &BlobStore, index_json: &[u8]) -> Result<Vec<ArchiveImage>> {
    let index: ImageIndex = parse_json(archive, "index.json", index_json)?;
    let mut images = Vec::new();
    for descriptor in index.manifests() {
        if let Some(platform) = descriptor.platform() {
            if !is_host_platform(platform) {
                debug!(archive = %archive.display(), digest = %descriptor.digest(), "skipping image for another platform");
                continue;
            }
        }
        let names = descriptor_name(archive, descriptor)?.into_iter().collect();
        let manifest_hex = resolve_manifest(archive, blobs, descriptor, 0)?;
        let record = image_record(archive, blobs, &manifest_hex)?;
        images.push(ArchiveImage { names, record });
    }
    if images.is_empty() {
        return Err(bad(
            archive,
            format!("index.json lists no image for linux/{HOST_ARCH}"),
        ));
    }
    Ok(images)
}

/// The name an `index.json` entry gives its image, normalized.
fn descriptor_name(archive: &Path, descriptor: &Descriptor) -> Result<Option<String>> {
    let Some(annotations) = descriptor.annotations() else {
        return Ok(None);
    };
    if let Some(name) = annotations.get(CONTAINERD_NAME_ANNOTATION) {
        return normalized_name(archive, name).map(Some);
    }
    match annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains(['/', ':', '@']) => normalized_name(archive, name).map(Some),
        Some(tag) => {
            debug!(archive = %archive.display(), tag = %tag, "ref.name is only a tag; importing the image unnamed");
            Ok(None)
        }
        None => Ok(None),
    }
}

fn normalized_name(archive: &Path, name: &str) -> Result<String> {
    Reference::parse(name)
        .map(|reference| reference.to_string())
        .map_err(|_| {
            bad(
                archive,
                format!("image name {name:?} is not a valid reference"),
            )
        })
}

/// Follows `descriptor` through nested indexes to an image manifest; returns its hex digest.
fn resolve_manifest(
    archive: &Path,
    blobs: &BlobStore,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<String> {
    let hex = descriptor_blob(archive, blobs, descriptor)?;
    let bytes = blobs.read(&hex)?;
    match document_kind(descriptor.media_type().as_ref(), &bytes) {
        Some(DocumentKind::Manifest) => Ok(hex),
        Some(DocumentKind::Index) => {
            if depth >= MAX_INDEX_DEPTH {
                return Err(bad(
                    archive,
                    format!("image indexes nested deeper than {MAX_INDEX_DEPTH}"),
                ));
            }
            let index: ImageIndex = parse_json(archive, &format!("index sha256:{hex}"), &bytes)?;
            let chosen = pick_platform(index.manifests()).ok_or_else(|| {
                bad(
                    archive,
                    format!("index sha256:{hex} has no manifest for linux/{HOST_ARCH}"),
                )
            })?;
            resolve_manifest(archive, blobs, chosen, depth + 1)
        }
        None => Err(bad(
            archive,
            format!(
                "sha256:{hex} is neither an image manifest nor an index ({})",
                descriptor.media_type()
            ),
        )),
    }
}

enum DocumentKind {
    Index,
    Manifest,
}

/// By media type, or for unknown media types by shape.
fn document_kind(media_type: &str, bytes: &[u8]) -> Option<DocumentKind> {
    match media_type {
        MEDIA_OCI_INDEX | MEDIA_DOCKER_MANIFEST_LIST => Some(DocumentKind::Index),
        MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => Some(DocumentKind::Manifest),
        _ => {
            let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
            if value.get("manifests").is_some() {
                Some(DocumentKind::Index)
            } else if value.get("layers").is_some() {
                Some(DocumentKind::Manifest)
            } else {
                None
            }
        }
    }
}

fn is_host_platform(platform: &Platform) -> bool {
    *platform.os() == Os::Linux && platform.architecture().to_string() == HOST_ARCH
}

/// The host's manifest from a manifest list; a list of one manifest without a platform is that one.
fn pick_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    manifests
        .iter()
        .find(|d| d.platform().as_ref().is_some_and(is_host_platform))
        .or(match manifests {
            [only] if only.platform().is_none() => Some(only),
            _ => None,
        })
}

/// Checks that the blob `descriptor` names is stored with the size it claims; returns its hex digest.
fn descriptor_blob(archive: &Path, blobs: &BlobStore, descriptor: &Descriptor) -> Result<String> {
    let digest = descriptor.digest().to_string();
    let hex = blobs::sha256_hex(&digest).ok_or_else(|| {
        bad(
            archive,
            format!("unsupported digest {digest} (only sha256 is supported)"),
        )
    })?;
    if !blobs.contains(hex) {
        return Err(bad(
            archive,
            format!("blob {digest} is referenced but not in the archive"),
        ));
    }
    let size = blobs.size(hex)?;
    if size != descriptor.size() {
        return Err(bad(
            archive,
            format!(
                "blob {digest} is {size} bytes but its descriptor says {}",
                descriptor.size()
            ),
        ));
    }
    Ok(hex.to_string())
}

/// Validates a stored manifest, its config and its layers, and describes the image for the catalog.
fn image_record(archive: &Path, blobs: &BlobStore, manifest_hex: &str) -> Result<ImageRecord> {
    let manifest: ImageManifest = parse_json(
        archive,
        &format!("manifest sha256:{manifest_hex}"),
        &blobs.read(manifest_hex)?,
    )?;
    let config_hex = descriptor_blob(archive, blobs, manifest.config())?;
    let config: ImageConfiguration = parse_json(
        archive,
        &format!("config sha256:{config_hex}"),
        &blobs.read(&config_hex)?,
    )?;
    if *config.os() != Os::Linux {
        return Err(bad(
            archive,
            format!(
                "image sha256:{config_hex} is for {}, not linux",
                config.os()
            ),
        ));
    }
    if config.architecture().to_string() != HOST_ARCH {
        warn!(
            archive = %archive.display(),
            image = %format!("sha256:{config_hex}"),
            architecture = %config.architecture(),
            "image is built for another architecture than this node's ({HOST_ARCH})"
        );
    }

    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(bad(
            archive,
            format!(
                "manifest sha256:{manifest_hex} has {} layers but its config lists {} diff ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (descriptor, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let media_type = descriptor.media_type().to_string();
        if media_type.contains("zstd") {
            return Err(bad(
                archive,
                format!(
                    "layer {} is zstd-compressed ({media_type}), which is not supported",
                    descriptor.digest()
                ),
            ));
        }
        let hex = descriptor_blob(archive, blobs, descriptor)?;
        if blobs::sha256_hex(diff_id).is_none() {
            return Err(bad(
                archive,
                format!("diff id {diff_id:?} is not a sha256 digest"),
            ));
        }
        layers.push(LayerRecord {
            digest: format!("{}{hex}", blobs::SHA256_PREFIX),
            diff_id: diff_id.clone(),
            media_type,
            size: descriptor.size(),
        });
    }
    Ok(ImageRecord {
        manifest_digest: format!("{}{manifest_hex}", blobs::SHA256_PREFIX),
        config_digest: format!("{}{config_hex}", blobs::SHA256_PREFIX),
        size: layers.iter().map(|layer| layer.size).sum(),
        layers,
    })
}

/// One entry of a `docker save` archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_images(
    archive: &Path,
    blobs: &BlobStore,
    contents: &Contents,
    manifest_json: &[u8],
) -> Result<Vec<ArchiveImage>> {
    let entries: Vec<DockerManifestEntry> = parse_json(archive, "manifest.json", manifest_json)?;
    if entries.is_empty() {
        return Err(bad(archive, "manifest.json lists no image"));
    }
    let mut images = Vec::with_capacity(entries.len());
    for entry in &entries {
        let config = archive_file(archive, contents, &entry.config)?;
        let config_doc: ImageConfiguration =
            parse_json(archive, &entry.config, &blobs.read(&config.hex)?)?;
        let diff_ids = config_doc.rootfs().diff_ids();
        if diff_ids.len() != entry.layers.len() {
            return Err(bad(
                archive,
                format!(
                    "{} lists {} diff ids for {} layers",
                    entry.config,
                    diff_ids.len(),
                    entry.layers.len()
                ),
            ));
        }

        let mut layers = Vec::with_capacity(entry.layers.len());
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let layer = archive_file(archive, contents, path)?;
            let media_type = match Compression::of_file(&blobs.path(&layer.hex))? {
                Compression::None => {
                    if layer.digest() != *diff_id {
                        return Err(Error::DigestMismatch {
                            expected: diff_id.clone(),
                            actual: layer.digest(),
                        });
                    }
                    MEDIA_DOCKER_LAYER
                }
                Compression::Gzip => MEDIA_DOCKER_LAYER_GZIP,
                Compression::Zstd => {
                    return Err(bad(
                        archive,
                        format!("layer {path} is zstd-compressed, which is not supported"),
                    ))
                }
            };
            layers.push(
                json!({ "mediaType": media_type, "size": layer.size, "digest": layer.digest() }),
            );
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_DOCKER_MANIFEST,
            "config": { "mediaType": MEDIA_DOCKER_CONFIG, "size": config.size, "digest": config.digest() },
            "layers": layers,
        });
        let stored = blobs.write_bytes(&serde_json::to_vec(&manifest)?, archive)?;
        let record = image_record(archive, blobs, &stored.hex)?;
        let names = entry
            .repo_tags
            .iter()
            .flatten()
            .map(|tag| normalized_name(archive, tag))
            .collect::<Result<Vec<_>>>()?;
        images.push(ArchiveImage { names, record });
    }
    Ok(images)
}

/// The stored blob of archive member `name` (as `manifest.json` spells it), following links.
fn archive_file<'a>(archive: &Path, contents: &'a Contents, name: &str) -> Result<&'a StoredBlob> {
    let missing = || {
        bad(
            archive,
            format!("manifest.json names {name:?}, which is not in the archive"),
        )
    };
    let mut path = normalize(name.as_bytes()).ok_or_else(missing)?;
    for _ in 0..=MAX_LINK_HOPS {
        if let Some(blob) = contents.files.get(&path) {
            return Ok(blob);
        }
        match contents.aliases.get(&path) {
            Some(target) => path = target.clone(),
            None => break,
        }
    }
    Err(missing())
}

/// Joins entries that resolve to the same manifest (one image listed under several names).
fn merge_by_manifest(images: Vec<ArchiveImage>) -> Vec<ArchiveImage> {
    let mut merged: Vec<ArchiveImage> = Vec::with_capacity(images.len());
    for image in images {
        match merged
            .iter_mut()
            .find(|m| m.record.manifest_digest == image.record.manifest_digest)
        {
            Some(existing) => {
                for name in image.names {
                    if !existing.names.contains(&name) {
                        existing.names.push(name);
                    }
                }
            }
            None => merged.push(image),
        }
    }
    merged
}

fn parse_json<T: DeserializeOwned>(archive: &Path, what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| bad(archive, format!("{what}: {e}")))
}

fn bad(archive: &Path, reason: impl Into<String>) -> Error {
    Error::BadArchive {
        path: archive.to_path_buf(),
        reason: reason.into(),
    }
}
