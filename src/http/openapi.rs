//! GET /openapi.json: the OpenAPI 3.1 document kept in the repository as `openapi.json`.
use super::State;
use actix_web::HttpResponse;
use serde_json::{json, Value};

/// The document as written: paths relative to the root, `servers: [{"url": "/"}]`.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// Served as written when there is no base path, so it is the file byte for byte.
pub async fn get_openapi(state: State) -> HttpResponse {
    let base = &state.settings.base_path;
    let body = if base.is_empty() {
        DOCUMENT.to_owned()
    } else {
        with_base_path(base)
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// Under a base path `P` every route moves under `P`, except the metadata document,
/// which RFC 8414 §3 puts at `/.well-known/oauth-authorization-server/P`: that one
/// path keeps the root as its server (OpenAPI 3.1 §4.8.9, path-level `servers`).
pub fn with_base_path(base: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(DOCUMENT) else {
        return DOCUMENT.to_owned();
    };
    doc["servers"] =
        json!([{ "url": base, "description": "The server that serves this document." }]);
    if let Some(paths) = doc["paths"].as_object_mut() {
        if let Some(mut item) = paths.remove(METADATA_PATH) {
            item["servers"] = json!([{ "url": "/" }]);
            paths.insert(format!("{METADATA_PATH}{base}"), item);
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_json() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        assert_eq!(doc["servers"][0]["url"], "/");
        assert!(doc["paths"][METADATA_PATH].is_object());
    }

    #[test]
    fn base_path_moves_routes_but_not_the_metadata_document() {
        let doc: Value = serde_json::from_str(&with_base_path("/Jim_Test")).unwrap();
        assert_eq!(doc["servers"][0]["url"], "/Jim_Test");
        assert!(doc["paths"]["/token"].is_object());
        let meta = &doc["paths"]["/.well-known/oauth-authorization-server/Jim_Test"];
        assert_eq!(meta["servers"][0]["url"], "/");
        assert!(doc["paths"][METADATA_PATH].is_null());
    }
}
