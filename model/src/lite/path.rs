//! Broadcast path semantics as moq-dev applies them (DISAGREEMENTS L10). The wire carries the
//! bytes unchanged; these helpers are for a session that must agree with moq-dev peers on which
//! broadcast an ANNOUNCE suffix names.
//!
//! The texts: prefix matching is byte-wise and the full path is the prefix with the suffix
//! appended. moq-dev: paths are trimmed of leading and trailing `/` and repeated `/` collapse;
//! a prefix matches whole segments only (`demo` matches `demo/clock`, not `democlock`); the
//! suffix sent for `demo/clock` under `demo` is `clock`, and joining puts the `/` back.

use crate::blob::Blob;
use bytes::Bytes;

/// Trims leading and trailing `/` and collapses repeated `/`, as moq-dev does to every path it
/// decodes.
pub fn normalize_path(path: &[u8]) -> Blob {
    let mut out = Vec::with_capacity(path.len());
    for seg in path.split(|b| *b == b'/').filter(|s| !s.is_empty()) {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(seg);
    }
    if out.len() == path.len() {
        return Blob(Bytes::copy_from_slice(path));
    }
    Blob::from(out)
}

/// The full path of an announced `suffix` under `prefix`, as moq-dev joins them: with a `/`
/// between, or the other part alone when one is empty. Both are expected normalized.
pub fn join_path(prefix: &[u8], suffix: &[u8]) -> Blob {
    match (prefix.is_empty(), suffix.is_empty()) {
        (true, _) => Blob(Bytes::copy_from_slice(suffix)),
        (_, true) => Blob(Bytes::copy_from_slice(prefix)),
        _ => {
            let mut out = Vec::with_capacity(prefix.len() + 1 + suffix.len());
            out.extend_from_slice(prefix);
            out.push(b'/');
            out.extend_from_slice(suffix);
            Blob::from(out)
        }
    }
}

/// The suffix of `path` under `prefix` by moq-dev's whole-segment rule, `None` when `path` is
/// not under `prefix`. Both are expected normalized.
pub fn strip_path_prefix(path: &[u8], prefix: &[u8]) -> Option<Blob> {
    if prefix.is_empty() {
        return Some(Blob(Bytes::copy_from_slice(path)));
    }
    let rest = path.strip_prefix(prefix)?;
    match rest.split_first() {
        None => Some(Blob::EMPTY),
        Some((b'/', tail)) => Some(Blob(Bytes::copy_from_slice(tail))),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_moq_dev() {
        assert_eq!(&normalize_path(b"/demo//clock/")[..], b"demo/clock");
        assert_eq!(&normalize_path(b"demo")[..], b"demo");
        assert_eq!(&join_path(b"demo", b"clock")[..], b"demo/clock");
        assert_eq!(&join_path(b"", b"clock")[..], b"clock");
        assert_eq!(&join_path(b"demo", b"")[..], b"demo");
        assert_eq!(
            strip_path_prefix(b"demo/clock", b"demo").as_deref(),
            Some(&b"clock"[..])
        );
        assert_eq!(strip_path_prefix(b"democlock", b"demo"), None);
        assert_eq!(
            strip_path_prefix(b"demo", b"demo").as_deref(),
            Some(&b""[..])
        );
        assert_eq!(
            strip_path_prefix(b"clock", b"").as_deref(),
            Some(&b"clock"[..])
        );
    }
}
