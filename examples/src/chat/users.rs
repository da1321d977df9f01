//! Where user profiles come from: PostgreSQL through the runtime's pool when
//! DATABASE_URL is set (table `chat_users`, created and seeded with users
//! 1 to 1000 at start-up), else a stand-in directory computed in process,
//! so the example runs with nothing installed.

use perf_runtime::db::{Db, DbError, Params};

use super::handlers::UserProfile;

/// Users the example starts with.
const SEEDED_USERS: i64 = 1000;

/// Creates and seeds `chat_users` (idempotent: safe on every start and on
/// several instances at once).
///
/// # Errors
/// The database error, with the server named and its password masked.
pub async fn prepare(db: &Db) -> Result<(), DbError> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS chat_users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL)",
        Params::new(),
    )
    .await?;
    db.execute(
        "INSERT INTO chat_users (id, name, plan) \
         SELECT n, 'user-' || n, CASE WHEN n % 10 = 0 THEN 'pro' ELSE 'free' END \
         FROM generate_series(1, $1::BIGINT) AS n ON CONFLICT (id) DO NOTHING",
        Params::new().bind(SEEDED_USERS),
    )
    .await?;
    Ok(())
}

/// The profile of `user_id`, or `None` when there is no such user.
///
/// # Errors
/// A database failure (never a missing user).
pub async fn find(user_id: u64) -> Result<Option<UserProfile>, DbError> {
    let Some(db) = perf_runtime::global().db() else {
        return Ok(stand_in(user_id));
    };
    let Ok(id) = i64::try_from(user_id) else {
        return Ok(None);
    };
    let row: Option<(i64, String, String)> = db
        .fetch_optional(
            "SELECT id, name, plan FROM chat_users WHERE id = $1",
            Params::new().bind(id),
        )
        .await?;
    Ok(row.map(|(id, name, plan)| UserProfile {
        user_id: id as u64,
        name,
        plan,
    }))
}

/// The in-process directory: the same users the database is seeded with.
fn stand_in(user_id: u64) -> Option<UserProfile> {
    (1..=SEEDED_USERS as u64)
        .contains(&user_id)
        .then(|| UserProfile {
            user_id,
            name: format!("user-{user_id}"),
            plan: if user_id.is_multiple_of(10) {
                "pro"
            } else {
                "free"
            }
            .to_owned(),
        })
}
