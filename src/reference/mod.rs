//! Plain-Rust f64 reference implementations of every op the WGSL kernels compute.
//! All tensors are flat row-major slices in NCHW order; these functions are
//! what the GPU results are checked against, so they favour clarity over speed.

// Index loops are kept on purpose so each function reads like its GPU kernel, and
// the long argument lists are the check harness's fixed API.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

pub mod activation;
pub mod amp;
pub mod analysis;
pub mod batch_norm;
pub mod concat;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod data;
pub mod dropout2d;
pub mod elementwise;
pub mod fft;
pub mod graph;
pub mod group_norm;
pub mod loss;
pub mod lpips;
pub mod maxpool2d;
pub mod metrics;
pub mod optim;
pub mod pad2d;
pub mod philox;
pub mod reduce;
pub mod resize_bilinear;

#[cfg(test)]
pub(crate) mod fd;
