//! GET /console/ (under the base path): the web console of API.md §8, one page and
//! its two assets compiled into the binary. The page talks only to this server, with
//! relative URLs, so it works under any base path.
use super::State;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");
const ICON_SVG: &str = include_str!("../../console/icon.svg");

/// API.md §8: `default-src 'self'`, `frame-ancestors 'none'`, so no inline script
/// or style and no third-party origin; the page posts no forms anywhere else.
const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// `{base}/console/` and its assets; `{base}/console` redirects to the page.
pub fn routes(cfg: &mut web::ServiceConfig, base_path: &str) {
    cfg.service(super::readable(
        &format!("{base_path}/console"),
        get_console_redirect,
    ))
    .service(super::readable(&format!("{base_path}/console/"), get_index))
    .service(super::readable(
        &format!("{base_path}/console/console.js"),
        get_script,
    ))
    .service(super::readable(
        &format!("{base_path}/console/console.css"),
        get_style,
    ))
    .service(super::readable(
        &format!("{base_path}/console/icon.svg"),
        get_icon,
    ));
}

/// The page's relative URLs (`../token`) need the trailing slash.
async fn get_console_redirect(state: State) -> HttpResponse {
    let location = format!("{}/console/", state.settings.base_path);
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn get_index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn get_script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

async fn get_style() -> HttpResponse {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

async fn get_icon() -> HttpResponse {
    asset("image/svg+xml", ICON_SVG)
}

/// One asset with the console's security headers; `no-cache` so that a new binary's
/// page is never mixed with an old script.
fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut resp = HttpResponse::Ok().content_type(content_type).body(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}
