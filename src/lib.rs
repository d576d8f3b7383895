//! tend: a declarative init and supervisor for namespaced environments.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod container;
pub mod ctl;
pub mod entrypoint;
pub mod logging;
pub mod runtime;
pub mod signal;
pub mod supervisor;
pub mod sys;
pub mod unit;
