//! Institution names for the dashboard, from LAPOR!'s institutions list,
//! read at most once an hour per LAPOR! (a failed read is tried again after
//! a minute; meanwhile pages show the id alone).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::bridge::Bridge;

const FRESH_FOR: Duration = Duration::from_secs(3600);
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Per LAPOR! base URL: when read, and the names by id (empty after a
/// failed read).
type Cache = HashMap<String, (Instant, HashMap<i64, String>)>;

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The name of institution `id`, when LAPOR! lists it.
pub async fn name(bridge: &Bridge, id: i64) -> Option<String> {
    let key = bridge.settings.lapor.base_url.clone();
    {
        let cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, names)) = cache.get(&key) {
            let fresh = if names.is_empty() {
                RETRY_AFTER
            } else {
                FRESH_FOR
            };
            if at.elapsed() < fresh {
                return names.get(&id).cloned();
            }
        }
    }
    let names: HashMap<i64, String> = match bridge.client.institutions().await {
        Ok(list) => list.into_iter().map(|i| (i.id, i.name)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read LAPOR!'s institutions; showing ids");
            HashMap::new()
        }
    };
    let found = names.get(&id).cloned();
    CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (Instant::now(), names));
    found
}
