//! Client credentials as presented: RFC 6749 §2.3.1, HTTP Basic or the request body.
use super::error::OAuthError;
use super::params::Params;
use crate::crypto::Secret;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use percent_encoding::percent_decode_str;

/// Standard alphabet; padding optional, since some clients drop it.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone)]
pub struct Presented {
    pub client_id: String,
    pub secret: Secret,
    /// The undecoded Basic values, when form-decoding changed them: clients that
    /// do not encode (the common C# example) are tried with these if the decoded
    /// pair fails.
    pub raw: Option<(String, Secret)>,
}

/// Exactly one authentication method: Basic, or `client_id` + `client_secret` in the body.
pub fn from_request(
    authorization: Option<&[u8]>,
    params: &Params,
) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let Some(header) = authorization else {
        return match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Presented {
                client_id: id.to_owned(),
                secret: Secret::new(secret),
                raw: None,
            }),
            (None, Some(_)) => Err(OAuthError::InvalidRequest(
                "missing parameter client_id".into(),
            )),
            _ => Err(OAuthError::InvalidClient),
        };
    };
    let presented = parse_basic(header)?;
    if body_secret.is_some() {
        return Err(OAuthError::InvalidRequest(
            "use one client authentication method: HTTP Basic or the request body, not both".into(),
        ));
    }
    if let Some(id) = body_id {
        let same = id == presented.client_id
            || presented
                .raw
                .as_ref()
                .is_some_and(|(raw_id, _)| raw_id == id);
        if !same {
            return Err(OAuthError::InvalidRequest(
                "client_id in the body does not match the Authorization header".into(),
            ));
        }
    }
    Ok(presented)
}

fn malformed() -> OAuthError {
    OAuthError::InvalidRequest(
        "malformed Authorization header: expected Basic base64(client_id:client_secret)".into(),
    )
}

fn parse_basic(header: &[u8]) -> Result<Presented, OAuthError> {
    let header = std::str::from_utf8(header).map_err(|_| malformed())?;
    let (scheme, rest) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = BASIC_B64.decode(rest.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (raw_id, raw_secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(raw_id);
    let secret = form_decode(raw_secret);
    let raw = (id != raw_id || secret != raw_secret)
        .then(|| (raw_id.to_owned(), Secret::new(raw_secret)));
    Ok(Presented {
        client_id: id,
        secret: Secret::new(secret),
        raw,
    })
}

/// `application/x-www-form-urlencoded` decoding of one value; undecodable input stays as it is.
fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    match percent_decode_str(&plus).decode_utf8() {
        Ok(v) => v.into_owned(),
        Err(_) => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    fn basic(s: &str) -> Vec<u8> {
        format!("Basic {}", B64.encode(s)).into_bytes()
    }

    #[test]
    fn basic_is_form_decoded_with_raw_fallback() {
        let p = from_request(Some(&basic("a%20b:p+q%3A")), &Params::default()).unwrap();
        assert_eq!(p.client_id, "a b");
        assert_eq!(p.secret.expose(), "p q:");
        let (rid, rs) = p.raw.unwrap();
        assert_eq!((rid.as_str(), rs.expose()), ("a%20b", "p+q%3A"));
    }

    #[test]
    fn plain_basic_has_no_fallback() {
        let p = from_request(Some(&basic("demo:demo-secret")), &Params::default()).unwrap();
        assert!(p.raw.is_none());
    }

    #[test]
    fn both_methods_are_refused() {
        let params = Params::parse(b"client_secret=x").unwrap();
        assert!(matches!(
            from_request(Some(&basic("a:b")), &params),
            Err(OAuthError::InvalidRequest(_))
        ));
        let same = Params::parse(b"client_id=a").unwrap();
        assert!(from_request(Some(&basic("a:b")), &same).is_ok());
        let other = Params::parse(b"client_id=z").unwrap();
        assert!(from_request(Some(&basic("a:b")), &other).is_err());
    }

    #[test]
    fn malformed_headers() {
        for h in ["Basic", "Basic !!!", "Bearer abc", "Basic ZGVtbw=="] {
            assert!(
                matches!(
                    from_request(Some(h.as_bytes()), &Params::default()),
                    Err(OAuthError::InvalidRequest(_))
                ),
                "{h}"
            );
        }
    }

    #[test]
    fn no_credentials_is_invalid_client() {
        assert!(matches!(
            from_request(None, &Params::default()),
            Err(OAuthError::InvalidClient)
        ));
    }
}
