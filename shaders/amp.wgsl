// amp: mixed precision's own kernels (`train.amp`).
//
// amp_cast_f16: the packed f16 copy of an f32 tensor that a half conv kernel reads (conv2d_h:
// f16 GEMM operands, f32 accumulation). Rounded to nearest, ties to even, in integer arithmetic
// and stored as bits, so every adapter stores the same f16 values (WGSL leaves the rounding of an
// f32 -> f16 conversion, and its result out of range, to the implementation). A value outside
// f16's finite range (|v| >= 65520, inf, NaN) is stored as the largest finite f16 of its sign and
// raises `flag`: the loss scaler's overflow signal. The source may be a channel slice (channels
// [off, off + c) of `total` per image); the copy is plain [n, c, hw].
// amp_update (one invocation, after the global gradient norm, before the optimiser): the dynamic
// loss scaler, as torch.cuda.amp.GradScaler. With the step's scale s: an overflow (flag) or a
// non-finite norm skips the step (the optimiser and the EMA read st[SKIP]), halves s and counts
// the skip; otherwise the step is applied (Adam's bias corrections from the applied-step count)
// and s doubles after `growth_interval` applied steps in a row. s stays a power of two, so the
// scaling itself rounds nothing. norm_sq is rewritten unscaled (+inf for a skipped step), which
// is what the clip and the log read.
//
// Bindings: 0 params | 1 src f32 | 2 dst packed f16 (rw, u32 words) | 3 flag [1] (atomic)
//           | 4 norm_sq [1] (rw) | 5 st [8] (rw): scale, inverse of the step's scale, good steps
//           in a row, skipped steps, applied steps, skip this step (0/1), Adam's bias_c1 and
//           bias_c2_sqrt for this step (counts as f32: exact to 2^24 steps).
// Tiling: amp_cast_f16 one invocation per output word (2 elements).

struct AmpParams {
    n: u32, c: u32, hw: u32, off: u32,
    total: u32, growth_interval: u32, beta1: f32, beta2: f32,
}

const WG: u32 = 256u;
// The loss scale does not grow past this: f16 overflows long before any larger scale helps.
const MAX_SCALE: f32 = 4294967296.0;

@group(0) @binding(0) var<uniform> p: AmpParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read_write> flag: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> norm_sq: array<f32>;
@group(0) @binding(5) var<storage, read_write> st: array<f32>;

// The f16 bits of v, rounded to nearest even; out of range: the largest finite f16, flagged.
fn to_f16(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    let s = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if (a >= 0x477ff000u) {
        atomicOr(&flag[0], 1u);
        return s | 0x7bffu;
    }
    if (a < 0x38800000u) {
        // Below 2^-14: an f16 subnormal, a multiple of 2^-24 (round() is ties-to-even).
        return s | u32(round(bitcast<f32>(a) * 16777216.0));
    }
    let r = a + 0xfffu + ((a >> 13u) & 1u);
    return s | (((r >> 23u) - 112u) << 10u) | ((r >> 13u) & 0x3ffu);
}

fn src_at(e: u32) -> f32 {
    let per = p.c * p.hw;
    return src[((e / per) * p.total + p.off) * p.hw + e % per];
}

@compute @workgroup_size(WG)
fn amp_cast_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * WG;
    let e = 2u * j;
    if (e >= p.n) { return; }
    var word = to_f16(src_at(e));
    if (e + 1u < p.n) { word |= to_f16(src_at(e + 1u)) << 16u; }
    dst[j] = word;
}

@compute @workgroup_size(1)
fn amp_update() {
    let s = st[0];
    let ns = norm_sq[0];
    let bad = atomicLoad(&flag[0]) != 0u || (bitcast<u32>(ns) & 0x7f800000u) == 0x7f800000u;
    atomicStore(&flag[0], 0u);
    st[1] = 1.0 / s;
    if (bad) {
        st[0] = s * 0.5;
        st[2] = 0.0;
        st[3] += 1.0;
        st[5] = 1.0;
        // +inf, from a runtime value: WGSL makes a constant expression that is infinite a
        // shader-creation error (Tint refuses it; naga let it through).
        var inf_bits = 0x7f800000u;
        norm_sq[0] = bitcast<f32>(inf_bits);
        return;
    }
    let t = st[4] + 1.0;
    st[4] = t;
    st[5] = 0.0;
    st[6] = 1.0 - pow(p.beta1, t);
    st[7] = sqrt(1.0 - pow(p.beta2, t));
    norm_sq[0] = ns / (s * s);
    let good = st[2] + 1.0;
    if (good >= f32(p.growth_interval)) {
        st[0] = min(s * 2.0, MAX_SCALE);
        st[2] = 0.0;
    } else {
        st[2] = good;
    }
}
