// workgroup_sum: sums of WG partial sums in one workgroup (each family defines WG, a multiple
// of 16 and at most 256: its workgroup size, or for group norm its fixed number of slots that
// fewer invocations fill), shared by the kernels that reduce (the shader table puts this file
// before them). Two levels: invocations 0..WG/16 each add one run of 16 slots, then every
// invocation adds the WG/16 partials. Three barriers instead of a binary tree's log2(WG) + 2;
// barriers are what a CPU driver such as lavapipe pays most for, and the serial runs are short
// on a GPU too. wg_sum starts with a barrier so consecutive calls never overwrite a sum another
// invocation is still reading. Call in uniform control flow only (they hold barriers).

var<workgroup> wg_red: array<f32, WG>;
var<workgroup> wg_red2: array<f32, WG>;

// The total of wg_red's WG slots, already written (a barrier after the last read of an earlier
// total, then each slot by its invocation). Needs at least WG / 16 invocations.
fn wg_total(lid: u32) -> f32 {
    workgroupBarrier();
    if (lid < WG / 16u) {
        var t = 0.0;
        for (var k = 0u; k < 16u; k++) { t += wg_red[lid * 16u + k]; }
        wg_red[lid * 16u] = t;
    }
    workgroupBarrier();
    var s = 0.0;
    for (var k = 0u; k < WG / 16u; k++) { s += wg_red[k * 16u]; }
    return s;
}

// wg_total over the pairs (wg_red, wg_red2).
fn wg_total2(lid: u32) -> vec2<f32> {
    workgroupBarrier();
    if (lid < WG / 16u) {
        var t = vec2<f32>(0.0);
        for (var k = 0u; k < 16u; k++) { t += vec2<f32>(wg_red[lid * 16u + k], wg_red2[lid * 16u + k]); }
        wg_red[lid * 16u] = t.x;
        wg_red2[lid * 16u] = t.y;
    }
    workgroupBarrier();
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < WG / 16u; k++) { s += vec2<f32>(wg_red[k * 16u], wg_red2[k * 16u]); }
    return s;
}

fn wg_sum(lid: u32, v: f32) -> f32 {
    workgroupBarrier();
    wg_red[lid] = v;
    return wg_total(lid);
}

fn wg_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
    workgroupBarrier();
    wg_red[lid] = v.x;
    wg_red2[lid] = v.y;
    return wg_total2(lid);
}
