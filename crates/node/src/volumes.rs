//! A pod's volumes: what each one is ([`resolve`], reading ConfigMaps, Secrets and tokens through
//! the API), and where each container mounts them ([`mounts`]). The machine makes them real.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, Pod, ServiceAccountTokenProjection, Volume,
};
use kube::ResourceExt;
use runtime::volume::File;
use tokio::time::Instant;

use crate::machine::{referenced, IssuedToken, MachineError, PodApi};

/// What a volume is on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    EmptyDir {
        memory: bool,
        size_limit: Option<u64>,
        /// The pod's `fsGroup`, which owns the volume.
        fs_group: Option<u32>,
    },
    HostPath {
        path: PathBuf,
        kind: String,
    },
    /// Files the node writes (configMap, secret, downwardAPI, projected), kept up to date; in
    /// `memory` (a tmpfs, as the kubelet keeps all but configMap volumes, so that secrets never
    /// reach a disk); `fs_group` (the pod's `fsGroup`) owns them.
    Files {
        files: Vec<File>,
        memory: bool,
        fs_group: Option<u32>,
    },
}

impl Source {
    /// Projected files are mounted read-only whatever the mount says.
    pub fn always_read_only(&self) -> bool {
        matches!(self, Source::Files { .. })
    }
}

/// One bind mount into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub container_path: String,
    pub host_path: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// The default file mode of projected files (0644).
const DEFAULT_MODE: i32 = 0o644;
/// A bound token is renewed after 80 % of its life, and at least daily.
const TOKEN_RENEW_SHARE: f64 = 0.8;
const TOKEN_RENEW_MAX: Duration = Duration::from_secs(24 * 3600);

/// The volume kinds this node makes; `None` for one it cannot (the name of its field).
pub fn unsupported(v: &Volume) -> Option<&'static str> {
    let value = serde_json::to_value(v).ok()?;
    let fields = value.as_object()?;
    const MADE: &[&str] = &[
        "name",
        "emptyDir",
        "hostPath",
        "configMap",
        "secret",
        "downwardAPI",
        "projected",
    ];
    let field = fields.keys().find(|k| !MADE.contains(&k.as_str()))?;
    KNOWN_KINDS.iter().copied().find(|k| k == field)
}

/// Every volume source field of the Pod API (those not in `unsupported`'s list are refused).
const KNOWN_KINDS: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

/// Tokens already issued for a pod's projected volumes, by volume and path.
#[derive(Default)]
pub struct Tokens(HashMap<String, (IssuedToken, Instant)>);

impl Tokens {
    async fn get<A: PodApi>(
        &mut self,
        api: &A,
        pod: &Pod,
        key: String,
        spec: &ServiceAccountTokenProjection,
    ) -> Result<String, VolumeError> {
        if let Some((token, issued)) = self.0.get(&key) {
            let renew = token
                .lifetime
                .mul_f64(TOKEN_RENEW_SHARE)
                .min(TOKEN_RENEW_MAX);
            if issued.elapsed() < renew {
                return Ok(token.token.clone());
            }
        }
        let audiences = spec.audience.clone().into_iter().collect();
        let issued = api
            .token(pod, audiences, spec.expiration_seconds.unwrap_or(3600))
            .await?;
        let token = issued.token.clone();
        self.0.insert(key, (issued, Instant::now()));
        Ok(token)
    }
}

/// The pod's `fsGroup`, which owns the volumes that support ownership.
fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|sc| sc.fs_group)
        .and_then(|g| u32::try_from(g).ok())
}

/// What `v` is, reading what it projects from the API.
pub async fn resolve<A: PodApi>(
    api: &A,
    pod: &Pod,
    v: &Volume,
    tokens: &mut Tokens,
) -> Result<Source, VolumeError> {
    if let Some(e) = &v.empty_dir {
        return Ok(Source::EmptyDir {
            memory: e.medium.as_deref() == Some("Memory"),
            size_limit: e
                .size_limit
                .as_ref()
                .and_then(|q| api::quantity::parse(&q.0))
                .map(|n| api::quantity::to_units(n).max(0) as u64),
            fs_group: fs_group(pod),
        });
    }
    if let Some(h) = &v.host_path {
        return Ok(Source::HostPath {
            path: PathBuf::from(&h.path),
            kind: h.type_.clone().unwrap_or_default(),
        });
    }
    let mut files = Vec::new();
    if let Some(c) = &v.config_map {
        let mode = c.default_mode.unwrap_or(DEFAULT_MODE);
        let data = config_map_data(api, pod, &c.name, c.optional).await?;
        files = key_files(data, c.items.as_deref(), mode, "configmap", c.optional)?;
    } else if let Some(s) = &v.secret {
        let mode = s.default_mode.unwrap_or(DEFAULT_MODE);
        let name = s.secret_name.clone().unwrap_or_default();
        let data = secret_data(api, pod, &name, s.optional).await?;
        files = key_files(data, s.items.as_deref(), mode, "secret", s.optional)?;
    } else if let Some(d) = &v.downward_api {
        let mode = d.default_mode.unwrap_or(DEFAULT_MODE);
        files = downward_files(pod, d.items.iter().flatten(), mode)?;
    } else if let Some(p) = &v.projected {
        files = projected(api, pod, v, p, tokens).await?;
    }
    let memory = v.config_map.is_none();
    Ok(Source::Files {
        files,
        memory,
        fs_group: fs_group(pod),
    })
}

async fn projected<A: PodApi>(
    api: &A,
    pod: &Pod,
    v: &Volume,
    p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    tokens: &mut Tokens,
) -> Result<Vec<File>, VolumeError> {
    let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
    let mut files = Vec::new();
    for source in p.sources.iter().flatten() {
        if let Some(c) = &source.config_map {
            let data = config_map_data(api, pod, &c.name, c.optional).await?;
            files.extend(key_files(
                data,
                c.items.as_deref(),
                mode,
                "configmap",
                c.optional,
            )?);
        }
        if let Some(s) = &source.secret {
            let data = secret_data(api, pod, &s.name, s.optional).await?;
            files.extend(key_files(
                data,
                s.items.as_deref(),
                mode,
                "secret",
                s.optional,
            )?);
        }
        if let Some(d) = &source.downward_api {
            files.extend(downward_files(pod, d.items.iter().flatten(), mode)?);
        }
        if let Some(t) = &source.service_account_token {
            let key = format!("{}/{}", v.name, t.path);
            let token = tokens.get(api, pod, key, t).await?;
            files.push(File {
                path: t.path.clone(),
                data: token.into_bytes(),
                // A token is for the pod's processes alone unless a mode says otherwise.
                mode: p.default_mode.unwrap_or(0o600) as u32,
            });
        }
        if source.cluster_trust_bundle.is_some() {
            return Err(VolumeError::Unavailable(
                "clusterTrustBundle projections are not supported by this node".into(),
            ));
        }
    }
    Ok(files)
}

async fn config_map_data<A: PodApi>(
    api: &A,
    pod: &Pod,
    name: &str,
    optional: Option<bool>,
) -> Result<BTreeMap<String, Vec<u8>>, VolumeError> {
    let found = api
        .config_map(&pod.namespace().unwrap_or_default(), name)
        .await;
    let Some(cm) =
        referenced(found, "configmap", name, optional).map_err(VolumeError::Unavailable)?
    else {
        return Ok(BTreeMap::new());
    };
    let text = cm.data.unwrap_or_default().into_iter();
    let mut data: BTreeMap<String, Vec<u8>> = text.map(|(k, v)| (k, v.into_bytes())).collect();
    data.extend(
        cm.binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0)),
    );
    Ok(data)
}

async fn secret_data<A: PodApi>(
    api: &A,
    pod: &Pod,
    name: &str,
    optional: Option<bool>,
) -> Result<BTreeMap<String, Vec<u8>>, VolumeError> {
    let found = api.secret(&pod.namespace().unwrap_or_default(), name).await;
    let Some(secret) =
        referenced(found, "secret", name, optional).map_err(VolumeError::Unavailable)?
    else {
        return Ok(BTreeMap::new());
    };
    let data = secret.data.unwrap_or_default().into_iter();
    Ok(data.map(|(k, v)| (k, v.0)).collect())
}

/// The files of a configMap or secret: every key, or the listed items.
fn key_files(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: i32,
    kind: &str,
    optional: Option<bool>,
) -> Result<Vec<File>, VolumeError> {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(data
            .into_iter()
            .map(|(path, data)| File {
                path,
                data,
                mode: mode as u32,
            })
            .collect());
    };
    let mut files = Vec::new();
    for item in items {
        match data.get(&item.key) {
            Some(d) => files.push(File {
                path: item.path.clone(),
                data: d.clone(),
                mode: item.mode.unwrap_or(mode) as u32,
            }),
            None if optional == Some(true) => {}
            None => {
                return Err(VolumeError::Unavailable(format!(
                    "{kind} references non-existent config key: {}",
                    item.key
                )))
            }
        }
    }
    Ok(files)
}

fn downward_files<'a>(
    pod: &Pod,
    items: impl Iterator<Item = &'a DownwardAPIVolumeFile>,
    mode: i32,
) -> Result<Vec<File>, VolumeError> {
    let mut files = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            crate::downward::field(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            crate::downward::resource(pod, r)
        } else {
            Err(format!("{}: no fieldRef or resourceFieldRef", item.path))
        };
        files.push(File {
            path: item.path.clone(),
            data: value.map_err(VolumeError::Unavailable)?.into_bytes(),
            mode: item.mode.unwrap_or(mode) as u32,
        });
    }
    Ok(files)
}

/// Where `c`'s volume mounts come from. `ready` maps each volume name to its source and host
/// directory.
pub fn mounts(
    c: &Container,
    ready: &HashMap<String, (Source, PathBuf)>,
) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let (source, dir) = ready
            .get(&m.name)
            .ok_or_else(|| format!("volume \"{}\" is not ready", m.name))?;
        let host_path = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            None => dir.clone(),
            Some(sub) => sub_path(dir, sub, source)?,
        };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path,
            read_only: m.read_only.unwrap_or(false) || source.always_read_only(),
        });
    }
    Ok(out)
}

/// `subPath` inside a volume: created as a directory when missing (for volumes the pod writes),
/// and refused when it, or a link in it, leads out of the volume.
fn sub_path(dir: &Path, sub: &str, source: &Source) -> Result<PathBuf, String> {
    if !runtime::volume::is_contained(sub) {
        return Err(format!(
            "subPath {sub:?} must be a relative path without '..'"
        ));
    }
    let path = dir.join(sub);
    if std::fs::symlink_metadata(&path).is_err() && !source.always_read_only() {
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let real = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let root = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if !real.starts_with(&root) {
        return Err(format!("subpath {sub:?} leads outside of the volume"));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(json: serde_json::Value) -> Volume {
        serde_json::from_value(json).expect("volume")
    }

    #[test]
    fn kinds_the_node_cannot_make_are_named() {
        let pvc =
            volume(serde_json::json!({"name": "d", "persistentVolumeClaim": {"claimName": "c"}}));
        assert_eq!(unsupported(&pvc), Some("persistentVolumeClaim"));
        let e = volume(serde_json::json!({"name": "d", "emptyDir": {}}));
        assert_eq!(unsupported(&e), None);
    }

    #[test]
    fn items_pick_keys_and_a_missing_key_is_an_error_unless_optional() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]
        .into();
        let all = key_files(data.clone(), None, 0o644, "configmap", None).expect("all");
        assert_eq!(all.len(), 2);
        let items: Vec<KeyToPath> = serde_json::from_value(serde_json::json!([
            {"key": "b", "path": "dir/b.txt", "mode": 0o400}
        ]))
        .expect("items");
        let some = key_files(data.clone(), Some(&items), 0o644, "configmap", None).expect("some");
        assert_eq!(
            some,
            [File {
                path: "dir/b.txt".into(),
                data: b"2".to_vec(),
                mode: 0o400
            }]
        );
        let missing: Vec<KeyToPath> =
            serde_json::from_value(serde_json::json!([{"key": "z", "path": "z"}])).expect("items");
        let err =
            key_files(data.clone(), Some(&missing), 0o644, "configmap", None).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "configmap references non-existent config key: z"
        );
        assert!(
            key_files(data, Some(&missing), 0o644, "configmap", Some(true))
                .expect("optional")
                .is_empty()
        );
    }

    #[test]
    fn sub_paths_stay_inside_their_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vol = dir.path().join("v");
        std::fs::create_dir(&vol).expect("vol");
        std::os::unix::fs::symlink("/etc", vol.join("escape")).expect("link");
        let empty = Source::EmptyDir {
            memory: false,
            size_limit: None,
            fs_group: None,
        };
        let made = sub_path(&vol, "html", &empty).expect("made");
        assert!(made.is_dir());
        assert!(sub_path(&vol, "escape", &empty).is_err());
        assert!(sub_path(&vol, "../x", &empty).is_err());
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "volumeMounts": [
                {"name": "v", "mountPath": "/data", "subPath": "html", "readOnly": true},
                {"name": "cfg", "mountPath": "/cfg"}
            ]
        }))
        .expect("container");
        let ready: HashMap<String, (Source, PathBuf)> = [
            ("v".to_string(), (empty, vol.clone())),
            (
                "cfg".to_string(),
                (
                    Source::Files {
                        files: vec![],
                        memory: false,
                        fs_group: None,
                    },
                    vol.clone(),
                ),
            ),
        ]
        .into();
        let m = mounts(&c, &ready).expect("mounts");
        assert_eq!(m[0].host_path, made.canonicalize().expect("real"));
        assert!(m[0].read_only);
        assert!(m[1].read_only, "projected files are read-only");
    }
}
