//! Form parameters of the OAuth endpoints.
use super::error::OAuthError;
use std::collections::HashMap;

/// Decoded `application/x-www-form-urlencoded` parameters.
/// More parameters than any OAuth request needs is a malformed request.
pub const MAX_PARAMS: usize = 32;

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// RFC 6749 §3.1: parameters must not be included more than once, and
    /// parameters sent without a value are treated as omitted.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in form_urlencoded::parse(body) {
            if seen.len() >= MAX_PARAMS {
                return Err(OAuthError::InvalidRequest(format!(
                    "more than {MAX_PARAMS} parameters"
                )));
            }
            if !seen.insert(k.clone()) {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {} appears more than once",
                    printable(&k)
                )));
            }
            if !v.is_empty() {
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing parameter {name}")))
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }
}

/// Parameter names go into error descriptions: keep them short and plain.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_is_refused_and_empty_is_omitted() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=&b=x+y%21").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y!"));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert!(Params::parse(many.join("&").as_bytes()).is_err());
    }
}
