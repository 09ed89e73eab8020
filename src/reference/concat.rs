//! Channel concatenation (torch.cat(dim=1)) of NCHW tensors sharing n and h*w, and
//! its adjoint, which splits the gradient back into the parts.
//! Layouts: part i [n, c_i, hw], y/dy [n, sum c_i, hw].

pub fn concat_forward(n: usize, hw: usize, parts: &[(&[f64], usize)]) -> Vec<f64> {
    for (i, (data, ch)) in parts.iter().enumerate() {
        assert_eq!(data.len(), n * ch * hw, "concat_forward: part {i} length for n={n} c={ch} hw={hw}");
    }
    let c_total: usize = parts.iter().map(|p| p.1).sum();
    let mut y = Vec::with_capacity(n * c_total * hw);
    // Within one sample the parts' channel blocks are adjacent; samples interleave.
    for ni in 0..n {
        for (data, ch) in parts {
            y.extend_from_slice(&data[ni * ch * hw..(ni + 1) * ch * hw]);
        }
    }
    y
}

pub fn concat_backward(n: usize, hw: usize, channels: &[usize], dy: &[f64]) -> Vec<Vec<f64>> {
    let c_total: usize = channels.iter().sum();
    assert_eq!(dy.len(), n * c_total * hw, "concat_backward: dy length for n={n} c={c_total} hw={hw}");
    let mut parts: Vec<Vec<f64>> = channels.iter().map(|ch| Vec::with_capacity(n * ch * hw)).collect();
    let mut offset = 0;
    for _ in 0..n {
        for (part, ch) in parts.iter_mut().zip(channels) {
            part.extend_from_slice(&dy[offset..offset + ch * hw]);
            offset += ch * hw;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, check_grad, dot};

    #[test]
    fn forward_known_values() {
        // n=2, hw=1: a has 1 channel, b has 2.
        let a = [1.0, 2.0];
        let b = [10.0, 11.0, 20.0, 21.0];
        let y = concat_forward(2, 1, &[(&a, 1), (&b, 2)]);
        assert_eq!(y, vec![1.0, 10.0, 11.0, 2.0, 20.0, 21.0]);
        assert_eq!(concat_backward(2, 1, &[1, 2], &y), vec![a.to_vec(), b.to_vec()]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (n, hw) = (3, 7 * 5);
        let channels = [3, 5, 1];
        let mut rng = Rng::new(1);
        let xs: Vec<Vec<f64>> = channels.iter().map(|ch| rng.vec(n * ch * hw)).collect();
        let g = rng.vec(n * 9 * hw);
        let grads = concat_backward(n, hw, &channels, &g);
        for k in 0..channels.len() {
            check_grad(&format!("concat part {k}"), &xs[k], &grads[k], |xk| {
                let parts: Vec<(&[f64], usize)> = (0..channels.len()).map(|j| (if j == k { xk } else { &xs[j][..] }, channels[j])).collect();
                dot(&concat_forward(n, hw, &parts), &g)
            });
        }
    }
}
