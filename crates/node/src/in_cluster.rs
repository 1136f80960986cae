//! How pods reach the API server (there is no Service proxy yet): every container gets the
//! `KUBERNETES_SERVICE_*` variables of the `kubernetes` Service naming an address the pod network
//! reaches. When the agent talks to the server on loopback (one machine), that address is the pod
//! bridge's gateway, where the agent relays connections to the server unchanged (TLS passes
//! through; the server's certificate names the gateway).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

/// Where pods reach the API server, and where the agent relays from there, if it must.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiAccess {
    pub address: SocketAddr,
    /// `(listen, server)`: relay connections made to `listen` on to `server`.
    pub relay: Option<(SocketAddr, SocketAddr)>,
}

/// The gateway of a pod subnet (`10.42.0.0/24` → `10.42.0.1`), as the bridge plugin assigns it.
pub fn gateway(subnet: &str) -> Option<IpAddr> {
    let base: Ipv4Addr = subnet.split('/').next()?.parse().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(u32::from(base) + 1)))
}

impl ApiAccess {
    /// For an agent whose client reaches the server at `server`, with pods on `subnet`.
    pub fn new(server: SocketAddr, subnet: &str) -> Option<Self> {
        if !(server.ip().is_loopback() || server.ip().is_unspecified()) {
            return Some(ApiAccess {
                address: server,
                relay: None,
            });
        }
        let listen = SocketAddr::new(gateway(subnet)?, server.port());
        let target = SocketAddr::new(
            if server.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                server.ip()
            },
            server.port(),
        );
        Some(ApiAccess {
            address: listen,
            relay: Some((listen, target)),
        })
    }

    /// The variables the kubelet gives every container for the `kubernetes` Service.
    pub fn env(&self) -> Vec<(String, String)> {
        let (ip, port) = (self.address.ip(), self.address.port());
        let url = format!("tcp://{}", self.address);
        let tcp = format!("KUBERNETES_PORT_{port}_TCP");
        vec![
            ("KUBERNETES_SERVICE_HOST".into(), ip.to_string()),
            ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
            ("KUBERNETES_PORT".into(), url.clone()),
            (tcp.clone(), url),
            (format!("{tcp}_PROTO"), "tcp".into()),
            (format!("{tcp}_PORT"), port.to_string()),
            (format!("{tcp}_ADDR"), ip.to_string()),
        ]
    }
}

/// The relay, started once the gateway address exists (the first sandbox makes the bridge).
#[derive(Default)]
pub struct Relay(Mutex<bool>);

impl Relay {
    /// Starts relaying `listen` → `server` unless it already runs; false while `listen` cannot
    /// be bound yet.
    pub fn ensure(&self, listen: SocketAddr, server: SocketAddr) -> bool {
        let Ok(mut running) = self.0.lock() else {
            return false;
        };
        if *running {
            return true;
        }
        let listener = match std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .and_then(tokio::net::TcpListener::from_std)
        {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(%listen, %err, "the API relay for pods cannot listen yet");
                return false;
            }
        };
        tracing::info!(%listen, %server, "relaying pods' API connections");
        tokio::spawn(relay(listener, server));
        *running = true;
        true
    }
}

async fn relay(listener: tokio::net::TcpListener, server: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(server).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_reach_a_loopback_server_through_their_gateway() {
        let local: SocketAddr = "127.0.0.1:6443".parse().expect("addr");
        let access = ApiAccess::new(local, "10.42.3.0/24").expect("access");
        let gateway: SocketAddr = "10.42.3.1:6443".parse().expect("addr");
        assert_eq!(access.address, gateway);
        assert_eq!(access.relay, Some((gateway, local)));
        let env = access.env();
        assert!(env.contains(&("KUBERNETES_SERVICE_HOST".into(), "10.42.3.1".into())));
        assert!(env.contains(&("KUBERNETES_PORT_6443_TCP_ADDR".into(), "10.42.3.1".into())));
        let remote: SocketAddr = "192.0.2.7:6443".parse().expect("addr");
        let access = ApiAccess::new(remote, "10.42.3.0/24").expect("access");
        assert_eq!((access.address, access.relay), (remote, None));
    }
}
