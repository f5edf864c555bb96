//! Probe addresses without DNS (SPEC §4): `HOST:PORT` and `http://HOST[:PORT]/PATH`
//! where HOST is an IP literal (IPv6 in brackets), `localhost`, or a name listed
//! in the hosts file.
//!
//! Pure: the hosts file's text is an argument ([`super::load`] reads
//! `/etc/hosts` once per load), so tests never depend on the machine. A DNS
//! lookup would block tend's single loop, so a name found nowhere is an error
//! that says so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The first address the hosts file gives `name` (case-insensitive), if any.
pub fn lookup(hosts: &str, name: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let ip: IpAddr = fields.next()?.parse().ok()?;
        fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

/// HOST → an address: an IP literal (bare, or `[v6]`), `localhost` (always
/// 127.0.0.1, whatever the hosts file says, so a probe's target is predictable),
/// or a name from `hosts`.
pub fn resolve(host: &str, hosts: &str) -> Result<IpAddr, String> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("{inner:?} is not an IPv6 address"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let plausible = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !plausible {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    lookup(hosts, host).ok_or_else(|| {
        format!(
            "{host:?} is not an IP address, \"localhost\" or a name in /etc/hosts; \
             tend does not use DNS (a lookup would block its loop): use an IP address \
             or add the name to /etc/hosts"
        )
    })
}

/// `HOST:PORT` → the socket address to connect to. Port 1 to 65535.
pub fn address(text: &str, hosts: &str) -> Result<SocketAddr, String> {
    let (host, port) = split_host_port(text).ok_or_else(|| {
        format!("expected HOST:PORT such as \"127.0.0.1:5432\" or \"[::1]:5432\", got {text:?}")
    })?;
    let port = port_number(port)?;
    Ok(SocketAddr::new(resolve(host, hosts)?, port))
}

/// An http probe's target: where to connect, the `Host` header, and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub address: SocketAddr,
    pub host: String,
    pub path: String,
}

/// `http://HOST[:PORT][/PATH][?QUERY]` (port 80 by default, path `/`). https is
/// an error: tend has no TLS.
pub fn http_url(text: &str, hosts: &str) -> Result<HttpTarget, String> {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(format!(
            "{text:?}: https is not supported (tend has no TLS); probe the plain http port, or use a tcp or exec check"
        ));
    }
    let Some(rest) = text.get(7..).filter(|_| lower.starts_with("http://")) else {
        return Err(format!(
            "expected an http:// URL such as \"http://127.0.0.1:8080/healthz\", got {text:?}"
        ));
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!("{text:?}: a user in the URL is not supported"));
    }
    if authority.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    let (host, port) = match split_host_port(authority) {
        Some((host, port)) => (host, port_number(port)?),
        None if authority.ends_with(']') || !authority.contains(':') => (authority, 80),
        None => return Err(format!("{text:?}: bad host or port {authority:?}")),
    };
    let ip = resolve(host, hosts)?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!(
            "{text:?}: the path must not hold spaces or control characters (encode them as %20 ...)"
        ));
    }
    Ok(HttpTarget {
        address: SocketAddr::new(ip, port),
        host: authority.to_string(),
        path,
    })
}

/// `host:port` or `[v6]:port`, split at the port's colon; `None` when there is
/// no port or a bare IPv6 address.
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if text.starts_with('[') {
        let close = text.find(']')?;
        let (host, rest) = text.split_at(close + 1);
        return Some((host, rest.strip_prefix(':')?));
    }
    let (host, port) = text.rsplit_once(':')?;
    (!host.is_empty() && !host.contains(':')).then_some((host, port))
}

fn port_number(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("{port:?} is not a port number (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n\
                         10.0.0.5   db db.internal  # the database\n\
                         not-an-ip  broken\n10.0.0.6 DB2\n";

    #[test]
    fn hosts_file_lookup() {
        assert_eq!(lookup(HOSTS, "db"), Some("10.0.0.5".parse().expect("ip")));
        assert_eq!(
            lookup(HOSTS, "DB.Internal"),
            Some("10.0.0.5".parse().expect("ip"))
        );
        assert_eq!(lookup(HOSTS, "db2"), Some("10.0.0.6".parse().expect("ip")));
        assert_eq!(
            lookup(HOSTS, "ip6-localhost"),
            Some("::1".parse().expect("ip"))
        );
        assert_eq!(lookup(HOSTS, "broken"), None);
        assert_eq!(lookup(HOSTS, "database"), None, "comments are not names");
        assert_eq!(lookup("", "db"), None);
    }

    #[test]
    fn addresses() {
        let a = |t: &str| address(t, HOSTS);
        assert_eq!(
            a("127.0.0.1:5432"),
            Ok("127.0.0.1:5432".parse().expect("sa"))
        );
        assert_eq!(a("[::1]:80"), Ok("[::1]:80".parse().expect("sa")));
        assert_eq!(a("localhost:9"), Ok("127.0.0.1:9".parse().expect("sa")));
        assert_eq!(a("db:5432"), Ok("10.0.0.5:5432".parse().expect("sa")));
        let dns = a("example.com:80").expect_err("dns");
        assert!(
            dns.contains("does not use DNS") && dns.contains("/etc/hosts"),
            "{dns}"
        );
        for bad in [
            "127.0.0.1",
            "127.0.0.1:",
            ":80",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "::1:80",
            "[::1]",
            "[::1]80",
            "[zz]:80",
            "a b:80",
            "127.0.0.1:+80",
            "",
        ] {
            assert!(a(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn http_urls() {
        let u = |t: &str| http_url(t, HOSTS);
        let t = u("http://127.0.0.1:8080/healthz").expect("url");
        assert_eq!(t.address, "127.0.0.1:8080".parse().expect("sa"));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/healthz")
        );
        let t = u("http://db").expect("url");
        assert_eq!(t.address, "10.0.0.5:80".parse().expect("sa"));
        assert_eq!((t.host.as_str(), t.path.as_str()), ("db", "/"));
        let t = u("HTTP://[::1]/a/b?x=1#frag").expect("url");
        assert_eq!(t.address, "[::1]:80".parse().expect("sa"));
        assert_eq!((t.host.as_str(), t.path.as_str()), ("[::1]", "/a/b?x=1"));
        assert_eq!(u("http://localhost?ready").expect("url").path, "/?ready");
        let https = u("https://127.0.0.1/").expect_err("https");
        assert!(https.contains("https is not supported"), "{https}");
        assert!(u("http://example.com/").expect_err("dns").contains("DNS"));
        for bad in [
            "http://",
            "ftp://x/",
            "127.0.0.1:80",
            "http://u@127.0.0.1/",
            "http://127.0.0.1:x/",
            "http://127.0.0.1/a b",
            "http://::1/",
            "h",
            "http://[::1]:/",
        ] {
            assert!(u(bad).is_err(), "{bad:?}");
        }
    }
}
