//! Scope rules: API.md §3 and RFC 6749 §3.3.
use super::error::OAuthError;
use std::collections::BTreeSet;

/// A set of scope names; iterates and prints sorted, space-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    /// Space-separated text as stored and sent: `"all view"`.
    pub fn to_text(&self) -> String {
        self.iter().collect::<Vec<_>>().join(" ")
    }
    /// Parses stored text (already validated when it was written).
    pub fn from_text(s: &str) -> Self {
        Self(
            s.split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Parses a requested `scope` parameter. `None` means "absent": the caller applies the default.
///
/// iPIM-style clients list their own client id among the scopes; that one token is
/// accepted and grants nothing, and a scope of only the client id counts as absent.
pub fn parse_requested(raw: Option<&str>, client_id: &str) -> Result<Option<Scopes>, OAuthError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.len() > 1024 {
        return Err(OAuthError::InvalidScope("scope is too long".into()));
    }
    let mut set = BTreeSet::new();
    for t in raw.split(' ').filter(|t| !t.is_empty()) {
        if !valid_token(t) {
            return Err(OAuthError::InvalidScope(
                "scope contains characters RFC 6749 §3.3 does not allow".into(),
            ));
        }
        if t != client_id {
            set.insert(t.to_owned());
        }
    }
    Ok(if set.is_empty() {
        None
    } else {
        Some(Scopes(set))
    })
}

/// What a client-credentials grant gives.
#[derive(Debug, PartialEq, Eq)]
pub struct Granted {
    pub scopes: Scopes,
    pub licensed: bool,
}

/// Checks the request against the client's allowed scopes (name, licensed).
/// Absent means everything allowed. Nothing is silently dropped.
pub fn grant(requested: Option<Scopes>, allowed: &[(String, bool)]) -> Result<Granted, OAuthError> {
    let scopes = match requested {
        Some(req) => {
            if let Some(bad) = req.iter().find(|s| !allowed.iter().any(|(a, _)| a == s)) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope {bad} is unknown or not allowed for this client"
                )));
            }
            req
        }
        None => Scopes(allowed.iter().map(|(a, _)| a.clone()).collect()),
    };
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope("this client has no scopes".into()));
    }
    let licensed = allowed.iter().any(|(a, lic)| *lic && scopes.contains(a));
    Ok(Granted { scopes, licensed })
}

/// RFC 6749 §6: a refresh may narrow the original scope, never widen it.
pub fn narrow(requested: Option<Scopes>, original: &Scopes) -> Result<Scopes, OAuthError> {
    match requested {
        None => Ok(original.clone()),
        Some(req) => {
            if let Some(bad) = req.iter().find(|s| !original.contains(s)) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope {bad} was not granted to this session"
                )));
            }
            Ok(req)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<(String, bool)> {
        vec![("all".into(), true), ("view".into(), false)]
    }

    #[test]
    fn absent_scope_grants_everything_allowed() {
        let g = grant(None, &allowed()).unwrap();
        assert_eq!(g.scopes.to_text(), "all view");
        assert!(g.licensed);
    }

    #[test]
    fn view_only_is_unlicensed_and_all_does_not_imply_view() {
        let g = grant(parse_requested(Some("view"), "c").unwrap(), &allowed()).unwrap();
        assert!(!g.licensed);
        let g = grant(parse_requested(Some("all"), "c").unwrap(), &allowed()).unwrap();
        assert_eq!(g.scopes.to_text(), "all");
    }

    #[test]
    fn client_id_among_scopes_is_ignored() {
        assert_eq!(parse_requested(Some("demo"), "demo").unwrap(), None);
        let s = parse_requested(Some("demo view"), "demo").unwrap().unwrap();
        assert_eq!(s.to_text(), "view");
    }

    #[test]
    fn unknown_scope_is_refused() {
        let r = grant(
            parse_requested(Some("view admin"), "c").unwrap(),
            &allowed(),
        );
        assert!(matches!(r, Err(OAuthError::InvalidScope(_))));
        assert!(parse_requested(Some("a\"b"), "c").is_err());
    }

    #[test]
    fn narrowing_only() {
        let orig = Scopes::from_text("all view");
        let n = narrow(parse_requested(Some("view"), "c").unwrap(), &orig).unwrap();
        assert_eq!(n.to_text(), "view");
        let orig = Scopes::from_text("view");
        assert!(narrow(parse_requested(Some("all"), "c").unwrap(), &orig).is_err());
    }
}
