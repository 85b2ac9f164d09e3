//! What others see: MQTT (outbox uplink, Home Assistant discovery, commands), HTTP (the JSON API, server-sent events
//! and the web page) and the control socket of the CLI. Outputs read events and snapshots; every change they
//! carry goes through the one door (`runtime::action`).

pub mod control;
pub mod http;
pub mod mqtt;
