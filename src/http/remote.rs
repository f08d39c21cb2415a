//! The client's address: the TCP peer, or what trusted proxies say it is.
use actix_web::http::header::HeaderName;
use actix_web::HttpRequest;
use std::net::IpAddr;

/// The TCP peer, unless it is a proxy named by `--trusted-proxy`: then the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
/// `X-Forwarded-For` from anyone else is ignored, so it cannot be forged.
pub fn remote_ip(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    let entries: Vec<&str> = req
        .headers()
        .get_all(xff)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut ip = peer;
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(hop) => {
                ip = hop;
                if !trusted.contains(&hop) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:1000").parse().unwrap());
        if let Some(x) = xff {
            r = r.insert_header(("X-Forwarded-For", x));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let ip = |r| remote_ip(&r, &[proxy]).unwrap().to_string();
        assert_eq!(ip(req("192.0.2.7", Some("203.0.113.9"))), "192.0.2.7");
        assert_eq!(ip(req("10.0.0.1", Some("203.0.113.9"))), "203.0.113.9");
        assert_eq!(
            ip(req("10.0.0.1", Some("198.51.100.1, 203.0.113.9, 10.0.0.1"))),
            "203.0.113.9"
        );
        assert_eq!(ip(req("10.0.0.1", Some("garbage"))), "10.0.0.1");
        assert_eq!(ip(req("10.0.0.1", None)), "10.0.0.1");
    }
}
