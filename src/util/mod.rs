//! Small helpers every layer above may use: atomic files and safetensors I/O, folder locks,
//! signals, the one seeded RNG. They use nothing of the crate but its error type.

pub mod csvlog;
pub mod events;
pub mod files;
#[cfg(not(target_arch = "wasm32"))]
pub mod lock;
pub mod outputs;
pub mod rng;
#[cfg(not(target_arch = "wasm32"))]
pub mod signal;
