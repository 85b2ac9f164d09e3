//! linekeeper: a contact-center appliance daemon. Line adapters (a caller-ID modem) feed the engine, which keeps the
//! call log and callback tasks in the store and publishes events to MQTT and to the web API.

pub mod accounts;
pub mod action;
pub mod auth;
pub mod calendar;
pub mod clock;
pub mod command;
pub mod config;
pub mod control;
pub mod csv;
pub mod daemon;
pub mod demo;
pub mod diag;
pub mod directory;
pub mod discovery;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod modem;
pub mod mqtt;
pub mod query;
pub mod report;
pub mod reporting;
pub mod store;
pub mod supervisor;
pub mod tasks;
pub mod tracker;
pub mod ui;
pub mod web;
