//! linekeeper-core: the domain of linekeeper, with no I/O: calls, tasks and roles (`model`), what actions and
//! deadlines do to tasks (`tasks`), business hours, holidays and shifts (`calendar`), the customer directory,
//! reports and their KPIs, the one CSV writer, query bounds, and the call tracker (the line contract's state
//! machine, on its own monotonic time `mono::Mono`). No tokio, no store, no HTTP: everything here is a
//! function of its inputs and the time it is given, tested without a runtime or a disk.

pub mod calendar;
pub mod csv;
pub mod directory;
pub mod model;
pub mod mono;
pub mod query;
pub mod report;
pub mod tasks;
pub mod tracker;
