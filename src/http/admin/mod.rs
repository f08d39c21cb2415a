//! The admin API (API.md §8): `/admin/v1/…`, for a Bearer token holding `admin`.
//! Each route reads its input, runs the one admin operation the command line runs
//! too, and shapes the answer.
use super::bearer::Authenticated;
use super::errors::Problem;
use super::product_input::{read_json, MAX_LIMIT};
use super::State;
use crate::admin::{Actor, Admin, UserRequest, MAX_SEATS};
use crate::clock::parse_duration;
use crate::crypto::Secret;
use crate::store::SavedQuery;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::json;
use shapes::{AuditOut, QueryIn, SeatsIn, SessionOut, UserIn, UserOut};

mod shapes;

type Reply = Result<HttpResponse, actix_web::Error>;

/// Admin bodies are small JSON objects (a query's SQL is the largest part).
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(scripts::routes(
        web::scope("/admin/v1")
            .service(
                web::resource("/licences")
                    .route(web::get().to(get_licences))
                    .route(web::put().to(put_licences)),
            )
            .service(web::resource("/sessions").route(web::get().to(get_sessions)))
            .service(web::resource("/sessions/{id}").route(web::delete().to(delete_session)))
            .service(
                web::resource("/users")
                    .route(web::get().to(get_users))
                    .route(web::post().to(post_user)),
            )
            .service(
                web::resource("/users/{client_id}/{action}")
                    .route(web::post().to(post_user_action)),
            )
            .service(web::resource("/scopes").route(web::get().to(get_scopes)))
            .service(web::resource("/audit").route(web::get().to(get_audit)))
            .service(web::resource("/queries").route(web::get().to(get_queries)))
            .service(
                web::resource("/queries/{name}")
                    .route(web::put().to(put_query))
                    .route(web::delete().to(delete_query)),
            ),
    ));
}

/// The operations, acting as the token's client from the request's address.
fn admin(auth: &Authenticated, req: &HttpRequest, state: &State) -> Admin {
    let actor = Actor {
        client_id: Some(auth.0.client_id.clone()),
        address: state
            .remote_ip(req)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
    };
    Admin::new(
        state.store.clone(),
        actor,
        state.clock.now(),
        state.settings.pbkdf2_iterations,
    )
}

/// Every admin route: the token must hold `admin` (RFC 6750 403 otherwise).
macro_rules! admin {
    ($auth:expr, $req:expr, $state:expr) => {{
        $auth.require(&["admin"], "admin")?;
        admin(&$auth, &$req, &$state)
    }};
}

/// `limit` and `offset`, as for products; anything else in `allowed` is the
/// caller's, and an unknown parameter is refused so that a typo is not ignored.
struct Paging {
    limit: i64,
    offset: i64,
}

fn paging(qs: &str, allowed: &[&str]) -> Result<(Paging, Vec<(String, String)>), Problem> {
    let mut page = Paging {
        limit: 50,
        offset: 0,
    };
    let mut rest = Vec::new();
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        match &*k {
            "limit" => {
                page.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        field("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
                    })?
            }
            "offset" => {
                page.offset = v
                    .parse()
                    .ok()
                    .filter(|n: &i64| *n >= 0)
                    .ok_or_else(|| field("offset", "must be an integer >= 0"))?
            }
            k if allowed.contains(&k) => rest.push((k.to_owned(), v.into_owned())),
            k => {
                return Err(Problem::bad_request(format!(
                    "{k}: no such parameter here (this list takes limit, offset{})",
                    allowed.iter().map(|a| format!(", {a}")).collect::<String>()
                )))
            }
        }
    }
    Ok((page, rest))
}

fn field(name: &'static str, detail: impl std::fmt::Display) -> Problem {
    Problem {
        field: Some(name.to_owned()),
        ..Problem::bad_request(format!("{name}: {detail}"))
    }
}

/// One page of a list the store gives whole (admin lists are short).
fn page_of<T: Serialize>(all: Vec<T>, p: &Paging) -> HttpResponse {
    let total = all.len();
    let items: Vec<T> = all
        .into_iter()
        .skip(usize::try_from(p.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(p.limit).unwrap_or(0))
        .collect();
    listed(items, total as i64, p)
}

fn listed<T: Serialize>(items: Vec<T>, total: i64, p: &Paging) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "items": items, "total": total, "limit": p.limit, "offset": p.offset,
    }))
}

// Licences and sessions.

pub async fn get_licences(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let seats = admin.seats().await.map_err(Problem::from)?;
    Ok(HttpResponse::Ok().json(json!({"seats": seats.total, "held": seats.held})))
}

pub async fn put_licences(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    body: web::Payload,
) -> Reply {
    let admin = admin!(auth, req, state);
    let input: SeatsIn = read_json(&req, body, ADMIN_BODY_LIMIT).await?;
    if !(0..=MAX_SEATS).contains(&input.seats) {
        return Err(field("seats", format!("must be an integer from 0 to {MAX_SEATS}")).into());
    }
    let seats = admin.set_seats(input.seats).await.map_err(Problem::from)?;
    Ok(HttpResponse::Ok().json(json!({"seats": seats.total, "held": seats.held})))
}

pub async fn get_sessions(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let (p, _) = paging(req.query_string(), &[])?;
    let all = admin.sessions().await.map_err(Problem::from)?;
    Ok(page_of(all.into_iter().map(SessionOut::from).collect(), &p))
}

pub async fn delete_session(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
) -> Reply {
    let admin = admin!(auth, req, state);
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::not_found(format!("no live session {:?}", id.as_str())))?;
    admin.end_session(id).await.map_err(Problem::from)?;
    Ok(HttpResponse::NoContent().finish())
}

// Users.

pub async fn get_users(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let (p, _) = paging(req.query_string(), &[])?;
    let all = admin.users().await.map_err(Problem::from)?;
    Ok(page_of(all.into_iter().map(UserOut::from).collect(), &p))
}

pub async fn post_user(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    body: web::Payload,
) -> Reply {
    let admin = admin!(auth, req, state);
    let input: UserIn = read_json(&req, body, ADMIN_BODY_LIMIT).await?;
    let (user, secret) = admin
        .add_user(UserRequest {
            name: input.client_id,
            scopes: input.scopes,
            api_user: input.api_user,
            secret: None,
        })
        .await
        .map_err(Problem::from)?;
    let mut out = serde_json::to_value(UserOut::from(user)).unwrap_or_default();
    out["client_secret"] = json!(secret.expose());
    let location = format!(
        "{}/admin/v1/users/{}",
        state.settings.base_path,
        utf8_percent(&out["client_id"])
    );
    Ok(secret_reply(HttpResponse::Created())
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(out))
}

/// Answers that carry a secret are never stored by a cache.
fn secret_reply(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((actix_web::http::header::PRAGMA, "no-cache"));
    b
}

/// A path segment for a user's name (which may hold any character but ':').
fn utf8_percent(name: &serde_json::Value) -> String {
    let name = name.as_str().unwrap_or_default();
    form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub async fn post_user_action(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
) -> Reply {
    let admin = admin!(auth, req, state);
    let (name, action) = path.into_inner();
    match action.as_str() {
        "disable" | "enable" => {
            let (user, _) = admin
                .set_enabled(&name, action == "enable")
                .await
                .map_err(Problem::from)?;
            Ok(HttpResponse::Ok().json(UserOut::from(user)))
        }
        "secret" => {
            let secret: Secret = admin.new_secret(&name, None).await.map_err(Problem::from)?;
            Ok(secret_reply(HttpResponse::Ok())
                .json(json!({"client_id": name, "client_secret": secret.expose()})))
        }
        _ => Err(Problem::not_found("no such route").into()),
    }
}

// Scopes, the audit trail.

pub async fn get_scopes(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let (p, _) = paging(req.query_string(), &[])?;
    let all = admin.scopes().await.map_err(Problem::from)?;
    Ok(page_of(all, &p))
}

pub async fn get_audit(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let (p, rest) = paging(req.query_string(), &["since", "client"])?;
    let mut since = 86_400;
    let mut client = None;
    for (k, v) in rest {
        match k.as_str() {
            "since" => since = parse_duration(&v).map_err(|e| field("since", e))?,
            _ if !v.is_empty() => client = Some(v),
            _ => {}
        }
    }
    let (rows, total) = admin
        .audit(state.clock.now() - since, client, p.limit, p.offset)
        .await
        .map_err(Problem::from)?;
    let items: Vec<AuditOut> = rows.into_iter().map(Into::into).collect();
    Ok(listed(items, total, &p))
}

// GetData queries.

pub async fn get_queries(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let (p, _) = paging(req.query_string(), &[])?;
    let all = admin.queries().await.map_err(Problem::from)?;
    Ok(page_of(all, &p))
}

pub async fn put_query(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    name: web::Path<String>,
    body: web::Payload,
) -> Reply {
    let admin = admin!(auth, req, state);
    let input: QueryIn = read_json(&req, body, ADMIN_BODY_LIMIT).await?;
    let q = SavedQuery {
        name: name.into_inner(),
        sql: input.sql,
        scope: input.scope,
        description: input.description,
    };
    let (created, _) = admin
        .save_query(q.clone(), true)
        .await
        .map_err(Problem::from)?;
    let saved = admin
        .queries()
        .await
        .map_err(Problem::from)?
        .into_iter()
        .find(|s| s.name == q.name)
        .unwrap_or(q);
    Ok(if created {
        HttpResponse::Created().json(saved)
    } else {
        HttpResponse::Ok().json(saved)
    })
}

pub async fn delete_query(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    name: web::Path<String>,
) -> Reply {
    let admin = admin!(auth, req, state);
    admin.remove_query(&name).await.map_err(Problem::from)?;
    Ok(HttpResponse::NoContent().finish())
}

// Script URL handlers (API.md §11).
mod scripts;
