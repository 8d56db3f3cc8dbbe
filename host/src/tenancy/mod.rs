//! Tenancy: who may call the gateway and what each caller may do. Keys (tenant and
//! operator, stored as hashes), tenants with their policies (which pipelines and raw
//! models, rate, concurrency, daily and monthly spend), all held in memory for the
//! request path and committed to the store by the admin API before they change here.

pub mod policy;
pub mod registry;
pub mod spend;

pub use policy::{PluginPolicy, Policy};
pub use registry::{
    generate_key, hash_key, Admission, AuthError, Caller, KeyRecord, Refusal, Role, Source,
    TenantRecord, TenantState, Tenants,
};
pub use spend::{Period, SpendError, TenantSpend};
