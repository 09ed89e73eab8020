//! Philox4x32-10 counter-based RNG (Salmon et al., Random123 constants) and the
//! u32 -> uniform [0, 1) mapping shared with the WGSL dropout kernel. Pure
//! integer arithmetic, so CPU and GPU produce bit-identical streams.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// (hi, lo) halves of the full 64-bit product. WGSL has no u64, so the kernel has
/// to assemble the high half itself; it must agree with this bit for bit.
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

fn round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mulhilo(M0, c[0]);
    let (hi1, lo1) = mulhilo(M1, c[2]);
    [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0]
}

pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for r in 0..10 {
        c = round(c, k);
        // The key schedule advances between rounds: 9 bumps for 10 rounds.
        if r < 9 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
    }
    c
}

/// Top 24 bits only, so the value is exact in f32 and the GPU's f32 comparison
/// against p agrees with this f64 one (for p itself representable in f32).
pub fn uniform_from_u32(r: u32) -> f64 {
    (r >> 8) as f64 / 16_777_216.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random123_known_answers() {
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox4x32_10([0xffff_ffff; 4], [0xffff_ffff; 2]), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(
            philox4x32_10([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn uniform_range_and_f32_exactness() {
        assert_eq!(uniform_from_u32(0), 0.0);
        assert_eq!(uniform_from_u32(0xff), 0.0);
        assert_eq!(uniform_from_u32(0x100), 1.0 / 16_777_216.0);
        let top = uniform_from_u32(u32::MAX);
        assert_eq!(top, 1.0 - 1.0 / 16_777_216.0);
        assert!(top < 1.0);
        for r in [1u32, 0x1234_5678, 0x8000_0000, 0xdead_beef, u32::MAX] {
            let u = uniform_from_u32(r);
            assert_eq!(u as f32 as f64, u, "not exact in f32 for {r:#x}");
        }
    }
}
