//! linekeeper: a contact-center appliance daemon. Line adapters (a caller-ID modem) feed the engine, which keeps the
//! call log and callback tasks in the store and publishes events to MQTT and to the web API.
//!
//! Where things are: `adapters/` turn the outside world into line inputs (the modem today); the domain (calls,
//! the call tracker, tasks, calendar, directory, reports, CSV) is at the top level; `store` is every call of the
//! storage engine; `runtime/` runs it (the engine task, the one door for actions, the supervisor, the daemon's
//! wiring, the report scheduler); `outputs/` are what others see (MQTT, HTTP and the web page, the control
//! socket). See `docs/architecture.md`.

// The domain, from linekeeper-core (no I/O), at the paths it always had.
pub use linekeeper_core::{calendar, csv, directory, model, query, report, tasks, tracker};

pub mod accounts;
pub mod adapters;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod diag;
pub mod metrics;
pub mod outputs;
pub mod runtime;
pub mod store;
