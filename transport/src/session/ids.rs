//! Request ID rules (§9.1, §9.5, §9.6) as plain state machines: the IDs this endpoint issues,
//! bounded by the peer's MAX_REQUEST_ID, and the IDs the peer issues, bounded by the credit this
//! endpoint grants and re-grants as requests finish.

use moqlink_model::SessionErrorCode;

/// Which side of the session this endpoint is: clients use even IDs from 0, servers odd from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opened the connection.
    Client,
    /// Accepted the connection.
    Server,
}

impl Role {
    /// The first Request ID this role issues.
    pub fn first_request_id(self) -> u64 {
        match self {
            Role::Client => 0,
            Role::Server => 1,
        }
    }

    /// The other side.
    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// A session-closing violation: the code and a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The code to close with.
    pub code: SessionErrorCode,
    /// The reason phrase.
    pub reason: String,
}

impl Violation {
    /// A violation with `code` and `reason`.
    pub fn new(code: SessionErrorCode, reason: impl Into<String>) -> Self {
        Violation {
            code,
            reason: reason.into(),
        }
    }
}

/// The Request IDs this endpoint issues.
#[derive(Debug, Clone)]
pub struct LocalIds {
    next: u64,
    /// The peer's MAX_REQUEST_ID: IDs below it may be used.
    peer_max: u64,
    /// The limit for which REQUESTS_BLOCKED was already sent.
    blocked_sent_for: Option<u64>,
}

/// What to do before issuing the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// Use this ID.
    Ready(u64),
    /// Blocked: send REQUESTS_BLOCKED with this limit first (once per limit), then wait.
    BlockedSend(u64),
    /// Blocked and REQUESTS_BLOCKED already sent: wait for MAX_REQUEST_ID.
    Blocked,
}

impl LocalIds {
    /// IDs for `role`, with the peer's initial MAX_REQUEST_ID (0 when absent, §9.3.2.3).
    pub fn new(role: Role, peer_max: u64) -> Self {
        LocalIds {
            next: role.first_request_id(),
            peer_max,
            blocked_sent_for: None,
        }
    }

    /// The peer's current limit.
    pub fn peer_max(&self) -> u64 {
        self.peer_max
    }

    /// Takes the next ID if the peer's limit allows it.
    pub fn issue(&mut self) -> Issue {
        if self.next < self.peer_max {
            let id = self.next;
            self.next += 2;
            Issue::Ready(id)
        } else if self.blocked_sent_for != Some(self.peer_max) {
            self.blocked_sent_for = Some(self.peer_max);
            Issue::BlockedSend(self.peer_max)
        } else {
            Issue::Blocked
        }
    }

    /// Returns `id`, the last ID issued, unused (its message was never sent).
    pub fn give_back(&mut self, id: u64) {
        if id + 2 == self.next {
            self.next = id;
        }
    }

    /// Applies a received MAX_REQUEST_ID; a value that does not increase is a PROTOCOL_VIOLATION
    /// (§9.5).
    pub fn on_max_request_id(&mut self, max: u64) -> Result<(), Violation> {
        if max <= self.peer_max {
            return Err(Violation::new(
                SessionErrorCode::ProtocolViolation,
                format!(
                    "MAX_REQUEST_ID {max} does not increase the limit {}",
                    self.peer_max
                ),
            ));
        }
        self.peer_max = max;
        Ok(())
    }

    /// Whether `id` is one this endpoint has issued.
    pub fn issued(&self, role: Role, id: u64) -> bool {
        id % 2 == role.first_request_id() && id < self.next
    }
}

/// The Request IDs the peer issues and the credit granted to it.
#[derive(Debug, Clone)]
pub struct PeerIds {
    role: Role,
    expected: u64,
    /// Our advertised limit: the peer may use IDs below it.
    granted: u64,
    /// Concurrent requests allowed.
    window: u64,
    /// Peer requests still open.
    open: u64,
    /// Subtracted from every limit advertised ([`PeerIds::advertise_one_lower`]).
    lower: u64,
}

impl PeerIds {
    /// Tracks IDs of `peer_role`, granting `window` concurrent requests; returns the initial
    /// MAX_REQUEST_ID to advertise in SETUP.
    pub fn new(peer_role: Role, window: u64) -> Self {
        let first = peer_role.first_request_id();
        PeerIds {
            role: peer_role,
            expected: first,
            granted: first + 2 * window,
            window,
            open: 0,
            lower: 0,
        }
    }

    /// Advertises every limit one lower: the same Request IDs stay allowed (they have the other
    /// parity), but the peer sees a MAX_REQUEST_ID of its own IDs' parity plus one (odd for a
    /// client). For testing how a peer reads such a limit.
    pub fn advertise_one_lower(mut self) -> Self {
        if self.lower == 0 && self.granted > 0 {
            self.lower = 1;
            self.granted -= 1;
        }
        self
    }

    /// The limit advertised so far.
    pub fn granted(&self) -> u64 {
        self.granted
    }

    /// Checks a new request's ID (§9.1, §9.5): wrong parity or out of sequence is
    /// INVALID_REQUEST_ID, at or above the limit is TOO_MANY_REQUESTS.
    pub fn on_request(&mut self, id: u64) -> Result<(), Violation> {
        if id % 2 != self.role.first_request_id() {
            return Err(Violation::new(
                SessionErrorCode::InvalidRequestId,
                format!("request ID {id} has the wrong parity for the peer"),
            ));
        }
        if id >= self.granted {
            return Err(Violation::new(
                SessionErrorCode::TooManyRequests,
                format!(
                    "request ID {id} is not below MAX_REQUEST_ID {}",
                    self.granted
                ),
            ));
        }
        if id != self.expected {
            return Err(Violation::new(
                SessionErrorCode::InvalidRequestId,
                format!("request ID {id}, expected {}", self.expected),
            ));
        }
        self.expected += 2;
        self.open += 1;
        Ok(())
    }

    /// Whether `id` is a request the peer has made.
    pub fn issued(&self, id: u64) -> bool {
        id % 2 == self.role.first_request_id() && id < self.expected
    }

    /// A peer request finished; returns a new MAX_REQUEST_ID to send once at least half the
    /// window can be granted again.
    pub fn on_finished(&mut self) -> Option<u64> {
        self.open = self.open.saturating_sub(1);
        let target = (self.expected + 2 * self.window.saturating_sub(self.open)) - self.lower;
        if target >= self.granted + self.window.max(2) {
            self.granted = target;
            Some(target)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_even_from_zero_and_wait_for_credit() {
        // §9.3.2.3: without MAX_REQUEST_ID the peer may not send requests at all.
        let mut ids = LocalIds::new(Role::Client, 0);
        assert_eq!(ids.issue(), Issue::BlockedSend(0));
        assert_eq!(ids.issue(), Issue::Blocked);
        ids.on_max_request_id(4).unwrap();
        assert_eq!(ids.issue(), Issue::Ready(0));
        assert_eq!(ids.issue(), Issue::Ready(2));
        // §9.6: one REQUESTS_BLOCKED per limit.
        assert_eq!(ids.issue(), Issue::BlockedSend(4));
        assert_eq!(ids.issue(), Issue::Blocked);
        // §9.5: equal or smaller is a protocol violation.
        assert_eq!(
            ids.on_max_request_id(4).unwrap_err().code,
            SessionErrorCode::ProtocolViolation
        );
        assert!(ids.issued(Role::Client, 2) && !ids.issued(Role::Client, 4));
    }

    #[test]
    fn server_ids_are_odd_from_one() {
        let mut ids = LocalIds::new(Role::Server, 10);
        assert_eq!(ids.issue(), Issue::Ready(1));
        assert_eq!(ids.issue(), Issue::Ready(3));
    }

    #[test]
    fn peer_ids_must_be_the_next_expected_and_within_credit() {
        let mut peer = PeerIds::new(Role::Client, 2);
        assert_eq!(peer.granted(), 4);
        peer.on_request(0).unwrap();
        // Parity: odd IDs belong to servers.
        assert_eq!(
            peer.on_request(1).unwrap_err().code,
            SessionErrorCode::InvalidRequestId
        );
        // Skipping an ID.
        assert_eq!(
            peer.on_request(4).unwrap_err().code,
            SessionErrorCode::TooManyRequests
        );
        let mut p2 = PeerIds::new(Role::Client, 10);
        p2.on_request(0).unwrap();
        assert_eq!(
            p2.on_request(4).unwrap_err().code,
            SessionErrorCode::InvalidRequestId
        );
        // Reusing an ID.
        assert_eq!(
            p2.on_request(0).unwrap_err().code,
            SessionErrorCode::InvalidRequestId
        );
        peer.on_request(2).unwrap();
        assert_eq!(
            peer.on_request(4).unwrap_err().code,
            SessionErrorCode::TooManyRequests
        );
    }

    #[test]
    fn a_limit_one_lower_allows_the_same_ids() {
        let mut peer = PeerIds::new(Role::Client, 2).advertise_one_lower();
        assert_eq!(peer.granted(), 3);
        peer.on_request(0).unwrap();
        peer.on_request(2).unwrap();
        assert_eq!(
            peer.on_request(4).unwrap_err().code,
            SessionErrorCode::TooManyRequests
        );
        assert_eq!(peer.on_finished(), Some(5));
        peer.on_request(4).unwrap();
    }

    #[test]
    fn credit_is_granted_again_as_requests_finish() {
        let mut peer = PeerIds::new(Role::Server, 2);
        assert_eq!(peer.granted(), 5);
        peer.on_request(1).unwrap();
        peer.on_request(3).unwrap();
        // Window 2: each finished request frees 2 IDs, half the window's worth.
        assert_eq!(peer.on_finished(), Some(7));
        assert_eq!(peer.on_finished(), Some(9));
        peer.on_request(5).unwrap();
        peer.on_request(7).unwrap();
        assert_eq!(
            peer.on_request(9).unwrap_err().code,
            SessionErrorCode::TooManyRequests
        );
    }
}
