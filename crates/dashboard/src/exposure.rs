//! Who the dashboard answers: the Host names it serves, the proxies it believes, and who a client is.
//!
//! - **Host allow-list.** A request is answered only for the Host values its bind address implies
//!   (`127.0.0.1:<port>`, `localhost:<port>`, `[::1]:<port>` for a loopback or wildcard bind, the
//!   address itself for a specific one) and the public names given with `--public-host`. Any other Host
//!   gets `421` and no page: a web page a friend visits cannot read the dashboard through DNS rebinding
//!   (its requests carry the attacker's name as Host).
//! - **Proxies.** One header names the client: the one `--client-ip-header` chooses
//!   ([`ClientIpHeader`]: `X-Forwarded-For` by default, `X-Real-IP` or `Forwarded`), the header the
//!   trusted proxies set. It is read only when the connection comes from a proxy named with
//!   `--trusted-proxy`; the client is then the rightmost address in it that is not a trusted proxy.
//!   The other two headers are never read: a proxy that sets only `X-Real-IP` passes a client's own
//!   `X-Forwarded-For` through, and believing it would let the client choose its own address. From
//!   anyone but a trusted proxy no header is read (a client could name any address there).
//! - **No password, no proxy.** A dashboard without a password is meant for this machine only. A request
//!   that came through a proxy (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`) would make it public, so it is
//!   refused with `403`.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, bail};
use axum::http::{HeaderMap, Request, header};

/// The headers a reverse proxy adds.
pub const PROXY_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// The header the trusted proxies set to name the client (`--client-ip-header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx's `$proxy_add_x_forwarded_for`, HAProxy's
    /// `option forwardfor`, Caddy, Traefik).
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// `X-Real-IP: client` (nginx's `proxy_set_header X-Real-IP $remote_addr`).
    #[value(name = "x-real-ip")]
    XRealIp,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    #[value(name = "forwarded")]
    Forwarded,
}

impl ClientIpHeader {
    /// The header's name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "x-forwarded-for",
            ClientIpHeader::XRealIp => "x-real-ip",
            ClientIpHeader::Forwarded => "forwarded",
        }
    }
}

/// An address or network (`192.0.2.1`, `10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            format!("`{text}` is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)")
        })?;
        let address = canonical(address);
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { address, prefix })
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What the dashboard answers and whom it believes.
#[derive(Debug, Clone)]
pub struct Exposure {
    /// Host values answered (lower case, with the port where one was given).
    hosts: Vec<String>,
    /// Proxies whose client header is believed.
    trusted_proxies: Vec<Network>,
    /// The one header that names the client.
    client_header: ClientIpHeader,
    /// Whether a group password guards the pages (without one, proxied requests are refused).
    password: bool,
}

/// What [`Exposure::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Answer it.
    Admit,
    /// The Host is not one of ours: `421`.
    ForeignHost,
    /// Proxied, and there is no password: `403`.
    ProxiedWithoutPassword,
}

impl Exposure {
    /// The Host values `bind` implies, plus `public_hosts`; fails when nothing but this machine could
    /// reach a wildcard bind.
    pub fn new(
        bind: SocketAddr,
        public_hosts: &[String],
        trusted_proxies: &[Network],
        password: bool,
    ) -> Result<Exposure> {
        let port = bind.port();
        let mut hosts = Vec::new();
        let ip = canonical(bind.ip());
        if ip.is_loopback() || ip.is_unspecified() {
            hosts.extend([
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ]);
        } else {
            hosts.push(SocketAddr::new(ip, port).to_string());
        }
        if ip.is_unspecified() && public_hosts.is_empty() {
            bail!(
                "listening on {bind} (every address) needs `--public-host` (or `{}`) naming how friends \
                 reach the dashboard, e.g. `--public-host music.example.org` or `--public-host \
                 192.168.1.20:{port}`: requests for any other host name are refused",
                earshot_core::env::EARSHOT_DASHBOARD_PUBLIC_HOSTS
            );
        }
        for host in public_hosts {
            let host = host.trim().to_ascii_lowercase();
            if host.is_empty()
                || host.contains(['/', '\\', '@', ' ', '?', '#'])
                || host.chars().any(|c| c.is_control())
            {
                bail!(
                    "`--public-host {host}`: give a host name, optionally with its port \
                     (music.example.org, music.example.org:8443), not a URL"
                );
            }
            hosts.push(host);
        }
        Ok(Exposure {
            hosts,
            trusted_proxies: trusted_proxies.to_vec(),
            client_header: ClientIpHeader::default(),
            password,
        })
    }

    /// The loopback exposure of a test or local dashboard on `port`.
    pub fn loopback(port: u16, password: bool) -> Exposure {
        Exposure::new(SocketAddr::from(([127, 0, 0, 1], port)), &[], &[], password)
            .expect("a loopback bind needs no public host")
    }

    /// The same, believing these proxies.
    pub fn with_trusted_proxies(mut self, proxies: &[Network]) -> Exposure {
        self.trusted_proxies = proxies.to_vec();
        self
    }

    /// The same, reading the client's address from `header` only.
    pub fn with_client_ip_header(mut self, header: ClientIpHeader) -> Exposure {
        self.client_header = header;
        self
    }

    /// The proxies believed.
    pub fn trusted_proxies(&self) -> &[Network] {
        &self.trusted_proxies
    }

    /// The Host values answered.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Whether to answer this request at all.
    pub fn admit<B>(&self, request: &Request<B>) -> Admission {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        let known = host.is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            self.hosts.iter().any(|allowed| *allowed == h)
        });
        if !known {
            return Admission::ForeignHost;
        }
        if !self.password
            && PROXY_HEADERS
                .iter()
                .any(|h| request.headers().contains_key(*h))
        {
            return Admission::ProxiedWithoutPassword;
        }
        Admission::Admit
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost address
    /// of the client header ([`ClientIpHeader`]) that is not a trusted proxy. Addresses a proxy could
    /// not read (`unknown`, obfuscated names) end the walk at the proxy itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(peer) {
            return canonical(peer);
        }
        let mut chain: Vec<Option<IpAddr>> = forwarded_for(headers, self.client_header);
        let mut client = canonical(peer);
        while let Some(hop) = chain.pop() {
            match hop {
                Some(ip) => {
                    client = canonical(ip);
                    if !self.trusted(client) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// The addresses a request went through, oldest first, from the one header `which` names
/// (`Forwarded`'s `for=`); `None` for a hop that is not an address.
fn forwarded_for(headers: &HeaderMap, which: ClientIpHeader) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .collect()
    };
    if which != ClientIpHeader::Forwarded {
        return values(which.name())
            .iter()
            .map(|hop| parse_hop(hop))
            .collect();
    }
    values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_hop(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, extra: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/status").header("host", host);
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn hosts_the_bind_implies_and_the_public_ones() {
        let local = Exposure::loopback(8080, false);
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert_eq!(local.admit(&request(host, &[])), Admission::Admit, "{host}");
        }
        for host in [
            "rebind.attacker.example",
            "rebind.attacker.example:8080",
            "127.0.0.1:9090",
            "localhost",
            "",
        ] {
            assert_eq!(
                local.admit(&request(host, &[])),
                Admission::ForeignHost,
                "{host}"
            );
        }
        let public = Exposure::new(
            "0.0.0.0:8080".parse().unwrap(),
            &["Music.Example.org".into(), "192.168.1.20:8080".into()],
            &[],
            true,
        )
        .unwrap();
        for host in ["music.example.org", "192.168.1.20:8080", "localhost:8080"] {
            assert_eq!(
                public.admit(&request(host, &[])),
                Admission::Admit,
                "{host}"
            );
        }
        assert_eq!(
            public.admit(&request("music.example.org:8443", &[])),
            Admission::ForeignHost
        );
        let specific = Exposure::new("192.168.1.20:80".parse().unwrap(), &[], &[], true).unwrap();
        assert_eq!(specific.hosts(), ["192.168.1.20:80"]);
        let err = Exposure::new("[::]:8080".parse().unwrap(), &[], &[], true).unwrap_err();
        assert!(err.to_string().contains("--public-host"), "{err}");
        let err = Exposure::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["https://music.example.org/".into()],
            &[],
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a URL"), "{err}");
    }

    #[test]
    fn without_a_password_a_proxied_request_is_refused() {
        let local = Exposure::loopback(8080, false);
        for header in PROXY_HEADERS {
            assert_eq!(
                local.admit(&request("127.0.0.1:8080", &[(header, "192.0.2.1")])),
                Admission::ProxiedWithoutPassword,
                "{header}"
            );
        }
        let guarded = Exposure::loopback(8080, true);
        assert_eq!(
            guarded.admit(&request(
                "127.0.0.1:8080",
                &[("x-forwarded-for", "192.0.2.1")]
            )),
            Admission::Admit
        );
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxies: Vec<Network> =
            vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let exposure = Exposure::loopback(8080, true).with_trusted_proxies(&proxies);
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            map
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            exposure.client(ip("198.51.100.1"), &spoofed),
            ip("198.51.100.1")
        );
        assert_eq!(
            exposure.client(ip("127.0.0.1"), &spoofed),
            ip("203.0.113.7")
        );
        let chain = headers(&[("x-forwarded-for", "203.0.113.7, 198.51.100.9, 10.1.2.3")]);
        assert_eq!(
            exposure.client(ip("127.0.0.1"), &chain),
            ip("198.51.100.9"),
            "the rightmost untrusted hop: the left ones are the client's to write"
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=https, for=\"[2001:db8::7]:4711\"",
        )]);
        assert_eq!(
            exposure.client(ip("127.0.0.1"), &forwarded),
            ip("127.0.0.1"),
            "X-Forwarded-For mode reads no other header"
        );
        let rfc7239 = exposure
            .clone()
            .with_client_ip_header(ClientIpHeader::Forwarded);
        assert_eq!(
            rfc7239.client(ip("::ffff:127.0.0.1"), &forwarded),
            ip("2001:db8::7")
        );
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(rfc7239.client(ip("127.0.0.1"), &unknown), ip("127.0.0.1"));
        // X-Real-IP mode: a proxy that sets only X-Real-IP passes the client's own X-Forwarded-For
        // through; it is never read.
        let real_ip = exposure
            .clone()
            .with_client_ip_header(ClientIpHeader::XRealIp);
        let both = headers(&[
            ("x-real-ip", "198.51.100.20"),
            ("x-forwarded-for", "203.0.113.66"),
            ("forwarded", "for=203.0.113.67"),
        ]);
        assert_eq!(real_ip.client(ip("127.0.0.1"), &both), ip("198.51.100.20"));
        assert_eq!(
            real_ip.client(ip("127.0.0.1"), &spoofed),
            ip("127.0.0.1"),
            "no X-Real-IP: the proxy itself"
        );
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("proxy.local".parse::<Network>().is_err());
    }
}
