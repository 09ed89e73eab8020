//! Uniform Params structs: `#[repr(C)]` Pod twins of the WGSL `struct <Family>Params`, u32/f32
//! fields only, padded to 16 bytes. The macro records each field's offset so a test can check
//! the Rust layout against naga's reflection of the WGSL struct (keep the two in sync).

pub trait GpuParams: bytemuck::Pod {
    /// The WGSL struct this mirrors.
    const WGSL_NAME: &'static str;
    /// (field name, byte offset) in declaration order.
    fn layout() -> Vec<(&'static str, usize)>;
}

/// Declares a Params struct and its [`GpuParams`] impl; see the module docs.
#[macro_export]
macro_rules! gpu_params {
    ($(#[$m:meta])* pub struct $name:ident { $(pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name { $(pub $f: $t),* }
        impl $crate::gpu::params::GpuParams for $name {
            const WGSL_NAME: &'static str = stringify!($name);
            fn layout() -> Vec<(&'static str, usize)> {
                vec![$((stringify!($f), std::mem::offset_of!($name, $f))),*]
            }
        }
    };
}

/// One row of the registry the layout test walks: every Params struct of the crate.
pub struct ParamsInfo {
    pub name: &'static str,
    pub size: usize,
    pub layout: fn() -> Vec<(&'static str, usize)>,
}

pub fn info<P: GpuParams>() -> ParamsInfo {
    ParamsInfo { name: P::WGSL_NAME, size: std::mem::size_of::<P>(), layout: P::layout }
}
