//! GET / (under the base path): where a person or a program goes next.
use super::State;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// `{base}/`, and `{base}` itself when there is a base path.
pub fn routes(cfg: &mut web::ServiceConfig, base_path: &str) {
    cfg.service(super::readable(&format!("{base_path}/"), get_home));
    if !base_path.is_empty() {
        cfg.service(super::readable(base_path, get_home));
    }
}

/// The links, as paths on this host (no `Host` header is echoed back).
fn links(base: &str) -> Value {
    json!({
        "token_endpoint": format!("{base}/token"),
        "metadata": format!("/.well-known/oauth-authorization-server{base}"),
        "openapi": format!("{base}/openapi.json"),
        "health": format!("{base}/healthz"),
        "products": format!("{base}/api/v1/products"),
    })
}

/// JSON, or a small HTML page for a browser (one that asks for `text/html`).
pub async fn get_home(req: HttpRequest, state: State) -> HttpResponse {
    let links = links(&state.settings.base_path);
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::VARY, "Accept"));
    if !wants_html {
        return resp.json(json!({
            "service": "tollgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OAuth 2.0 token server (client_credentials, refresh_token) with licence seats and a product API",
            "links": links,
            "documentation": "docs/API.md in tollgate's repository",
        }));
    }
    let item = |label: &str, key: &str| {
        let href = links[key].as_str().unwrap_or_default();
        format!("<li>{label}: <a href=\"{href}\"><code>{href}</code></a></li>")
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tollgate</title></head>\n\
         <body><h1>tollgate {}</h1>\n<p>An OAuth 2.0 token server: POST client credentials to the token \
         endpoint for an access token, then call the API with <code>Authorization: Bearer</code>.</p>\n\
         <ul>{}{}{}{}</ul>\n<p>Token endpoint: <code>POST {}</code>. The full description is \
         <code>docs/API.md</code> in tollgate's repository.</p></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        item("Server metadata (RFC 8414)", "metadata"),
        item("OpenAPI document", "openapi"),
        item("Health", "health"),
        item("Products (needs a token)", "products"),
        links["token_endpoint"].as_str().unwrap_or_default(),
    );
    resp.insert_header((
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ))
    .content_type("text/html; charset=utf-8")
    .body(body)
}
