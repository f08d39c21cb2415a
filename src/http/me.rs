//! GET /api/v1/me: what the presented access token is (API.md §4).
use super::bearer::Authenticated;
use actix_web::HttpResponse;
use serde_json::json;

/// GET /api/v1/me: what the presented token is.
pub async fn get_me(auth: Authenticated) -> HttpResponse {
    let g = auth.0;
    HttpResponse::Ok().json(json!({
        "client_id": g.client_id,
        "scope": g.scope,
        "expires_at": g.expires_at,
        "session_id": g.session_id,
        "session_expires_at": g.session_expires_at,
        "seat": g.seat,
    }))
}
