//! OAuth rules with no I/O: request parameters, client credentials, scopes.
pub mod client_auth;
pub mod params;
pub mod scopes;
pub mod throttle;
pub mod verified;
