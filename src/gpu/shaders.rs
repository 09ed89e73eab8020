//! The shader table: every WGSL family embedded with `include_str!`. A family may be preceded
//! by shared snippets (the Philox RNG); the concatenation is what naga and the driver see.

pub struct Shader {
    pub family: &'static str,
    pub parts: &'static [&'static str],
}

macro_rules! wgsl {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $name, ".wgsl"))
    };
}

pub const PHILOX: &str = wgsl!("philox");

pub const SHADERS: &[Shader] = &[
    Shader { family: "conv2d", parts: &[wgsl!("conv2d")] },
    Shader { family: "group_norm", parts: &[wgsl!("group_norm")] },
    Shader { family: "batch_norm", parts: &[wgsl!("batch_norm")] },
    Shader { family: "activation", parts: &[wgsl!("activation")] },
    Shader { family: "maxpool2d", parts: &[wgsl!("maxpool2d")] },
    Shader { family: "resize_bilinear", parts: &[wgsl!("resize_bilinear")] },
    Shader { family: "pad2d", parts: &[wgsl!("pad2d")] },
    Shader { family: "concat", parts: &[wgsl!("concat")] },
    Shader { family: "dropout2d", parts: &[PHILOX, wgsl!("dropout2d")] },
    Shader { family: "elementwise", parts: &[wgsl!("elementwise")] },
    Shader { family: "loss", parts: &[wgsl!("loss")] },
    Shader { family: "reduce", parts: &[wgsl!("reduce")] },
];

pub fn source(family: &str) -> Option<String> {
    SHADERS.iter().find(|s| s.family == family).map(|s| s.parts.concat())
}

/// Parse and validate one family with naga (no GPU needed); the error names the family.
pub fn validate(family: &str) -> Result<naga::Module, String> {
    let src = source(family).ok_or_else(|| format!("unknown shader family {family}"))?;
    let module = naga::front::wgsl::parse_str(&src)
        .map_err(|e| format!("{family}.wgsl: {}", e.emit_to_string(&src)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
        .validate(&module)
        .map_err(|e| format!("{family}.wgsl: {}", e.emit_to_string(&src)))?;
    Ok(module)
}
