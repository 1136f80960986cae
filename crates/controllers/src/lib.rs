//! Control-plane controllers that run beside the API server, each an ordinary API client.
//!
//! - [`node_lifecycle`]: marks a node whose lease stopped being renewed as not ready
//!   (`Ready=Unknown`) and keeps the not-ready/unreachable taints in step with its condition.
//! - [`disruption`]: the status of every PodDisruptionBudget, from the pods it selects.
//! - [`resource_quota`]: the status (hard and used) of every ResourceQuota.
//! - [`namespace_defaults`]: the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in
//!   every namespace.

pub mod disruption;
mod informer;
pub mod namespace_defaults;
pub mod node_lifecycle;
pub mod resource_quota;
