//! JWT signing keys (API.md §10) on PostgreSQL.
use super::PostgresStore;
use crate::store::{SigningKey, StoreError};

type R<T> = Result<T, StoreError>;

impl PostgresStore {
    pub(super) async fn list_signing_keys(&self) -> R<Vec<SigningKey>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT id, kid, private_key, public_x, public_y, created_at, retired_at
                 FROM signing_keys ORDER BY id DESC",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SigningKey {
                id: r.get(0),
                kid: r.get(1),
                private_key: r.get(2),
                public_x: r.get(3),
                public_y: r.get(4),
                created_at: r.get(5),
                retired_at: r.get(6),
            })
            .collect())
    }

    /// The table lock orders rotations (and first keys) of every instance and the
    /// CLI; a grant's read of the current key does not wait for it.
    pub(super) async fn insert_signing_key(
        &self,
        k: SigningKey,
        rotate: bool,
        forget_before: i64,
    ) -> R<bool> {
        let now = self.now();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        tx.batch_execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        if rotate {
            tx.execute(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL",
                &[&now],
            )
            .await?;
        } else if tx
            .query_opt("SELECT 1 FROM signing_keys WHERE retired_at IS NULL", &[])
            .await?
            .is_some()
        {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
            &[&forget_before],
        )
        .await?;
        tx.execute(
            "INSERT INTO signing_keys (kid, alg, private_key, public_x, public_y, created_at)
             VALUES ($1, 'ES256', $2, $3, $4, $5)",
            &[&k.kid, &k.private_key, &k.public_x, &k.public_y, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
