//! The crate's one home for seeded randomness on the host: splitmix64 streams for weight
//! initialisation, data permutations and test data. (The GPU's noise and dropout use Philox
//! keyed by (seed, epoch, step), in shaders/philox.wgsl, twinned by reference/philox.rs.)

/// splitmix64: deterministic, the same stream on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
    /// Uniform in [-1, 1) from the top 53 bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    /// A standard normal by Box-Muller from two uniforms in (0, 1].
    pub fn normal(&mut self) -> f64 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// A permutation of 0..n (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// Fuzz-style input for the readers' tests: `base` with random damage (flipped, overwritten,
/// inserted or deleted bytes, truncation, duplication), or pure random bytes.
#[cfg(test)]
pub fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    let edits = 1 + rng.next_u64() % 8;
    for _ in 0..edits {
        let at = if v.is_empty() { 0 } else { (rng.next_u64() % v.len() as u64) as usize };
        match rng.next_u64() % 7 {
            0 if !v.is_empty() => v[at] ^= 1 << (rng.next_u64() % 8),
            1 if !v.is_empty() => v[at] = rng.next_u64() as u8,
            2 => v.insert(at, rng.next_u64() as u8),
            3 if !v.is_empty() => {
                v.remove(at);
            }
            4 => v.truncate(at),
            5 => {
                let tail = v[at..].to_vec();
                v.extend(tail);
            }
            _ => {
                let n = (rng.next_u64() % 64) as usize;
                v = (0..n).map(|_| rng.next_u64() as u8).collect();
            }
        }
    }
    v
}
