//! The `moqlink` command line.

fn main() {}
