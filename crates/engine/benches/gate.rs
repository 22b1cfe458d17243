// Placeholder so the workspace loads; replaced by the real gate bench.
fn main() {}
