//! The [`Reporter`] pod workers use on a real node: events through kube's recorder (as the
//! `kubelet` component of this node), status as a merge patch of `pods/status`, and the final
//! deletion of a pod the node has finished with.

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::machine::{PodEvent, Reporter};

pub struct ApiReporter {
    pub client: kube::Client,
    pub recorder: Recorder,
}

impl Reporter for ApiReporter {
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
