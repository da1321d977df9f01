//! Invalidation by key, function or tag: in this process's L1 at once, in
//! Redis, and on every other instance through the invalidation bus.

use super::bus::Invalidation;
use super::key::CacheKey;
use super::registry;

/// Redis could not be told; this process's L1 was still cleared.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalidated locally, but Redis failed: {0}; other instances may serve the old value until its TTL ends"
)]
#[non_exhaustive]
pub struct InvalidateError(String);

/// Drops every entry tagged `tag` (e.g. `"user:42"`), in every function.
///
/// # Errors
/// [`InvalidateError`] when Redis is configured but failed.
pub async fn invalidate_tag(tag: &str) -> Result<(), InvalidateError> {
    let message = Invalidation::Tag {
        tag: tag.to_owned(),
    };
    registry::apply(&message).await;
    #[cfg(feature = "redis")]
    if let Some(client) = crate::global().redis_client() {
        super::l2::delete_tag(&client, tag)
            .await
            .map_err(InvalidateError)?;
        broadcast(&client, &message).await?;
    }
    Ok(())
}

/// Drops every entry of the function whose namespace (module path and
/// name, as in `"my_app::users::get_user"`) is given.
///
/// # Errors
/// [`InvalidateError`] when Redis is configured but failed.
pub async fn invalidate_function(namespace: &str) -> Result<(), InvalidateError> {
    let message = Invalidation::Function {
        namespace: namespace.to_owned(),
    };
    registry::apply(&message).await;
    #[cfg(feature = "redis")]
    if let Some(client) = crate::global().redis_client() {
        delete_matching(&client, &format!("perf:{namespace}:v*")).await?;
        broadcast(&client, &message).await?;
    }
    Ok(())
}

/// Drops one entry of a function.
///
/// # Errors
/// [`InvalidateError`] when Redis is configured but failed.
pub async fn invalidate_key(namespace: &str, key: CacheKey) -> Result<(), InvalidateError> {
    let message = Invalidation::Key {
        namespace: namespace.to_owned(),
        key,
    };
    registry::apply(&message).await;
    #[cfg(feature = "redis")]
    if let Some(client) = crate::global().redis_client() {
        for cache in registry::in_namespace(namespace) {
            let spec = cache.spec();
            super::l2::delete(
                &client,
                &key.redis_name(spec.namespace, spec.schema_version),
            )
            .await
            .map_err(InvalidateError)?;
        }
        broadcast(&client, &message).await?;
    }
    Ok(())
}

#[cfg(feature = "redis")]
async fn broadcast(
    client: &fred::prelude::Client,
    message: &Invalidation,
) -> Result<(), InvalidateError> {
    use fred::interfaces::PubsubInterface;
    client
        .publish::<i64, _, _>(super::bus::CHANNEL, message.encode())
        .await
        .map(|_| ())
        .map_err(|e| InvalidateError(e.to_string()))
}

#[cfg(feature = "redis")]
pub(crate) async fn delete_matching(
    client: &fred::prelude::Client,
    pattern: &str,
) -> Result<(), InvalidateError> {
    use fred::interfaces::KeysInterface;
    let mut cursor = "0".to_owned();
    loop {
        let (next, names): (String, Vec<String>) = client
            .scan_page(cursor.as_str(), pattern, Some(500), None)
            .await
            .map_err(|e| InvalidateError(e.to_string()))?;
        if !names.is_empty() {
            client
                .del::<i64, _>(names)
                .await
                .map_err(|e| InvalidateError(e.to_string()))?;
        }
        if next == "0" {
            return Ok(());
        }
        cursor = next;
    }
}
