//! Interoperability with a real client library: the `oauth2` crate (5.x) against the
//! token and revocation endpoints (API.md §3, §5), through its own request building
//! and response parsing, with no hand-written HTTP on the OAuth side.
use crate::helpers::*;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse, BasicTokenType};
use oauth2::http::header::AUTHORIZATION;
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    HttpClientError, HttpRequest, HttpResponse, RefreshToken, RequestTokenError, RevocationUrl,
    Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `BasicClient` with its token and revocation endpoints set.
type Oauth2Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet>;

/// The crate's error for a token request made through [`Wire`].
type TokenError = RequestTokenError<
    HttpClientError<reqwest::Error>,
    oauth2::StandardErrorResponse<BasicErrorResponseType>,
>;

/// What the crate put on the wire for one request.
#[derive(Debug, Clone)]
struct Sent {
    uri: String,
    basic: bool,
    body: String,
}

/// The crate's HTTP client: a `reqwest::Client` with redirects disabled (as the
/// crate's documentation asks, against SSRF), recording each request it sends.
///
/// The crate refuses a revocation URL that is not `https` (RFC 7009 §2,
/// `ConfigurationError::InsecureUrl`) and tollgate serves plain HTTP, so the
/// revocation URL is given as `https://127.0.0.1:PORT/revoke` and this client,
/// standing in for a TLS-terminating proxy on the loopback address, sends it
/// over HTTP. Nothing else about the request is touched.
#[derive(Clone)]
struct Wire {
    http: reqwest::Client,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl Wire {
    fn new() -> Self {
        Wire {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("reqwest client"),
            sent: Arc::default(),
        }
    }

    fn last(&self) -> Sent {
        self.sent.lock().unwrap().last().expect("a request").clone()
    }
}

impl<'c> AsyncHttpClient<'c> for Wire {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, mut request: HttpRequest) -> Self::Future {
        let uri = request.uri().to_string();
        self.sent.lock().unwrap().push(Sent {
            uri: uri.clone(),
            basic: request
                .headers()
                .get(AUTHORIZATION)
                .is_some_and(|v| v.as_bytes().starts_with(b"Basic ")),
            body: String::from_utf8_lossy(request.body()).into_owned(),
        });
        if let Some(rest) = uri.strip_prefix("https://127.0.0.1:") {
            *request.uri_mut() = format!("http://127.0.0.1:{rest}")
                .parse()
                .expect("loopback URI");
        }
        Box::pin(self.http.call(request))
    }
}

/// An `oauth2` client for `id`/`secret` on the test server, authenticating as `auth`.
fn oauth2_client(app: &TestApp, id: &str, secret: &str, auth: AuthType) -> Oauth2Client {
    let revoke = app.url("/revoke").replacen("http://", "https://", 1);
    BasicClient::new(ClientId::new(id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/token")).expect("token URL"))
        .set_revocation_url(RevocationUrl::new(revoke).expect("revocation URL"))
        .set_auth_type(auth)
}

fn demo(app: &TestApp) -> Oauth2Client {
    oauth2_client(app, "demo", "demo-secret", AuthType::BasicAuth)
}

/// A client-credentials grant through the crate.
async fn grant(
    client: &Oauth2Client,
    wire: &Wire,
    scope: Option<&str>,
) -> Result<BasicTokenResponse, TokenError> {
    let mut req = client.exchange_client_credentials();
    if let Some(s) = scope {
        req = req.add_scope(Scope::new(s.to_owned()));
    }
    req.request_async(wire).await
}

/// A grant that must succeed.
async fn grant_ok(client: &Oauth2Client, wire: &Wire, scope: Option<&str>) -> BasicTokenResponse {
    grant(client, wire, scope)
        .await
        .unwrap_or_else(|e| panic!("grant (scope {scope:?}) failed: {}", describe(&e)))
}

/// The RFC 6749 §5.2 error code the crate parsed from tollgate's answer.
fn server_error(e: TokenError) -> BasicErrorResponseType {
    match e {
        RequestTokenError::ServerResponse(r) => r.error().clone(),
        other => panic!("expected an OAuth error response, got {}", describe(&other)),
    }
}

fn describe(e: &TokenError) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("server response {r}"),
        RequestTokenError::Request(r) => format!("request error {r:?}"),
        RequestTokenError::Parse(p, body) => {
            format!("parse error {p} on {}", String::from_utf8_lossy(body))
        }
        RequestTokenError::Other(o) => format!("other error {o}"),
    }
}

fn scopes(t: &BasicTokenResponse) -> Vec<String> {
    t.scopes()
        .expect("a scope in the response")
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn refresh_of(t: &BasicTokenResponse) -> &RefreshToken {
    t.refresh_token().expect("a refresh token")
}

async fn me(app: &TestApp, t: &BasicTokenResponse) -> reqwest::Response {
    app.me(t.access_token().secret()).await
}

crate::on_both_engines! {
    async fn client_credentials_with_basic_auth(app) {
        let wire = Wire::new();
        let t = grant_ok(&demo(&app), &wire, None).await;
        let sent = wire.last();
        assert!(sent.basic, "the crate used HTTP Basic: {sent:?}");
        assert!(!sent.body.contains("client_secret"), "{sent:?}");
        assert_eq!(*t.token_type(), BasicTokenType::Bearer);
        assert_eq!(t.expires_in(), Some(Duration::from_secs(300)));
        assert_eq!(scopes(&t), ["all", "view"]);
        let r = me(&app, &t).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["client_id"], "demo");
        assert_eq!(body["seat"], true);
    }
}

crate::on_both_engines! {
    async fn client_credentials_with_credentials_in_the_body(app) {
        let wire = Wire::new();
        let client = oauth2_client(&app, "viewer", "viewer-secret", AuthType::RequestBody);
        let t = grant_ok(&client, &wire, None).await;
        let sent = wire.last();
        assert!(!sent.basic, "no Authorization header: {sent:?}");
        assert!(
            sent.body.contains("client_id=viewer") && sent.body.contains("client_secret=viewer-secret"),
            "{sent:?}"
        );
        assert_eq!(scopes(&t), ["view"]);
        let body: Value = me(&app, &t).await.json().await.unwrap();
        assert_eq!(body["client_id"], "viewer");
    }
}

crate::on_both_engines! {
    async fn view_scope_is_granted_as_asked_with_a_refresh_token(app) {
        let wire = Wire::new();
        let t = grant_ok(&demo(&app), &wire, Some("view")).await;
        assert!(wire.last().body.contains("scope=view"));
        assert_eq!(scopes(&t), ["view"]);
        assert!(
            t.refresh_token().is_some(),
            "every grant has a refresh token"
        );
        let body: Value = me(&app, &t).await.json().await.unwrap();
        assert_eq!(body["scope"], "view");
        assert_eq!(body["seat"], false, "a view grant holds no seat");
    }
}

crate::on_both_engines! {
    async fn refresh_through_the_crate_rotates_both_tokens(app) {
        let wire = Wire::new();
        let client = demo(&app);
        let first = grant_ok(&client, &wire, Some("all")).await;
        let session: Value = me(&app, &first).await.json().await.unwrap();

        let second = client
            .exchange_refresh_token(refresh_of(&first))
            .request_async(&wire)
            .await
            .unwrap_or_else(|e| panic!("refresh failed: {}", describe(&e)));
        let sent = wire.last();
        assert!(sent.basic, "{sent:?}");
        assert!(sent.body.contains("grant_type=refresh_token"), "{sent:?}");
        assert_eq!(scopes(&second), ["all"]);
        assert_ne!(
            second.access_token().secret(),
            first.access_token().secret()
        );
        assert_ne!(
            refresh_of(&second).secret(),
            refresh_of(&first).secret(),
            "the refresh token rotates"
        );
        let after: Value = me(&app, &second).await.json().await.unwrap();
        assert_eq!(after["session_id"], session["session_id"], "same session");
        assert_eq!(app.seats_held(), 1, "refreshing keeps the one seat");

        // The old refresh token is dead: presenting it again is reuse.
        let reused = client
            .exchange_refresh_token(refresh_of(&first))
            .request_async(&wire)
            .await
            .expect_err("an exchanged refresh token is dead");
        assert_eq!(server_error(reused), BasicErrorResponseType::InvalidGrant);
    }
}

crate::on_both_engines! {
    async fn revoking_the_refresh_token_through_the_crate_frees_the_seat(app) {
        let wire = Wire::new();
        let client = demo(&app);
        let first = grant_ok(&client, &wire, Some("all")).await;
        grant_ok(&client, &wire, Some("all")).await;
        let refused = grant(&client, &wire, Some("all"))
            .await
            .expect_err("both seats are held");
        assert_eq!(
            server_error(refused),
            BasicErrorResponseType::Extension("licence_unavailable".into())
        );
        assert_eq!(me(&app, &first).await.status(), 200);

        client
            .revoke_token(StandardRevocableToken::RefreshToken(
                refresh_of(&first).clone(),
            ))
            .expect("revocation request")
            .request_async(&wire)
            .await
            .unwrap_or_else(|e| panic!("revocation failed: {e:?}"));
        let sent = wire.last();
        assert!(sent.uri.ends_with("/revoke"), "{sent:?}");
        assert!(sent.basic, "{sent:?}");
        assert!(
            sent.body.contains("token_type_hint=refresh_token"),
            "{sent:?}"
        );

        assert_eq!(
            me(&app, &first).await.status(),
            401,
            "the session's access token died with it"
        );
        assert_eq!(app.seats_held(), 1);
        let third = grant_ok(&client, &wire, Some("all")).await;
        assert_eq!(scopes(&third), ["all"]);
    }
}

crate::on_both_engines! {
    async fn wrong_secret_is_invalid_client(app) {
        let wire = Wire::new();
        for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
            let client = oauth2_client(&app, "demo", "not-the-secret", auth);
            let e = grant(&client, &wire, Some("view"))
                .await
                .expect_err("refused");
            assert_eq!(server_error(e), BasicErrorResponseType::InvalidClient);
        }
    }
}

crate::on_both_engines! {
    async fn a_scope_nobody_has_is_invalid_scope(app) {
        let wire = Wire::new();
        let e = grant(&demo(&app), &wire, Some("admin"))
            .await
            .expect_err("refused");
        assert_eq!(server_error(e), BasicErrorResponseType::InvalidScope);
    }
}

crate::on_both_engines! {
    async fn a_bogus_refresh_token_is_invalid_grant(app) {
        let wire = Wire::new();
        let e = demo(&app)
            .exchange_refresh_token(&RefreshToken::new("bogus".into()))
            .request_async(&wire)
            .await
            .expect_err("refused");
        assert_eq!(server_error(e), BasicErrorResponseType::InvalidGrant);
    }
}
