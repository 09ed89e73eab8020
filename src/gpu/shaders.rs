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
/// Workgroup tree sums (wg_sum, wg_sum2) for the kernels that reduce.
pub const WG_SUM: &str = wgsl!("workgroup_sum");
/// The activations (act_f, act_df over the ACT override) for the kernels that apply one.
pub const ACT: &str = wgsl!("act");
/// Channel slices (slice_plane, slice_at) for the kernels that write or read part of a concat.
pub const SLICE: &str = wgsl!("slice");
/// The conv kernels' parameters, bindings and helpers (conv2d and conv2d_sg).
pub const CONV: &str = wgsl!("conv2d_common");
/// The conv kernels' operand type (and the norms' saved input's): f32, or f16 for the half
/// families (`train.amp`), which only an adapter with shader-f16 compiles (`enable` must open
/// the module).
pub const OPERANDS_F32: &str = "alias XT = f32;\n";
pub const OPERANDS_F16: &str = "enable f16;\nalias XT = f16;\n";

pub const SHADERS: &[Shader] = &[
    Shader { family: "conv2d", parts: &[OPERANDS_F32, SLICE, CONV, wgsl!("conv2d")] },
    Shader { family: "conv2d_sg", parts: &[OPERANDS_F32, SLICE, CONV, wgsl!("conv2d_subgroup")] },
    Shader { family: "conv2d_h", parts: &[OPERANDS_F16, SLICE, CONV, wgsl!("conv2d")] },
    Shader { family: "conv2d_sg_h", parts: &[OPERANDS_F16, SLICE, CONV, wgsl!("conv2d_subgroup")] },
    Shader { family: "amp", parts: &[wgsl!("amp")] },
    Shader { family: "group_norm", parts: &[OPERANDS_F32, WG_SUM, ACT, SLICE, wgsl!("group_norm")] },
    Shader { family: "group_norm_h", parts: &[OPERANDS_F16, WG_SUM, ACT, SLICE, wgsl!("group_norm")] },
    Shader { family: "batch_norm", parts: &[OPERANDS_F32, WG_SUM, ACT, SLICE, wgsl!("batch_norm")] },
    Shader { family: "batch_norm_h", parts: &[OPERANDS_F16, WG_SUM, ACT, SLICE, wgsl!("batch_norm")] },
    Shader { family: "activation", parts: &[ACT, SLICE, wgsl!("activation")] },
    Shader { family: "maxpool2d", parts: &[SLICE, wgsl!("maxpool2d")] },
    Shader { family: "resize_bilinear", parts: &[SLICE, wgsl!("resize_bilinear")] },
    Shader { family: "pad2d", parts: &[SLICE, wgsl!("pad2d")] },
    Shader { family: "concat", parts: &[wgsl!("concat")] },
    Shader { family: "dropout2d", parts: &[PHILOX, wgsl!("dropout2d")] },
    Shader { family: "elementwise", parts: &[WG_SUM, wgsl!("elementwise")] },
    Shader { family: "loss", parts: &[WG_SUM, wgsl!("loss")] },
    Shader { family: "reduce", parts: &[WG_SUM, wgsl!("reduce")] },
    Shader { family: "optim", parts: &[wgsl!("optim")] },
    Shader { family: "data", parts: &[PHILOX, wgsl!("data")] },
    Shader { family: "metrics", parts: &[WG_SUM, wgsl!("metrics")] },
    Shader { family: "lpips", parts: &[WG_SUM, wgsl!("lpips")] },
    Shader { family: "fft", parts: &[wgsl!("fft")] },
    Shader { family: "analysis", parts: &[WG_SUM, wgsl!("analysis")] },
    Shader { family: "probe", parts: &[wgsl!("probe")] },
];

/// Every value each `override` constant takes in some launch, by (family, name): the portability
/// test translates each entry point once per value (a kernel must translate in every variant
/// the engine can pick, not just its default).
pub const OVERRIDE_VALUES: &[(&str, &str, &[f64])] = &[
    ("activation", "ACT", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
    ("conv2d", "CHANNEL_BLOCKS", &[0.0, 1.0]),
    ("conv2d", "WGRAD_CO", &[4.0, 8.0]),
    ("conv2d", "WGRAD_CI", &[4.0, 8.0]),
    ("conv2d", "UBO_CH", &[8.0, 16.0]),
    ("conv2d", "UBO_WG", &[256.0, 128.0, 64.0, 32.0, 16.0, 8.0]),
    ("conv2d_h", "CHANNEL_BLOCKS", &[0.0, 1.0]),
    ("conv2d_h", "WGRAD_CO", &[4.0, 8.0]),
    ("conv2d_h", "WGRAD_CI", &[4.0, 8.0]),
    ("conv2d_h", "UBO_CH", &[8.0, 16.0]),
    ("conv2d_h", "UBO_WG", &[256.0, 128.0, 64.0, 32.0, 16.0, 8.0]),
    ("conv2d_sg", "SG_WG", &[256.0, 128.0, 64.0, 32.0, 16.0, 8.0]),
    ("conv2d_sg_h", "SG_WG", &[256.0, 128.0, 64.0, 32.0, 16.0, 8.0]),
    ("conv2d_sg", "SG_CH", &[8.0, 16.0]),
    ("conv2d_sg", "SGW_CI", &[8.0, 4.0]),
    ("conv2d_sg_h", "SGW_CI", &[8.0, 4.0]),
    ("conv2d_sg_h", "SG_CH", &[8.0, 16.0]),
    ("group_norm", "ACT", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ("group_norm", "THREADS", &[64.0, 32.0, 16.0, 8.0]),
    ("group_norm_h", "ACT", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ("group_norm_h", "THREADS", &[64.0, 32.0, 16.0, 8.0]),
    ("batch_norm", "ACT", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ("batch_norm", "THREADS", &[256.0, 64.0, 32.0, 16.0]),
    ("batch_norm_h", "ACT", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ("batch_norm_h", "THREADS", &[256.0, 64.0, 32.0, 16.0]),
    ("loss", "LOSS", &[0.0, 1.0, 2.0]),
    ("optim", "MODE", &[0.0, 1.0, 2.0]),
    ("reduce", "MODE", &[0.0, 1.0]),
];

pub fn source(family: &str) -> Option<String> {
    SHADERS.iter().find(|s| s.family == family).map(|s| s.parts.concat())
}

/// Parse and validate one family with naga (no GPU needed); the error names the family.
pub fn validate(family: &str) -> Result<naga::Module, String> {
    reflect(family).map(|(m, _)| m)
}

/// The module and naga's analysis of it (which globals each entry point uses).
pub fn reflect(family: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let src = source(family).ok_or_else(|| format!("unknown shader family {family}"))?;
    let module = naga::front::wgsl::parse_str(&src).map_err(|e| format!("{family}.wgsl: {}", e.emit_to_string(&src)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default() | naga::valid::Capabilities::SUBGROUP | naga::valid::Capabilities::SHADER_FLOAT16,
    )
    .validate(&module)
    .map_err(|e| format!("{family}.wgsl: {}", e.emit_to_string(&src)))?;
    Ok((module, info))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// The Params struct (binding 0), bound with a dynamic offset into the per-submit uniform arena.
    Params,
    /// Any other uniform binding: a view of a pool buffer, like the storage ones.
    Uniform,
    Storage {
        read_only: bool,
    },
}

/// The group-0 bindings `entry` statically uses, in binding order: what its bind group must hold.
pub fn entry_bindings(module: &naga::Module, info: &naga::valid::ModuleInfo, entry: &str) -> Option<Vec<(u32, BindingKind)>> {
    let ep = module.entry_points.iter().position(|e| e.name == entry)?;
    let uses = info.get_entry_point(ep);
    let mut out = Vec::new();
    for (h, gv) in module.global_variables.iter() {
        let Some(rb) = &gv.binding else { continue };
        if uses[h].is_empty() || rb.group != 0 {
            continue;
        }
        let kind = match gv.space {
            naga::AddressSpace::Uniform if rb.binding == 0 => BindingKind::Params,
            naga::AddressSpace::Uniform => BindingKind::Uniform,
            naga::AddressSpace::Storage { access } => BindingKind::Storage { read_only: !access.contains(naga::StorageAccess::STORE) },
            _ => continue,
        };
        out.push((rb.binding, kind));
    }
    out.sort_by_key(|(b, _)| *b);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shader_validates_with_naga() {
        for s in SHADERS {
            if let Err(e) = validate(s.family) {
                panic!("{e}");
            }
        }
    }

    /// Every entry point of every shader, in every override variant, translates to SPIR-V
    /// (Vulkan), MSL (Metal) and HLSL (DX12) with naga, the translator wgpu itself uses: a Metal
    /// or DX12 user never meets a translation error first. No GPU needed.
    #[test]
    fn every_shader_translates_to_spirv_msl_and_hlsl() {
        use naga::back::{hlsl, msl, spv};
        let mut translated = 0;
        for s in SHADERS {
            let (module, info) = reflect(s.family).unwrap();
            // The override assignments to try: the defaults, then each listed value of each name.
            let mut variants: Vec<Vec<(&str, f64)>> = vec![Vec::new()];
            for (_, o) in module.overrides.iter() {
                let name = o.name.as_deref().unwrap_or("");
                let values = OVERRIDE_VALUES
                    .iter()
                    .find(|(f, n, _)| *f == s.family && *n == name)
                    .unwrap_or_else(|| panic!("{}.wgsl: override {name} is missing from OVERRIDE_VALUES", s.family));
                variants.extend(values.2.iter().map(|v| vec![(name, *v)]));
            }
            for ep in &module.entry_points {
                for variant in &variants {
                    let mut constants = naga::back::PipelineConstants::default();
                    for (k, v) in variant {
                        constants.insert(k.to_string(), *v);
                    }
                    let what = format!("{}.wgsl {} {variant:?}", s.family, ep.name);
                    let (m, i) =
                        naga::back::pipeline_constants::process_overrides(&module, &info, Some((naga::ShaderStage::Compute, &ep.name)), &constants)
                            .unwrap_or_else(|e| panic!("{what}: overrides: {e}"));
                    let spv_opts = spv::Options::default();
                    let spv_pipe = spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: ep.name.clone() };
                    spv::write_vec(&m, &i, &spv_opts, Some(&spv_pipe)).unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));
                    let msl_opts = msl::Options { lang_version: (2, 1), ..Default::default() };
                    let msl_pipe = msl::PipelineOptions { entry_point: Some((naga::ShaderStage::Compute, ep.name.clone())), ..Default::default() };
                    msl::write_string(&m, &i, &msl_opts, &msl_pipe).unwrap_or_else(|e| panic!("{what}: MSL: {e}"));
                    // f16 needs shader model 6.2 (DX12 reports shader-f16 only there).
                    let sm = if s.parts.contains(&OPERANDS_F16) { hlsl::ShaderModel::V6_2 } else { hlsl::ShaderModel::V6_0 };
                    let hlsl_opts = hlsl::Options { shader_model: sm, ..Default::default() };
                    let hlsl_pipe = hlsl::PipelineOptions { entry_point: Some((naga::ShaderStage::Compute, ep.name.clone())) };
                    let mut out = String::new();
                    hlsl::Writer::new(&mut out, &hlsl_opts, &hlsl_pipe).write(&m, &i, None).unwrap_or_else(|e| panic!("{what}: HLSL: {e}"));
                    translated += 1;
                }
            }
        }
        assert!(translated > 40, "only {translated} entry points translated");
    }

    /// No kernel uses more workgroup memory or more storage buffers than the least adapter dae
    /// accepts (gpu::device::REQUIREMENTS): a kernel that grows past them fails here, not on a
    /// user's smaller GPU.
    #[test]
    fn kernels_fit_the_limits_dae_requires() {
        let need = |name: &str| crate::gpu::device::REQUIREMENTS.iter().find(|r| r.name == name).map(|r| r.need).unwrap();
        for s in SHADERS {
            let (module, info) = reflect(s.family).unwrap();
            let wg: u64 = module
                .global_variables
                .iter()
                .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
                .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()) as u64)
                .sum();
            assert!(wg <= need("max_compute_workgroup_storage_size"), "{}.wgsl declares {wg} bytes of workgroup memory", s.family);
            for ep in &module.entry_points {
                let n =
                    entry_bindings(&module, &info, &ep.name).unwrap().iter().filter(|(_, k)| matches!(k, BindingKind::Storage { .. })).count() as u64;
                assert!(n <= need("max_storage_buffers_per_shader_stage"), "{} binds {n} storage buffers", ep.name);
            }
        }
    }

    /// Every WGSL `*Params` struct has a Rust twin with the same size, field names and offsets,
    /// padded to 16 bytes; and every Rust Params type names a struct some shader declares.
    #[test]
    fn params_layouts_match_naga_reflection() {
        let mut wgsl = std::collections::HashMap::new();
        for s in SHADERS {
            let module = validate(s.family).unwrap();
            for (_, ty) in module.types.iter() {
                if let (Some(name), naga::TypeInner::Struct { members, span }) = (&ty.name, &ty.inner)
                    && name.ends_with("Params")
                {
                    let fields: Vec<(String, usize)> = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect();
                    wgsl.insert(name.clone(), (*span as usize, fields, s.family));
                }
            }
        }
        let rust = crate::ops::all_params();
        for p in &rust {
            let (span, fields, family) = wgsl.get(p.name).unwrap_or_else(|| panic!("{} is declared by no shader", p.name));
            assert_eq!(p.size, *span, "{} ({family}.wgsl): Rust size {} vs WGSL {span}", p.name, p.size);
            assert_eq!(p.size % 16, 0, "{}: size {} is not a multiple of 16", p.name, p.size);
            let rf: Vec<(String, usize)> = (p.layout)().into_iter().map(|(n, o)| (n.to_string(), o)).collect();
            assert_eq!(&rf, fields, "{} ({family}.wgsl): field names/offsets differ", p.name);
        }
        for name in wgsl.keys() {
            assert!(rust.iter().any(|p| p.name == name), "WGSL struct {name} has no Rust twin in ops::all_params()");
        }
    }
}
