//! Received bytes a stream reader has not decoded yet. The readers decode from one contiguous
//! slice; chunks that cannot complete the next message are queued and joined once enough bytes
//! are there, so a large object is copied once, not once per chunk.

use bytes::{Bytes, BytesMut};

/// Undecoded bytes: a contiguous head plus chunks queued behind it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    head: Bytes,
    queued: Vec<Bytes>,
    queued_len: usize,
    /// Bytes the head must hold before another decode attempt can succeed.
    need: usize,
}

impl Pending {
    /// Appends received bytes (zero-copy when nothing is pending).
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if self.head.is_empty() && self.queued.is_empty() {
            self.head = data;
            return;
        }
        self.queued_len += data.len();
        self.queued.push(data);
        if self.len() >= self.need {
            self.join();
        }
    }

    fn join(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let mut joined = BytesMut::with_capacity(self.len());
        joined.extend_from_slice(&self.head);
        for chunk in self.queued.drain(..) {
            joined.extend_from_slice(&chunk);
        }
        self.queued_len = 0;
        self.head = joined.freeze();
    }

    /// All bytes received and not consumed.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.queued_len
    }

    /// Whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The contiguous bytes to decode from, once a decode attempt can succeed.
    pub(crate) fn ready(&self) -> Option<&Bytes> {
        (!self.head.is_empty() && self.head.len() >= self.need).then_some(&self.head)
    }

    /// The contiguous head (for peeking at framing).
    pub(crate) fn head(&self) -> &Bytes {
        &self.head
    }

    /// Replaces the head with `rest`, what a decode left of it; returns the bytes consumed.
    pub(crate) fn consume(&mut self, rest: Bytes) -> usize {
        let used = self.head.len() - rest.len();
        self.head = rest;
        self.need = 0;
        // Chunks are queued only while fewer than `need` bytes are there, and a decode that
        // consumed something had them all; joining is then a no-op, kept as a safeguard.
        self.join();
        used
    }

    /// Drops the first `n` bytes of the head, which a decode used.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        bytes::Buf::advance(&mut self.head, n);
        self.need = 0;
        // As in `consume`: nothing is queued when a decode succeeded.
        if !self.queued.is_empty() {
            self.join();
        }
    }

    /// Waits for `total` bytes (counted from the start of the head) before the next attempt.
    pub(crate) fn wait_for(&mut self, total: usize) {
        self.need = total;
        if self.len() >= self.need {
            self.join();
        }
    }

    /// Takes every byte buffered, joined.
    pub(crate) fn take(&mut self) -> Bytes {
        self.join();
        self.need = 0;
        std::mem::take(&mut self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_joined_once_when_enough_arrived() {
        let mut p = Pending::default();
        let first = Bytes::from_static(b"ab");
        p.push(first.clone());
        // Nothing pending: the chunk itself is the head.
        assert_eq!(p.ready().unwrap().as_ptr(), first.as_ptr());
        p.wait_for(6);
        assert!(p.ready().is_none());
        p.push(Bytes::from_static(b"cd"));
        // Still short: queued, not joined.
        assert_eq!(p.head().len(), 2);
        assert_eq!(p.len(), 4);
        assert!(p.ready().is_none());
        p.push(Bytes::from_static(b"efg"));
        assert_eq!(&p.ready().unwrap()[..], b"abcdefg");
        let rest = p.head().slice(6..);
        assert_eq!(p.consume(rest), 6);
        assert_eq!(&p.ready().unwrap()[..], b"g");
        assert_eq!(&p.take()[..], b"g");
        assert!(p.is_empty());
    }

    #[test]
    fn take_joins_queued_chunks() {
        let mut p = Pending::default();
        p.push(Bytes::from_static(b"x"));
        p.wait_for(10);
        p.push(Bytes::from_static(b"yz"));
        assert_eq!(&p.take()[..], b"xyz");
        assert!(p.ready().is_none());
    }
}
