//! `/admin/v1/scripts` (API.md §8, §11): list, read, put and delete handlers.
use super::{admin, page_of, paging, Reply};
use crate::http::bearer::Authenticated;
use crate::http::errors::Problem;
use crate::http::product_input::read_json;
use crate::http::State;
use crate::store::script::{Script, MAX_SOURCE_BYTES};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(web::resource("/scripts").route(web::get().to(get_scripts)))
        .service(
            web::resource("/scripts/{name}")
                .route(web::get().to(get_script))
                .route(web::put().to(put_script))
                .route(web::delete().to(delete_script)),
        )
}

/// The body of `PUT /admin/v1/scripts/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptIn {
    source: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default = "super::shapes::view")]
    scope: String,
    #[serde(default)]
    writes: bool,
    #[serde(default)]
    description: String,
}

fn get() -> String {
    "GET".to_owned()
}

async fn get_scripts(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let admin = admin!(auth, req, state);
    let (p, _) = paging(req.query_string(), &[])?;
    let all = admin.scripts().await.map_err(Problem::from)?;
    Ok(page_of(all, &p))
}

async fn get_script(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    name: web::Path<String>,
) -> Reply {
    let admin = admin!(auth, req, state);
    let s = admin.script(&name).await.map_err(Problem::from)?;
    Ok(HttpResponse::Ok().json(s))
}

async fn put_script(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    name: web::Path<String>,
    body: web::Payload,
) -> Reply {
    let admin = admin!(auth, req, state);
    let input: ScriptIn = read_json(&req, body, MAX_SOURCE_BYTES + 16 * 1024).await?;
    let s = Script {
        name: name.into_inner(),
        source: input.source,
        method: input.method.to_ascii_uppercase(),
        scope: input.scope,
        writes: input.writes,
        description: input.description,
        version: 0,
    };
    let created = admin
        .save_script(s.clone(), true)
        .await
        .map_err(Problem::from)?;
    let saved = admin.script(&s.name).await.map_err(Problem::from)?;
    Ok(if created {
        HttpResponse::Created().json(saved)
    } else {
        HttpResponse::Ok().json(saved)
    })
}

async fn delete_script(
    auth: Authenticated,
    req: HttpRequest,
    state: State,
    name: web::Path<String>,
) -> Reply {
    let admin = admin!(auth, req, state);
    admin.remove_script(&name).await.map_err(Problem::from)?;
    Ok(HttpResponse::NoContent().finish())
}
