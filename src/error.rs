//! One error type for the library: every variant names what failed (the op, the kernel, the
//! adapter, the limit) so `main` can print it once and the user knows where to look.

/// How to get a Vulkan device on a machine without a GPU; repeated wherever a missing adapter
/// can surface (CLI and tests).
pub const NO_ADAPTER_HELP: &str = "dae needs a Vulkan, Metal or DX12 adapter. On a Linux machine \
without a GPU, Mesa's lavapipe gives a CPU Vulkan device: `apt-get install mesa-vulkan-drivers` \
(Debian/Ubuntu). `dae devices` lists what wgpu can see.";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter found. {NO_ADAPTER_HELP}")]
    NoAdapter,

    #[error("adapter {wanted:?} not found; available adapters:\n{available}")]
    AdapterNotFound { wanted: String, available: String },

    #[error("could not open a device on adapter {adapter:?}: {message}")]
    RequestDevice { adapter: String, message: String },

    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },

    #[error("{op}: {what} needs {need} bytes, over this adapter's {limit_name} of {limit} bytes")]
    Limit { op: &'static str, what: String, need: u64, limit: u64, limit_name: &'static str },

    #[error("GPU error in kernel {kernel}: {message}")]
    Gpu { kernel: String, message: String },

    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    #[error("autograd: {0}")]
    Autograd(String),

    #[cfg(not(target_arch = "wasm32"))]
    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    /// A config or command-line value that cannot work (exit status 2, like a usage error).
    #[error("{0}")]
    Config(String),

    #[error("{0}")]
    Msg(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape { op, message: message.into() }
    }

    /// A device-limit error restated in the user's terms: the setting `field` (a batch of
    /// `batch` images) drives the buffer, and the largest batch that fits (buffers grow with the
    /// batch). Other errors pass through.
    pub fn limit_in_terms_of(self, field: &str, batch: usize) -> Error {
        match self {
            Error::Limit { op, what, need, limit, limit_name } => {
                let fits = (batch as u128 * limit as u128 / need.max(1) as u128) as usize;
                Error::Config(format!(
                    "{field} {batch} is too large for this adapter: {op} needs {what} of {need} bytes, over its {limit_name} of {limit} bytes; the largest batch that fits is about {fits}{}",
                    if fits == 0 { " (even one image does not fit: use a smaller model, e.g. lower model.base_ch)" } else { "" }
                ))
            }
            e => e,
        }
    }

    /// The process exit status for this error: 2 for a usage or config error (the command
    /// cannot work as given), 1 for a failure of the run (data, GPU, non-finite loss, I/O).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::AdapterNotFound { .. } => 2,
            _ => 1,
        }
    }
}

/// `ensure!(cond, op, "fmt", args)` returns a shape error naming the op when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $op:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::Error::shape($op, format!($($fmt)+)));
        }
    };
}
