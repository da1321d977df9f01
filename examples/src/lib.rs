//! Shared code of the examples. `chat` is the example chat backend, kept in
//! the library so the integration tests can drive the same router in process.

pub mod chat;
pub mod simulator;
