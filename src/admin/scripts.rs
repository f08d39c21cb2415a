//! Script URL handlers (API.md §11), for both front ends: checked, compiled and
//! saved, listed, removed, and run from the command line.
use super::{Admin, AdminError, R};
use crate::store::getdata::{is_query_name, RESERVED_QUERY_NAME};
use crate::store::script::{check_source, Script, MAX_SOURCE_BYTES, METHODS};

impl Admin {
    pub async fn scripts(&self) -> R<Vec<Script>> {
        Ok(self.store.scripts().await?)
    }

    pub async fn script(&self, name: &str) -> R<Script> {
        self.store
            .script(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no script named {name:?}")))
    }

    /// Checks, compiles and saves a handler. `replace`: an existing script of the
    /// name is replaced (else a conflict); a GetData query of the name always is one.
    /// Returns whether it is new.
    pub async fn save_script(&self, s: Script, replace: bool) -> R<bool> {
        self.check_script(&s).await?;
        if self.store.saved_query(&s.name).await?.is_some() {
            return Err(name_is_a_query(&s.name));
        }
        let created = match self.store.save_script(s.clone(), replace).await? {
            Some(created) => created,
            None if self.store.saved_query(&s.name).await?.is_some() => {
                return Err(name_is_a_query(&s.name))
            }
            None => {
                return Err(AdminError::Conflict(format!(
                    "a script named {:?} exists already; remove it first",
                    s.name
                )))
            }
        };
        let event = if created {
            "script.add"
        } else {
            "script.replace"
        };
        let writes = if s.writes { ", writes" } else { "" };
        self.record(
            event,
            "",
            &format!("{} ({}, scope {}{writes})", s.name, s.method, s.scope),
        )
        .await;
        Ok(created)
    }

    async fn check_script(&self, s: &Script) -> R<()> {
        if !is_query_name(&s.name) {
            return Err(AdminError::invalid(
                "name",
                format!(
                    "script name {:?}: use 1 to 64 of A-Z a-z 0-9 _ - (and not {RESERVED_QUERY_NAME:?})",
                    s.name
                ),
            ));
        }
        if !METHODS.contains(&s.method.as_str()) {
            return Err(AdminError::invalid(
                "method",
                format!("{:?}: one of {}", s.method, METHODS.join(", ")),
            ));
        }
        if s.description.chars().count() > 2000 {
            return Err(AdminError::invalid(
                "description",
                "must be at most 2000 characters",
            ));
        }
        if !self.store.scope_names().await?.contains(&s.scope) {
            return Err(AdminError::invalid(
                "scope",
                format!("unknown scope {:?}", s.scope),
            ));
        }
        if s.writes && s.scope != "all" {
            return Err(AdminError::invalid(
                "writes",
                "a handler that writes must need scope all",
            ));
        }
        if s.source.len() > MAX_SOURCE_BYTES {
            return Err(AdminError::invalid(
                "source",
                format!("at most {MAX_SOURCE_BYTES} bytes"),
            ));
        }
        check_source(&s.source).map_err(|e| {
            AdminError::invalid("source", format!("script {} does not compile: {e}", s.name))
        })?;
        Ok(())
    }

    pub async fn remove_script(&self, name: &str) -> R<()> {
        if !self.store.remove_script(name).await? {
            return Err(AdminError::NotFound(format!("no script named {name:?}")));
        }
        self.record("script.remove", "", name).await;
        Ok(())
    }
}

fn name_is_a_query(name: &str) -> AdminError {
    AdminError::Conflict(format!(
        "{name:?} is the name of a GetData query; a name is a query or a script, never both \
         (remove the query first, or choose another name)"
    ))
}
