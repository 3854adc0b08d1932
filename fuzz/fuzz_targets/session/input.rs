//! Reading a fuzz input as a stream of choices: every read succeeds, and an exhausted input
//! reads as zeros, so any byte string is a script.

/// The unread part of a fuzz input.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 at the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n
        }
    }

    /// True with probability about `percent`/100.
    pub fn chance(&mut self, percent: u8) -> bool {
        (u16::from(self.byte()) * 100 / 256) < u16::from(percent)
    }

    /// A number that is small most of the time, sometimes anything up to 2^62-1 or beyond.
    pub fn number(&mut self) -> u64 {
        match self.byte() {
            0..=199 => u64::from(self.byte() % 8),
            200..=239 => u64::from(self.byte()),
            240..=249 => u64::from(u16::from_be_bytes([self.byte(), self.byte()])),
            250..=253 => (1 << 62) - 1 - u64::from(self.byte() % 4),
            _ => u64::from_be_bytes(std::array::from_fn(|_| self.byte())),
        }
    }

    /// Up to `max` bytes of the input, length first.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }
}
