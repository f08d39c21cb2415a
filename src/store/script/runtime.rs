//! The Rhai runtime of script handlers (API.md §11). Rhai is pure Rust and has no
//! file, network, process or clock access unless the host registers it; tollgate
//! registers `query`, `execute` and `response` only, and every run is bounded by the
//! limits below, which no script can lift.
use super::cache;
use super::convert::{params_of, reply_of, Reply};
use super::{CompileError, Host, ScriptError, ScriptReply, ScriptRequest};
use crate::store::getdata::QueryError;
use rhai::packages::{Package, StandardPackage};
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, Module, Position, Scope, Shared as RhaiShared, AST,
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Rhai operations one run may take.
pub const MAX_OPERATIONS: u64 = 5_000_000;
/// Longest string a script may build (and the sum of strings in one value), bytes.
pub const MAX_STRING_BYTES: usize = 1 << 20;
/// Most elements an array, or entries a map, may hold.
pub const MAX_ELEMENTS: usize = 100_000;
/// Deepest chain of function calls.
pub const MAX_CALL_LEVELS: usize = 32;
/// Deepest nesting of expressions, at top level and in functions.
const MAX_EXPR_DEPTHS: (usize, usize) = (64, 32);
/// Largest answer a handler may give, as JSON, bytes.
pub const MAX_REPLY_BYTES: usize = 1 << 20;

type Shared = Arc<Mutex<Box<dyn Host>>>;
/// Why a host call stopped the run, kept beside Rhai's own error.
type Stopped = Arc<Mutex<Option<ScriptError>>>;

/// An engine with the limits but no host: enough to compile.
fn bounded() -> Engine {
    let mut e = Engine::new_raw();
    e.set_max_operations(MAX_OPERATIONS)
        .set_max_string_size(MAX_STRING_BYTES)
        .set_max_array_size(MAX_ELEMENTS)
        .set_max_map_size(MAX_ELEMENTS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTHS.0, MAX_EXPR_DEPTHS.1)
        .set_max_variables(10_000)
        .set_max_functions(1_000);
    // `eval` would compile text at run time, outside the cache and the add-time check.
    e.disable_symbol("eval");
    e.on_print(|_| {}).on_debug(|_, _, _| {});
    e
}

/// The standard library, built once and shared by every run's engine.
fn standard() -> RhaiShared<Module> {
    static STD: OnceLock<RhaiShared<Module>> = OnceLock::new();
    STD.get_or_init(|| StandardPackage::new().as_shared_module())
        .clone()
}

/// Compiles `source` as `script add` and `PUT /admin/v1/scripts` do before saving.
pub fn check_source(source: &str) -> Result<AST, CompileError> {
    let mut e = bounded();
    e.register_global_module(standard());
    e.compile(source).map_err(|err| CompileError {
        line: err.position().line().unwrap_or(1),
        message: err.err_type().to_string(),
    })
}

fn host_error(stopped: &Stopped, e: QueryError) -> Box<EvalAltResult> {
    match e {
        QueryError::Refused(why) | QueryError::TooLarge(why) | QueryError::BadValue(why) => {
            why.into()
        }
        // The time limit, or the database: the run stops here, and says why.
        other => {
            let why = match other {
                QueryError::TimedOut => ScriptError::TimedOut,
                QueryError::Store(s) => ScriptError::Store(s),
                _ => unreachable!("matched above"),
            };
            *stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            EvalAltResult::ErrorTerminated(Dynamic::UNIT, Position::NONE).into()
        }
    }
}

/// The engine of one run: the limits, the deadline, and the host's functions.
fn engine(host: Shared, stopped: Stopped, deadline: Instant) -> Engine {
    let mut e = bounded();
    e.register_global_module(standard());
    e.on_progress(move |_| (Instant::now() > deadline).then_some(Dynamic::UNIT));
    e.register_type_with_name::<Reply>("Response");
    e.register_fn("response", |status: i64, body: Dynamic| {
        Reply::new(status, body)
    });
    for (name, writes) in [("query", false), ("execute", true)] {
        let (h, s) = (host.clone(), stopped.clone());
        let call = move |sql: &str, params: Array| -> Result<Dynamic, Box<EvalAltResult>> {
            let params = params_of(params)?;
            let mut host = h.lock().unwrap_or_else(|p| p.into_inner());
            if writes {
                let n = host.execute(sql, params).map_err(|e| host_error(&s, e))?;
                Ok(Dynamic::from(n as i64))
            } else {
                let rows = host.query(sql, params).map_err(|e| host_error(&s, e))?;
                rhai::serde::to_dynamic(rows)
            }
        };
        let plain = call.clone();
        e.register_fn(name, call);
        e.register_fn(name, move |sql: &str| plain(sql, Array::new()));
    }
    e
}

/// Runs `source` for `request` with `host` until `deadline`. Never panics on
/// anything a script does; the error says what stopped it and on which line.
pub fn run(
    source: &str,
    request: &ScriptRequest,
    host: Box<dyn Host>,
    deadline: Instant,
) -> Result<ScriptReply, ScriptError> {
    let ast = cache::compiled(source).map_err(|e| ScriptError::Failed {
        line: Some(e.line),
        message: e.message,
    })?;
    let stopped: Stopped = Arc::default();
    let e = engine(Arc::new(Mutex::new(host)), stopped.clone(), deadline);
    let mut scope = Scope::new();
    let request = rhai::serde::to_dynamic(request)
        .map_err(|err| ScriptError::failed(format!("the request: {err}")))?;
    scope.push_constant("request", request);
    let result = e.eval_ast_with_scope::<Dynamic>(&mut scope, &ast);
    if let Some(why) = stopped.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(why);
    }
    match result {
        Ok(value) => reply_of(value),
        Err(err) => Err(failure(&err)),
    }
}

fn failure(err: &EvalAltResult) -> ScriptError {
    let inner = err.unwrap_inner();
    match inner {
        EvalAltResult::ErrorTooManyOperations(_) | EvalAltResult::ErrorTerminated(..) => {
            ScriptError::TimedOut
        }
        _ => {
            let line = inner.position().line().or_else(|| err.position().line());
            let mut message = inner.to_string();
            // Rhai appends the position; the line is reported on its own.
            if let Some(cut) = message.rfind(" (line ") {
                message.truncate(cut);
            }
            ScriptError::Failed { line, message }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::time::Duration;

    /// A host whose `query` answers `rows`, or fails as `fail` says.
    struct Fake {
        rows: Vec<Value>,
        fail: Option<fn() -> QueryError>,
    }

    impl Host for Fake {
        fn query(&mut self, sql: &str, params: Vec<String>) -> Result<Vec<Value>, QueryError> {
            match self.fail {
                Some(f) => Err(f()),
                // The rows, and what was asked, so a test sees how parameters bind.
                None => Ok([
                    self.rows.clone(),
                    vec![json!({"sql": sql, "params": params})],
                ]
                .concat()),
            }
        }
        fn execute(&mut self, _: &str, _: Vec<String>) -> Result<usize, QueryError> {
            Ok(1)
        }
    }

    fn run_with(
        source: &str,
        fail: Option<fn() -> QueryError>,
    ) -> Result<ScriptReply, ScriptError> {
        let host = Fake {
            rows: vec![json!({"sku": "A", "n": 2})],
            fail,
        };
        let request = ScriptRequest {
            method: "GET".into(),
            client_id: "viewer".into(),
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        run(source, &request, Box::new(host), deadline)
    }

    #[test]
    fn values_and_responses_become_answers() {
        let r = run_with(
            "#{ who: request.client_id, rows: query(\"q\", [1, \"x\"]) }",
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let asked = json!({"sql": "q", "params": ["1", "x"]});
        let rows = json!([{"sku": "A", "n": 2}, asked]);
        assert_eq!(r.body, json!({"who": "viewer", "rows": rows}));
        let r = run_with("response(422, #{ error: \"no\" })", None).unwrap();
        assert_eq!((r.status, r.body), (422, json!({"error": "no"})));
        for bad in ["response(99, 1)", "response(600, 1)", "query(\"q\", [#{}])"] {
            assert!(
                matches!(run_with(bad, None), Err(ScriptError::Failed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_host_time_out_stops_the_run_even_when_caught() {
        let r = run_with(
            "try { query(\"q\") } catch { 1 }",
            Some(|| QueryError::TimedOut),
        );
        assert!(matches!(r, Err(ScriptError::TimedOut)), "{r:?}");
        let r = run_with(
            "query(\"q\")",
            Some(|| QueryError::Refused("refused: no".into())),
        );
        match r {
            Err(ScriptError::Failed { line, message }) => {
                assert_eq!(line, Some(1));
                assert!(message.contains("refused: no"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_outside_the_sandbox_is_reachable() {
        for source in ["eval(\"1\")", "import \"x\" as y; 1"] {
            assert!(check_source(source).is_err(), "{source}");
        }
        let r = run_with("timestamp()", None);
        assert!(matches!(r, Err(ScriptError::Failed { .. })), "{r:?}");
        // Rhai's `exit` ends the script, not the process.
        assert_eq!(run_with("exit(7); 1", None).unwrap().body, json!(7));
    }

    #[test]
    fn a_past_deadline_stops_a_script_at_once() {
        let host = Fake {
            rows: vec![],
            fail: None,
        };
        let started = Instant::now();
        let r = run(
            "loop {}",
            &ScriptRequest::default(),
            Box::new(host),
            Instant::now(),
        );
        assert!(matches!(r, Err(ScriptError::TimedOut)), "{r:?}");
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
