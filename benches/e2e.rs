//! End-to-end benchmark (in progress).
fn main() {}
