//! Shared pieces of the Magpie benches: a representative chat message and corpus ([`chat`]), the
//! codec setup shared by the criterion benches and the report ([`fixture`]), and the one-run
//! comparison report ([`report`], binary `wire-report`); and the load tool that drives magpied,
//! mosquitto and nats-server under the same scenarios ([`load`], binary `magpie-bench`).

pub mod chat;
pub mod fixture;
pub mod load;
pub mod measure;
pub mod report;
pub mod sizes;
mod table;
