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

/// `phone`'s only companion device on the mock network (asserts there is exactly one).
pub fn only_companion(net: &mockwa::MockNetwork, phone: &str) -> mockwa::DeviceInfo {
    let mut devices: Vec<_> = net
        .devices()
        .into_iter()
        .filter(|d| d.phone == phone)
        .collect();
    assert_eq!(devices.len(), 1, "{phone}'s companions");
    devices.remove(0)
}
