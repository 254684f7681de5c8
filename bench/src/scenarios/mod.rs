//! The load scenarios, one per file; each implements `driver::Scenario`.

pub mod baseline;
pub mod engine;
