//! Services (core/v1) as kube-apiserver keeps them: their defaults, the cluster IP and node
//! ports it allocates (and keeps on update), and the `kubernetes` Service with the Endpoints and
//! EndpointSlice naming the API server. kubelite runs no service proxy yet: cluster IPs and node
//! ports are allocated and stored but not routed.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use crate::validation::{BadValue, ErrorList};

/// The node ports Kubernetes allocates from.
pub const NODE_PORTS: std::ops::RangeInclusive<i32> = 30000..=32767;

/// An IPv4 range (`10.43.0.0/16`) that cluster IPs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    base: u32,
    prefix: u8,
}

impl IpRange {
    /// Parses `a.b.c.d/n` (n from 8 to 30).
    pub fn parse(text: &str) -> Option<IpRange> {
        let (ip, prefix) = text.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if !(8..=30).contains(&prefix) {
            return None;
        }
        let mask = u32::MAX << (32 - prefix);
        Some(IpRange {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    fn size(self) -> u32 {
        1 << (32 - self.prefix)
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(self.base);
        offset > 0 && offset < self.size() - 1
    }

    /// The `n`th address of the range (the first, `.1`, is the `kubernetes` Service's).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn service_type(svc: &Service) -> &str {
    svc.spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP")
}

/// Kubernetes' defaults for a Service.
pub fn set_defaults(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    let kind = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
    spec.session_affinity.get_or_insert_with(|| "None".into());
    for port in spec.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".into());
        port.target_port.get_or_insert(IntOrString::Int(port.port));
    }
    if kind == "ExternalName" {
        return;
    }
    spec.ip_families.get_or_insert_with(|| vec!["IPv4".into()]);
    spec.ip_family_policy
        .get_or_insert_with(|| "SingleStack".into());
    spec.internal_traffic_policy
        .get_or_insert_with(|| "Cluster".into());
    if kind == "NodePort" || kind == "LoadBalancer" {
        spec.external_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
    }
}

/// What other Services hold: cluster IPs and node ports.
#[derive(Debug, Default)]
pub struct Taken {
    pub ips: HashSet<Ipv4Addr>,
    pub node_ports: HashSet<i32>,
}

impl Taken {
    pub fn of(services: &[Service]) -> Taken {
        let mut taken = Taken::default();
        for s in services {
            let spec = s.spec.clone().unwrap_or_default();
            for ip in spec.cluster_ips.iter().flatten() {
                if let Ok(ip) = ip.parse() {
                    taken.ips.insert(ip);
                }
            }
            for p in spec.ports.iter().flatten() {
                if let Some(n) = p.node_port {
                    taken.node_ports.insert(n);
                }
            }
        }
        taken
    }
}

/// Gives a new Service its cluster IP and node ports (checking those it asks for), as
/// kube-apiserver's allocators do.
pub fn allocate(svc: &mut Service, range: IpRange, taken: &Taken) -> ErrorList {
    let mut errs = ErrorList::new();
    let kind = service_type(svc).to_string();
    let spec = svc.spec.get_or_insert_with(Default::default);
    if kind == "ExternalName" {
        return errs;
    }
    let asked = spec
        .cluster_ip
        .clone()
        .or_else(|| spec.cluster_ips.as_ref().and_then(|v| v.first().cloned()))
        .unwrap_or_default();
    let ip = match asked.as_str() {
        "None" => Some("None".to_string()),
        "" => (2..range.size() - 1)
            .map(|n| range.nth(n))
            .find(|ip| !taken.ips.contains(ip))
            .map(|ip| ip.to_string()),
        text => match text.parse::<Ipv4Addr>() {
            Ok(ip) if !range.contains(ip) => {
                errs.invalid(
                    "spec.clusterIPs",
                    BadValue::Raw(format!("[]string{{{text:?}}}")),
                    format!("failed to allocate IP {text}: the provided IP ({text}) is not in the valid range. The range of valid IPs is {range}"),
                );
                None
            }
            Ok(ip) if taken.ips.contains(&ip) => {
                errs.invalid(
                    "spec.clusterIPs",
                    BadValue::Raw(format!("[]string{{{text:?}}}")),
                    format!("failed to allocate IP {text}: provided IP is already allocated"),
                );
                None
            }
            Ok(_) => Some(text.to_string()),
            Err(_) => {
                errs.invalid(
                    "spec.clusterIP",
                    BadValue::Str(text.to_string()),
                    "must be empty, 'None', or a valid IP address",
                );
                None
            }
        },
    };
    if let Some(ip) = ip {
        spec.cluster_ip = Some(ip.clone());
        spec.cluster_ips = Some(vec![ip]);
    } else if errs.is_empty() {
        errs.forbidden("spec.clusterIPs", format!("range {range} is full"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        let mut used = taken.node_ports.clone();
        for (i, port) in spec.ports.iter_mut().flatten().enumerate() {
            match port.node_port {
                Some(n) if used.contains(&n) => errs.invalid(
                    format!("spec.ports[{i}].nodePort"),
                    BadValue::Int(i64::from(n)),
                    "provided port is already allocated",
                ),
                Some(n) if !NODE_PORTS.contains(&n) => errs.invalid(
                    format!("spec.ports[{i}].nodePort"),
                    BadValue::Int(i64::from(n)),
                    format!("provided port is not in the valid range. The range of valid ports is {}-{}", NODE_PORTS.start(), NODE_PORTS.end()),
                ),
                Some(n) => {
                    used.insert(n);
                }
                None => {
                    if let Some(n) = NODE_PORTS.clone().find(|n| !used.contains(n)) {
                        used.insert(n);
                        port.node_port = Some(n);
                    }
                }
            }
        }
    }
    errs
}

/// An update keeps what was allocated when it does not say (as `kubectl apply` leaves it out)
/// and may not change it.
pub fn keep_allocated(new: &mut Service, old: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    let old_spec = old.spec.clone().unwrap_or_default();
    let spec = new.spec.get_or_insert_with(Default::default);
    let asked = spec.cluster_ip.clone().unwrap_or_default();
    match old_spec.cluster_ip.clone() {
        Some(old_ip) if asked.is_empty() => {
            spec.cluster_ip = Some(old_ip);
            spec.cluster_ips = old_spec.cluster_ips.clone();
        }
        Some(old_ip) if asked != old_ip => {
            errs.invalid("spec.clusterIP", BadValue::Str(asked), "field is immutable")
        }
        _ => {}
    }
    if spec.cluster_ips.is_none() {
        spec.cluster_ips = old_spec.cluster_ips.clone();
    }
    for port in spec.ports.iter_mut().flatten() {
        if port.node_port.is_none() {
            port.node_port = old_spec
                .ports
                .iter()
                .flatten()
                .find(|p| p.port == port.port && p.protocol == port.protocol)
                .and_then(|p| p.node_port);
        }
    }
    errs
}

/// The `kubernetes` Service in `default`, at the range's first address.
pub fn kubernetes_service(range: IpRange, port: u16) -> Value {
    let ip = range.nth(1).to_string();
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                 "sessionAffinity": "None"},
    })
}

/// The `kubernetes` Endpoints: the API server's address.
pub fn kubernetes_endpoints(ip: Ipv4Addr, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip.to_string()}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    })
}

/// The `kubernetes` EndpointSlice: the API server's address.
pub fn kubernetes_endpoint_slice(ip: Ipv4Addr, port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: Value) -> Service {
        let mut s: Service =
            serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": v}))
                .expect("a service");
        set_defaults(&mut s);
        s
    }

    fn texts(errs: ErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn services_get_a_free_address_and_node_ports() {
        let range = IpRange::parse("10.43.0.0/16").expect("a range");
        let taken = Taken::of(&[svc(
            json!({"clusterIP": "10.43.0.2", "clusterIPs": ["10.43.0.2"],
            "ports": [{"port": 80, "nodePort": 30000}]}),
        )]);
        let mut s = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        assert!(allocate(&mut s, range, &taken).is_empty());
        let spec = s.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.43.0.3"));
        let port = &spec.ports.expect("ports")[0];
        assert_eq!(
            (port.node_port, port.target_port.clone()),
            (Some(30001), Some(IntOrString::Int(80)))
        );
    }

    #[test]
    fn asked_for_addresses_are_checked() {
        let range = IpRange::parse("10.43.0.0/16").expect("a range");
        let taken = Taken::of(&[svc(json!({"clusterIPs": ["10.43.0.9"]}))]);
        let mut outside = svc(json!({"clusterIP": "10.44.0.5"}));
        assert_eq!(
            texts(allocate(&mut outside, range, &taken)),
            ["spec.clusterIPs: Invalid value: []string{\"10.44.0.5\"}: failed to allocate IP 10.44.0.5: the provided IP (10.44.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16"]
        );
        let mut twice = svc(json!({"clusterIP": "10.43.0.9"}));
        assert!(texts(allocate(&mut twice, range, &taken))[0]
            .ends_with("provided IP is already allocated"));
        let mut headless = svc(json!({"clusterIP": "None"}));
        assert!(allocate(&mut headless, range, &taken).is_empty());
        assert_eq!(
            headless.spec.expect("spec").cluster_ips,
            Some(vec!["None".to_string()])
        );
    }

    #[test]
    fn updates_keep_the_address_and_may_not_change_it() {
        let old = svc(json!({"clusterIP": "10.43.0.7", "clusterIPs": ["10.43.0.7"]}));
        let mut silent = svc(json!({}));
        assert!(keep_allocated(&mut silent, &old).is_empty());
        assert_eq!(
            silent.spec.expect("spec").cluster_ip.as_deref(),
            Some("10.43.0.7")
        );
        let mut moved = svc(json!({"clusterIP": "10.43.0.8"}));
        assert_eq!(
            texts(keep_allocated(&mut moved, &old)),
            ["spec.clusterIP: Invalid value: \"10.43.0.8\": field is immutable"]
        );
    }
}
