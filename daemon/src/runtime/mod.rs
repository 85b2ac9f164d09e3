//! Running the domain: the engine task that owns the state and the store's one writer, the one door for actions,
//! the supervisor of every task, the daemon's wiring and reloads, the report scheduler.

pub mod action;
pub mod daemon;
pub mod engine;
pub mod reporting;
pub mod supervisor;
