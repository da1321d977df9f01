//! Lua scripts run by their hash: `SCRIPT LOAD` once per script and
//! process, then `EVALSHA`, which sends 40 bytes instead of the script's
//! text on every call (the job store's scripts are kilobytes, and a job
//! enqueued one by one is one script call). A server that lost the script
//! (restarted, flushed, another node of a cluster) answers `NOSCRIPT`, and
//! that call falls back to `EVAL`, which loads it again there.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use fred::interfaces::LuaInterface;
use fred::prelude::{Client, FredResult};
use fred::types::Value;

/// Hashes of the scripts loaded so far, by the address of their text (each
/// script is a `&'static str`).
static LOADED: Mutex<Option<HashMap<usize, String>>> = Mutex::new(None);

fn known(script: &'static str) -> Option<String> {
    LOADED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()?
        .get(&(script.as_ptr() as usize))
        .cloned()
}

/// Runs `script` on `key` with `args`.
pub(crate) async fn run(
    client: &Client,
    script: &'static str,
    key: &str,
    args: Vec<Value>,
) -> FredResult<Value> {
    let sha = match known(script) {
        Some(sha) => sha,
        None => {
            let sha: String = client.script_load(script).await?;
            LOADED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(HashMap::new)
                .insert(script.as_ptr() as usize, sha.clone());
            sha
        }
    };
    match client
        .evalsha::<Value, _, _, _>(sha, key, args.clone())
        .await
    {
        Err(error) if error.details().starts_with("NOSCRIPT") => {
            client.eval::<Value, _, _, _>(script, key, args).await
        }
        other => other,
    }
}
