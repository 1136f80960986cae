//! The [`PodApi`] pod workers use on a real node: events through kube's recorder (as the
//! `kubelet` component of this node), status as a merge patch of `pods/status`, and the final
//! deletion of a pod the node has finished with.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::machine::{IssuedToken, MachineError, MachineResult, PodApi, PodEvent};

pub struct KubeApi {
    pub client: kube::Client,
    pub recorder: Recorder,
}

/// A read that found nothing is `None`; other failures are errors.
fn found<T>(read: Result<T, kube::Error>) -> MachineResult<Option<T>> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(MachineError::Other(e.to_string())),
    }
}

impl PodApi for KubeApi {
    async fn config_map(&self, namespace: &str, name: &str) -> MachineResult<Option<ConfigMap>> {
        found(
            Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
                .get(name)
                .await,
        )
    }

    async fn secret(&self, namespace: &str, name: &str) -> MachineResult<Option<Secret>> {
        found(
            Api::<Secret>::namespaced(self.client.clone(), namespace)
                .get(name)
                .await,
        )
    }

    async fn token(
        &self,
        pod: &Pod,
        audiences: Vec<String>,
        expiration_seconds: i64,
    ) -> MachineResult<IssuedToken> {
        let namespace = pod.namespace().unwrap_or_default();
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences,
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.name_any()),
                    uid: pod.uid(),
                }),
            },
            ..Default::default()
        };
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &namespace);
        let issued = api
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .map_err(|e| MachineError::Other(e.to_string()))?;
        let status = issued
            .status
            .ok_or_else(|| MachineError::Other("the token request has no status".into()))?;
        let lifetime = status
            .expiration_timestamp
            .0
            .duration_since(k8s_openapi::jiff::Timestamp::now())
            .unsigned_abs();
        Ok(IssuedToken {
            token: status.token,
            lifetime,
        })
    }

    async fn event(&self, pod: &Pod, event: PodEvent) {
        let mut reference = pod.object_ref(&());
        reference.field_path = event.field;
        // The recorder folds events with the same reason and action into one series. As the
        // kubelet's event correlator does, only identical messages may fold: "Pulling image a"
        // and, later, "Pulling image b" are two events.
        let action = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(event.note.as_bytes());
            format!("{}-{}", event.reason, hex::encode(&digest[..4]))
        };
        let ev = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason,
            note: Some(event.note),
            action,
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&ev, &reference).await {
            tracing::debug!(%err, "recording an event failed");
        }
    }

    async fn status(&self, pod: &Pod, status: &PodStatus) -> bool {
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({ "status": status });
        match api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!(%err, "status update failed");
                false
            }
        }
    }

    async fn deleted(&self, pod: &Pod) {
        match confirm_deletion(&self.client, pod).await {
            Ok(()) => tracing::info!("pod deleted"),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(err) => tracing::warn!(%err, "finishing a pod's deletion failed"),
        }
    }
}

/// Tells the API server the node is done with a deleted pod (grace period 0, for this very pod):
/// the object goes away. A pod already gone is no error.
pub async fn confirm_deletion(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&pod.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
