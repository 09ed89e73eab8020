// conv2d_subgroup: the register-blocked forward and input grad of conv2d.wgsl (8 or 16 channels x
// 4 pixels per invocation, each workgroup on one channel block as with CHANNEL_BLOCKS = 1) with
// the weights shared through the subgroup: lane l loads the weight of channel c0 + l % 8 and
// subgroupBroadcast hands it to every lane, so one load per channel step replaces eight. On a
// CPU driver a load costs far more than an FMA (lavapipe: the tiled forward at 64->64@16 ran 3x
// faster with one weight load per step instead of eight); on a GPU the broadcast is a register
// shuffle. Needs subgroups of at least 8 lanes (the launcher checks the adapter's minimum) and
// every lane active at each broadcast: no early return (out-of-range items compute on clamped
// indices and skip the write), out-of-range taps are masked, and a tap is skipped only when no
// lane of the subgroup needs it (subgroupAny). The sums run in the tiled kernels' order (taps
// outside, channels inside), so the results are bit-identical to theirs.

// Every kernel here runs SG_WG invocations per workgroup (an override the launcher sizes to the
// work: a 4x4 layer at batch 16 has 64 items, and a workgroup of 256 would spend three quarters
// of its lanes on clamped copies, which cannot return early because of the broadcasts).
override SG_WG: u32 = 256u;

// Channels per invocation of the forward and input grad (8 or 16: two 8-lane broadcasts per
// channel step, so each input load feeds 64 FMAs instead of 32).
override SG_CH: u32 = 8u;

// WGSL's uniformity analysis is per workgroup, so it cannot see that a branch on subgroupAny is
// the same for every lane of a subgroup: Tint refuses the broadcasts below as outside "subgroup
// uniform control flow" (naga does not check). Every branch these kernels take around a
// broadcast is on subgroupAny, a uniform override or a uniform loop bound (see above), so the
// analysis is turned off here, where the broadcasts are.
// The 8 weights of a channel step: lane l's load `wl` for channel c0 + l % 8, broadcast.
@diagnostic(off, subgroup_uniformity)
fn sg_fma(a: ptr<function, array<vec4<f32>, 8>>, v: vec4<f32>, wl: f32) {
    (*a)[0] = fma(v, vec4<f32>(subgroupBroadcast(wl, 0u)), (*a)[0]);
    (*a)[1] = fma(v, vec4<f32>(subgroupBroadcast(wl, 1u)), (*a)[1]);
    (*a)[2] = fma(v, vec4<f32>(subgroupBroadcast(wl, 2u)), (*a)[2]);
    (*a)[3] = fma(v, vec4<f32>(subgroupBroadcast(wl, 3u)), (*a)[3]);
    (*a)[4] = fma(v, vec4<f32>(subgroupBroadcast(wl, 4u)), (*a)[4]);
    (*a)[5] = fma(v, vec4<f32>(subgroupBroadcast(wl, 5u)), (*a)[5]);
    (*a)[6] = fma(v, vec4<f32>(subgroupBroadcast(wl, 6u)), (*a)[6]);
    (*a)[7] = fma(v, vec4<f32>(subgroupBroadcast(wl, 7u)), (*a)[7]);
}

// Its subgroupAny in the tap loop follows the previous tap's `continue` (as in the input grad).
@compute @workgroup_size(SG_WG)
@diagnostic(off, subgroup_uniformity)
fn conv2d_forward_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
    let nxb = (p.wo + 3u) / 4u;
    let ncb = (p.cout + SG_CH - 1u) / SG_CH;
    let per_plane = p.ho * nxb;
    let wg = wid.x + wid.y * nwg.x;
    let item = (wg / ncb) * SG_WG + lid;
    let it = min(item, p.n * per_plane - 1u);
    let ox0 = (it % nxb) * 4u;
    let oy = (it % per_plane) / nxb;
    let b = it / per_plane;
    let co0 = (wg % ncb) * SG_CH;
    let kk = p.kh * p.kw;
    let hw = p.h * p.w;
    let wm = i32(p.w) - 1;
    let s = i32(p.sw);
    // This lane's weight row: channel co0 + sl % 8 (clamped; the broadcast of a clamped row only
    // reaches accumulators that are never written).
    let wrow = min(co0 + sl % 8u, p.cout - 1u) * p.cin * kk;
    let wrow2 = min(co0 + 8u + sl % 8u, p.cout - 1u) * p.cin * kk;
    var a: array<vec4<f32>, 8>;
    var a2: array<vec4<f32>, 8>;
    for (var c = 0u; c < 8u; c++) { a[c] = vec4<f32>(0.0); a2[c] = vec4<f32>(0.0); }
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        let oky = iy >= 0 && iy < i32(p.h);
        if (!subgroupAny(oky)) { continue; }
        let row = xplane(b, 0u) * hw + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w;
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = vec4<i32>(i32(ox0 * p.sw + kx) - i32(p.pw)) + vec4<i32>(0, s, 2 * s, 3 * s);
            let ok = (ix >= vec4<i32>(0)) & (ix <= vec4<i32>(wm)) & vec4<bool>(oky);
            let o = vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(wm))) + vec4<u32>(row);
            var t = wrow + ky * p.kw + kx;
            var t2 = wrow2 + ky * p.kw + kx;
            var off = 0u;
            for (var ci = 0u; ci < p.cin; ci++) {
                let xv = select(vec4<f32>(0.0), vec4<f32>(lx(o.x + off), lx(o.y + off), lx(o.z + off), lx(o.w + off)), ok);
                sg_fma(&a, xv, lwt(t));
                if (SG_CH == 16u) { sg_fma(&a2, xv, lwt(t2)); }
                t += kk;
                t2 += kk;
                off += hw;
            }
        }
    }
    if (item >= p.n * per_plane) { return; }
    store_y(a, b, co0, oy, ox0);
    if (SG_CH == 16u) { store_y(a2, b, co0 + 8u, oy, ox0); }
}

// Items numbered phase by phase (dx_item), so the lanes of a subgroup share both stride phases
// and skip the same taps. Its subgroupAny calls follow `continue`s on subgroupAny: subgroup
// uniform, which WGSL's analysis cannot see (as for sg_fma).
@compute @workgroup_size(SG_WG)
@diagnostic(off, subgroup_uniformity)
fn conv2d_input_grad_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
    let per_plane = dx_items_per_plane();
    let ncb = (p.cin + SG_CH - 1u) / SG_CH;
    let wg = wid.x + wid.y * nwg.x;
    let item = (wg / ncb) * SG_WG + lid;
    let q = dx_item(min(item, p.n * per_plane - 1u));
    let b = q.x;
    let iy = q.y;
    let ix0 = q.z;
    let ci0 = (wg % ncb) * SG_CH;
    let kk = p.kh * p.kw;
    let ohw = p.ho * p.wo;
    let wom = i32(p.wo) - 1;
    let wco = p.cin * kk;
    let wrow = min(ci0 + sl % 8u, p.cin - 1u) * kk;
    let wrow2 = min(ci0 + 8u + sl % 8u, p.cin - 1u) * kk;
    var a: array<vec4<f32>, 8>;
    var a2: array<vec4<f32>, 8>;
    for (var c = 0u; c < 8u; c++) { a[c] = vec4<f32>(0.0); a2[c] = vec4<f32>(0.0); }
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = i32(iy + p.ph) - i32(ky);
        let oy = u32(max(ty, 0)) / p.sh;
        let oky = ty >= 0 && (u32(ty) % p.sh) == 0u && oy < p.ho && iy < p.h;
        if (!subgroupAny(oky)) { continue; }
        let drow = b * p.cout * ohw + min(oy, p.ho - 1u) * p.wo;
        for (var kx = 0u; kx < p.kw; kx++) {
            // tx = ix0 + pw - kx must be a multiple of sw (shifted positive for the modulo).
            let okx = oky && ((ix0 + p.pw + p.sw * p.kw - kx) % p.sw) == 0u;
            if (!subgroupAny(okx)) { continue; }
            let m = vec4<i32>((i32(ix0 + p.pw) - i32(kx)) / i32(p.sw)) + vec4<i32>(0, 1, 2, 3);
            let ok = (m >= vec4<i32>(0)) & (m <= vec4<i32>(wom)) & vec4<bool>(okx);
            let o = vec4<u32>(clamp(m, vec4<i32>(0), vec4<i32>(wom))) + vec4<u32>(drow);
            var t = wrow + ky * p.kw + kx;
            var t2 = wrow2 + ky * p.kw + kx;
            var off = 0u;
            for (var co = 0u; co < p.cout; co++) {
                let dv = select(vec4<f32>(0.0), vec4<f32>(ldy(o.x + off), ldy(o.y + off), ldy(o.z + off), ldy(o.w + off)), ok);
                sg_fma(&a, dv, lwt(t));
                if (SG_CH == 16u) { sg_fma(&a2, dv, lwt(t2)); }
                t += wco;
                t2 += wco;
                off += ohw;
            }
        }
    }
    if (item >= p.n * per_plane || iy >= p.h) { return; }
    store_dx(a, b, ci0, iy, ix0);
    if (SG_CH == 16u) { store_dx(a2, b, ci0 + 8u, iy, ix0); }
}

// The split-K weight gradient with dy shared through the subgroup: a workgroup holds one
// (8-output-channel block, tap, slice of rows) and its invocations 8 input channels each (SG_WG
// of them, sized to the layer's input channels), so the row and column loops are
// the same for every lane. Per pixel, lane l loads dy of output channel co0 + l % 8 and
// subgroupBroadcast hands the 8 to every lane: 8 input loads and 1 dy load feed 64 FMAs
// (conv2d_weight_grad_tiled's 8 x 8 blocking loads 8 + 8); with SGW_CI = 4, 4 input channels
// per invocation (4 + 1 loads for 32 FMAs), so a 32-channel layer still fills 8 lanes. Lanes
// past the input channels compute on clamped channels and skip the write. Sums per weight run in
// the tiled kernels' order (rows, then columns of the slice): identical bits.
override SGW_CI: u32 = 8u;

@compute @workgroup_size(SG_WG)
fn conv2d_weight_grad_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let kk = p.kh * p.kw;
    let ncb = (p.cout + 7u) / 8u;
    let ci0 = (wid.x * SG_WG + lid) * SGW_CI;
    let tap = wid.y;
    let co0 = (wid.z % ncb) * 8u;
    let sp = wid.z / ncb;
    let ky = tap / p.kw;
    let kx = tap % p.kw;
    let rows = p.n * p.ho;
    let per = (rows + p.splits - 1u) / p.splits;
    let r0 = sp * per;
    let r1 = min(r0 + per, rows);
    let im = p.cin - 1u;
    let ci = vec4<u32>(min(ci0, im), min(ci0 + 1u, im), min(ci0 + 2u, im), min(ci0 + 3u, im));
    let cj = vec4<u32>(min(ci0 + 4u, im), min(ci0 + 5u, im), min(ci0 + 6u, im), min(ci0 + 7u, im));
    // This lane's dy channel (clamped: a clamped channel's broadcast only reaches accumulators
    // that are never written).
    let cl = min(co0 + sl % 8u, p.cout - 1u);
    // a[c]: output channel co0 + c, input channels ci0 .. ci0 + 3; b[c]: ci0 + 4 .. ci0 + 7.
    var a: array<vec4<f32>, 8>;
    var b: array<vec4<f32>, 8>;
    for (var c = 0u; c < 8u; c++) { a[c] = vec4<f32>(0.0); b[c] = vec4<f32>(0.0); }
    let hw = p.h * p.w;
    let ohw = p.ho * p.wo;
    let cols = wgrad_cols(kx);
    let ox_lo = cols.x;
    let ox_hi = cols.y;
    for (var r = r0; r < r1; r++) {
        let row = wgrad_row(r, ky);
        if (row.x == 0u) { continue; }
        let xrow = row.y;
        let drow = row.z + cl * ohw;
        for (var ox = ox_lo; ox < ox_hi; ox++) {
            let xo = xrow + ox * p.sw + kx - p.pw;
            let xv = vec4<f32>(lx(xo + ci.x * hw), lx(xo + ci.y * hw), lx(xo + ci.z * hw), lx(xo + ci.w * hw));
            let dl = ldy(drow + ox);
            sg_fma(&a, xv, dl);
            if (SGW_CI == 8u) {
                let xw = vec4<f32>(lx(xo + cj.x * hw), lx(xo + cj.y * hw), lx(xo + cj.z * hw), lx(xo + cj.w * hw));
                sg_fma(&b, xw, dl);
            }
        }
    }
    let at0 = sp * p.cout * p.cin * kk + tap;
    store_w8(at0, co0, ci0, a);
    if (SGW_CI == 8u) { store_w8(at0, co0, ci0 + 4u, b); }
}
