//! JWT access tokens (API.md §10): the token's header and claims, the JWKS, key
//! rotation, and what tollgate's own routes refuse.
use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tollgate::config::AccessTokenFormat;

fn jwt_mode(s: &mut tollgate::config::Settings) {
    s.access_token_format = AccessTokenFormat::Jwt;
}

fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn b64d(t: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(t).unwrap()
}

fn b64e(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn encode(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

async fn view_token(app: &TestApp) -> Value {
    app.grant_ok("demo", "demo-secret", Some("view")).await
}

async fn metadata(app: &TestApp) -> Value {
    let url = app.url("/.well-known/oauth-authorization-server");
    app.client
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn jwks(app: &TestApp) -> Value {
    let r = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| s(&k["kid"]))
        .collect()
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.me(token).await.status().as_u16()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    app.client
        .post(app.url("/introspect"))
        .basic_auth("demo", Some("demo-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A token refused by tollgate's own routes: 401 invalid_token at /me, inactive at
/// /introspect.
async fn assert_refused(app: &TestApp, token: &str) {
    let r = app.me(token).await;
    assert_eq!(r.status(), 401, "{token}");
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(introspect(app, token).await, json!({"active": false}));
}

crate::on_both_engines! {
    settings = jwt_mode;

    async fn header_and_claims_are_rfc_9068s(app) {
        let t = view_token(&app).await;
        let at = s(&t["access_token"]);
        let keys = cli_json(&app, &["keys", "list", "--json"]);
        assert_eq!(keys.as_array().unwrap().len(), 1);
        assert_eq!(keys[0]["status"], "signing");
        assert!(keys[0].get("private_key").is_none());
        assert_eq!(
            part(&at, 0),
            json!({"alg": "ES256", "typ": "at+jwt", "kid": keys[0]["kid"]})
        );
        let claims = part(&at, 1);
        let iss = app.base.clone();
        let sid = s(&claims["sid"]);
        assert!(sid.parse::<i64>().is_ok(), "{sid}");
        let jti = s(&claims["jti"]);
        assert_eq!(jti.len(), 54);
        assert_eq!(
            claims,
            json!({
                "iss": iss, "sub": "demo", "client_id": "demo", "aud": iss,
                "exp": START + 300, "iat": START, "jti": jti, "scope": "view", "sid": sid,
            })
        );
        assert_eq!(t["expires_in"], 300);
        // Refresh tokens stay opaque; the refreshed access token keeps the session.
        assert_eq!(s(&t["refresh_token"]).matches('.').count(), 0);
        let r = app.refresh("demo", "demo-secret", &s(&t["refresh_token"]), None).await;
        assert_eq!(r.status(), 200);
        let again: Value = r.json().await.unwrap();
        let claims2 = part(&s(&again["access_token"]), 1);
        assert_eq!(claims2["sid"], claims["sid"]);
        assert_ne!(claims2["jti"], claims["jti"]);
    }

    async fn own_routes_accept_it_until_it_expires(app) {
        let at = s(&view_token(&app).await["access_token"]);
        assert_eq!(me_status(&app, &at).await, 200);
        let i = introspect(&app, &at).await;
        assert_eq!(i["active"], true);
        assert_eq!(i["client_id"], "demo");
        app.clock.advance(299);
        assert_eq!(me_status(&app, &at).await, 200);
        app.clock.advance(1);
        assert_refused(&app, &at).await;
    }

    async fn revoked_at_revoke_it_is_refused_though_unexpired(app) {
        let t = view_token(&app).await;
        let at = s(&t["access_token"]);
        let r = app
            .client
            .post(app.url("/revoke"))
            .basic_auth("demo", Some("demo-secret"))
            .form(&[("token", at.as_str()), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_refused(&app, &at).await;
        // Its session lives on: the refresh token still works.
        let r = app.refresh("demo", "demo-secret", &s(&t["refresh_token"]), None).await;
        assert_eq!(r.status(), 200);
    }

    async fn an_ended_session_ends_its_jwt_at_once(app) {
        let t = app.grant_ok("demo", "demo-secret", Some("all")).await;
        let at = s(&t["access_token"]);
        assert_eq!(me_status(&app, &at).await, 200);
        ok(&app, &["sessions", "revoke", "--client", "demo"]);
        assert_refused(&app, &at).await;
    }

    async fn a_tampered_payload_is_refused(app) {
        let at = s(&view_token(&app).await["access_token"]);
        let mut claims = part(&at, 1);
        claims["scope"] = json!("all view");
        let parts: Vec<&str> = at.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], encode(&claims), parts[2]);
        assert_refused(&app, &forged).await;
        // Nor does the jti work as an opaque token.
        assert_refused(&app, &s(&part(&at, 1)["jti"])).await;
    }

    async fn a_wrong_kid_is_refused(app) {
        let at = s(&view_token(&app).await["access_token"]);
        let mut header = part(&at, 0);
        header["kid"] = json!("no-such-key");
        let parts: Vec<&str> = at.split('.').collect();
        let forged = format!("{}.{}.{}", encode(&header), parts[1], parts[2]);
        assert_refused(&app, &forged).await;
        // Signed by another key under the right kid: refused too.
        let kid = s(&part(&at, 0)["kid"]);
        let stranger = sign_es256(&part(&at, 0), &part(&at, 1));
        assert_eq!(part(&stranger, 0)["kid"], json!(kid));
        assert_refused(&app, &stranger).await;
    }

    async fn alg_none_is_refused(app) {
        let at = s(&view_token(&app).await["access_token"]);
        let mut header = part(&at, 0);
        header["alg"] = json!("none");
        let forged = format!("{}.{}.", encode(&header), at.split('.').nth(1).unwrap());
        assert_refused(&app, &forged).await;
    }

    async fn hs256_signed_with_the_public_key_is_refused(app) {
        let at = s(&view_token(&app).await["access_token"]);
        let jwk = jwks(&app).await["keys"][0].clone();
        let mut header = part(&at, 0);
        header["alg"] = json!("HS256");
        let input = format!("{}.{}", encode(&header), at.split('.').nth(1).unwrap());
        // Every form of the public key an HMAC confusion attack would try.
        let x = b64d(&s(&jwk["x"]));
        let y = b64d(&s(&jwk["y"]));
        let point: Vec<u8> = [vec![4u8], x, y].concat();
        for secret in [serde_json::to_vec(&jwk).unwrap(), point] {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            let sig = ring::hmac::sign(&key, input.as_bytes());
            let forged = format!("{input}.{}", b64e(sig.as_ref()));
            assert_refused(&app, &forged).await;
        }
    }

    async fn rotation_signs_with_the_new_key_and_publishes_both_until_the_old_tokens_expire(app) {
        // `keys rotate` runs as a process of its own, on the system clock.
        app.clock.set(real_now());
        let old = s(&view_token(&app).await["access_token"]);
        let old_kid = s(&part(&old, 0)["kid"]);
        assert_eq!(kids(&jwks(&app).await), vec![old_kid.clone()]);
        ok(&app, &["keys", "rotate"]);
        let listed = cli_json(&app, &["keys", "list", "--json"]);
        assert_eq!(listed[1]["kid"], json!(old_kid));
        assert_eq!(listed[1]["status"], "retired");
        let new_kid = s(&listed[0]["kid"]);
        assert_ne!(new_kid, old_kid);
        // The running server's next grant signs with the new key.
        let new = s(&view_token(&app).await["access_token"]);
        assert_eq!(s(&part(&new, 0)["kid"]), new_kid);
        assert_eq!(kids(&jwks(&app).await), vec![new_kid.clone(), old_kid.clone()]);
        assert_eq!(me_status(&app, &old).await, 200);
        assert_eq!(me_status(&app, &new).await, 200);
        app.clock.advance(299);
        assert_eq!(kids(&jwks(&app).await).len(), 2);
        assert_eq!(me_status(&app, &old).await, 200);
        // The rotation ran a moment after the old token was issued.
        app.clock.advance(3);
        assert_eq!(kids(&jwks(&app).await), vec![new_kid]);
        assert_refused(&app, &old).await;
    }

    async fn the_metadata_names_the_jwks_and_caches_stay_shorter_than_a_token(app) {
        let m = metadata(&app).await;
        assert_eq!(m["jwks_uri"], json!(app.url("/.well-known/jwks.json")));
        let r = app
            .client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "public, max-age=150");
        let k: Value = r.json().await.unwrap();
        let key = &k["keys"][0];
        assert_eq!(
            key.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["alg", "crv", "kid", "kty", "use", "x", "y"]
        );
        assert_eq!((&key["kty"], &key["crv"], &key["alg"]), (&json!("EC"), &json!("P-256"), &json!("ES256")));
    }

    /// The Rust `jsonwebtoken` crate, given the live JWKS, verifies a fresh token with
    /// `aud` and `iss` checked, and refuses one past its `exp` (it reads the system
    /// clock, so that token is issued with tollgate's clock set back).
    async fn jsonwebtoken_verifies_it_from_the_jwks_and_refuses_it_after_exp(app) {
        use jsonwebtoken::{decode, jwk::JwkSet, Algorithm, DecodingKey, Validation};
        let set: JwkSet = serde_json::from_value(jwks(&app).await).unwrap();
        let key = DecodingKey::from_jwk(&set.keys[0]).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[&app.base]);
        v.set_issuer(&[&app.base]);
        v.leeway = 0;
        let fresh = s(&view_token(&app).await["access_token"]);
        let claims = decode::<Value>(&fresh, &key, &v).unwrap().claims;
        assert_eq!(claims["client_id"], "demo");
        let mut wrong = v.clone();
        wrong.set_audience(&["https://elsewhere.example"]);
        assert!(decode::<Value>(&fresh, &key, &wrong).is_err());
        app.clock.set(real_now() - 301);
        let stale = s(&view_token(&app).await["access_token"]);
        let e = decode::<Value>(&stale, &key, &v).unwrap_err();
        assert_eq!(*e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature);
    }
}

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT with `header` and `claims`, signed by a key tollgate never made.
fn sign_es256(header: &Value, claims: &Value) -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let input = format!("{}.{}", encode(header), encode(claims));
    let sig = pair.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

crate::on_both_engines! {
    async fn opaque_mode_has_no_jwks_and_no_jwks_uri(app) {
        let r = app
            .client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let m = metadata(&app).await;
        assert!(m.get("jwks_uri").is_none(), "{m}");
        let t = view_token(&app).await;
        assert_eq!(s(&t["access_token"]).matches('.').count(), 0);
        assert_eq!(cli_json(&app, &["keys", "list", "--json"]), json!([]));
    }
}

#[tokio::test]
async fn audience_names_the_resource_servers() {
    let app = spawn_app_with(|s| {
        jwt_mode(s);
        s.audience = Some("https://api.example.com".into());
    })
    .await;
    let at = s(&view_token(&app).await["access_token"]);
    assert_eq!(part(&at, 1)["aud"], "https://api.example.com");
    assert_eq!(part(&at, 1)["iss"], json!(app.base));
    assert_eq!(me_status(&app, &at).await, 200);
}

/// Two instances on one PostgreSQL database, sharing `--issuer` as instances
/// behind one proxy do: each accepts the other's tokens (checked by signature, not
/// from its own memory), a rotation holds at both from their next grant, and a
/// revocation at one holds at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_accept_each_others_tokens_and_rotate_together() {
    use std::sync::Arc;
    use tollgate::clock::ManualClock;
    let test = "jwt::instances_accept_each_others_tokens_and_rotate_together";
    let Some(db) = PgDb::demo(test) else {
        return;
    };
    let db = Arc::new(db);
    let shared = |s: &mut tollgate::config::Settings| {
        jwt_mode(s);
        s.issuer = Some("https://auth.example.com".into());
    };
    let a = spawn_on_postgres(&db, ManualClock::new(real_now()), shared).await;
    let b = spawn_on_postgres(&db, ManualClock::new(real_now()), shared).await;
    let from_a = view_token(&a).await;
    let from_b = s(&view_token(&b).await["access_token"]);
    let at_a = s(&from_a["access_token"]);
    let old_kid = s(&part(&at_a, 0)["kid"]);
    assert_eq!(s(&part(&from_b, 0)["kid"]), old_kid);
    assert_eq!(me_status(&b, &at_a).await, 200);
    assert_eq!(me_status(&a, &from_b).await, 200);
    assert_eq!(introspect(&b, &at_a).await["active"], true);

    ok(&a, &["keys", "rotate"]);
    let new_a = s(&view_token(&a).await["access_token"]);
    let new_b = s(&view_token(&b).await["access_token"]);
    let new_kid = s(&part(&new_a, 0)["kid"]);
    assert_ne!(new_kid, old_kid);
    assert_eq!(s(&part(&new_b, 0)["kid"]), new_kid);
    assert_eq!(me_status(&a, &new_b).await, 200);
    assert_eq!(me_status(&b, &new_a).await, 200);
    // Signed by the retired key, still live: accepted at both.
    assert_eq!(me_status(&b, &at_a).await, 200);

    let r = b
        .client
        .post(b.url("/revoke"))
        .basic_auth("demo", Some("demo-secret"))
        .form(&[("token", at_a.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_refused(&a, &at_a).await;
}
