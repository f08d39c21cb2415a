//! API.md §12: several databases in one process. Each mount is an actix `App` of its
//! own (its state, the one route table under its path); a request reaches its mount
//! by one map look-up on its first path segment, never by trying the mounts in turn.
//! `/healthz`, `/readyz` and `/metrics` are the process's, over every mount.
use super::{access_log, meta, metrics, not_found, readable, routes, AppState, State};
use actix_http::Request;
use actix_service::boxed::{self, BoxService, BoxServiceFactory};
use actix_service::{IntoServiceFactory, ServiceFactoryExt};
use actix_web::body::BoxBody;
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, App, Error, HttpResponse};
use futures_util::future::{join_all, LocalBoxFuture};
use serde_json::json;
use std::collections::HashMap;
use std::rc::Rc;

type AppFactory = BoxServiceFactory<AppConfig, Request, ServiceResponse<BoxBody>, Error, ()>;
type AppService = BoxService<Request, ServiceResponse<BoxBody>, Error>;

/// Every mount of the process, in the order they were given.
pub struct Process {
    pub mounts: Vec<State>,
}

/// The paths the process answers itself, whatever the mounts.
const PROCESS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Where requests go: the key of each mount (its path's first segment), and the
/// App for paths no mount claims (a mount at the root, else the process's).
#[derive(Clone)]
struct Table {
    keys: Rc<HashMap<String, usize>>,
    fallback: usize,
    process: usize,
}

impl Table {
    /// `base_paths`: each mount's, in order; the process's App comes after them.
    fn new<'a>(base_paths: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let count = base_paths.len();
        let mut keys = HashMap::new();
        let mut root = None;
        for (i, base) in base_paths.enumerate() {
            match key(base) {
                Some(k) => {
                    keys.insert(k.to_owned(), i);
                }
                None => root = Some(i),
            }
        }
        Self {
            keys: Rc::new(keys),
            fallback: root.unwrap_or(count),
            process: count,
        }
    }

    /// RFC 8414 §3 and RFC 8615: under `/.well-known/NAME/…` the mount's path comes
    /// after the well-known name (`/.well-known/oauth-authorization-server/Jim_Test`).
    fn pick(&self, path: &str) -> usize {
        if PROCESS_PATHS.contains(&path) {
            return self.process;
        }
        let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
        let first = segments.next();
        let segment = match first {
            Some(".well-known") => segments.nth(1),
            other => other,
        };
        segment
            .and_then(|s| self.keys.get(s))
            .copied()
            .unwrap_or(self.fallback)
    }
}

/// The first segment of a base path; None for the root.
fn key(base_path: &str) -> Option<&str> {
    base_path
        .strip_prefix('/')
        .and_then(|p| p.split('/').next())
        .filter(|k| !k.is_empty())
}

/// One worker's service factory: an App per mount, and the process's App last.
pub fn factory(mounts: Vec<State>) -> Mounts {
    let table = Table::new(mounts.iter().map(|m| m.settings.base_path.as_str()));
    let mut apps: Vec<AppFactory> = mounts.iter().cloned().map(mount_app).collect();
    apps.push(process_app(mounts));
    Mounts { apps, table }
}

pub struct Mounts {
    apps: Vec<AppFactory>,
    table: Table,
}

fn boxed_app<T, B>(app: App<T>) -> AppFactory
where
    T: ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    boxed::factory(app.into_factory().map(ServiceResponse::map_into_boxed_body))
}

/// The route table under the mount's path, over the mount's state.
fn mount_app(state: State) -> AppFactory {
    let base = state.settings.base_path.clone();
    boxed_app(
        App::new()
            .app_data(state)
            .wrap(from_fn(access_log::observe))
            .configure(|cfg| routes(cfg, &base))
            .default_service(web::to(not_found)),
    )
}

/// `/healthz`, `/readyz` and `/metrics` over every mount; 404 elsewhere.
fn process_app(mounts: Vec<State>) -> AppFactory {
    boxed_app(
        App::new()
            .app_data(web::Data::new(Process { mounts }))
            .wrap(from_fn(access_log::observe))
            .service(readable("/healthz", meta::get_healthz))
            .service(readable("/readyz", get_readyz))
            .service(readable("/metrics", get_metrics))
            .default_service(web::to(not_found)),
    )
}

impl ServiceFactory<Request> for Mounts {
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Config = AppConfig;
    type Service = MountsService;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<MountsService, ()>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let starting: Vec<_> = self
            .apps
            .iter()
            .map(|app| app.new_service(config.clone()))
            .collect();
        let table = self.table.clone();
        Box::pin(async move {
            let apps = join_all(starting)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, ()>>()?;
            Ok(MountsService { apps, table })
        })
    }
}

pub struct MountsService {
    apps: Vec<AppService>,
    table: Table,
}

impl Service<Request> for MountsService {
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    actix_web::dev::always_ready!();

    fn call(&self, req: Request) -> Self::Future {
        let app = self.table.pick(req.path());
        self.apps[app].call(req)
    }
}

/// API.md §12: ready when every mount's database is; a 503 names those that are not.
async fn get_readyz(process: web::Data<Process>) -> HttpResponse {
    let checks = process
        .mounts
        .iter()
        .map(|m| async move { (m, meta::readiness(m).await) });
    let failed: Vec<(&AppState, String)> = join_all(checks)
        .await
        .into_iter()
        .filter_map(|(m, r)| r.err().map(|e| (&***m, e)))
        .collect();
    if failed.is_empty() {
        return HttpResponse::Ok().json(json!({"status": "ok"}));
    }
    let names: Vec<String> = failed.iter().map(|(m, _)| mount_name(m)).collect();
    let detail: Vec<String> = failed
        .iter()
        .map(|(m, e)| format!("{}: {e}", mount_name(m)))
        .collect();
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
        .json(json!({
            "status": "database unavailable",
            "unavailable": names,
            "detail": detail.join("; "),
        }))
}

/// `mount /Jim_Live (live.db)`.
fn mount_name(m: &AppState) -> String {
    format!(
        "mount {} ({})",
        crate::mounts::label(&m.settings.base_path),
        crate::config::db_label(&m.settings.db)
    )
}

/// Every mount's series, each labelled with its mount.
async fn get_metrics(process: web::Data<Process>) -> Result<HttpResponse, super::errors::Problem> {
    let mounts: Vec<&AppState> = process.mounts.iter().map(|m| &***m).collect();
    metrics::text(metrics::exposition(&mounts).await?)
}

#[cfg(test)]
mod tests {
    use super::{key, Table};

    #[test]
    fn a_request_goes_to_the_mount_of_its_first_segment() {
        let t = Table::new(["/Jim_Test", "/Jim_Live"].into_iter());
        assert_eq!(t.pick("/Jim_Test/token"), 0);
        assert_eq!(t.pick("/Jim_Live/api/v1/me"), 1);
        assert_eq!(t.pick("/Jim_Live"), 1);
        assert_eq!(
            t.pick("/.well-known/oauth-authorization-server/Jim_Live"),
            1
        );
        assert_eq!(t.pick("/Jim_Live/.well-known/jwks.json"), 1);
        for process in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/token",
            "/",
            "/Jim_Other/token",
        ] {
            assert_eq!(t.pick(process), 2, "{process}");
        }
        assert_eq!(t.pick("/.well-known/oauth-authorization-server"), 2);
    }

    #[test]
    fn without_mounts_the_root_takes_what_the_process_does_not() {
        let t = Table::new([""].into_iter());
        assert_eq!(t.pick("/token"), 0);
        assert_eq!(t.pick("/.well-known/oauth-authorization-server"), 0);
        assert_eq!(t.pick("/metrics"), 1);
        let t = Table::new(["/a/b"].into_iter());
        assert_eq!(t.pick("/a/b/token"), 0);
        assert_eq!(t.pick("/.well-known/oauth-authorization-server/a/b"), 0);
        assert_eq!(t.pick("/b/token"), 1);
    }

    #[test]
    fn a_mount_is_keyed_by_its_first_segment() {
        assert_eq!(key(""), None);
        assert_eq!(key("/Jim_Test"), Some("Jim_Test"));
        assert_eq!(key("/a/b"), Some("a"));
    }
}
