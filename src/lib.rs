//! tend: a declarative init and supervisor for namespaced environments.
// PID 1 never dies: no unwrap, expect or panic outside tests (the binary
// repeats these in main.rs), and every unsafe block says why it is sound.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cli;
pub mod container;
pub mod ctl;
pub mod entrypoint;
pub mod logging;
pub mod registry;
pub mod resources;
pub mod runtime;
pub mod signal;
pub mod sorted;
pub mod supervisor;
pub mod sys;
pub mod unit;
