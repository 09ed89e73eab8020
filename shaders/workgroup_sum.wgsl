// workgroup_sum: tree sums over one workgroup of WG (= 256, defined by each family) invocations,
// shared by the kernels that reduce (the shader table puts this file before them). Each call
// starts with a barrier so consecutive calls never overwrite a sum another invocation is still
// reading. Call in uniform control flow only (it holds barriers).

var<workgroup> wg_red: array<f32, 256>;
var<workgroup> wg_red2: array<f32, 256>;

fn wg_sum(lid: u32, v: f32) -> f32 {
    workgroupBarrier();
    wg_red[lid] = v;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid < k) { wg_red[lid] += wg_red[lid + k]; }
        workgroupBarrier();
    }
    return wg_red[0];
}

fn wg_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
    workgroupBarrier();
    wg_red[lid] = v.x;
    wg_red2[lid] = v.y;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid < k) {
            wg_red[lid] += wg_red[lid + k];
            wg_red2[lid] += wg_red2[lid + k];
        }
        workgroupBarrier();
    }
    return vec2<f32>(wg_red[0], wg_red2[0]);
}
