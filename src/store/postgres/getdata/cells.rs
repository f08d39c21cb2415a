//! A GetData answer's cells: the column types GetData on PostgreSQL answers, and
//! each value as JSON with about the bytes it takes in the answer.
use crate::store::getdata::{QueryError, MAX_VALUE_BYTES};
use crate::store::StoreError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::fmt::Write as _;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;

pub(super) fn supported(t: &Type) -> bool {
    matches!(
        *t,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::BYTEA
            | Type::JSON
            | Type::JSONB
    )
}

/// A value's bytes as PostgreSQL sent them (binary format).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A binary NUMERIC as its exact decimal text.
fn numeric_text(b: &[u8]) -> Option<String> {
    let u16_at = |i: usize| b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let ndigits = usize::from(u16_at(0)?);
    let weight = u16_at(2)? as i16 as i32;
    let sign = u16_at(4)?;
    let dscale = usize::from(u16_at(6)?);
    let mut digits = Vec::with_capacity(ndigits);
    for k in 0..ndigits {
        digits.push(u16_at(8 + 2 * k)?);
    }
    let digit = |k: i32| -> u16 {
        if k >= 0 {
            digits.get(k as usize).copied().unwrap_or(0)
        } else {
            0
        }
    };
    let mut s = String::new();
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x4000 => s.push('-'),
        0 => {}
        _ => return None,
    }
    if weight < 0 {
        s.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                let _ = write!(s, "{}", digit(k));
            } else {
                let _ = write!(s, "{:04}", digit(k));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(k));
            k += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

fn too_long() -> QueryError {
    QueryError::TooLarge(format!(
        "a value in the answer is longer than {MAX_VALUE_BYTES} bytes"
    ))
}

fn text_value(t: &str) -> Result<(Value, usize), QueryError> {
    if t.len() > MAX_VALUE_BYTES {
        return Err(too_long());
    }
    let escaped = t
        .bytes()
        .filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\')
        .count();
    Ok((Value::String(t.to_owned()), t.len() + 2 + 5 * escaped))
}

/// Cell `i` of `row` as JSON, and about how many bytes it takes in the answer.
pub(super) fn cell(row: &Row, i: usize) -> Result<(Value, usize), QueryError> {
    let t = row.columns()[i].type_().clone();
    let bad = |e: tokio_postgres::Error| QueryError::Store(e.into());
    let Some(raw) = row.try_get::<_, Option<Raw>>(i).map_err(bad)? else {
        return Ok((Value::Null, 4));
    };
    Ok(match t {
        Type::BOOL => (json!(row.try_get::<_, bool>(i).map_err(bad)?), 5),
        Type::INT2 => (json!(row.try_get::<_, i16>(i).map_err(bad)?), 20),
        Type::INT4 => (json!(row.try_get::<_, i32>(i).map_err(bad)?), 20),
        Type::INT8 => (json!(row.try_get::<_, i64>(i).map_err(bad)?), 20),
        Type::OID => (json!(row.try_get::<_, u32>(i).map_err(bad)?), 20),
        Type::FLOAT4 => (json!(row.try_get::<_, f32>(i).map_err(bad)?), 24),
        Type::FLOAT8 => (json!(row.try_get::<_, f64>(i).map_err(bad)?), 24),
        Type::NUMERIC => {
            let s = numeric_text(raw.0).ok_or_else(|| {
                QueryError::Store(StoreError::Invalid(
                    "a NUMERIC value PostgreSQL sent does not decode".into(),
                ))
            })?;
            text_value(&s)?
        }
        Type::BYTEA => {
            if raw.0.len() > MAX_VALUE_BYTES {
                return Err(too_long());
            }
            (
                Value::String(B64.encode(raw.0)),
                raw.0.len().div_ceil(3) * 4 + 2,
            )
        }
        Type::JSON | Type::JSONB => {
            // jsonb: a version byte, then the text.
            let text = if t == Type::JSONB {
                raw.0.get(1..).unwrap_or_default()
            } else {
                raw.0
            };
            if text.len() > MAX_VALUE_BYTES {
                return Err(too_long());
            }
            let v: Value = serde_json::from_slice(text)
                .map_err(|e| QueryError::Store(StoreError::Invalid(format!("JSON value: {e}"))))?;
            (v, text.len())
        }
        _ => text_value(&String::from_utf8_lossy(raw.0))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_decode_exactly() {
        fn enc(ndigits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
            let mut v = Vec::new();
            v.extend((ndigits.len() as u16).to_be_bytes());
            v.extend(weight.to_be_bytes());
            v.extend(sign.to_be_bytes());
            v.extend(dscale.to_be_bytes());
            for d in ndigits {
                v.extend(d.to_be_bytes());
            }
            v
        }
        assert_eq!(numeric_text(&enc(&[12, 5000], 0, 0, 2)).unwrap(), "12.50");
        assert_eq!(numeric_text(&enc(&[10], -1, 0, 3)).unwrap(), "0.001");
        assert_eq!(numeric_text(&enc(&[1], 1, 0x4000, 0)).unwrap(), "-10000");
        assert_eq!(numeric_text(&enc(&[], 0, 0, 0)).unwrap(), "0");
        assert_eq!(numeric_text(&enc(&[], 0, 0xC000, 0)).unwrap(), "NaN");
    }
}
