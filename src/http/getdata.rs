//! GetData routes (API.md §7): `/api/v1/custom/getdata?queryname=…` and `/api/v1/custom/{name}`.
use super::bearer::Authenticated;
use super::errors::{BearerError, Problem};
use super::State;
use crate::oauth::scopes::Scopes;
use crate::store::getdata::{is_query_name, Page, QueryError, MAX_PARAMS};
use crate::store::SavedQuery;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::BTreeMap;

type Reply = Result<HttpResponse, actix_web::Error>;

pub const MAX_PAGE_SIZE: u32 = 500;

/// What the query string asks for.
#[derive(Debug, Default, PartialEq)]
pub struct GetDataParams {
    pub queryname: Option<String>,
    /// qpN by N, as given.
    pub qp: BTreeMap<usize, String>,
    pub page: Option<Page>,
}

/// Parses and bounds the parameters; the 400's detail names the bad one.
pub fn parse_params(qs: &str) -> Result<GetDataParams, Problem> {
    let mut out = GetDataParams::default();
    let (mut no, mut size) = (1u32, 50u32);
    let mut seen = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        if !seen.insert(k.clone()) {
            return Err(Problem::bad_request(format!("{k}: given more than once")));
        }
        match &*k {
            "queryname" => out.queryname = Some(v.into_owned()),
            "pageno" => {
                no = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request("pageno must be an integer from 1 to 1000000")
                    })?
            }
            "pagesize" => {
                size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request("pagesize must be an integer from 1 to 500")
                    })?
            }
            key => {
                if let Some(n) = key.strip_prefix("qp") {
                    let n: usize = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PARAMS).contains(n))
                        .ok_or_else(|| {
                            Problem::bad_request(format!("{key}: parameters are qp1 to qp9"))
                        })?;
                    if out.qp.insert(n, v.into_owned()).is_some() {
                        return Err(Problem::bad_request(format!("qp{n}: given more than once")));
                    }
                }
            }
        }
    }
    out.page = Some(Page { no, size });
    Ok(out)
}

/// Exactly qp1..qpN for a query with N parameters.
fn bind(qp: &BTreeMap<usize, String>, n: usize) -> Result<Vec<String>, Problem> {
    if let Some(extra) = qp.keys().find(|k| **k > n) {
        return Err(Problem::bad_request(format!(
            "qp{extra}: this query takes {n} parameters"
        )));
    }
    (1..=n)
        .map(|i| {
            qp.get(&i).cloned().ok_or_else(|| {
                Problem::bad_request(format!("qp{i}: missing; this query takes {n} parameters"))
            })
        })
        .collect()
}

pub async fn get_getdata(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    let params = parse_params(req.query_string())?;
    let name = params
        .queryname
        .clone()
        .ok_or_else(|| Problem::bad_request("queryname: missing"))?;
    serve(auth, &name, params, state).await
}

pub async fn get_custom(
    auth: Authenticated,
    name: web::Path<String>,
    req: HttpRequest,
    state: State,
) -> Reply {
    let params = parse_params(req.query_string())?;
    serve(auth, &name, params, state).await
}

async fn serve(auth: Authenticated, name: &str, params: GetDataParams, state: State) -> Reply {
    let unknown = || Problem::not_found(format!("queryname {name}: no such query"));
    if !is_query_name(name) {
        return Err(unknown().into());
    }
    let query: SavedQuery = state
        .store
        .saved_query(name)
        .await
        .map_err(Problem::from)?
        .ok_or_else(unknown)?;
    // A token holding `all` satisfies any query (API.md §7).
    let held = Scopes::from_text(&auth.0.scope);
    // `all` passes any query but one published under `admin`, which it never implies.
    let passes = held.contains(&query.scope) || (held.contains("all") && query.scope != "admin");
    if !passes {
        return Err(BearerError::InsufficientScope(query.scope).into());
    }
    let page = params.page.unwrap_or(Page { no: 1, size: 50 });
    let n = state
        .store
        .query_params(&query.sql)
        .await
        .map_err(|e| problem(name, e))?;
    let values = bind(&params.qp, n)?;
    let body = state
        .store
        .run_query(&query.sql, values, page)
        .await
        .map_err(|e| problem(name, e))?;
    Ok(HttpResponse::Ok().json(body))
}

fn problem(name: &str, e: QueryError) -> Problem {
    match e {
        QueryError::TimedOut => {
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                e.to_string(),
            );
            p.retry_after = Some(1);
            p
        }
        QueryError::TooLarge(why) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Content",
            format!("queryname {name}: {why}"),
        ),
        // Saved by hand past `query add`'s check, or refused by a newer sandbox.
        QueryError::Refused(reason) => {
            log::warn!("saved query {name} cannot run: {reason}");
            Problem::conflict(format!(
                "queryname {name}: the query cannot run ({reason}); an administrator must \
                 replace it"
            ))
        }
        QueryError::BadValue(why) => Problem::bad_request(format!("queryname {name}: {why}")),
        QueryError::Store(s) => Problem::from(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_binding() {
        let p = parse_params("queryname=x&qp2=b&qp1=a&pagesize=10").unwrap();
        assert_eq!(p.page, Some(Page { no: 1, size: 10 }));
        assert_eq!(bind(&p.qp, 2).unwrap(), vec!["a", "b"]);
        assert!(bind(&p.qp, 1).unwrap_err().detail.contains("qp2"));
        assert!(bind(&p.qp, 3).unwrap_err().detail.contains("qp3"));
        assert!(parse_params("qp10=1").unwrap_err().detail.contains("qp10"));
        assert!(parse_params("pagesize=501")
            .unwrap_err()
            .detail
            .contains("pagesize"));
        assert!(parse_params("pageno=0")
            .unwrap_err()
            .detail
            .contains("pageno"));
        assert!(parse_params("pageno=x")
            .unwrap_err()
            .detail
            .contains("pageno"));
    }
}
