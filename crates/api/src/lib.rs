//! The Kubernetes API as kubelite understands it: which resources exist, how objects are defaulted
//! and validated, how failures become `Status` errors, how objects print as server-side tables, and
//! how patches apply.
//!
//! Start at [`resource::RESOURCES`] (what is served) and [`registry`] (what happens to an object on
//! each write). Types come from `k8s-openapi`; this crate adds only what it lacks.
//!
//! **Invariant:** this crate does no I/O: no network, no files, no clocks other than "now" for
//! timestamps. Everything here is a pure function of its inputs and unit-tested as such.

pub mod label_selector;
pub mod limit_range;
pub mod meta;
pub mod patch;
pub mod pdb;
pub mod pod;
pub mod priority;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod resource;
pub mod resources;
pub mod secret;
pub mod selector;
pub mod service;
pub mod status;
pub mod table;
pub mod templates;
pub mod validation;

pub use k8s_openapi;
pub use status::ApiError;
