//! Arkiv's integration tests: one binary, a module per area. Each test gets
//! its own database, queue prefix and S3 key prefix (see `arkiv_tests`).

mod api;
mod audit;
mod backup;
mod config;
mod deploy;
mod google;
mod lifecycle;
mod migrations;
mod pipeline;
mod queue;
mod restore;
mod services;
mod sim;
mod stack;
mod store;
