//! The supervisor: a pure state machine that takes events and the current
//! time and returns actions. It never reads the clock or calls the OS.

pub mod config;

pub use config::{RestartPolicy, ServiceConfig, ServiceType};
