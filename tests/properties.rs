//! Property tests of the pure request parsers: whatever a client sends,
//! they never panic; every input they accept round-trips; a parameter given twice
//! is refused.
//!
//! Parsers under test: OAuth form parameters (`Params::parse`), client credentials
//! (`client_auth::from_request`, RFC 6749 §2.3.1), requested scopes
//! (`scopes::parse_requested`, RFC 6749 §3.3), the bearer header
//! (`bearer::parse_authorization`, RFC 6750 §2.1) and the GetData query string
//! (`http::getdata::parse_params`, API.md §7).
use actix_web::http::header::HeaderValue;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tollgate::http::bearer::parse_authorization;
use tollgate::http::errors::BearerError;
use tollgate::http::getdata::{parse_params, GetDataParams};
use tollgate::oauth::client_auth::from_request;
use tollgate::oauth::params::{Params, MAX_PARAMS};
use tollgate::oauth::scopes::parse_requested;
use tollgate::oauth::OAuthError;
use tollgate::store::getdata::Page;

/// Enough to find shallow mistakes in seconds; CI runs every property on each push.
/// `PROPTEST_CASES=100000 cargo test --test properties` digs deeper.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        // Failures print the shrunk input; no regression files appear in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- helpers

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A form body from pairs, in order, as a client library would write it.
fn form_body(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Every byte as `%XX`: the same decoded key spelled differently.
fn percent_every_byte(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The same word with its letters' case flipped where `mask` says so.
fn recase(word: &str, mask: u32) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask & (1 << (i % 32)) != 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Keys of what a successful `Params::parse` holds, checked by taking them all out.
fn assert_holds_exactly(mut params: Params, expected: &HashMap<String, String>) {
    for (k, v) in expected {
        assert_eq!(params.get(k), Some(v.as_str()), "parameter {k:?}");
        params.remove(k);
    }
    // Nothing else is left: the map prints empty.
    assert_eq!(format!("{params:?}"), "Params({})");
}

fn is_invalid_request(r: &Result<impl std::fmt::Debug, OAuthError>) -> bool {
    matches!(r, Err(OAuthError::InvalidRequest(_)))
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
const SCOPE_TOKEN: &str = "[!#-\\[\\]-~]{1,16}";

/// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN: &str = "[A-Za-z0-9._~+/-]{1,64}={0,3}";

/// Printable ASCII that is neither in the b64token alphabet nor "=".
const NOT_B64TOKEN: &str = "[ !\"#$%&'(),:;<>?@\\[\\\\\\]^`{|}*]";

// ---------------------------------------------------------------- Params::parse

proptest! {
    #![proptest_config(config())]

    #[test]
    fn params_never_panic_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Params::parse(&body);
    }

    #[test]
    fn params_never_panic_on_form_like_text(body in "[a-z=&%+;0-9A-F\u{e9}\u{fffd}]{0,128}") {
        let _ = Params::parse(body.as_bytes());
    }

    /// Distinct keys with non-empty values, form-encoded, parse back to the same map.
    #[test]
    fn params_round_trip(map in proptest::collection::hash_map("(?s).{0,12}", "(?s).{1,12}", 0..8)) {
        let pairs: Vec<(String, String)> = map.clone().into_iter().collect();
        let params = Params::parse(form_body(&pairs).as_bytes()).expect("accepted");
        assert_holds_exactly(params, &map);
    }

    /// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    #[test]
    fn params_empty_values_are_omitted(map in proptest::collection::hash_map("(?s).{0,12}", "(?s).{0,3}", 0..8)) {
        let pairs: Vec<(String, String)> = map.clone().into_iter().collect();
        let params = Params::parse(form_body(&pairs).as_bytes()).expect("accepted");
        let kept: HashMap<String, String> = map.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        assert_holds_exactly(params, &kept);
    }

    /// More parameters than any OAuth request needs are refused; up to the limit, all are kept.
    #[test]
    fn params_over_the_count_limit_are_refused(
        keys in proptest::collection::hash_set("[a-z0-9_]{1,8}", 1..(2 * MAX_PARAMS)),
    ) {
        let map: HashMap<String, String> = keys.into_iter().map(|k| (k, "1".to_owned())).collect();
        let pairs: Vec<(String, String)> = map.clone().into_iter().collect();
        let r = Params::parse(form_body(&pairs).as_bytes());
        if map.len() > MAX_PARAMS {
            prop_assert!(is_invalid_request(&r), "{} parameters: {r:?}", map.len());
        } else {
            assert_holds_exactly(r.expect("accepted"), &map);
        }
    }

    /// RFC 6749 §3.1: a parameter included twice is refused, whatever its values
    /// (empty ones too) and however its name is spelled on the wire.
    #[test]
    fn params_duplicates_are_refused(
        map in proptest::collection::hash_map(".{0,12}", ".{0,12}", 1..8),
        which in any::<Index>(),
        at in any::<Index>(),
        again in ".{0,12}",
        spelled_out in any::<bool>(),
    ) {
        let pairs: Vec<(String, String)> = map.into_iter().collect();
        let key = pairs[which.index(pairs.len())].0.clone();
        let mut body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect();
        let dup_key = if spelled_out { percent_every_byte(&key) } else { form_encode(&key) };
        body.insert(at.index(body.len() + 1), format!("{dup_key}={}", form_encode(&again)));
        let body = body.join("&");
        let r = Params::parse(body.as_bytes());
        prop_assert!(is_invalid_request(&r), "{body:?} gave {r:?}");
    }
}

// ---------------------------------------------------------------- client_auth::from_request

/// "Basic" in some case, then one or more spaces, then the credentials.
fn basic_header(scheme_case: u32, spaces: usize, credentials: &str) -> Box<[u8]> {
    format!(
        "{}{}{credentials}",
        recase("basic", scheme_case),
        " ".repeat(spaces)
    )
    .into_bytes()
    .into_boxed_slice()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_auth_never_panics(
        header in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128)),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        if let Ok(params) = Params::parse(&body) {
            let _ = from_request(header.as_deref(), &params);
        }
    }

    /// The base64 and form-decoding paths, reached with arbitrary decoded bytes.
    #[test]
    fn client_auth_never_panics_on_any_basic_payload(
        payload in proptest::collection::vec(any::<u8>(), 0..96),
        text in "[%+:a-f0-9\u{e9}]{0,32}",
        body_id in proptest::option::of("[a-z%+:]{1,8}"),
        scheme_case in any::<u32>(),
    ) {
        let params = match &body_id {
            Some(id) => Params::parse(form_body(&[("client_id".into(), id.clone())]).as_bytes()).unwrap(),
            None => Params::default(),
        };
        for credentials in [STANDARD.encode(&payload), STANDARD.encode(text.as_bytes()), STANDARD_NO_PAD.encode(&payload)] {
            let _ = from_request(Some(&basic_header(scheme_case, 1, &credentials)), &params);
        }
    }

    /// RFC 6749 §2.3.1 as a conforming client does it: both parts form-encoded, then
    /// base64. Any id (":" included, since it is encoded) and any secret come back.
    #[test]
    fn client_auth_encoded_basic_round_trips(
        id in ".{0,24}",
        secret in ".{0,24}",
        scheme_case in any::<u32>(),
        spaces in 1usize..4,
        padded in any::<bool>(),
    ) {
        let (enc_id, enc_secret) = (form_encode(&id), form_encode(&secret));
        let joined = format!("{enc_id}:{enc_secret}");
        let b64 = if padded { STANDARD.encode(&joined) } else { STANDARD_NO_PAD.encode(&joined) };
        let p = from_request(Some(&basic_header(scheme_case, spaces, &b64)), &Params::default())
            .expect("accepted");
        prop_assert_eq!(&p.client_id, &id);
        prop_assert_eq!(p.secret.expose(), secret.as_str());
        // The undecoded pair is kept exactly when decoding changed something.
        let raw = p.raw.as_ref().map(|(i, s)| (i.clone(), s.expose().to_owned()));
        let changed = enc_id != id || enc_secret != secret;
        prop_assert_eq!(raw, changed.then_some((enc_id, enc_secret)));
    }

    /// Clients that do not encode (the common C# example): any id without ':' and any
    /// secret are still there, as the decoded pair or else as the raw fallback.
    #[test]
    fn client_auth_unencoded_basic_keeps_the_raw_pair(id in "[^:]{0,24}", secret in ".{0,24}") {
        let header = basic_header(0, 1, &STANDARD.encode(format!("{id}:{secret}")));
        let p = from_request(Some(&header), &Params::default()).expect("accepted");
        let decoded = (p.client_id.clone(), p.secret.expose().to_owned());
        let tried: Vec<(String, String)> = std::iter::once(decoded.clone())
            .chain(p.raw.as_ref().map(|(i, s)| (i.clone(), s.expose().to_owned())))
            .collect();
        prop_assert_eq!(tried.last().unwrap(), &(id.clone(), secret.clone()));
        if p.raw.is_none() {
            prop_assert_eq!(decoded, (id, secret));
        }
    }

    /// Body credentials: both parameters present and non-empty come back as given.
    #[test]
    fn client_auth_body_round_trips(id in ".{1,24}", secret in ".{1,24}", extra in ".{0,8}") {
        let body = form_body(&[
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), id.clone()),
            ("client_secret".into(), secret.clone()),
            ("x-unknown".into(), extra),
        ]);
        let p = from_request(None, &Params::parse(body.as_bytes()).unwrap()).expect("accepted");
        prop_assert_eq!(p.client_id, id);
        prop_assert_eq!(p.secret.expose(), secret.as_str());
        prop_assert!(p.raw.is_none());
    }

    /// Exactly one method: Basic plus a body client_secret is refused; a body
    /// client_id beside Basic must name the same client.
    #[test]
    fn client_auth_mixed_methods(
        id in "[^:]{1,16}",
        secret in ".{0,16}",
        body_secret in ".{1,16}",
        other in ".{1,16}",
    ) {
        let header = basic_header(0, 1, &STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret))));
        let with = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> =
                pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Params::parse(form_body(&pairs).as_bytes()).unwrap()
        };
        let both = from_request(Some(&header), &with(&[("client_secret", body_secret.as_str())]));
        prop_assert!(is_invalid_request(&both), "{both:?}");
        let both = from_request(
            Some(&header),
            &with(&[("client_id", id.as_str()), ("client_secret", body_secret.as_str())]),
        );
        prop_assert!(is_invalid_request(&both), "{both:?}");

        let same = from_request(Some(&header), &with(&[("client_id", id.as_str())])).expect("same client");
        prop_assert_eq!(&same.client_id, &id);
        let raw_id = form_encode(&id);
        if other != id && other != raw_id {
            let r = from_request(Some(&header), &with(&[("client_id", other.as_str())]));
            prop_assert!(is_invalid_request(&r), "{other:?} beside Basic {id:?}: {r:?}");
        }
    }

    /// A Basic header whose decoded text has no ':' is malformed, never a client.
    #[test]
    fn client_auth_basic_without_colon_is_malformed(text in "[^:]{0,32}") {
        let r = from_request(Some(&basic_header(0, 1, &STANDARD.encode(&text))), &Params::default());
        prop_assert!(is_invalid_request(&r), "{r:?}");
    }

    /// Any other scheme in the Authorization header of a token request is malformed.
    #[test]
    fn client_auth_other_scheme_is_malformed(scheme in "[A-Za-z]{1,10}", rest in "[ -~]{0,32}") {
        prop_assume!(!scheme.eq_ignore_ascii_case("basic"));
        let r = from_request(Some(format!("{scheme} {rest}").as_bytes()), &Params::default());
        prop_assert!(is_invalid_request(&r), "{r:?}");
    }
}

// ---------------------------------------------------------------- scopes::parse_requested

/// A client id that is sometimes one of the requested scopes (the iPIM habit).
/// The set, the same tokens in a random order, and the client id.
fn scopes_and_client() -> impl Strategy<Value = (BTreeSet<String>, Vec<String>, String)> {
    proptest::collection::btree_set(SCOPE_TOKEN, 0..10).prop_flat_map(|set| {
        let listed: Vec<String> = set.iter().cloned().collect();
        let client = if listed.is_empty() {
            ".{0,12}".boxed()
        } else {
            prop_oneof![proptest::sample::select(listed.clone()), ".{0,12}"].boxed()
        };
        (Just(set), Just(listed).prop_shuffle(), client)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn scopes_never_panic(raw in proptest::option::of(".{0,64}"), client in ".{0,16}") {
        let _ = parse_requested(raw.as_deref(), &client);
    }

    #[test]
    fn scopes_never_panic_on_long_input(raw in "[a-z ]{1000,1100}", client in "[a-z]{0,4}") {
        let _ = parse_requested(Some(&raw), &client);
    }

    /// Valid RFC 6749 §3.3 tokens joined by spaces, in any order, come back as the
    /// same sorted set, minus the client id; nothing left counts as absent.
    #[test]
    fn scopes_round_trip(
        (set, shuffled, client) in scopes_and_client(),
    ) {
        let raw = shuffled.join(" ");
        let got = parse_requested(Some(&raw), &client).expect("accepted");
        let want: BTreeSet<String> = set.iter().filter(|t| **t != client).cloned().collect();
        match got {
            None => prop_assert!(want.is_empty(), "{raw:?} gave None, want {want:?}"),
            Some(s) => {
                let got: BTreeSet<String> = s.iter().map(str::to_owned).collect();
                prop_assert_eq!(&got, &want);
                // Sorted, space-separated, as the response lists it.
                let text = want.iter().cloned().collect::<Vec<_>>().join(" ");
                prop_assert_eq!(s.to_text(), text);
            }
        }
    }

    /// One character outside scope-token's ranges anywhere in the string fails the request.
    #[test]
    fn scopes_with_a_forbidden_character_are_refused(
        set in proptest::collection::btree_set(SCOPE_TOKEN, 1..6),
        bad in "[\"\\\\\u{0}-\u{1f}\u{7f}-\u{10ffff}]",
        at in any::<Index>(),
    ) {
        let mut raw: Vec<char> = set.into_iter().collect::<Vec<_>>().join(" ").chars().collect();
        let bad = bad.chars().next().unwrap();
        raw.insert(at.index(raw.len() + 1), bad);
        let raw: String = raw.into_iter().collect();
        let r = parse_requested(Some(&raw), "client");
        prop_assert!(matches!(r, Err(OAuthError::InvalidScope(_))), "{raw:?}: {r:?}");
    }

    /// API.md §3 limits the scope string: anything over 1,024 bytes is refused.
    #[test]
    fn scopes_over_the_length_limit_are_refused(set in proptest::collection::btree_set("[a-z]{8,16}", 80..120)) {
        let raw = set.into_iter().collect::<Vec<_>>().join(" ");
        prop_assume!(raw.len() > 1024);
        prop_assert!(matches!(parse_requested(Some(&raw), "c"), Err(OAuthError::InvalidScope(_))));
    }
}

// ---------------------------------------------------------------- bearer::parse_authorization

fn bearer(value: &str) -> Result<String, BearerError> {
    parse_authorization(Some(
        &HeaderValue::from_str(value).expect("a valid header value"),
    ))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bearer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            let _ = parse_authorization(Some(&v));
        }
    }

    #[test]
    fn bearer_never_panics_after_the_scheme(rest in proptest::collection::vec(any::<u8>(), 0..96), case in any::<u32>()) {
        let mut bytes = format!("{} ", recase("bearer", case)).into_bytes();
        bytes.extend(rest);
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            let _ = parse_authorization(Some(&v));
        }
    }

    /// Any b64token after "Bearer " (scheme in any case) is the token.
    #[test]
    fn bearer_round_trips(token in B64TOKEN, case in any::<u32>()) {
        let got = bearer(&format!("{} {token}", recase("bearer", case)));
        prop_assert_eq!(got.ok(), Some(token));
    }

    /// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; more than one space is allowed.
    #[test]
    fn bearer_accepts_any_run_of_spaces_after_the_scheme(token in B64TOKEN, spaces in 1usize..4) {
        let value = format!("Bearer{}{token}", " ".repeat(spaces));
        let got = bearer(&value);
        prop_assert_eq!(got.ok(), Some(token), "{:?}", value);
    }

    /// A token with a character outside b64token (a space, a comma, a quote…) or with
    /// "=" before its end is malformed: 400 invalid_request, never another token.
    #[test]
    fn bearer_malformed_tokens_are_invalid_requests(
        token in "[A-Za-z0-9._~+/-]{2,32}",
        bad in prop_oneof![NOT_B64TOKEN, Just("=".to_owned())],
        at in any::<Index>(),
    ) {
        // Strictly inside the token: surrounding whitespace is the HTTP parser's business.
        let at = 1 + at.index(token.len() - 1);
        let value = format!("Bearer {}{bad}{}", &token[..at], &token[at..]);
        let r = bearer(&value);
        prop_assert!(matches!(r, Err(BearerError::InvalidRequest(_))), "{value:?}: {r:?}");
    }

    /// Another scheme carries no bearer token: treated as no authentication (RFC 6750 §3.1).
    #[test]
    fn bearer_other_schemes_are_missing(scheme in "[A-Za-z]{1,10}", rest in "[ -~]{0,32}") {
        prop_assume!(!scheme.eq_ignore_ascii_case("bearer"));
        let r = bearer(&format!("{scheme} {rest}"));
        prop_assert!(matches!(r, Err(BearerError::Missing)), "{r:?}");
    }
}

// ---------------------------------------------------------------- http::getdata::parse_params

/// Parameter names GetData ignores: not one of its own, and not starting with "qp".
const OTHER_NAME: &str = "[a-oq-z_][a-z_]{0,9}";

/// What parse_params should return (as parts: `GetDataParams` is not `Clone`).
type Expected = (Option<String>, BTreeMap<usize, String>, Page);

fn expected((queryname, qp, page): Expected) -> GetDataParams {
    GetDataParams {
        queryname,
        qp,
        page: Some(page),
    }
}

/// A valid GetData query string as pairs, shuffled, with unknown parameters among them.
fn getdata_request() -> impl Strategy<Value = (Expected, Vec<(String, String)>)> {
    (
        proptest::option::of(".{0,16}"),
        proptest::collection::btree_map(1usize..=9, ".{0,12}", 0..9),
        proptest::option::of(1u32..=1_000_000),
        proptest::option::of(1u32..=500),
        proptest::collection::btree_map(OTHER_NAME, ".{0,8}", 0..4),
    )
        .prop_filter("only unknown extra names", |(.., extra)| {
            !extra.keys().any(|k| {
                k.starts_with("qp") || ["queryname", "pageno", "pagesize"].contains(&k.as_str())
            })
        })
        .prop_flat_map(|(queryname, qp, pageno, pagesize, extra)| {
            let mut pairs: Vec<(String, String)> = extra.into_iter().collect();
            pairs.extend(queryname.clone().map(|q| ("queryname".into(), q)));
            pairs.extend(qp.iter().map(|(n, v)| (format!("qp{n}"), v.clone())));
            pairs.extend(pageno.map(|n| ("pageno".into(), n.to_string())));
            pairs.extend(pagesize.map(|n| ("pagesize".into(), n.to_string())));
            let page = Page {
                no: pageno.unwrap_or(1),
                size: pagesize.unwrap_or(50),
            };
            let want: Expected = (queryname, qp, page);
            (Just(want), Just(pairs).prop_shuffle())
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn getdata_never_panics(qs in ".{0,128}") {
        let _ = parse_params(&qs);
    }

    #[test]
    fn getdata_never_panics_on_query_like_text(qs in "(qp[0-9+]{0,3}|pageno|pagesize|queryname|%[0-9A-F]{2}|[=&+0-9-])*") {
        let _ = parse_params(&qs);
    }

    /// Any accepted request, in any order, with unknown parameters beside it, comes back as sent.
    #[test]
    fn getdata_round_trips((want, pairs) in getdata_request()) {
        let qs = form_body(&pairs);
        let got = parse_params(&qs).unwrap_or_else(|p| panic!("{qs:?} refused: {}", p.detail));
        prop_assert_eq!(got, expected(want), "{:?}", qs);
    }

    /// A parameter given twice is refused, and the 400 names it.
    #[test]
    fn getdata_duplicates_are_refused(
        (_, pairs) in getdata_request(),
        name in prop_oneof![
            Just("queryname".to_owned()),
            Just("pageno".to_owned()),
            Just("pagesize".to_owned()),
            (1usize..=9).prop_map(|n| format!("qp{n}")),
            OTHER_NAME,
        ],
        value in "[0-9]{1,3}",
        at in any::<Index>(),
    ) {
        let mut pairs = pairs;
        if !pairs.iter().any(|(k, _)| *k == name) {
            pairs.push((name.clone(), "1".into()));
        }
        pairs.insert(at.index(pairs.len() + 1), (name.clone(), value));
        let qs = form_body(&pairs);
        match parse_params(&qs) {
            Ok(p) => prop_assert!(false, "{qs:?} accepted as {p:?}"),
            Err(p) => prop_assert!(p.detail.contains(&name), "{qs:?}: {}", p.detail),
        }
    }

    /// qp1…qp9 are the only parameters: two spellings of the same one ("qp1" and
    /// "qp01", "qp+1") are a duplicate, never a silent overwrite of the first value.
    #[test]
    fn getdata_refuses_two_spellings_of_one_qp_parameter(
        n in 1usize..=9,
        alias in prop_oneof![Just("0"), Just("00"), Just("+"), Just("+0")],
        first in "[a-z]{1,6}",
        second in "[A-Z]{1,6}",
    ) {
        let qs = form_body(&[
            (format!("qp{n}"), first.clone()),
            (format!("qp{alias}{n}"), second),
        ]);
        match parse_params(&qs) {
            Err(_) => {}
            Ok(p) => prop_assert!(false, "{qs:?} accepted with qp{n} = {:?} (first value {first:?})", p.qp.get(&n)),
        }
    }

    /// Paging out of range or not a number: 400 naming the parameter.
    #[test]
    fn getdata_bad_paging_names_the_parameter(
        name in prop_oneof![Just("pageno"), Just("pagesize")],
        value in prop_oneof![
            Just("0".to_owned()),
            Just("-1".to_owned()),
            (1_000_001u64..u64::MAX).prop_map(|n| n.to_string()),
            "[a-z .]{1,6}",
            Just(String::new()),
        ],
    ) {
        prop_assume!(!(name == "pagesize" && value.parse::<u64>().is_ok_and(|n| n <= 500 && n > 0)));
        let qs = form_body(&[(name.to_owned(), value.clone())]);
        let r = parse_params(&qs);
        prop_assert!(r.as_ref().is_err_and(|p| p.detail.contains(name)), "{qs:?}: {r:?}");
    }

    /// qp0, qp10 and qpX are not parameters: 400 naming the key.
    #[test]
    fn getdata_unknown_qp_names_are_refused(suffix in prop_oneof![
        Just("0".to_owned()),
        (10u64..1_000_000).prop_map(|n| n.to_string()),
        "[a-z_]{1,4}",
        Just(String::new()),
    ]) {
        let key = format!("qp{suffix}");
        let r = parse_params(&form_body(&[(key.clone(), "v".into())]));
        prop_assert!(r.as_ref().is_err_and(|p| p.detail.contains(&key)), "{key:?}: {r:?}");
    }
}

/// The query-string strategy's expectations, by example: ties the generator to the
/// documented defaults (pageno 1, pagesize 50).
#[test]
fn getdata_defaults_by_example() {
    let got = parse_params("queryname=stock&qp1=A-1").unwrap();
    assert_eq!(
        got,
        GetDataParams {
            queryname: Some("stock".into()),
            qp: BTreeMap::from([(1, "A-1".to_owned())]),
            page: Some(Page { no: 1, size: 50 }),
        }
    );
}
