//! Values between Rhai and JSON: `query` parameters in, the handler's answer out.
use super::runtime::MAX_REPLY_BYTES;
use super::{ScriptError, ScriptReply};
use rhai::{Array, Dynamic, EvalAltResult};

/// What `response(status, value)` makes.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    body: Dynamic,
}

impl Reply {
    pub fn new(status: i64, body: Dynamic) -> Result<Self, Box<EvalAltResult>> {
        match u16::try_from(status) {
            Ok(s) if (200..=599).contains(&s) => Ok(Self { status: s, body }),
            _ => Err(format!("response(): status {status} is not from 200 to 599").into()),
        }
    }
}

/// `query`/`execute` parameters, bound as text as GetData binds `qpN`.
pub fn params_of(params: Array) -> Result<Vec<String>, Box<EvalAltResult>> {
    if params.len() > crate::store::getdata::MAX_PARAMS {
        return Err(format!(
            "at most {} parameters (?1 to ?9)",
            crate::store::getdata::MAX_PARAMS
        )
        .into());
    }
    params
        .into_iter()
        .map(|p| {
            if p.is_string() || p.is_int() || p.is_float() || p.is_bool() || p.is_char() {
                Ok(p.to_string())
            } else {
                Err(format!(
                    "a parameter must be a string, number or bool, not {}",
                    p.type_name()
                )
                .into())
            }
        })
        .collect()
}

/// The handler's value as the HTTP answer, within [`MAX_REPLY_BYTES`].
pub fn reply_of(value: Dynamic) -> Result<ScriptReply, ScriptError> {
    let (status, body) = match value.clone().try_cast::<Reply>() {
        Some(r) => (r.status, r.body),
        None => (200, value),
    };
    let body: serde_json::Value = rhai::serde::from_dynamic(&body)
        .map_err(|e| ScriptError::failed(format!("the value returned is not JSON: {e}")))?;
    let size = serde_json::to_vec(&body)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_REPLY_BYTES {
        return Err(ScriptError::failed(format!(
            "the answer would be {size} bytes; at most {MAX_REPLY_BYTES}"
        )));
    }
    Ok(ScriptReply { status, body })
}
