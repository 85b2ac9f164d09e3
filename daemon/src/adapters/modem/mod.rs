//! Caller-ID modem support: line parsing and a simulated modem.

pub mod link;
pub mod parser;
pub mod sim;
