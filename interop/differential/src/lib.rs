//! Differential test crate.
