//! Server metadata (RFC 8414) and health probes.
use super::errors::Problem;
use super::State;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// The issuer: `--issuer` if set, else derived from the listen address and base path.
pub fn issuer(state: &State) -> String {
    state.settings.issuer_url()
}

/// RFC 8414 §2 and §3: served at `/.well-known/oauth-authorization-server{base path}`.
pub async fn get_metadata(state: State) -> Result<HttpResponse, Problem> {
    let scopes: Vec<String> = state.store.scope_names().await?;
    let iss = issuer(&state);
    let methods = ["client_secret_basic", "client_secret_post"];
    let mut body = json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/token"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "scopes_supported": scopes,
    });
    if state.oauth.jwt.issue {
        body["jwks_uri"] = json!(format!("{iss}/.well-known/jwks.json"));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// API.md §10: the public keys of JWT access tokens (RFC 7517 §5), under the base
/// path. Caches may keep it for half an access-token lifetime (at most 5 minutes),
/// so a resource server sees a new key before the old one's tokens are gone.
pub async fn get_jwks(state: State) -> Result<HttpResponse, Problem> {
    if !state.oauth.jwt.issue {
        return Err(Problem::not_found(
            "no JWKS: this server issues opaque access tokens (--access-token-format opaque)",
        ));
    }
    let max_age = (state.settings.access_ttl / 2).clamp(0, 300);
    Ok(HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("public, max-age={max_age}"),
        ))
        .json(state.oauth.jwt.jwks().await?))
}

/// The process is up.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// How long readiness waits for a write.
const WRITER_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// The database takes writes (answering within a bound, and writes are not
/// failing) and answers a read.
pub async fn get_readyz(state: State) -> HttpResponse {
    match readiness(&state).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(detail) => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
            .json(json!({"status": "database unavailable", "detail": detail})),
    }
}

/// One mount's database, checked as [`get_readyz`] says; the failure as text.
pub async fn readiness(state: &super::AppState) -> Result<(), String> {
    state.store.check_ready(WRITER_PROBE).await.map_err(|e| {
        if let Some(held) = NOT_READY.admit() {
            let mount = crate::mounts::label(&state.settings.base_path);
            log::warn!("readiness check failed (mount {mount}): {e}{held}");
        }
        e.to_string()
    })
}

/// Readiness is asked every few seconds; a lasting failure is logged less often.
static NOT_READY: crate::log_limit::Limited =
    crate::log_limit::Limited::new(std::time::Duration::from_secs(30));
