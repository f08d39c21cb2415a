//! `METHOD /api/v1/custom/{name}` (API.md §11): a script handler of the name runs
//! for its own method; any other name is GetData's (§7) as before.
use super::bearer::Authenticated;
use super::body::{read_limited, BodyError};
use super::errors::{BearerError, Problem};
use super::{getdata, State};
use crate::oauth::scopes::Scopes;
use crate::store::getdata::is_query_name;
use crate::store::script::{Script, ScriptError, ScriptRequest};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use std::collections::BTreeMap;

type Reply = Result<HttpResponse, actix_web::Error>;

/// The largest request body a handler is given, bytes.
pub const MAX_SCRIPT_BODY: usize = 1 << 20;

/// Every method on `/api/v1/custom/{name}`.
pub async fn custom(
    auth: Authenticated,
    name: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Reply {
    let script = match is_query_name(&name) {
        true => state.store.script(&name).await.map_err(Problem::from)?,
        false => None,
    };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    match script {
        Some(s) => run(auth, s, req, body, state).await,
        None if read => getdata::get_custom(auth, name, req, state).await,
        None => match state
            .store
            .saved_query(&name)
            .await
            .map_err(Problem::from)?
        {
            Some(_) if is_query_name(&name) => Ok(not_allowed(&name, "GET, HEAD")),
            _ => Err(Problem::not_found(format!("{name}: no such query or script")).into()),
        },
    }
}

fn not_allowed(name: &str, allow: &str) -> HttpResponse {
    let mut r = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        format!("{name} answers {allow} only"),
    )
    .error_response();
    if let Ok(v) = header::HeaderValue::from_str(allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

async fn run(
    auth: Authenticated,
    s: Script,
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Reply {
    let method = req.method().as_str();
    if method != s.method && !(method == "HEAD" && s.method == "GET") {
        return Ok(not_allowed(&s.name, &s.method));
    }
    // `all` passes any handler but one published under `admin`, as for queries.
    let held = Scopes::from_text(&auth.0.scope);
    if !(held.contains(&s.scope) || (held.contains("all") && s.scope != "admin")) {
        return Err(BearerError::InsufficientScope(s.scope).into());
    }
    let request = ScriptRequest {
        method: s.method.clone(),
        query: query_map(req.query_string())?,
        body: json_body(&req, body).await?,
        client_id: auth.0.client_id.clone(),
        scopes: auth.0.scope.split(' ').map(str::to_owned).collect(),
    };
    let name = s.name.clone();
    let reply = state
        .store
        .run_script(s, request)
        .await
        .map_err(|e| problem(&name, e))?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    Ok(HttpResponse::build(status).json(reply.body))
}

/// `request.query`: each parameter once.
fn query_map(qs: &str) -> Result<BTreeMap<String, String>, Problem> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(Problem::bad_request(format!("{k}: given more than once")));
        }
    }
    Ok(out)
}

/// `request.body`: the body as JSON, or null when there is none.
async fn json_body(req: &HttpRequest, body: web::Payload) -> Result<serde_json::Value, Problem> {
    let bytes = read_limited(req, body, MAX_SCRIPT_BODY)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
                format!("body: at most {MAX_SCRIPT_BODY} bytes"),
            ),
            BodyError::Broken => Problem::bad_request("body: could not be read"),
            BodyError::TimedOut(secs) => Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout",
                format!("body: did not arrive within {secs} s"),
            ),
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| Problem::bad_request(format!("body: not JSON: {e}")))
}

fn problem(name: &str, e: ScriptError) -> Problem {
    match e {
        ScriptError::TimedOut => {
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                format!("script {name}: {e}"),
            );
            p.retry_after = Some(1);
            p
        }
        ScriptError::Failed { line, message } => {
            let at = line.map_or_else(String::new, |l| format!(" at line {l}"));
            log::warn!("script {name} failed{at}: {message}");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                format!("script {name} failed{at}: {message}"),
            )
        }
        ScriptError::Store(s) => Problem::from(s),
    }
}
