//! Reference for shaders/amp.wgsl: f16 rounding (nearest, ties to even) and the loss scaler's
//! update, in plain Rust.

/// The f16 bit pattern of `v` rounded to nearest even, and whether `v` is outside f16's finite
/// range (then the largest finite f16 of its sign, as the kernel stores it).
pub fn f16_bits(v: f32) -> (u16, bool) {
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let a = b & 0x7fff_ffff;
    if a >= 0x477f_f000 {
        return (sign | 0x7bff, true);
    }
    if a < 0x3880_0000 {
        // f16 subnormals: multiples of 2^-24.
        let k = (f32::from_bits(a) as f64 * 16_777_216.0).round_ties_even() as u16;
        return (sign | k, false);
    }
    let r = a + 0xfff + ((a >> 13) & 1);
    (sign | ((((r >> 23) - 112) << 10) | ((r >> 13) & 0x3ff)) as u16, false)
}

/// The value of f16 bits, exactly, as f32.
pub fn f16_value(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let e = ((h >> 10) & 0x1f) as i32;
    let m = (h & 0x3ff) as f64;
    let mag = match e {
        0 => m * 2f64.powi(-24),
        31 if m == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + m / 1024.0) * 2f64.powi(e - 15),
    };
    (sign * mag) as f32
}

/// `v` rounded to f16 (nearest even), as f32; out of range: the largest finite f16.
pub fn round_f16(v: f32) -> f32 {
    f16_value(f16_bits(v).0)
}

/// The scaler state (see amp.wgsl) after a step whose scaled gradients had squared norm
/// `norm_sq` and whose casts overflowed or not; returns the state and the norm_sq it leaves.
pub fn scaler_update(st: &mut [f32; 8], norm_sq: f32, overflow: bool, growth_interval: u32, beta1: f32, beta2: f32) -> f32 {
    let s = st[0];
    st[1] = 1.0 / s;
    if overflow || !norm_sq.is_finite() {
        st[0] = s * 0.5;
        st[2] = 0.0;
        st[3] += 1.0;
        st[5] = 1.0;
        return f32::INFINITY;
    }
    let t = st[4] + 1.0;
    st[4] = t;
    st[5] = 0.0;
    st[6] = (1.0 - (beta1 as f64).powf(t as f64)) as f32;
    st[7] = (1.0 - (beta2 as f64).powf(t as f64)).sqrt() as f32;
    let good = st[2] + 1.0;
    if good >= growth_interval as f32 {
        st[0] = (s * 2.0).min(4_294_967_296.0);
        st[2] = 0.0;
    } else {
        st[2] = good;
    }
    norm_sq / (s * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the `half` crate's conversion (round to nearest even) over a sweep of f32 bit
    /// patterns of both signs, every tie at the subnormal and normal boundaries, and the edges.
    #[test]
    fn f16_rounding_matches_the_half_crate() {
        let mut cases: Vec<f32> = (0..u32::MAX / 6151).map(|k| f32::from_bits(k * 6151)).filter(|v| v.is_finite()).collect();
        for m in 0..2048u32 {
            cases.push((m as f32 + 0.5) * 2f32.powi(-24));
            cases.push((1024.0 + m as f32 * 0.5) * 2f32.powi(-10));
        }
        cases.extend([0.0, -0.0, 65504.0, 65519.99, 65520.0, 6.1035156e-5, 5.9604645e-8, 2.9802322e-8, 2.9802326e-8]);
        for v in cases {
            let (h, over) = f16_bits(v);
            let want = half::f16::from_f32(v);
            if want.is_infinite() {
                assert!(over && h & 0x7fff == 0x7bff, "{v:e}: {h:#x}, overflow {over}");
            } else {
                assert!(!over, "{v:e} flagged");
                assert_eq!(h, want.to_bits(), "{v:e}");
                assert_eq!(f16_value(h), want.to_f32(), "{v:e}");
            }
        }
        assert!(f16_bits(f32::NAN).1 && f16_bits(f32::INFINITY).1 && f16_bits(f32::NEG_INFINITY).1);
    }
}
