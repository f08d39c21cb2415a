//! The web console (API.md §8): one page and its assets, served from the binary
//! with a strict Content-Security-Policy and no third-party origin.
use crate::helpers::*;
use reqwest::Response;

const ASSETS: [(&str, &str); 4] = [
    ("/console/", "text/html"),
    ("/console/console.js", "text/javascript"),
    ("/console/console.css", "text/css"),
    ("/console/icon.svg", "image/svg+xml"),
];

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn assert_console_headers(r: &Response, content_type: &str) {
    let path = r.url().path().to_owned();
    assert_eq!(r.status(), 200, "{path}");
    assert!(
        header(r, "content-type").starts_with(content_type),
        "{path}: {}",
        header(r, "content-type")
    );
    let csp = header(r, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header(r, "referrer-policy"), "no-referrer", "{path}");
    assert_eq!(header(r, "cache-control"), "no-cache", "{path}");
}

/// An attribute such as ` onclick=`: inline script, which the CSP would block.
fn has_event_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    })
}

#[tokio::test]
async fn console_assets_are_served_with_a_strict_policy() {
    let app = spawn_app().await;
    for (path, content_type) in ASSETS {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_console_headers(&r, content_type);
        assert!(!r.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn console_page_has_no_inline_script_style_or_other_origin() {
    let app = spawn_app().await;
    let html = app
        .client
        .get(app.url("/console/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<script src="console.js" defer></script>"#));
    assert_eq!(html.matches("<script").count(), 1, "one script, by src");
    assert!(!html.contains("<style"), "no inline style element");
    assert!(!html.contains(" style="), "no style attribute");
    assert!(!has_event_handler(&html), "no inline event handler");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));
    let js = app
        .client
        .get(app.url("/console/console.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!js.contains("localStorage") && !js.contains("sessionStorage"));
    assert!(!js.contains("document.cookie"));
    assert!(!js.contains("http://") && !js.contains("https://"));
}

#[tokio::test]
async fn console_without_a_slash_redirects_to_the_page() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(header(&r, "location"), "/console/");
}

#[tokio::test]
async fn console_lives_under_the_base_path() {
    let app = spawn_app_with(|s| s.base_path = "/Jim_Test".into()).await;
    for (path, content_type) in ASSETS {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_console_headers(&r, content_type);
    }
    let r = app.client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(header(&r, "location"), "/Jim_Test/console/");
    let root = app.base.trim_end_matches("/Jim_Test").to_owned();
    let r = app
        .client
        .get(format!("{root}/console/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not outside the base path");
}

#[tokio::test]
async fn console_head_answers_without_a_body_and_other_methods_are_refused() {
    let app = spawn_app().await;
    let r = app.client.head(app.url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = app.client.post(app.url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = app
        .client
        .get(app.url("/console/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
