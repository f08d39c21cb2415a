//! One integration-test binary: each module is one flow, each test its own server and database.
mod helpers;

mod admin;
mod admin_api;
mod cli;
mod console;
mod crash;
mod edges;
mod faults;
mod first_run;
mod getdata;
mod hostile;
mod instances;
mod limits;
mod mounts;
mod oauth2_client;
mod ops;
mod pg_faults;
mod process;
mod products;
mod revocation;
mod seats;
mod throttle;
mod token_errors;
mod token_grants;
