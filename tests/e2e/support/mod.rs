//! Shared helpers of the `e2e` integration-test binary.

pub mod app;
pub mod cluster;
pub mod messages;
pub mod mongo;
pub mod phone;
pub mod poll;
pub mod process;
pub mod s3;
pub mod sink;
pub mod store;
