//! Flag values clap cannot parse alone: durations and listen addresses, refused
//! with a message that shows the forms they take.
use std::net::SocketAddr;

pub use crate::clock::parse_duration;

/// `--listen`: `8080` (loopback), `HOST:PORT` or an IP socket address.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| {
        format!(
            "{s:?}: {why}; give a port (8080, meaning 127.0.0.1:8080), HOST:PORT \
             (localhost:8080, 0.0.0.0:8080) or [IPv6]:PORT ([::1]:8080)"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s.parse().map_err(|_| bad("not a port (0 to 65535)"))?;
        return Ok(([127, 0, 0, 1], port).into());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("not a port (0 to 65535) after ':'"))?;
    if host.is_empty() {
        return Err(bad("no host before ':'"));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(([127, 0, 0, 1], port).into());
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve {host:?} ({e})")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| bad(&format!("{host:?} has no address")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_take_plain_seconds_or_a_unit() {
        use super::parse_duration as d;
        assert_eq!(d("300"), Ok(300));
        assert_eq!(d("30s"), Ok(30));
        assert_eq!(d("5m"), Ok(300));
        assert_eq!(d("12h"), Ok(43_200));
        assert_eq!(d("90d"), Ok(7_776_000));
        assert_eq!(d("90s"), Ok(90));
        assert_eq!(d("2h"), Ok(7200));
        assert_eq!(d("7d"), Ok(604_800));
        assert_eq!(d("7"), Ok(7));
        assert!(d("d").is_err());
        assert!(d("0d").is_err());
        for bad in [
            "",
            "0",
            "0m",
            "-5",
            "5 m",
            "5w",
            "m",
            "1.5h",
            "99999999999999999999",
        ] {
            assert!(d(bad).unwrap_err().contains("e.g. 300"), "{bad:?}");
        }
        assert!(d("36501d").unwrap_err().contains("100 years"));
    }

    #[test]
    fn listen_takes_a_port_a_host_or_an_address() {
        use super::parse_listen as l;
        let v4 = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(l("8082"), Ok(v4("127.0.0.1:8082")));
        assert_eq!(l("localhost:8082"), Ok(v4("127.0.0.1:8082")));
        assert_eq!(l("LOCALHOST:0"), Ok(v4("127.0.0.1:0")));
        assert_eq!(l("0.0.0.0:8443"), Ok(v4("0.0.0.0:8443")));
        assert_eq!(l("[::1]:8080"), Ok(v4("[::1]:8080")));
        for bad in [
            "",
            "70000",
            "localhost",
            ":8080",
            "localhost:",
            "localhost:x",
        ] {
            assert!(l(bad).unwrap_err().contains("localhost:8080"), "{bad:?}");
        }
    }
}
