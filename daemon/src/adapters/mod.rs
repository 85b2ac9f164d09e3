//! Line adapters: the outside world -> the line contract (`docs/line-contract.md`). Each knows nothing of tasks,
//! MQTT or the store.

pub mod modem;
