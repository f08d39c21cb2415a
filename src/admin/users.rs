//! The users: who may ask for tokens, with which scopes and secrets.
use super::{Admin, AdminError, UserRequest, R};
use crate::crypto::{hash_password, new_secret, Secret};
use crate::oauth::scopes::valid_token;
use crate::store::{NewUser, UserSummary};

impl Admin {
    pub async fn users(&self) -> R<Vec<UserSummary>> {
        Ok(self.store.users().await?)
    }

    pub async fn user(&self, name: &str) -> R<UserSummary> {
        self.store
            .users()
            .await?
            .into_iter()
            .find(|u| u.nickname == name)
            .ok_or_else(|| no_user(name))
    }

    pub(super) async fn user_id(&self, name: &str) -> R<i64> {
        self.store.user_id(name).await?.ok_or_else(|| no_user(name))
    }

    /// Creates a user; its secret (made here unless given) is returned this once.
    pub async fn add_user(&self, req: UserRequest) -> R<(UserSummary, Secret)> {
        check_user_name(&req.name)?;
        let scopes = self.known_scopes(&req.scopes).await?;
        if self.store.user_id(&req.name).await?.is_some() {
            return Err(AdminError::Conflict(format!(
                "a user named {:?} exists already",
                req.name
            )));
        }
        let secret = req.secret.unwrap_or_else(new_secret);
        let password_hash = self.hash(&secret).await?;
        self.store
            .add_user(NewUser {
                nickname: req.name.clone(),
                password_hash,
                api_user: req.api_user,
                scopes: scopes.clone(),
            })
            .await?;
        self.record(
            "user.add",
            &req.name,
            &format!(
                "scopes: {}; api user: {}",
                scopes.join(" "),
                if req.api_user { "yes" } else { "no" }
            ),
        )
        .await;
        Ok((self.user(&req.name).await?, secret))
    }

    /// Disabling ends the user's live sessions at once. Returns the user and how
    /// many sessions ended.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> R<(UserSummary, usize)> {
        let id = self.user_id(name).await?;
        if !enabled && self.actor.client_id.as_deref() == Some(name) {
            return Err(AdminError::Conflict(format!(
                "{name:?} is the client making this request: it cannot disable itself"
            )));
        }
        let ended = self.store.set_user_enabled(id, enabled).await?;
        let (event, detail) = if enabled {
            ("user.enable", String::new())
        } else {
            ("user.disable", format!("{ended} live session(s) ended"))
        };
        self.record(event, name, &detail).await;
        Ok((self.user(name).await?, ended))
    }

    /// A new secret (made here unless given); the old one dies at once.
    pub async fn new_secret(&self, name: &str, secret: Option<Secret>) -> R<Secret> {
        let id = self.user_id(name).await?;
        let secret = secret.unwrap_or_else(new_secret);
        let hash = self.hash(&secret).await?;
        self.store.set_user_secret(id, hash).await?;
        self.record("user.reset-secret", name, "").await;
        Ok(secret)
    }

    /// Replaces a user's allowed scopes; returns them as stored.
    pub async fn set_scopes(&self, name: &str, scopes: &[String]) -> R<Vec<String>> {
        let id = self.user_id(name).await?;
        let scopes = self.known_scopes(scopes).await?;
        self.store.set_user_scopes(id, scopes.clone()).await?;
        self.record(
            "user.set-scopes",
            name,
            &format!("scopes: {}", scopes.join(" ")),
        )
        .await;
        Ok(scopes)
    }

    /// Deletes a user; how many of its sessions ended.
    pub async fn remove_user(&self, name: &str) -> R<usize> {
        let id = self.user_id(name).await?;
        let ended = self.store.remove_user(id).await?;
        self.record("user.remove", name, &format!("{ended} ended"))
            .await;
        Ok(ended)
    }

    /// PBKDF2 takes a good part of a second: off the caller's thread.
    async fn hash(&self, secret: &Secret) -> R<String> {
        let (secret, iterations) = (Secret::new(secret.expose()), self.iterations);
        tokio::task::spawn_blocking(move || hash_password(secret.expose(), iterations))
            .await
            .map_err(|_| AdminError::Store(crate::store::StoreError::Cancelled))
    }

    /// The scopes asked for, each one that exists, deduplicated in order.
    async fn known_scopes(&self, scopes: &[String]) -> R<Vec<String>> {
        let known = self.store.scope_names().await?;
        let mut out: Vec<String> = Vec::new();
        for s in scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if !valid_token(s) || !known.iter().any(|k| k == s) {
                return Err(AdminError::invalid(
                    "scopes",
                    format!("unknown scope {s:?}; known: {}", known.join(", ")),
                ));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
        Ok(out)
    }
}

fn no_user(name: &str) -> AdminError {
    AdminError::NotFound(format!("no user named {name:?}"))
}

/// Nicknames travel in HTTP Basic, where ':' separates id from secret.
pub fn check_user_name(name: &str) -> R<()> {
    let ok = (1..=64).contains(&name.chars().count())
        && name.trim() == name
        && !name.contains(':')
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "client_id",
            format!("user name {name:?}: use 1 to 64 characters, no ':' or control characters, no leading or trailing spaces"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_that_cannot_travel_in_basic_are_refused() {
        assert!(check_user_name("ops").is_ok());
        for bad in ["", "a:b", " a", "a ", "a\u{7}b", &"x".repeat(65)] {
            let e = check_user_name(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    AdminError::Invalid {
                        field: "client_id",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }
}
