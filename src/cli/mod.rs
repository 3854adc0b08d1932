//! Subcommands of the `moqlink` binary.

pub mod decode;
