// philox: the Philox4x32-10 counter-based RNG (Salmon et al., Random123), shared by every kernel
// that draws random numbers. WGSL has no 64-bit integers, so the 32x32 -> 64-bit product is
// assembled from 16-bit halves. src/reference/philox.rs is the CPU twin (same stream, bit for bit).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (hi, lo) of the 64-bit product a * b.
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p10 = a1 * b0;
    let p01 = a0 * b1;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p10 & 0xffffu) + p01; // < 2^32: no overflow
    let hi = p11 + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        let m0 = philox_mulhilo(PHILOX_M0, c.x);
        let m1 = philox_mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
        k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

// A uniform in [0, 1) with 24 random bits: exactly representable in f32 (and in the CPU twin).
fn philox_uniform(r: u32) -> f32 {
    return f32(r >> 8u) * (1.0 / 16777216.0);
}
