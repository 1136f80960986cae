//! Compute resources as the scheduler and the node count them: what a pod requests (its
//! containers, init containers and overhead) and what a node offers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// CPU in millicores, memory and ephemeral storage in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
}

impl Resources {
    /// The CPU, memory and ephemeral storage of a `requests`/`limits`/`allocatable` map; what
    /// does not parse counts as nothing (validation rejected it before it was stored).
    pub fn from_map(map: Option<&BTreeMap<String, Quantity>>) -> Self {
        let get = |name: &str| {
            map.and_then(|m| m.get(name))
                .and_then(|q| quantity::parse(&q.0))
        };
        Resources {
            milli_cpu: get("cpu").map_or(0, quantity::to_milli),
            memory: get("memory").map_or(0, quantity::to_units),
            ephemeral_storage: get("ephemeral-storage").map_or(0, quantity::to_units),
        }
    }

    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory: self.memory.saturating_add(other.memory),
            ephemeral_storage: self
                .ephemeral_storage
                .saturating_add(other.ephemeral_storage),
        }
    }

    pub fn max(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
        }
    }
}

type Requirements = k8s_openapi::api::core::v1::ResourceRequirements;

/// The containers' `pick` (requests or limits) as Kubernetes adds them up: the sum over the
/// containers (restartable init containers, i.e. sidecars, included), or the largest init
/// container plus the sidecars started before it, whichever is larger per resource.
fn aggregate(
    spec: &PodSpec,
    pick: impl Fn(&Requirements) -> Option<&BTreeMap<String, Quantity>>,
) -> Resources {
    let of = |r: Option<&Requirements>| Resources::from_map(r.and_then(&pick));
    let mut sum = spec.containers.iter().fold(Resources::default(), |acc, c| {
        acc.plus(of(c.resources.as_ref()))
    });
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for init in spec.init_containers.iter().flatten() {
        let own = of(init.resources.as_ref());
        if init.restart_policy.as_deref() == Some("Always") {
            sum = sum.plus(own);
            sidecars = sidecars.plus(own);
            init_max = init_max.max(sidecars);
        } else {
            init_max = init_max.max(own.plus(sidecars));
        }
    }
    sum.max(init_max)
}

/// What a pod requests, as Kubernetes computes it for scheduling: the containers' requests
/// added up ([`aggregate`]), plus the pod overhead.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    aggregate(spec, |r| r.requests.as_ref()).plus(Resources::from_map(spec.overhead.as_ref()))
}

/// What a pod's limits add up to, as Kubernetes computes them: the overhead is added only to
/// the limits that are set.
pub fn pod_limits(spec: &PodSpec) -> Resources {
    let total = aggregate(spec, |r| r.limits.as_ref());
    let overhead = Resources::from_map(spec.overhead.as_ref());
    let only_set = |limit: i64, extra: i64| if limit > 0 { limit + extra } else { limit };
    Resources {
        milli_cpu: only_set(total.milli_cpu, overhead.milli_cpu),
        memory: only_set(total.memory, overhead.memory),
        ephemeral_storage: only_set(total.ephemeral_storage, overhead.ephemeral_storage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn containers_add_up_and_init_containers_take_the_max() {
        let s = spec(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "0.5"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "1Mi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }));
        let r = pod_requests(&s);
        assert_eq!(r.milli_cpu, 2010);
        assert_eq!(r.memory, 64 << 20);
    }

    #[test]
    fn sidecars_count_with_the_containers() {
        let s = spec(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "i", "resources": {"requests": {"cpu": "1500m"}}},
            ],
        }));
        // The plain init container runs beside the sidecar: 2.5 CPUs at that moment.
        assert_eq!(pod_requests(&s).milli_cpu, 2500);
    }
}
