// workgroup_sum: sums over one workgroup of WG invocations (each family defines WG, a multiple
// of 16 and at most 256), shared by the kernels that reduce (the shader table puts this file
// before them). Two levels: invocations 0..WG/16 each add one run of 16 slots, then every
// invocation adds the WG/16 partials. Three barriers instead of a binary tree's log2(WG) + 2;
// barriers are what a CPU driver such as lavapipe pays most for, and the serial runs are short
// on a GPU too. Each call starts with a barrier so consecutive calls never overwrite a sum
// another invocation is still reading. Call in uniform control flow only (it holds barriers).

var<workgroup> wg_red: array<f32, WG>;
var<workgroup> wg_red2: array<f32, WG>;

fn wg_sum(lid: u32, v: f32) -> f32 {
    workgroupBarrier();
    wg_red[lid] = v;
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

fn wg_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
    workgroupBarrier();
    wg_red[lid] = v.x;
    wg_red2[lid] = v.y;
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
