//! The bottom layer: what every other module may use and which uses nothing of the crate.

pub mod lock;
pub mod rng;
pub mod signal;
