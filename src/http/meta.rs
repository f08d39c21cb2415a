//! Server metadata (RFC 8414) and health probes.
use super::State;
use crate::error::Problem;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// The issuer: `--issuer` if set, else derived from the listen address and base path.
pub fn issuer(state: &State) -> String {
    let s = &state.settings;
    match &s.issuer {
        Some(i) => i.trim_end_matches('/').to_owned(),
        None => {
            let scheme = if s.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}{}", s.listen, s.base_path)
        }
    }
}

/// RFC 8414 §2 and §3: served at `/.well-known/oauth-authorization-server{base path}`.
pub async fn get_metadata(state: State) -> Result<HttpResponse, Problem> {
    let scopes: Vec<String> = state.db.read(crate::store::users::scope_names).await?;
    let iss = issuer(&state);
    let methods = ["client_secret_basic", "client_secret_post"];
    Ok(HttpResponse::Ok().json(json!({
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
    })))
}

/// The process is up.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers a query.
pub async fn get_readyz(state: State) -> HttpResponse {
    match state
        .db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM licence", [], |r| r.get::<_, i64>(0))?))
        .await
    {
        Ok(_) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
                .json(json!({"status": "database unavailable"}))
        }
    }
}
