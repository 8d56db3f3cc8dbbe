//! Who is calling: every API key (tenant and operator) and every tenant with its policy,
//! rate limiter, concurrency slots and spend counters, held in memory so a request is
//! authenticated and admitted without touching the store. The admin API commits each
//! change to the store first and then applies it here, so a revoked key or a disabled
//! tenant is refused from the next request on.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::policy::Policy;
use super::spend::{SpendLedger, SpendLimits, TenantSpend};

pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A fresh random key (`sk-arbiter-` + 32 hex characters of OS randomness).
pub fn generate_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("sk-arbiter-{}", hex::encode(bytes))
}

/// What a key lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Calls the gateway as its tenant.
    Tenant,
    /// Runs the service: the admin API, every tenant's usage.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Tenant => "tenant",
            Role::Operator => "operator",
        }
    }
}

/// A key as stored: never the key itself, only its hash and what describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRecord {
    /// Public identifier (what revocation names).
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    /// The tenant (tenant keys only).
    pub tenant: Option<String>,
    pub role: Role,
    pub name: String,
    /// The key's first characters, to tell keys apart (empty for keys configured as
    /// hashes).
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl KeyRecord {
    /// A new key's record; `hash` of a key that was never seen here.
    pub fn new(
        hash: String,
        prefix: String,
        tenant: Option<String>,
        role: Role,
        name: String,
    ) -> Self {
        KeyRecord {
            id: key_id(&hash),
            hash,
            tenant,
            role,
            name,
            prefix,
            created_at: now_s(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        }
    }
}

/// A key's public id, from its hash (which is what the store has of a configured key).
pub fn key_id(hash: &str) -> String {
    let hex: String = hash
        .trim_start_matches("sha256:")
        .chars()
        .take(16)
        .collect();
    format!("key_{hex}")
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    pub created_at: i64,
    pub disabled: bool,
    pub policy: Policy,
}

/// Where a tenant is defined: the operator's configuration file (changed by editing it),
/// or the store (changed through the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Store,
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct KeyEntry {
    record: KeyRecord,
    last_used: AtomicI64,
    /// When `last_used` was last handed to the store.
    persisted: AtomicI64,
}

/// How often a key's last use is written to the store (it is kept exact in memory).
const LAST_USED_EVERY_S: i64 = 60;

/// One tenant, as requests see it. Replaced whole when its policy changes; its spend
/// counters carry over.
pub struct TenantState {
    pub record: TenantRecord,
    pub source: Source,
    limiter: Option<DefaultDirectRateLimiter>,
    slots: Option<Arc<Semaphore>>,
    pub spend: Arc<TenantSpend>,
}

impl std::fmt::Debug for TenantState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantState")
            .field("name", &self.record.name)
            .finish_non_exhaustive()
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("rate limit of {rate} requests per second (burst {burst}) reached; retry after {} ms", .retry_after.as_millis())]
    Rate {
        rate: f64,
        burst: u32,
        retry_after: Duration,
    },
    #[error("{0} requests of this tenant are already in flight, its limit")]
    Concurrency(u32),
}

/// A request's hold on one of its tenant's concurrency slots, released when dropped.
pub struct Admission(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// This replica's share of the tenant's rate, when `replicas` share it: the rate
/// divided, the burst divided and rounded up (at least one request).
fn limiter(p: &Policy, replicas: u32) -> Option<DefaultDirectRateLimiter> {
    let rate = p.requests_per_second? / f64::from(replicas);
    let burst = p
        .burst
        .unwrap_or(p.requests_per_second?.ceil().max(1.0) as u32)
        .div_ceil(replicas)
        .max(1);
    let period = Duration::from_secs_f64(1.0 / rate);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
    Some(DefaultDirectRateLimiter::direct(quota))
}

fn spend_limits(p: &Policy) -> SpendLimits {
    SpendLimits {
        daily_usd: p.daily_spend_usd,
        monthly_usd: p.monthly_spend_usd,
    }
}

impl TenantState {
    /// The tenant as one of `replicas` replicas admits it: each takes an even share of
    /// the rate and concurrency limits (see `docs/replicas.md` for what a tenant sees).
    fn new(
        record: TenantRecord,
        source: Source,
        spend: Arc<TenantSpend>,
        replicas: u32,
    ) -> TenantState {
        spend.set_limits(spend_limits(&record.policy));
        TenantState {
            limiter: limiter(&record.policy, replicas),
            slots: record
                .policy
                .max_concurrent
                .map(|n| Arc::new(Semaphore::new(n.div_ceil(replicas).max(1) as usize))),
            record,
            source,
            spend,
        }
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    pub fn policy(&self) -> &Policy {
        &self.record.policy
    }

    /// Takes one request's share of the rate and one concurrency slot, or says which
    /// limit refuses it. Costs nothing for a tenant without limits.
    pub fn admit(&self) -> Result<Admission, Refusal> {
        if let Some(l) = &self.limiter {
            if let Err(not_until) = l.check() {
                let p = self.policy();
                let rate = p.requests_per_second.unwrap_or_default();
                return Err(Refusal::Rate {
                    rate,
                    burst: p.burst.unwrap_or(rate.ceil().max(1.0) as u32),
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                });
            }
        }
        match &self.slots {
            None => Ok(Admission(None)),
            Some(s) => s
                .clone()
                .try_acquire_owned()
                .map(|p| Admission(Some(p)))
                .map_err(|_| {
                    Refusal::Concurrency(self.policy().max_concurrent.unwrap_or_default())
                }),
        }
    }
}

/// Who presented a key.
#[derive(Debug, Clone)]
pub enum Caller {
    Tenant(Arc<TenantState>),
    Operator,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown API key: send `Authorization: Bearer <key>`")]
    Unknown,
    #[error("this API key was revoked")]
    Revoked,
    #[error("this API key has expired")]
    Expired,
    #[error("tenant `{0}` is disabled")]
    Disabled(String),
}

#[derive(Default)]
struct Inner {
    keys: HashMap<String, Arc<KeyEntry>>,
    tenants: HashMap<String, Arc<TenantState>>,
}

/// Every key and tenant the gateway knows.
#[derive(Default)]
pub struct Tenants {
    inner: RwLock<Inner>,
    /// Counts changes (every write), so a re-read of the store that began before a
    /// change here can tell its rows are older than what is applied.
    generation: std::sync::atomic::AtomicU64,
    /// Where spend is counted when replicas share a store; in memory without.
    ledger: Option<Arc<dyn SpendLedger>>,
    /// The replicas sharing the tenants' rate and concurrency limits (0: one).
    replicas: std::sync::atomic::AtomicU32,
}

impl Tenants {
    /// A registry whose tenants count their spend in `ledger` (shared by replicas).
    pub fn with_ledger(ledger: Option<Arc<dyn SpendLedger>>) -> Tenants {
        Tenants {
            ledger,
            ..Tenants::default()
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// How many replicas share each tenant's rate and concurrency limits.
    pub fn replicas(&self) -> u32 {
        self.replicas
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1)
    }

    /// How many replicas are live: each admits its share of every tenant's rate and
    /// concurrency from here on. A change starts each tenant's share afresh (a full
    /// burst; requests in flight hold slots of the old share until they end).
    pub fn set_replicas(&self, n: u32) {
        let n = n.max(1);
        if self
            .replicas
            .swap(n, std::sync::atomic::Ordering::Relaxed)
            .max(1)
            == n
        {
            return;
        }
        // Not a change of what the store holds: the generation stays.
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for state in inner.tenants.values_mut() {
            *state = Arc::new(TenantState::new(
                state.record.clone(),
                state.source,
                state.spend.clone(),
                n,
            ));
        }
    }

    /// See `generation`.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The caller behind `key`, and whether its last use is due to be written to the
    /// store (returned as the key's id and the time).
    pub fn authenticate(&self, key: &str) -> (Result<Caller, AuthError>, Option<(String, i64)>) {
        let hash = hash_key(key);
        let inner = self.read();
        let Some(entry) = inner.keys.get(&hash) else {
            return (Err(AuthError::Unknown), None);
        };
        let r = &entry.record;
        let now = now_s();
        if r.revoked_at.is_some() {
            return (Err(AuthError::Revoked), None);
        }
        if r.expires_at.is_some_and(|at| at <= now) {
            return (Err(AuthError::Expired), None);
        }
        let caller = match (r.role, &r.tenant) {
            (Role::Operator, _) => Caller::Operator,
            (Role::Tenant, Some(t)) => match inner.tenants.get(t) {
                Some(state) if state.record.disabled => {
                    return (Err(AuthError::Disabled(t.clone())), None)
                }
                Some(state) => Caller::Tenant(state.clone()),
                // Its tenant was deleted.
                None => return (Err(AuthError::Unknown), None),
            },
            (Role::Tenant, None) => return (Err(AuthError::Unknown), None),
        };
        entry.last_used.store(now, Ordering::Relaxed);
        let persisted = entry.persisted.load(Ordering::Relaxed);
        let due = (now - persisted >= LAST_USED_EVERY_S
            && entry
                .persisted
                .compare_exchange(persisted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok())
        .then(|| (r.id.clone(), now));
        (Ok(caller), due)
    }

    /// Adds or replaces a tenant. Its spend counters carry over when it exists; else they
    /// start from `spent` (today, this month).
    pub fn put_tenant(&self, record: TenantRecord, source: Source, spent: (f64, f64)) {
        let mut inner = self.write();
        let spend = match inner.tenants.get(&record.name) {
            Some(old) => old.spend.clone(),
            None => Arc::new(match &self.ledger {
                Some(ledger) => {
                    TenantSpend::shared(spend_limits(&record.policy), &record.name, ledger.clone())
                }
                None => TenantSpend::new(spend_limits(&record.policy), spent.0, spent.1),
            }),
        };
        let name = record.name.clone();
        let replicas = self.replicas();
        inner.tenants.insert(
            name,
            Arc::new(TenantState::new(record, source, spend, replicas)),
        );
    }

    /// Removes a tenant and every key of it.
    pub fn remove_tenant(&self, name: &str) {
        let mut inner = self.write();
        inner.tenants.remove(name);
        inner
            .keys
            .retain(|_, k| k.record.tenant.as_deref() != Some(name));
    }

    pub fn put_key(&self, record: KeyRecord) {
        let last = record.last_used_at.unwrap_or(0);
        let entry = KeyEntry {
            last_used: AtomicI64::new(last),
            persisted: AtomicI64::new(last),
            record,
        };
        self.write()
            .keys
            .insert(entry.record.hash.clone(), Arc::new(entry));
    }

    /// Marks key `id` revoked (from the next request on); false if there is no such key.
    pub fn revoke(&self, id: &str, at: i64) -> bool {
        let mut inner = self.write();
        let Some((hash, entry)) = inner.keys.iter().find(|(_, k)| k.record.id == id) else {
            return false;
        };
        let mut record = entry.record.clone();
        record.revoked_at = Some(at);
        let entry = KeyEntry {
            last_used: AtomicI64::new(entry.last_used.load(Ordering::Relaxed)),
            persisted: AtomicI64::new(entry.persisted.load(Ordering::Relaxed)),
            record,
        };
        let hash = hash.clone();
        inner.keys.insert(hash, Arc::new(entry));
        true
    }

    pub fn tenant(&self, name: &str) -> Option<Arc<TenantState>> {
        self.read().tenants.get(name).cloned()
    }

    pub fn tenants(&self) -> Vec<Arc<TenantState>> {
        let mut v: Vec<_> = self.read().tenants.values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// Keys of `tenant` (operator keys with `None`), with their last use as known here.
    pub fn keys(&self, tenant: Option<&str>) -> Vec<KeyRecord> {
        let mut v: Vec<KeyRecord> = self
            .read()
            .keys
            .values()
            .filter(|k| k.record.tenant.as_deref() == tenant)
            .map(|k| {
                let mut r = k.record.clone();
                let used = k.last_used.load(Ordering::Relaxed);
                r.last_used_at = (used > 0).then_some(used);
                r
            })
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    pub fn key(&self, id: &str) -> Option<KeyRecord> {
        self.read()
            .keys
            .values()
            .find(|k| k.record.id == id)
            .map(|k| k.record.clone())
    }

    pub fn has_keys(&self, role: Role) -> bool {
        self.read().keys.values().any(|k| k.record.role == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, policy: Policy) -> TenantRecord {
        TenantRecord {
            name: name.into(),
            created_at: 0,
            disabled: false,
            policy,
        }
    }

    #[test]
    fn keys_resolve_and_stop_working_when_revoked_expired_or_disabled() {
        let t = Tenants::default();
        t.put_tenant(tenant("acme", Policy::default()), Source::Store, (0.0, 0.0));
        let key = generate_key();
        assert!(key.starts_with("sk-arbiter-") && key.len() == 43);
        let rec = KeyRecord::new(
            hash_key(&key),
            key[..15].into(),
            Some("acme".into()),
            Role::Tenant,
            "ci".into(),
        );
        let id = rec.id.clone();
        t.put_key(rec.clone());
        assert!(matches!(t.authenticate(&key).0, Ok(Caller::Tenant(s)) if s.name() == "acme"));
        assert_eq!(
            t.authenticate("sk-wrong").0.unwrap_err(),
            AuthError::Unknown
        );
        let mut disabled = tenant("acme", Policy::default());
        disabled.disabled = true;
        t.put_tenant(disabled, Source::Store, (0.0, 0.0));
        assert_eq!(
            t.authenticate(&key).0.unwrap_err(),
            AuthError::Disabled("acme".into())
        );
        t.put_tenant(tenant("acme", Policy::default()), Source::Store, (0.0, 0.0));
        let mut expired = rec;
        expired.expires_at = Some(now_s() - 1);
        t.put_key(expired);
        assert_eq!(t.authenticate(&key).0.unwrap_err(), AuthError::Expired);
        assert!(t.revoke(&id, now_s()));
        assert_eq!(t.authenticate(&key).0.unwrap_err(), AuthError::Revoked);
        t.remove_tenant("acme");
        assert!(t.keys(Some("acme")).is_empty());
    }

    #[test]
    fn rate_and_concurrency_limits_admit_what_the_policy_says() {
        let t = Tenants::default();
        let policy = Policy {
            requests_per_second: Some(0.5),
            burst: Some(2),
            max_concurrent: Some(1),
            ..Policy::default()
        };
        t.put_tenant(tenant("a", policy), Source::Store, (0.0, 0.0));
        let s = t.tenant("a").unwrap();
        let first = s.admit().unwrap();
        assert_eq!(s.admit().err(), Some(Refusal::Concurrency(1)));
        drop(first);
        match s.admit().err() {
            Some(Refusal::Rate { retry_after, .. }) => {
                assert!(retry_after > Duration::from_millis(500), "{retry_after:?}")
            }
            other => panic!("{other:?}"),
        }
    }
}
