//! Compiled handlers, kept per source text: a handler replaced through any instance
//! or the command line has a new text, so the next request compiles it afresh.
use super::runtime::check_source;
use super::CompileError;
use rhai::AST;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Compiled sources kept at most; past it the cache starts again.
const MAX_KEPT: usize = 256;

fn kept() -> &'static Mutex<HashMap<String, Arc<AST>>> {
    static KEPT: OnceLock<Mutex<HashMap<String, Arc<AST>>>> = OnceLock::new();
    KEPT.get_or_init(Mutex::default)
}

/// The compiled form of `source`, compiled now if it is not kept.
pub fn compiled(source: &str) -> Result<Arc<AST>, CompileError> {
    if let Some(ast) = kept().lock().unwrap_or_else(|p| p.into_inner()).get(source) {
        return Ok(ast.clone());
    }
    // Compiled outside the lock, so a long compile holds up no other handler.
    let ast = Arc::new(check_source(source)?);
    let mut map = kept().lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_KEPT {
        map.clear();
    }
    map.insert(source.to_owned(), ast.clone());
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_source_is_compiled_again() {
        let a = compiled("1 + 1").unwrap();
        assert!(Arc::ptr_eq(&a, &compiled("1 + 1").unwrap()));
        assert!(!Arc::ptr_eq(&a, &compiled("1 + 2").unwrap()));
        assert_eq!(compiled("let = ;").unwrap_err().line, 1);
    }
}
