// conv2d: the kernels (the header, parameters and bindings are in conv2d_common.wgsl).

@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.cout * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let co = (i / (p.wo * p.ho)) % p.cout;
    let b = i / (p.wo * p.ho * p.cout);
    var acc = 0.0;
    for (var ci = 0u; ci < p.cin; ci++) {
        let xbase = xplane(b, ci) * p.h;
        let wbase = (co * p.cin + ci) * p.kh;
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = i32(oy * p.sh + ky) - i32(p.ph);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = i32(ox * p.sw + kx) - i32(p.pw);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                acc += lx((xbase + u32(iy)) * p.w + u32(ix)) * lwt((wbase + ky) * p.kw + kx);
            }
        }
    }
    if (p.has_bias != 0u) { acc += bias[co]; }
    if (p.accumulate != 0u) { acc += y[i]; }
    y[i] = acc;
}

@compute @workgroup_size(WG)
fn conv2d_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.cin * p.h * p.w) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let ci = (i / (p.w * p.h)) % p.cin;
    let b = i / (p.w * p.h * p.cin);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        // oy * sh + ky - ph == iy  <=>  oy = (iy + ph - ky) / sh, exactly divisible
        let ty = i32(iy + p.ph) - i32(ky);
        if (ty < 0 || (u32(ty) % p.sh) != 0u) { continue; }
        let oy = u32(ty) / p.sh;
        if (oy >= p.ho) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pw) - i32(kx);
            if (tx < 0 || (u32(tx) % p.sw) != 0u) { continue; }
            let ox = u32(tx) / p.sw;
            if (ox >= p.wo) { continue; }
            for (var co = 0u; co < p.cout; co++) {
                acc += ldy(((b * p.cout + co) * p.ho + oy) * p.wo + ox) * lwt(((co * p.cin + ci) * p.kh + ky) * p.kw + kx);
            }
        }
    }
    if (p.has_bias != 0u) { acc += bias[ci]; }
    let di = (xplane(b, ci) * p.h + iy) * p.w + ix;
    if (p.accumulate != 0u) { acc += dx[di]; }
    dx[di] = acc;
}

@compute @workgroup_size(WG)
fn conv2d_weight_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.cout * p.cin * p.kh * p.kw) { return; }
    let kx = i % p.kw;
    let ky = (i / p.kw) % p.kh;
    let ci = (i / (p.kw * p.kh)) % p.cin;
    let co = i / (p.kw * p.kh * p.cin);
    var acc = 0.0;
    for (var b = 0u; b < p.n; b++) {
        for (var oy = 0u; oy < p.ho; oy++) {
            let iy = i32(oy * p.sh + ky) - i32(p.ph);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            let xrow = (xplane(b, ci) * p.h + u32(iy)) * p.w;
            let dyrow = ((b * p.cout + co) * p.ho + oy) * p.wo;
            for (var ox = 0u; ox < p.wo; ox++) {
                let ix = i32(ox * p.sw + kx) - i32(p.pw);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                acc += ldy(dyrow + ox) * lx(xrow + u32(ix));
            }
        }
    }
    if (p.accumulate != 0u) { acc += dw[i]; }
    dw[i] = acc;
}

// ---- register-blocked versions ---------------------------------------------------------------
// Which invocation works on what (CHANNEL_BLOCKS, an override): 0 numbers the items (a row's
// 4-pixel block within an image plane, `per_plane` of them) channel block by channel block over
// the whole grid; 1 gives each workgroup one channel block and WG consecutive items, so every
// weight a workgroup loads is the same for all its invocations (a uniform load, which a CPU
// driver such as lavapipe does once instead of per invocation; the launcher sizes the grid as
// channel blocks x item blocks). Returns (item in plane, channel block, image, valid).
override CHANNEL_BLOCKS: u32 = 0u;

fn block_of(wid: vec3<u32>, lid: u32, nwg: vec3<u32>, per_plane: u32, ncb: u32) -> vec4<u32> {
    let wg = wid.x + wid.y * nwg.x;
    if (CHANNEL_BLOCKS == 0u) {
        let i = wg * WG + lid;
        let cb = (i / per_plane) % ncb;
        return vec4<u32>(i % per_plane, cb, i / (per_plane * ncb), select(0u, 1u, i < p.n * ncb * per_plane));
    }
    let item = (wg / ncb) * WG + lid;
    return vec4<u32>(item % per_plane, wg % ncb, item / per_plane, select(0u, 1u, item < p.n * per_plane));
}
// Same bindings, params and accumulate rule as the naive entries above. Forward and input_grad:
// each invocation computes 8 output channels x 4 pixels of one row (32 accumulators; every
// loaded input feeds 8 FMAs, every weight 4; 8 x 4 beat 4 x 4 by 10-30% on lavapipe, while the
// weight gradient stayed faster at 4 x 4). The tap loops are outside the channel loop, so the
// pixels' offsets and masks are computed once per tap. Out-of-range channels and pixels load
// clamped indices and are masked (select) or skipped on write, so the channel loop carries no
// branches. weight_grad_tiled:
// 4 cout x 4 cin of one tap per invocation, over a slice of the (n, oy) rows (split-K); its
// partial sums go to `partials` as [split][cout*cin*kh*kw] and conv2d_weight_grad_reduce adds them.

@compute @workgroup_size(WG)
fn conv2d_forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let nxb = (p.wo + 3u) / 4u;
    let ncb = (p.cout + 7u) / 8u;
    let blk = block_of(wid, lid, nwg, p.ho * nxb, ncb);
    if (blk.w == 0u) { return; }
    let ox0 = (blk.x % nxb) * 4u;
    let oy = blk.x / nxb;
    let co0 = blk.y * 8u;
    let b = blk.z;
    let cmax = p.cout - 1u;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    let kk = p.kh * p.kw;
    let wstride = p.cin * kk;
    let wb = vec4<u32>(min(co0, cmax), min(co0 + 1u, cmax), min(co0 + 2u, cmax), min(co0 + 3u, cmax)) * wstride;
    let wc = vec4<u32>(min(co0 + 4u, cmax), min(co0 + 5u, cmax), min(co0 + 6u, cmax), min(co0 + 7u, cmax)) * wstride;
    let hw = p.h * p.w;
    let s = i32(p.sw);
    let wm = i32(p.w) - 1;
    // Taps outside, channels inside: the 4 pixels' offsets and masks depend on the tap only.
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let row = xplane(b, 0u) * hw + u32(iy) * p.w;
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = vec4<i32>(i32(ox0 * p.sw + kx) - i32(p.pw)) + vec4<i32>(0, s, 2 * s, 3 * s);
            let ok = (ix >= vec4<i32>(0)) & (ix <= vec4<i32>(wm));
            let o = vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(wm))) + vec4<u32>(row);
            var t = ky * p.kw + kx;
            var off = 0u;
            for (var ci = 0u; ci < p.cin; ci++) {
                let xv = select(vec4<f32>(0.0), vec4<f32>(lx(o.x + off), lx(o.y + off), lx(o.z + off), lx(o.w + off)), ok);
                a0 = fma(xv, vec4<f32>(lwt(wb.x + t)), a0);
                a1 = fma(xv, vec4<f32>(lwt(wb.y + t)), a1);
                a2 = fma(xv, vec4<f32>(lwt(wb.z + t)), a2);
                a3 = fma(xv, vec4<f32>(lwt(wb.w + t)), a3);
                a4 = fma(xv, vec4<f32>(lwt(wc.x + t)), a4);
                a5 = fma(xv, vec4<f32>(lwt(wc.y + t)), a5);
                a6 = fma(xv, vec4<f32>(lwt(wc.z + t)), a6);
                a7 = fma(xv, vec4<f32>(lwt(wc.w + t)), a7);
                t += kk;
                off += hw;
            }
        }
    }
    let acc = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    store_y(acc, b, co0, oy, ox0);
}

// The 4 pixels of an invocation are `sw` apart (one phase of the stride), so for each kx the tap
// either feeds all four or none: taps of the wrong phase are skipped, not masked (a 4x saving
// for the stride-2 transposed convs of the decoders).
@compute @workgroup_size(WG)
fn conv2d_input_grad_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let per_plane = dx_items_per_plane();
    let ncb = (p.cin + 7u) / 8u;
    let blk = block_of(wid, lid, nwg, per_plane, ncb);
    let q = dx_item(blk.z * per_plane + blk.x);
    if (blk.w == 0u || q.y >= p.h) { return; }
    let b = q.x;
    let iy = q.y;
    let ix0 = q.z;
    let ci0 = blk.y * 8u;
    let cmax = p.cin - 1u;
    let kk = p.kh * p.kw;
    let cb = vec4<u32>(min(ci0, cmax), min(ci0 + 1u, cmax), min(ci0 + 2u, cmax), min(ci0 + 3u, cmax)) * kk;
    let cc = vec4<u32>(min(ci0 + 4u, cmax), min(ci0 + 5u, cmax), min(ci0 + 6u, cmax), min(ci0 + 7u, cmax)) * kk;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    let ohw = p.ho * p.wo;
    let wom = i32(p.wo) - 1;
    let wco = p.cin * kk;
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = i32(iy + p.ph) - i32(ky);
        if (ty < 0 || (u32(ty) % p.sh) != 0u) { continue; }
        let oy = u32(ty) / p.sh;
        if (oy >= p.ho) { continue; }
        let drow = b * p.cout * ohw + oy * p.wo;
        for (var kx = 0u; kx < p.kw; kx++) {
            // tx = ix0 + pw - kx must be a multiple of sw (shifted positive for the modulo).
            if (((ix0 + p.pw + p.sw * p.kw - kx) % p.sw) != 0u) { continue; }
            let m = vec4<i32>((i32(ix0 + p.pw) - i32(kx)) / i32(p.sw)) + vec4<i32>(0, 1, 2, 3);
            let ok = (m >= vec4<i32>(0)) & (m <= vec4<i32>(wom));
            let o = vec4<u32>(clamp(m, vec4<i32>(0), vec4<i32>(wom))) + vec4<u32>(drow);
            var wbase = ky * p.kw + kx;
            var off = 0u;
            for (var co = 0u; co < p.cout; co++) {
                let dv = select(vec4<f32>(0.0), vec4<f32>(ldy(o.x + off), ldy(o.y + off), ldy(o.z + off), ldy(o.w + off)), ok);
                a0 = fma(dv, vec4<f32>(lwt(wbase + cb.x)), a0);
                a1 = fma(dv, vec4<f32>(lwt(wbase + cb.y)), a1);
                a2 = fma(dv, vec4<f32>(lwt(wbase + cb.z)), a2);
                a3 = fma(dv, vec4<f32>(lwt(wbase + cb.w)), a3);
                a4 = fma(dv, vec4<f32>(lwt(wbase + cc.x)), a4);
                a5 = fma(dv, vec4<f32>(lwt(wbase + cc.y)), a5);
                a6 = fma(dv, vec4<f32>(lwt(wbase + cc.z)), a6);
                a7 = fma(dv, vec4<f32>(lwt(wbase + cc.w)), a7);
                wbase += wco;
                off += ohw;
            }
        }
    }
    let acc = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    store_dx(acc, b, ci0, iy, ix0);
}

// Partial weight gradients over `splits` slices of the (n, oy) rows, divided
// evenly among them. Writes partials[split * W + widx], W = cout*cin*kh*kw. WGRAD_CO x WGRAD_CI (two
// overrides) output x input channels of one tap per invocation: 4 x 4, 8 x 4 or 8 x 8 (64
// accumulators; each pixel's 8 + 8 loads then feed 64 FMAs instead of 4 + 4 feeding 16; on
// lavapipe a load whose address differs per invocation costs far more than an FMA). The sums per
// weight run in the same order in every blocking, and the slices come from the launcher, so all
// give identical bits.
override WGRAD_CO: u32 = 4u;
override WGRAD_CI: u32 = 4u;

@compute @workgroup_size(WG)
fn conv2d_weight_grad_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let splits = p.splits;
    let kk = p.kh * p.kw;
    let ncb = (p.cout + WGRAD_CO - 1u) / WGRAD_CO;
    let nib = (p.cin + WGRAD_CI - 1u) / WGRAD_CI;
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= splits * ncb * nib * kk) { return; }
    let tap = i % kk;
    let ky = tap / p.kw;
    let kx = tap % p.kw;
    let ci0 = ((i / kk) % nib) * WGRAD_CI;
    let co0 = ((i / (kk * nib)) % ncb) * WGRAD_CO;
    let sp = i / (kk * nib * ncb);
    let rows = p.n * p.ho;
    let per = (rows + splits - 1u) / splits;
    let r0 = sp * per;
    let r1 = min(r0 + per, rows);
    let cm = p.cout - 1u;
    let im = p.cin - 1u;
    let co = vec4<u32>(min(co0, cm), min(co0 + 1u, cm), min(co0 + 2u, cm), min(co0 + 3u, cm));
    let cq = vec4<u32>(min(co0 + 4u, cm), min(co0 + 5u, cm), min(co0 + 6u, cm), min(co0 + 7u, cm));
    let ci = vec4<u32>(min(ci0, im), min(ci0 + 1u, im), min(ci0 + 2u, im), min(ci0 + 3u, im));
    let cj = vec4<u32>(min(ci0 + 4u, im), min(ci0 + 5u, im), min(ci0 + 6u, im), min(ci0 + 7u, im));
    // a*: input channels ci0..ci0+3, b*: ci0+4..ci0+7 (WGRAD_CI == 8); index = output channel.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    let hw = p.h * p.w;
    let ohw = p.ho * p.wo;
    let cols = wgrad_cols(kx);
    let ox_lo = cols.x;
    let ox_hi = cols.y;
    for (var r = r0; r < r1; r++) {
        let row = wgrad_row(r, ky);
        if (row.x == 0u) { continue; }
        let xrow = row.y;
        let drow = row.z;
        for (var ox = ox_lo; ox < ox_hi; ox++) {
            let xo = xrow + ox * p.sw + kx - p.pw;
            let xv = vec4<f32>(lx(xo + ci.x * hw), lx(xo + ci.y * hw), lx(xo + ci.z * hw), lx(xo + ci.w * hw));
            let d = drow + ox;
            let d0 = ldy(d + co.x * ohw);
            let d1 = ldy(d + co.y * ohw);
            let d2 = ldy(d + co.z * ohw);
            let d3 = ldy(d + co.w * ohw);
            a0 = fma(xv, vec4<f32>(d0), a0);
            a1 = fma(xv, vec4<f32>(d1), a1);
            a2 = fma(xv, vec4<f32>(d2), a2);
            a3 = fma(xv, vec4<f32>(d3), a3);
            if (WGRAD_CI == 8u) {
                let xw = vec4<f32>(lx(xo + cj.x * hw), lx(xo + cj.y * hw), lx(xo + cj.z * hw), lx(xo + cj.w * hw));
                b0 = fma(xw, vec4<f32>(d0), b0);
                b1 = fma(xw, vec4<f32>(d1), b1);
                b2 = fma(xw, vec4<f32>(d2), b2);
                b3 = fma(xw, vec4<f32>(d3), b3);
                if (WGRAD_CO == 8u) {
                    let d4 = ldy(d + cq.x * ohw);
                    let d5 = ldy(d + cq.y * ohw);
                    let d6 = ldy(d + cq.z * ohw);
                    let d7 = ldy(d + cq.w * ohw);
                    a4 = fma(xv, vec4<f32>(d4), a4);
                    a5 = fma(xv, vec4<f32>(d5), a5);
                    a6 = fma(xv, vec4<f32>(d6), a6);
                    a7 = fma(xv, vec4<f32>(d7), a7);
                    b4 = fma(xw, vec4<f32>(d4), b4);
                    b5 = fma(xw, vec4<f32>(d5), b5);
                    b6 = fma(xw, vec4<f32>(d6), b6);
                    b7 = fma(xw, vec4<f32>(d7), b7);
                }
            } else if (WGRAD_CO == 8u) {
                a4 = fma(xv, vec4<f32>(ldy(d + cq.x * ohw)), a4);
                a5 = fma(xv, vec4<f32>(ldy(d + cq.y * ohw)), a5);
                a6 = fma(xv, vec4<f32>(ldy(d + cq.z * ohw)), a6);
                a7 = fma(xv, vec4<f32>(ldy(d + cq.w * ohw)), a7);
            }
        }
    }
    let at0 = sp * p.cout * p.cin * kk + tap;
    put_w4(at0, co0, ci0, a0);
    put_w4(at0, co0 + 1u, ci0, a1);
    put_w4(at0, co0 + 2u, ci0, a2);
    put_w4(at0, co0 + 3u, ci0, a3);
    if (WGRAD_CO == 8u) {
        put_w4(at0, co0 + 4u, ci0, a4);
        put_w4(at0, co0 + 5u, ci0, a5);
        put_w4(at0, co0 + 6u, ci0, a6);
        put_w4(at0, co0 + 7u, ci0, a7);
    }
    if (WGRAD_CI == 8u) {
        put_w4(at0, co0, ci0 + 4u, b0);
        put_w4(at0, co0 + 1u, ci0 + 4u, b1);
        put_w4(at0, co0 + 2u, ci0 + 4u, b2);
        put_w4(at0, co0 + 3u, ci0 + 4u, b3);
        if (WGRAD_CO == 8u) {
            put_w4(at0, co0 + 4u, ci0 + 4u, b4);
            put_w4(at0, co0 + 5u, ci0 + 4u, b5);
            put_w4(at0, co0 + 6u, ci0 + 4u, b6);
            put_w4(at0, co0 + 7u, ci0 + 4u, b7);
        }
    }
}

// dw (+)= sum over splits of the partials.
@compute @workgroup_size(WG)
fn conv2d_weight_grad_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wsz = p.cout * p.cin * p.kh * p.kw;
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= wsz) { return; }
    var s = 0.0;
    for (var k = 0u; k < p.splits; k++) { s += partials[k * wsz + i]; }
    if (p.accumulate != 0u) { s += dw[i]; }
    dw[i] = s;
}

// ---- uniform-buffer weights --------------------------------------------------------------------
// The blocked forward and input grad with one 8-channel block per dispatch (channels
// [c_base, c_base + 8)) whose weights come from the uniform binding `wu`, packed by
// conv2d_pack_weights as [K][8 channels] (two vec4 per step k of the channel loop, k = channel *
// kh*kw + tap over the summed channels). Every invocation of the dispatch reads the same weight at
// the same time: a CPU driver does a uniform-buffer load at a uniform offset once (lavapipe,
// Mesa 22.3, does a storage-buffer load per invocation even when its offset is uniform). The
// items and sums are the tiled kernels' (bit-identical results). K <= 2048 per dispatch: a longer
// loop runs as several dispatches over ranges of taps [tap_lo, tap_hi) (the kernels loop taps
// outside, channels inside, so tap ranges keep the tiled kernels' order of summation); a range
// that does not end the taps leaves its raw sums in `sums` (a scratch copy of the output),
// and one that does not start them begins from those sums.
// UBO_CH = 16 (an override): two blocks per dispatch, the second from `wv` (channels
// [c_base + 8, c_base + 16)), 16 channels x 4 pixels per invocation: each input load then feeds
// 64 FMAs instead of 32.
override UBO_CH: u32 = 8u;
// Invocations per workgroup of the `_ubo` kernels (an override): fewer where a dispatch has few
// items, so that it still spreads over several workgroups.
override UBO_WG: u32 = 256u;

// Packs the weights of taps [tap_lo, tap_hi) for the `_ubo` kernels into `packed`: block cb
// (8 channels) at cb * stride (`pack_stride` floats, a multiple of 64 so each block starts
// 256-byte aligned), element k * 8 + c, k = summed channel * nt + tap - tap_lo (nt taps). mode 0
// (forward): channel c0 + c is an output channel, the summed one an input channel; mode 1 (input
// grad): c0 + c is an input channel, the summed one an output channel. Channels past the end read 0.
@compute @workgroup_size(WG)
fn conv2d_pack_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let stride = p.pack_stride;
    let blocks = select((p.cin + 7u) / 8u, (p.cout + 7u) / 8u, p.mode == 0u);
    if (i >= blocks * stride) { return; }
    let kk = p.kh * p.kw;
    let nt = p.tap_hi - p.tap_lo;
    let r = i % stride;
    let k = r / 8u;
    let ch = (i / stride) * 8u + r % 8u;
    let sc = k / nt;
    let tap = p.tap_lo + k % nt;
    var v = 0.0;
    if (p.mode == 0u) {
        if (sc < p.cin && ch < p.cout) { v = lwt((ch * p.cin + sc) * kk + tap); }
    } else {
        if (sc < p.cout && ch < p.cin) { v = lwt((sc * p.cin + ch) * kk + tap); }
    }
    packed[i] = v;
}

// Raw sums of a tap range that does not end the taps, kept in `sums` (laid out as
// the dense output, [n, cout, ho, wo] or [n, cin, h, w]) for the next range to start from; reads
// and writes of channels or pixels past the end are clamped or skipped.
fn part_y(b: u32, co: u32, oy: u32, ox0: u32) -> vec4<f32> {
    let row = ((b * p.cout + min(co, p.cout - 1u)) * p.ho + oy) * p.wo;
    let m = p.wo - 1u;
    return vec4<f32>(sums[row + min(ox0, m)], sums[row + min(ox0 + 1u, m)], sums[row + min(ox0 + 2u, m)], sums[row + min(ox0 + 3u, m)]);
}

fn keep_y(acc: array<vec4<f32>, 8>, b: u32, co0: u32, oy: u32, ox0: u32) {
    for (var c = 0u; c < 8u; c++) {
        if (co0 + c >= p.cout) { break; }
        let row = ((b * p.cout + co0 + c) * p.ho + oy) * p.wo;
        for (var j = 0u; j < 4u; j++) {
            if (ox0 + j >= p.wo) { break; }
            sums[row + ox0 + j] = acc[c][j];
        }
    }
}

fn part_dx(b: u32, ci: u32, iy: u32, ix0: u32) -> vec4<f32> {
    let row = ((b * p.cin + min(ci, p.cin - 1u)) * p.h + iy) * p.w;
    let m = p.w - 1u;
    let s = p.sw;
    return vec4<f32>(sums[row + min(ix0, m)], sums[row + min(ix0 + s, m)], sums[row + min(ix0 + 2u * s, m)], sums[row + min(ix0 + 3u * s, m)]);
}

fn keep_dx(acc: array<vec4<f32>, 8>, b: u32, ci0: u32, iy: u32, ix0: u32) {
    for (var c = 0u; c < 8u; c++) {
        if (ci0 + c >= p.cin) { break; }
        let row = ((b * p.cin + ci0 + c) * p.h + iy) * p.w;
        for (var j = 0u; j < 4u; j++) {
            let ix = ix0 + j * p.sw;
            if (ix >= p.w) { break; }
            sums[row + ix] = acc[c][j];
        }
    }
}

@compute @workgroup_size(UBO_WG)
fn conv2d_forward_ubo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let nxb = (p.wo + 3u) / 4u;
    let per_plane = p.ho * nxb;
    let item = gid.x + gid.y * nwg.x * UBO_WG;
    if (item >= p.n * per_plane) { return; }
    let ox0 = (item % nxb) * 4u;
    let oy = (item % per_plane) / nxb;
    let b = item / per_plane;
    let co0 = p.c_base;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    let kk = p.kh * p.kw;
    let nt = p.tap_hi - p.tap_lo;
    if (p.tap_lo > 0u) {
        a0 = part_y(b, co0, oy, ox0); a1 = part_y(b, co0 + 1u, oy, ox0); a2 = part_y(b, co0 + 2u, oy, ox0); a3 = part_y(b, co0 + 3u, oy, ox0);
        a4 = part_y(b, co0 + 4u, oy, ox0); a5 = part_y(b, co0 + 5u, oy, ox0); a6 = part_y(b, co0 + 6u, oy, ox0); a7 = part_y(b, co0 + 7u, oy, ox0);
        if (UBO_CH == 16u) {
            b0 = part_y(b, co0 + 8u, oy, ox0); b1 = part_y(b, co0 + 9u, oy, ox0); b2 = part_y(b, co0 + 10u, oy, ox0); b3 = part_y(b, co0 + 11u, oy, ox0);
            b4 = part_y(b, co0 + 12u, oy, ox0); b5 = part_y(b, co0 + 13u, oy, ox0); b6 = part_y(b, co0 + 14u, oy, ox0); b7 = part_y(b, co0 + 15u, oy, ox0);
        }
    }
    let hw = p.h * p.w;
    let s = i32(p.sw);
    let wm = i32(p.w) - 1;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let row = xplane(b, 0u) * hw + u32(iy) * p.w;
        for (var kx = 0u; kx < p.kw; kx++) {
            let tap = ky * p.kw + kx;
            if (tap < p.tap_lo || tap >= p.tap_hi) { continue; }
            let ix = vec4<i32>(i32(ox0 * p.sw + kx) - i32(p.pw)) + vec4<i32>(0, s, 2 * s, 3 * s);
            let ok = (ix >= vec4<i32>(0)) & (ix <= vec4<i32>(wm));
            let o = vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(wm))) + vec4<u32>(row);
            var t = 2u * (tap - p.tap_lo);
            var off = 0u;
            for (var ci = 0u; ci < p.cin; ci++) {
                let xv = select(vec4<f32>(0.0), vec4<f32>(lx(o.x + off), lx(o.y + off), lx(o.z + off), lx(o.w + off)), ok);
                let w0 = wu[t];
                let w1 = wu[t + 1u];
                a0 = fma(xv, vec4<f32>(w0.x), a0);
                a1 = fma(xv, vec4<f32>(w0.y), a1);
                a2 = fma(xv, vec4<f32>(w0.z), a2);
                a3 = fma(xv, vec4<f32>(w0.w), a3);
                a4 = fma(xv, vec4<f32>(w1.x), a4);
                a5 = fma(xv, vec4<f32>(w1.y), a5);
                a6 = fma(xv, vec4<f32>(w1.z), a6);
                a7 = fma(xv, vec4<f32>(w1.w), a7);
                if (UBO_CH == 16u) {
                    let w2 = wv[t];
                    let w3 = wv[t + 1u];
                    b0 = fma(xv, vec4<f32>(w2.x), b0);
                    b1 = fma(xv, vec4<f32>(w2.y), b1);
                    b2 = fma(xv, vec4<f32>(w2.z), b2);
                    b3 = fma(xv, vec4<f32>(w2.w), b3);
                    b4 = fma(xv, vec4<f32>(w3.x), b4);
                    b5 = fma(xv, vec4<f32>(w3.y), b5);
                    b6 = fma(xv, vec4<f32>(w3.z), b6);
                    b7 = fma(xv, vec4<f32>(w3.w), b7);
                }
                t += 2u * nt;
                off += hw;
            }
        }
    }
    let acc = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    let acc2 = array<vec4<f32>, 8>(b0, b1, b2, b3, b4, b5, b6, b7);
    if (p.tap_hi < kk) {
        keep_y(acc, b, co0, oy, ox0);
        if (UBO_CH == 16u) { keep_y(acc2, b, co0 + 8u, oy, ox0); }
        return;
    }
    store_y(acc, b, co0, oy, ox0);
    if (UBO_CH == 16u) {
        store_y(acc2, b, co0 + 8u, oy, ox0);
    }
}

@compute @workgroup_size(UBO_WG)
fn conv2d_input_grad_ubo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let per_plane = dx_items_per_plane();
    let item = gid.x + gid.y * nwg.x * UBO_WG;
    if (item >= p.n * per_plane) { return; }
    let q = dx_item(item);
    if (q.y >= p.h) { return; }
    let b = q.x;
    let iy = q.y;
    let ix0 = q.z;
    let ci0 = p.c_base;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    let kk = p.kh * p.kw;
    let nt = p.tap_hi - p.tap_lo;
    if (p.tap_lo > 0u) {
        a0 = part_dx(b, ci0, iy, ix0); a1 = part_dx(b, ci0 + 1u, iy, ix0); a2 = part_dx(b, ci0 + 2u, iy, ix0); a3 = part_dx(b, ci0 + 3u, iy, ix0);
        a4 = part_dx(b, ci0 + 4u, iy, ix0); a5 = part_dx(b, ci0 + 5u, iy, ix0); a6 = part_dx(b, ci0 + 6u, iy, ix0); a7 = part_dx(b, ci0 + 7u, iy, ix0);
        if (UBO_CH == 16u) {
            b0 = part_dx(b, ci0 + 8u, iy, ix0); b1 = part_dx(b, ci0 + 9u, iy, ix0); b2 = part_dx(b, ci0 + 10u, iy, ix0); b3 = part_dx(b, ci0 + 11u, iy, ix0);
            b4 = part_dx(b, ci0 + 12u, iy, ix0); b5 = part_dx(b, ci0 + 13u, iy, ix0); b6 = part_dx(b, ci0 + 14u, iy, ix0); b7 = part_dx(b, ci0 + 15u, iy, ix0);
        }
    }
    let ohw = p.ho * p.wo;
    let wom = i32(p.wo) - 1;
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = i32(iy + p.ph) - i32(ky);
        if (ty < 0 || (u32(ty) % p.sh) != 0u) { continue; }
        let oy = u32(ty) / p.sh;
        if (oy >= p.ho) { continue; }
        let drow = b * p.cout * ohw + oy * p.wo;
        for (var kx = 0u; kx < p.kw; kx++) {
            let tap = ky * p.kw + kx;
            if (tap < p.tap_lo || tap >= p.tap_hi) { continue; }
            if (((ix0 + p.pw + p.sw * p.kw - kx) % p.sw) != 0u) { continue; }
            let m = vec4<i32>((i32(ix0 + p.pw) - i32(kx)) / i32(p.sw)) + vec4<i32>(0, 1, 2, 3);
            let ok = (m >= vec4<i32>(0)) & (m <= vec4<i32>(wom));
            let o = vec4<u32>(clamp(m, vec4<i32>(0), vec4<i32>(wom))) + vec4<u32>(drow);
            var t = 2u * (tap - p.tap_lo);
            var off = 0u;
            for (var co = 0u; co < p.cout; co++) {
                let dv = select(vec4<f32>(0.0), vec4<f32>(ldy(o.x + off), ldy(o.y + off), ldy(o.z + off), ldy(o.w + off)), ok);
                let w0 = wu[t];
                let w1 = wu[t + 1u];
                a0 = fma(dv, vec4<f32>(w0.x), a0);
                a1 = fma(dv, vec4<f32>(w0.y), a1);
                a2 = fma(dv, vec4<f32>(w0.z), a2);
                a3 = fma(dv, vec4<f32>(w0.w), a3);
                a4 = fma(dv, vec4<f32>(w1.x), a4);
                a5 = fma(dv, vec4<f32>(w1.y), a5);
                a6 = fma(dv, vec4<f32>(w1.z), a6);
                a7 = fma(dv, vec4<f32>(w1.w), a7);
                if (UBO_CH == 16u) {
                    let w2 = wv[t];
                    let w3 = wv[t + 1u];
                    b0 = fma(dv, vec4<f32>(w2.x), b0);
                    b1 = fma(dv, vec4<f32>(w2.y), b1);
                    b2 = fma(dv, vec4<f32>(w2.z), b2);
                    b3 = fma(dv, vec4<f32>(w2.w), b3);
                    b4 = fma(dv, vec4<f32>(w3.x), b4);
                    b5 = fma(dv, vec4<f32>(w3.y), b5);
                    b6 = fma(dv, vec4<f32>(w3.z), b6);
                    b7 = fma(dv, vec4<f32>(w3.w), b7);
                }
                t += 2u * nt;
                off += ohw;
            }
        }
    }
    let acc = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    let acc2 = array<vec4<f32>, 8>(b0, b1, b2, b3, b4, b5, b6, b7);
    if (p.tap_hi < kk) {
        keep_dx(acc, b, ci0, iy, ix0);
        if (UBO_CH == 16u) { keep_dx(acc2, b, ci0 + 8u, iy, ix0); }
        return;
    }
    store_dx(acc, b, ci0, iy, ix0);
    if (UBO_CH == 16u) {
        store_dx(acc2, b, ci0 + 8u, iy, ix0);
    }
}

// ---- weight gradient with uniform dy ---------------------------------------------------------
// The split-K weight gradient the other way round: the output gradient is the shared operand.
// conv2d_pack_dy copies dy into 16-channel blocks, [block][row r = (b, oy)][ox][16 channels]
// (rows padded to a multiple of 4 pixels, so every row starts 256-byte aligned); each dispatch of
// conv2d_weight_grad_ubo binds the rows [row_lo, row_hi) of one block as the uniform `wu` (at most
// 1024 pixels, 64 KiB) and gives each invocation 4 input channels of one tap (the tap is the
// workgroup's, so the loops are uniform): per pixel 4 input loads feed 64 FMAs whose 16 dy values
// every invocation reads at the same offset. The rows run through the `splits` row slices the
// other blockings use, in their order (rows, then columns, skipping the same terms): a range
// that starts inside a slice continues the partial a previous range left in `partials`, and each slice
// boundary stores one slice's partial and starts the next from zero. So the partials, and the
// reduce's sums, are bit-identical to the 4 x 4 blocking's.
@compute @workgroup_size(WG)
fn conv2d_pack_dy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let wop = (p.wo + 3u) / 4u * 4u;
    let rows = p.n * p.ho;
    let blocks = (p.cout + 15u) / 16u;
    if (i >= blocks * rows * wop * 16u) { return; }
    let c = i % 16u;
    let ox = (i / 16u) % wop;
    let r = (i / (16u * wop)) % rows;
    let co = (i / (16u * wop * rows)) * 16u + c;
    var v = 0.0;
    if (ox < p.wo && co < p.cout) { v = ldy(((r / p.ho * p.cout + co) * p.ho + r % p.ho) * p.wo + ox); }
    packed[i] = v;
}

// The partials of weights (co, ci .. ci + 3 clamped, tap) as a previous row range of the slice
// left them in `partials` (at0: the slice's and the tap's offset).
fn part_w(at0: u32, co: u32, ci: vec4<u32>) -> vec4<f32> {
    let kk = p.kh * p.kw;
    let c = at0 + min(co, p.cout - 1u) * p.cin * kk;
    return vec4<f32>(partials[c + ci.x * kk], partials[c + ci.y * kk], partials[c + ci.z * kk], partials[c + ci.w * kk]);
}

// Store the partials acc[c][j] of weights (co0 + c, ci0 + j, tap) at `at0`, channels past the
// ends skipped (constant indices, as store_y).
fn keep_w(at0: u32, co0: u32, ci0: u32, acc: array<vec4<f32>, 16>) {
    store_w8(at0, co0, ci0, array<vec4<f32>, 8>(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]));
    store_w8(at0, co0 + 8u, ci0, array<vec4<f32>, 8>(acc[8], acc[9], acc[10], acc[11], acc[12], acc[13], acc[14], acc[15]));
}

// a[c0 + c] += xv * d[c]: four output channels' dy at one pixel (c0 a constant at each call).
fn dy_fma(a: ptr<function, array<vec4<f32>, 16>>, c0: u32, xv: vec4<f32>, d: vec4<f32>) {
    (*a)[c0] = fma(xv, vec4<f32>(d.x), (*a)[c0]);
    (*a)[c0 + 1u] = fma(xv, vec4<f32>(d.y), (*a)[c0 + 1u]);
    (*a)[c0 + 2u] = fma(xv, vec4<f32>(d.z), (*a)[c0 + 2u]);
    (*a)[c0 + 3u] = fma(xv, vec4<f32>(d.w), (*a)[c0 + 3u]);
}

@compute @workgroup_size(UBO_WG)
fn conv2d_weight_grad_ubo(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let ci0 = (wid.x * UBO_WG + lid.x) * 4u;
    let tap = wid.y;
    let kk = p.kh * p.kw;
    let ky = tap / p.kw;
    let kx = tap % p.kw;
    let im = p.cin - 1u;
    let ci = vec4<u32>(min(ci0, im), min(ci0 + 1u, im), min(ci0 + 2u, im), min(ci0 + 3u, im));
    let co0 = p.c_base;
    let ra = p.row_lo;
    let rb = p.row_hi;
    let rows = p.n * p.ho;
    let per = (rows + p.splits - 1u) / p.splits;
    let wsz = p.cout * p.cin * kk;
    let wop = (p.wo + 3u) / 4u * 4u;
    let hw = p.h * p.w;
    // a[c]: output channel co0 + c, input channels ci0 .. ci0 + 3, of slice sp (constant
    // indices only, so a CPU driver keeps them in registers).
    var a = array<vec4<f32>, 16>();
    var sp = ra / per;
    if (ra % per != 0u) {
        for (var c = 0u; c < 16u; c++) { a[c] = part_w(sp * wsz + tap, co0 + c, ci); }
    }
    let cols = wgrad_cols(kx);
    let ox_lo = cols.x;
    let ox_hi = cols.y;
    for (var r = ra; r < rb; r++) {
        if (r != ra && r % per == 0u) {
            keep_w(sp * wsz + tap, co0, ci0, a);
            sp += 1u;
            a = array<vec4<f32>, 16>();
        }
        let row = wgrad_row(r, ky);
        if (row.x == 0u) { continue; }
        let xrow = row.y + kx - p.pw;
        var k = (r - ra) * wop * 4u + ox_lo * 4u;
        for (var ox = ox_lo; ox < ox_hi; ox++) {
            let xo = xrow + ox * p.sw;
            let xv = vec4<f32>(lx(xo + ci.x * hw), lx(xo + ci.y * hw), lx(xo + ci.z * hw), lx(xo + ci.w * hw));
            dy_fma(&a, 0u, xv, wu[k]);
            dy_fma(&a, 4u, xv, wu[k + 1u]);
            dy_fma(&a, 8u, xv, wu[k + 2u]);
            dy_fma(&a, 12u, xv, wu[k + 3u]);
            k += 4u;
        }
    }
    keep_w(sp * wsz + tap, co0, ci0, a);
    // The slices past the last row (when `splits` does not divide the rows evenly) hold no rows:
    // their partials are zero, as the other blockings write them.
    if (rb == rows) {
        for (var e = sp + 1u; e < p.splits; e++) {
            keep_w(e * wsz + tap, co0, ci0, array<vec4<f32>, 16>());
        }
    }
}

// ---- weights shared through workgroup memory ---------------------------------------------------
// The blocked forward and input grad with the channel-block items (the launcher sets
// CHANNEL_BLOCKS = 1: each workgroup on one 8-channel block, WG consecutive items), whose weights
// the workgroup stages in workgroup memory, one tap and up to WSH_CH summed channels at a time,
// for all its invocations to read there: each weight is loaded from the buffer once per
// workgroup instead of once per invocation (the GPU way of sharing a GEMM operand; on a CPU
// driver the uniform-buffer and subgroup kernels do it cheaper). Items and sums are the tiled
// kernels' (taps outside, summed channels inside; a row or tap an item does not meet is skipped,
// not masked): identical bits. Barriers need every invocation of the workgroup, so the tap and
// chunk loops are the same for all (no early return, no `continue` on an item's own values): an
// item past the end, or a tap its row does not meet, skips only its sums and its write.
// The two kernels' chunk loops stay two: one reads x, the other dy, and a shared helper that
// named both buffers would make each entry point bind both.
const WSH_CH: u32 = 256u;
// [summed channel of the chunk][2]: the block's channels 0-3, then 4-7.
var<workgroup> wsh: array<vec4<f32>, 512>;

// Stage tap t's weights of block channels cb0 .. cb0 + 7 (clamped to cmax; the sums of a clamped
// channel are never written) and summed channels s0 .. min(s0 + WSH_CH, smax + 1) - 1; the
// weight of block channel c and summed channel s is wt[c * bs + s * ss + t].
fn wsh_stage(lid: u32, t: u32, s0: u32, smax: u32, cb0: u32, cmax: u32, bs: u32, ss: u32) {
    workgroupBarrier();
    let n = 2u * min(WSH_CH, smax + 1u - s0);
    for (var e = lid; e < n; e += WG) {
        let c = cb0 + (e % 2u) * 4u;
        let at = (s0 + e / 2u) * ss + t;
        wsh[e] = vec4<f32>(lwt(min(c, cmax) * bs + at), lwt(min(c + 1u, cmax) * bs + at), lwt(min(c + 2u, cmax) * bs + at), lwt(min(c + 3u, cmax) * bs + at));
    }
    workgroupBarrier();
}

// The block's 8 channels at summed channel j of the staged chunk, times v (4 pixels).
fn wsh_fma(a: ptr<function, array<vec4<f32>, 8>>, v: vec4<f32>, j: u32) {
    let lo = wsh[2u * j];
    let hi = wsh[2u * j + 1u];
    (*a)[0] = fma(v, vec4<f32>(lo.x), (*a)[0]);
    (*a)[1] = fma(v, vec4<f32>(lo.y), (*a)[1]);
    (*a)[2] = fma(v, vec4<f32>(lo.z), (*a)[2]);
    (*a)[3] = fma(v, vec4<f32>(lo.w), (*a)[3]);
    (*a)[4] = fma(v, vec4<f32>(hi.x), (*a)[4]);
    (*a)[5] = fma(v, vec4<f32>(hi.y), (*a)[5]);
    (*a)[6] = fma(v, vec4<f32>(hi.z), (*a)[6]);
    (*a)[7] = fma(v, vec4<f32>(hi.w), (*a)[7]);
}

@compute @workgroup_size(WG)
fn conv2d_forward_wgm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let nxb = (p.wo + 3u) / 4u;
    let ncb = (p.cout + 7u) / 8u;
    let blk = block_of(wid, lid, nwg, p.ho * nxb, ncb);
    let ox0 = (blk.x % nxb) * 4u;
    let oy = blk.x / nxb;
    let co0 = blk.y * 8u;
    let b = blk.z;
    var a: array<vec4<f32>, 8>;
    let kk = p.kh * p.kw;
    let hw = p.h * p.w;
    let s = i32(p.sw);
    let wm = i32(p.w) - 1;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        let live = blk.w != 0u && iy >= 0 && iy < i32(p.h);
        let row = xplane(b, 0u) * hw + u32(max(iy, 0)) * p.w;
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = vec4<i32>(i32(ox0 * p.sw + kx) - i32(p.pw)) + vec4<i32>(0, s, 2 * s, 3 * s);
            let ok = (ix >= vec4<i32>(0)) & (ix <= vec4<i32>(wm));
            let o = vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(wm))) + vec4<u32>(row);
            let t = ky * p.kw + kx;
            for (var s0 = 0u; s0 < p.cin; s0 += WSH_CH) {
                wsh_stage(lid, t, s0, p.cin - 1u, co0, p.cout - 1u, p.cin * kk, kk);
                if (live) {
                    var off = s0 * hw;
                    let n = min(WSH_CH, p.cin - s0);
                    for (var j = 0u; j < n; j++) {
                        let xv = select(vec4<f32>(0.0), vec4<f32>(lx(o.x + off), lx(o.y + off), lx(o.z + off), lx(o.w + off)), ok);
                        wsh_fma(&a, xv, j);
                        off += hw;
                    }
                }
            }
        }
    }
    if (blk.w != 0u) { store_y(a, b, co0, oy, ox0); }
}

@compute @workgroup_size(WG)
fn conv2d_input_grad_wgm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let per_plane = dx_items_per_plane();
    let ncb = (p.cin + 7u) / 8u;
    let blk = block_of(wid, lid, nwg, per_plane, ncb);
    let q = dx_item(blk.z * per_plane + blk.x);
    let valid = blk.w != 0u && q.y < p.h;
    let b = q.x;
    let iy = q.y;
    let ix0 = q.z;
    let ci0 = blk.y * 8u;
    let kk = p.kh * p.kw;
    var a: array<vec4<f32>, 8>;
    let ohw = p.ho * p.wo;
    let wom = i32(p.wo) - 1;
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = i32(iy + p.ph) - i32(ky);
        let oy = u32(max(ty, 0)) / p.sh;
        let row_ok = valid && ty >= 0 && (u32(max(ty, 0)) % p.sh) == 0u && oy < p.ho;
        let drow = b * p.cout * ohw + oy * p.wo;
        for (var kx = 0u; kx < p.kw; kx++) {
            // As in conv2d_input_grad_tiled: the tap feeds the 4 pixels only in their phase.
            let live = row_ok && ((ix0 + p.pw + p.sw * p.kw - kx) % p.sw) == 0u;
            let m = vec4<i32>((i32(ix0 + p.pw) - i32(kx)) / i32(p.sw)) + vec4<i32>(0, 1, 2, 3);
            let ok = (m >= vec4<i32>(0)) & (m <= vec4<i32>(wom));
            let o = vec4<u32>(clamp(m, vec4<i32>(0), vec4<i32>(wom))) + vec4<u32>(drow);
            let t = ky * p.kw + kx;
            for (var s0 = 0u; s0 < p.cout; s0 += WSH_CH) {
                wsh_stage(lid, t, s0, p.cout - 1u, ci0, p.cin - 1u, kk, p.cin * kk);
                if (live) {
                    var off = s0 * ohw;
                    let n = min(WSH_CH, p.cout - s0);
                    for (var j = 0u; j < n; j++) {
                        let dv = select(vec4<f32>(0.0), vec4<f32>(ldy(o.x + off), ldy(o.y + off), ldy(o.z + off), ldy(o.w + off)), ok);
                        wsh_fma(&a, dv, j);
                        off += ohw;
                    }
                }
            }
        }
    }
    if (valid) { store_dx(a, b, ci0, iy, ix0); }
}
