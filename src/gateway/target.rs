//! Which callback targets Coffer may call: `http`/`https` URLs whose address is public, unless
//! the operator allows loopback or all private addresses (`COFFER_CALLBACK_ALLOW_PRIVATE`).
//!
//! Checked twice: on the URL when a transaction names it (an IP literal can be judged at once),
//! and on every address a host name resolves to when a callback is sent (see
//! `payments::callback_worker`), so that a name pointing at 10.x or 127.x is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The operator's choice of private targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AllowPrivate {
    /// Public addresses only (the default).
    None,
    /// Public addresses and loopback (127.0.0.0/8, ::1): a receiver on the same host.
    Loopback,
    /// Every unicast address, private ranges included.
    All,
}

/// What kind of address a target is, for the decision and for the refusal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    Public,
    Loopback,
    /// RFC 1918, CGNAT 100.64/10, IPv6 unique-local fc00::/7, and other reserved unicast.
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 0.0.0.0, ::, multicast, broadcast: never a target.
    Unusable,
}

impl AddrClass {
    pub fn label(self) -> &'static str {
        match self {
            AddrClass::Public => "public",
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Unusable => "unspecified, multicast or broadcast",
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let o = ip.octets();
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || o[0] == 0 {
        AddrClass::Unusable
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if ip.is_link_local() {
        AddrClass::LinkLocal
    } else if ip.is_private()
        // CGNAT 100.64.0.0/10
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        // 192.0.0.0/24 (IETF protocol assignments), TEST-NETs, benchmarking 198.18/15,
        // reserved 240/4
        || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        || o[0] >= 240
    {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

/// Classifies an address; IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`)
/// IPv6 forms are judged as the IPv4 address they carry, as are NAT64 (64:ff9b::/96) ones.
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let seg = ip.segments();
    if ip.is_unspecified() || ip.is_multicast() {
        return AddrClass::Unusable;
    }
    if ip.is_loopback() {
        return AddrClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks) and NAT64.
    if seg[..6] == [0, 0, 0, 0, 0, 0] || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if (seg[0] & 0xffc0) == 0xfe80 {
        AddrClass::LinkLocal
    } else if (seg[0] & 0xfe00) == 0xfc00
        // site-local fec0::/10 (deprecated), documentation 2001:db8::/32
        || (seg[0] & 0xffc0) == 0xfec0
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
    {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

impl AllowPrivate {
    /// May a callback be sent to `ip`?
    pub fn allows(self, ip: IpAddr) -> bool {
        match classify(ip) {
            AddrClass::Public => true,
            AddrClass::Unusable => false,
            AddrClass::Loopback => matches!(self, AllowPrivate::Loopback | AllowPrivate::All),
            AddrClass::Private | AddrClass::LinkLocal => self == AllowPrivate::All,
        }
    }

    /// The effective policy: the operator's choice, or loopback in demo mode, else none.
    pub fn effective(configured: Option<AllowPrivate>, demo: bool) -> AllowPrivate {
        configured.unwrap_or(if demo {
            AllowPrivate::Loopback
        } else {
            AllowPrivate::None
        })
    }
}

/// Why a target is refused (a message for the API caller and the attempt log).
pub fn refusal(ip: IpAddr) -> String {
    format!(
        "the address {ip} is {} and not allowed as a callback target",
        classify(ip).label()
    )
}

/// The host of an `http(s)` URL as written, or why the URL is not usable. IP literals are
/// checked against `policy` here; names are checked after resolution, when sending.
pub fn check_url(raw: &str, policy: AllowPrivate) -> Result<url::Url, String> {
    let u = url::Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("only http and https URLs are allowed".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    let ip = match u.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !policy.allows(ip)
    {
        return Err(refusal(ip));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn addresses_are_classified() {
        for (a, c) in [
            ("8.8.8.8", AddrClass::Public),
            ("93.184.216.34", AddrClass::Public),
            ("127.0.0.1", AddrClass::Loopback),
            ("127.9.9.9", AddrClass::Loopback),
            ("10.0.0.1", AddrClass::Private),
            ("172.16.0.1", AddrClass::Private),
            ("172.31.255.255", AddrClass::Private),
            ("172.32.0.1", AddrClass::Public),
            ("192.168.1.1", AddrClass::Private),
            ("100.64.0.1", AddrClass::Private),
            ("100.127.255.254", AddrClass::Private),
            ("100.128.0.1", AddrClass::Public),
            ("169.254.169.254", AddrClass::LinkLocal),
            ("0.0.0.0", AddrClass::Unusable),
            ("255.255.255.255", AddrClass::Unusable),
            ("224.0.0.1", AddrClass::Unusable),
            ("::1", AddrClass::Loopback),
            ("::", AddrClass::Unusable),
            ("fe80::1", AddrClass::LinkLocal),
            ("fc00::1", AddrClass::Private),
            ("fd12:3456::1", AddrClass::Private),
            ("ff02::1", AddrClass::Unusable),
            ("2606:4700::1111", AddrClass::Public),
            ("::ffff:10.0.0.1", AddrClass::Private),
            ("::ffff:127.0.0.1", AddrClass::Loopback),
            ("::ffff:169.254.169.254", AddrClass::LinkLocal),
            ("::ffff:8.8.8.8", AddrClass::Public),
            ("::10.0.0.1", AddrClass::Private),
            ("::127.0.0.1", AddrClass::Loopback),
            ("64:ff9b::a00:1", AddrClass::Private),
        ] {
            assert_eq!(classify(ip(a)), c, "{a}");
        }
    }

    #[test]
    fn the_policy_decides_loopback_and_private() {
        let lo = ip("127.0.0.1");
        let private = ip("10.0.0.1");
        let link = ip("169.254.169.254");
        let public = ip("8.8.8.8");
        let broadcast = ip("255.255.255.255");
        assert!(AllowPrivate::None.allows(public));
        assert!(!AllowPrivate::None.allows(lo));
        assert!(!AllowPrivate::None.allows(private));
        assert!(AllowPrivate::Loopback.allows(lo));
        assert!(AllowPrivate::Loopback.allows(ip("::ffff:127.0.0.1")));
        assert!(!AllowPrivate::Loopback.allows(private));
        assert!(!AllowPrivate::Loopback.allows(link));
        assert!(AllowPrivate::All.allows(private));
        assert!(AllowPrivate::All.allows(link));
        assert!(!AllowPrivate::All.allows(broadcast), "never broadcast");
        assert!(
            !AllowPrivate::All.allows(ip("0.0.0.0")),
            "never unspecified"
        );
        assert_eq!(AllowPrivate::effective(None, true), AllowPrivate::Loopback);
        assert_eq!(AllowPrivate::effective(None, false), AllowPrivate::None);
        assert_eq!(
            AllowPrivate::effective(Some(AllowPrivate::None), true),
            AllowPrivate::None
        );
    }

    #[test]
    fn urls_are_checked_by_scheme_and_ip_literal() {
        let none = AllowPrivate::None;
        assert!(check_url("https://merchant.example/cb?x=1", none).is_ok());
        assert!(check_url("ftp://merchant.example/cb", none).is_err());
        assert!(check_url("http://10.0.0.1/", none).is_err());
        assert!(check_url("http://169.254.169.254/latest", none).is_err());
        assert!(check_url("http://[::1]/", none).is_err());
        assert!(check_url("http://[::ffff:7f00:1]/", none).is_err());
        assert!(
            check_url("http://0x7f000001/", none).is_err(),
            "hex IPv4 form"
        );
        assert!(
            check_url("http://2130706433/", none).is_err(),
            "decimal IPv4 form"
        );
        assert!(check_url("http://user:pw@merchant.example/", none).is_err());
        assert!(check_url("http://127.0.0.1:9/", AllowPrivate::Loopback).is_ok());
        assert!(check_url("http://10.0.0.1/", AllowPrivate::Loopback).is_err());
        // A name is judged after resolution, when sending.
        assert!(check_url("http://localhost/", none).is_ok());
    }
}
