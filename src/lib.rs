//! tollgate: an OAuth 2.0 token server, licence-seat keeper and product API on one SQLite file.
pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod http;
pub mod log_limit;
pub mod memory;
pub mod mounts;
pub mod oauth;
pub mod sched;
pub mod startup;
pub mod store;
