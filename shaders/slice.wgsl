// Channel slices, for the in-place skip-concat: a tensor of `c` channels stored as channels
// [off, off + c) of a buffer with `total` channels per image (a UNet's concatenated tensor).
// In NCHW with a batch above 1 such a slice is strided, not an offset view. (c, off, total) =
// (1, 0, 1) is the plain contiguous layout, and every launcher that has no slice passes it.

struct Slice {
    c: u32, off: u32, total: u32, _pad: u32,
}

// The buffer plane (image * total + channel) of logical plane `pl` (image * c + channel).
fn slice_plane(s: Slice, pl: u32) -> u32 {
    return (pl / s.c) * s.total + s.off + pl % s.c;
}

// The buffer index of logical element `i` of a tensor with planes of `hw` elements.
fn slice_at(s: Slice, i: u32, hw: u32) -> u32 {
    return slice_plane(s, i / hw) * hw + i % hw;
}
