//! A single-layer OCI image and its archive form (an OCI image layout in a tar).
//!
//! The archive holds `oci-layout`, `index.json` (one manifest, named by the annotations containerd
//! and other importers read), `blobs/sha256/<hex>` for the gzip layer, the config and the manifest,
//! and a `docker save`-style `manifest.json` pointing at the same blobs so `docker load` accepts it
//! too. Everything is reproducible: the same layer and run config give the same bytes and digests.

use std::io::{self, Write};

use flate2::{Compression, GzBuilder};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::tree::{Content, FileTree};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The creation time written into the config: the epoch, so rebuilds are byte-identical.
const CREATED: &str = "1970-01-01T00:00:00Z";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Gzip with a fixed header (no name, mtime 0), so equal input gives equal output.
pub fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// A content-addressed blob and its media type.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn digest(&self) -> String {
        sha256_digest(&self.bytes)
    }

    /// Where the blob lives in an OCI layout.
    pub fn layout_path(&self) -> String {
        format!("blobs/sha256/{}", hex::encode(Sha256::digest(&self.bytes)))
    }

    /// The OCI descriptor pointing at this blob.
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len() })
    }
}

/// What a container of the image runs: the `config` object of the image configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// Ports as `8080/tcp`.
    pub exposed_ports: Vec<String>,
}

impl RunConfig {
    fn to_json(&self) -> Value {
        let ports: Map<String, Value> = self
            .exposed_ports
            .iter()
            .map(|port| (port.clone(), json!({})))
            .collect();
        json!({
            "Entrypoint": self.entrypoint,
            "Env": self.env,
            "WorkingDir": self.working_dir,
            "ExposedPorts": ports,
        })
    }
}

/// A linux/amd64 image of one layer, named by a full reference such as `registry/repo:tag`.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: String,
    pub layer: Blob,
    pub config: Blob,
    pub manifest: Blob,
}

impl Image {
    /// Builds the image from an uncompressed layer tar; `created_by` goes into the history.
    pub fn build(
        reference: &str,
        layer_tar: &[u8],
        run: &RunConfig,
        created_by: &str,
    ) -> io::Result<Image> {
        let layer = Blob {
            media_type: LAYER_MEDIA_TYPE,
            bytes: gzip(layer_tar)?,
        };
        let config = json!({
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": run.to_json(),
            "rootfs": { "type": "layers", "diff_ids": [sha256_digest(layer_tar)] },
            "history": [{ "created": CREATED, "created_by": created_by }],
        });
        let config = Blob {
            media_type: CONFIG_MEDIA_TYPE,
            bytes: serde_json::to_vec(&config)?,
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        });
        let manifest = Blob {
            media_type: MANIFEST_MEDIA_TYPE,
            bytes: serde_json::to_vec(&manifest)?,
        };
        Ok(Image {
            reference: reference.to_owned(),
            layer,
            config,
            manifest,
        })
    }

    /// The image digest: the digest of its manifest.
    pub fn digest(&self) -> String {
        self.manifest.digest()
    }

    /// The image as a tar of an OCI image layout.
    pub fn to_archive(&self) -> io::Result<Vec<u8>> {
        let mut tree = FileTree::new();
        tree.dir("blobs", 0o755).dir("blobs/sha256", 0o755);
        for blob in [&self.layer, &self.config, &self.manifest] {
            tree.file(
                &blob.layout_path(),
                0o644,
                Content::Inline(blob.bytes.clone()),
            );
        }
        let layout = json!({ "imageLayoutVersion": "1.0.0" });
        tree.file(
            "oci-layout",
            0o644,
            Content::Inline(serde_json::to_vec(&layout)?),
        );
        tree.file(
            "index.json",
            0o644,
            Content::Inline(serde_json::to_vec(&self.index())?),
        );
        let docker = self.docker_manifest();
        tree.file(
            "manifest.json",
            0o644,
            Content::Inline(serde_json::to_vec(&docker)?),
        );
        tree.to_tar()
    }

    /// `index.json`: the one manifest, named for containerd (`io.containerd.image.name`) and by
    /// the OCI annotation, both with the full reference.
    fn index(&self) -> Value {
        let mut manifest = self.manifest.descriptor();
        manifest["annotations"] = json!({
            "io.containerd.image.name": self.reference,
            "org.opencontainers.image.ref.name": self.reference,
        });
        manifest["platform"] = json!({ "architecture": "amd64", "os": "linux" });
        json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [manifest] })
    }

    /// `manifest.json` as `docker save` writes it, over the same blobs.
    fn docker_manifest(&self) -> Value {
        json!([{
            "Config": self.config.layout_path(),
            "RepoTags": [self.reference],
            "Layers": [self.layer.layout_path()],
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    const REFERENCE: &str = "registry.example/demo/app:1";

    fn run_config() -> RunConfig {
        RunConfig {
            entrypoint: vec!["/app".to_owned()],
            env: vec!["PATH=/bin".to_owned()],
            working_dir: "/".to_owned(),
            exposed_ports: vec!["8080/tcp".to_owned()],
        }
    }

    /// A layer tar made from a tiny rootfs whose only binary is a real file in a tempdir.
    fn tiny_layer() -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = dir.path().join("app");
        std::fs::write(&app, b"\x7fELF pretend").expect("write");
        let mut rootfs = FileTree::new();
        rootfs
            .file("app", 0o755, Content::HostFile(app))
            .symlink("bin/sh", "busybox")
            .dir("tmp", 0o1777);
        rootfs.to_tar().expect("layer tar")
    }

    /// The archive's regular files by path.
    fn unpack(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut archive = tar::Archive::new(archive);
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            files.insert(path, bytes);
        }
        files
    }

    /// The blob a descriptor points at, after checking its digest and size.
    fn resolve<'a>(files: &'a BTreeMap<String, Vec<u8>>, descriptor: &Value) -> &'a [u8] {
        let digest = descriptor["digest"].as_str().expect("digest");
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let blob = files
            .get(&format!("blobs/sha256/{hex}"))
            .expect("blob present");
        assert_eq!(sha256_digest(blob), digest, "blob content matches its name");
        assert_eq!(
            descriptor["size"].as_u64(),
            Some(blob.len() as u64),
            "size of {digest}"
        );
        blob
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn archive_is_a_consistent_oci_layout() {
        let layer_tar = tiny_layer();
        let image = Image::build(REFERENCE, &layer_tar, &run_config(), "test").expect("image");
        let files = unpack(&image.to_archive().expect("archive"));

        assert_eq!(
            parse(&files["oci-layout"]),
            json!({ "imageLayoutVersion": "1.0.0" })
        );

        let index = parse(&files["index.json"]);
        assert_eq!(index["schemaVersion"], 2);
        let descriptor = &index["manifests"][0];
        assert_eq!(descriptor["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(
            descriptor["annotations"]["org.opencontainers.image.ref.name"],
            REFERENCE
        );
        assert_eq!(
            descriptor["annotations"]["io.containerd.image.name"],
            REFERENCE
        );
        assert_eq!(descriptor["digest"], image.digest());

        let manifest = parse(resolve(&files, descriptor));
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        let config = parse(resolve(&files, &manifest["config"]));
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        let layer = resolve(&files, &manifest["layers"][0]);

        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(layer)
            .read_to_end(&mut unzipped)
            .expect("gunzip");
        assert_eq!(unzipped, layer_tar);
        assert_eq!(config["rootfs"]["type"], "layers");
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!([sha256_digest(&layer_tar)])
        );
        assert_eq!(
            (config["architecture"].as_str(), config["os"].as_str()),
            (Some("amd64"), Some("linux"))
        );
        assert_eq!(config["config"]["Entrypoint"], json!(["/app"]));
        assert_eq!(config["config"]["ExposedPorts"], json!({ "8080/tcp": {} }));

        let docker = parse(&files["manifest.json"]);
        assert_eq!(docker[0]["RepoTags"], json!([REFERENCE]));
        assert!(files.contains_key(docker[0]["Config"].as_str().expect("config path")));
        assert!(files.contains_key(docker[0]["Layers"][0].as_str().expect("layer path")));
    }

    #[test]
    fn rebuilding_gives_identical_bytes_and_digest() {
        let first = Image::build(REFERENCE, &tiny_layer(), &run_config(), "test").expect("first");
        let second = Image::build(REFERENCE, &tiny_layer(), &run_config(), "test").expect("second");
        assert_eq!(first.digest(), second.digest());
        assert_eq!(
            first.to_archive().expect("archive"),
            second.to_archive().expect("archive")
        );
    }

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let data = b"hello hello hello".repeat(100);
        let packed = gzip(&data).expect("gzip");
        assert_eq!(packed, gzip(&data).expect("gzip again"));
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut unpacked)
            .expect("gunzip");
        assert_eq!(unpacked, data);
    }
}
