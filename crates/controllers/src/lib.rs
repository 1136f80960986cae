//! Control-plane controllers that run beside the API server, each an ordinary API client.
//!
//! - [`node_lifecycle`]: marks a node whose lease stopped being renewed as not ready
//!   (`Ready=Unknown`) and keeps the not-ready/unreachable taints in step with its condition.

pub mod node_lifecycle;
