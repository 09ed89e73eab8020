//! `dae`: denoising autoencoders on any Vulkan / Metal / DX12 GPU through wgpu. All tensor math
//! runs in the hand-written WGSL kernels of `shaders/`, launched from `ops/`, differentiated by
//! the tape in `autograd/`, and checked against the plain-Rust CPU twins in `reference/`.

pub mod analysis;
pub mod autograd;
pub mod bench;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod feed;
pub mod gpu;
pub mod infer;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod reference;
pub mod report;
pub mod tensor;
pub mod train;
pub mod util;

pub use error::{Error, Result};
pub use gpu::Ctx;
pub use tensor::Tensor;
