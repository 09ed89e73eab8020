//! Models: the parameter layout (PyTorch state_dict names, one flat arena), the layers, and the
//! two architectures of SPEC section 3, written as plain calls to the graph ops.

pub mod layout;
pub mod lpips;
pub mod model;
pub mod vgg;

pub use layout::{Init, Layout, Weights};
pub use model::{Model, ModelConfig};
