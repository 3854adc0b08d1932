//! Incremental readers: bytes in as they arrive, whole messages out. Payloads stay zero-copy
//! slices of the pushed chunks.

use super::group::{Frame, Group};
use super::session::SetupReply;
use super::stream::{expected_message, BiStreamType, Direction, MessageKind, UniStreamType};
use super::LiteMessage;
use crate::codec::Decode;
use crate::error::{DecodeError, Rule};
use crate::limits::DEFAULT_MAX_OBJECT_SIZE;
use crate::pending::Pending;
use crate::varint;
use crate::version::Version;
use bytes::Bytes;

/// Bytes needed for the whole message of `kind` at the start of `b`, once its framing is
/// readable; `None` while the length itself is incomplete.
fn frame_need(kind: MessageKind, b: &[u8]) -> Option<usize> {
    let mut view = b;
    let before = view.len();
    match kind {
        MessageKind::ClientSetup | MessageKind::ServerSetup => {
            if kind == MessageKind::ServerSetup {
                varint::read(&mut view).ok()?;
            }
            let len = u16::from_be_bytes([*view.first()?, *view.get(1)?]);
            Some(before - view.len() + 2 + usize::from(len))
        }
        _ => {
            let len = varint::read(&mut view).ok()?;
            let len = usize::try_from(len).ok()?;
            (before - view.len()).checked_add(len)
        }
    }
}

/// Reads one direction of a bidirectional lite stream.
///
/// [`ControlReader::accept`] reads the opener's bytes: the stream type, then SESSION_CLIENT /
/// CLIENT_SETUP / ANNOUNCE_PLEASE / SUBSCRIBE and what may follow them.
/// [`ControlReader::response`] reads the responder's bytes for a stream of a known type.
///
/// Negotiation: the first message of a Session or SessionCompat stream reads the same in every
/// version. After CLIENT_SETUP / SESSION_CLIENT, call [`ControlReader::set_version`] with the
/// version chosen; when that is draft-14, stop here and hand [`ControlReader::take_buffered`] to
/// the draft-14 control reader. A SERVER_SETUP selecting a non-lite version ends this reader the
/// same way ([`ControlReader::handed_over`]).
#[derive(Debug, Clone)]
pub struct ControlReader {
    buf: Pending,
    version: Version,
    dir: Direction,
    ty: Option<BiStreamType>,
    read: u64,
    consumed: usize,
    handed_over: bool,
}

impl ControlReader {
    /// A reader of the opener's bytes of an accepted stream, stream type first.
    pub fn accept(version: Version) -> Self {
        Self::with(version, Direction::Request, None)
    }

    /// A reader of the responder's bytes on a stream of type `ty` this side opened.
    pub fn response(version: Version, ty: BiStreamType) -> Self {
        Self::with(version, Direction::Response, Some(ty))
    }

    /// A reader of the opener's bytes when the stream type was already read.
    pub fn request_after_type(version: Version, ty: BiStreamType) -> Self {
        Self::with(version, Direction::Request, Some(ty))
    }

    fn with(version: Version, dir: Direction, ty: Option<BiStreamType>) -> Self {
        ControlReader {
            buf: Pending::default(),
            version,
            dir,
            ty,
            read: 0,
            consumed: 0,
            handed_over: false,
        }
    }

    /// Switches the layout once the version is negotiated.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The layout in use.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The stream type, once read (or as given to [`ControlReader::response`]).
    pub fn stream_type(&self) -> Option<BiStreamType> {
        self.ty
    }

    /// Messages read so far.
    pub fn messages_read(&self) -> u64 {
        self.read
    }

    /// The message the next bytes must hold: `None` before the stream type is read and once
    /// nothing more may follow.
    pub fn expected(&self) -> Option<MessageKind> {
        expected_message(self.ty?, self.dir, self.read == 0)
    }

    /// Appends received bytes (zero-copy when nothing is pending).
    pub fn push(&mut self, data: Bytes) {
        self.buf.push(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes consumed so far (stream type and whole messages).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Whether a SERVER_SETUP chose a non-lite version: the rest of the stream is draft-14.
    pub fn handed_over(&self) -> bool {
        self.handed_over
    }

    /// Takes the bytes received but not consumed, e.g. to feed the draft-14 control reader.
    pub fn take_buffered(&mut self) -> Bytes {
        self.buf.take()
    }

    fn advance(&mut self, rest: Bytes) {
        self.consumed += self.buf.consume(rest);
    }

    /// The next whole message, `Ok(None)` until enough bytes arrived (or after a hand-over).
    pub fn next_message(&mut self) -> Result<Option<LiteMessage>, DecodeError> {
        if self.handed_over {
            return Ok(None);
        }
        let ty = match self.ty {
            Some(ty) => ty,
            None => {
                let Some(head) = self.buf.ready() else {
                    return Ok(None);
                };
                let mut view = head.clone();
                match BiStreamType::decode(&mut view) {
                    Ok(ty) => {
                        self.ty = Some(ty);
                        self.advance(view);
                        ty
                    }
                    Err(DecodeError::Short) => {
                        let at_least = head.len() + 1;
                        self.buf.wait_for(at_least);
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let Some(head) = self.buf.ready() else {
            return Ok(None);
        };
        let Some(kind) = expected_message(ty, self.dir, self.read == 0) else {
            return Err(DecodeError::invalid(
                Rule::LiteUnexpectedMessage,
                format!(
                    "{} bytes after the last message a {ty:?} stream's {:?} direction carries",
                    head.len(),
                    self.dir
                ),
            ));
        };
        let mut view = head.clone();
        match LiteMessage::decode_as(kind, &mut view, self.version) {
            Ok(msg) => {
                self.advance(view);
                self.read += 1;
                if matches!(msg, LiteMessage::ServerSetup(SetupReply::Draft14(_))) {
                    self.handed_over = true;
                }
                Ok(Some(msg))
            }
            Err(DecodeError::Short) => {
                let at_least = head.len() + 1;
                let total = frame_need(kind, head).unwrap_or(at_least).max(at_least);
                self.buf.wait_for(total);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks the stream ended (FIN) cleanly: its type and first message were read and no
    /// message is cut short.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if !self.buf.is_empty() && !self.handed_over {
            return Err(DecodeError::invalid(
                Rule::Truncated,
                format!(
                    "stream ended inside a message ({} bytes left)",
                    self.buf.len()
                ),
            ));
        }
        match self.ty {
            None => Err(DecodeError::invalid(
                Rule::Truncated,
                "stream ended before its stream type",
            )),
            Some(ty) if self.read == 0 => Err(DecodeError::invalid(
                Rule::Truncated,
                format!(
                    "stream ended before its first message ({})",
                    expected_message(ty, self.dir, true).map_or("?", MessageKind::name)
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

/// What a [`GroupReader`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// The stream's GROUP header.
    Group(Group),
    /// The next frame.
    Frame(Frame),
}

impl From<GroupEvent> for LiteMessage {
    fn from(ev: GroupEvent) -> Self {
        match ev {
            GroupEvent::Group(g) => LiteMessage::Group(g),
            GroupEvent::Frame(f) => LiteMessage::Frame(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupState {
    StreamType,
    Header,
    Frames(Group),
}

/// Reads a unidirectional lite stream: the stream type 0x0, GROUP, then FRAMEs.
#[derive(Debug, Clone)]
pub struct GroupReader {
    buf: Pending,
    version: Version,
    state: GroupState,
    consumed: usize,
    max_frame: usize,
}

impl GroupReader {
    /// A reader that refuses frames above [`DEFAULT_MAX_OBJECT_SIZE`] bytes.
    pub fn new(version: Version) -> Self {
        Self::with_max_frame(version, DEFAULT_MAX_OBJECT_SIZE)
    }

    /// A reader that refuses frames above `max_frame` bytes ([`Rule::ObjectTooLarge`]).
    pub fn with_max_frame(version: Version, max_frame: usize) -> Self {
        GroupReader {
            buf: Pending::default(),
            version,
            state: GroupState::StreamType,
            consumed: 0,
            max_frame,
        }
    }

    /// Appends received bytes (zero-copy when nothing is pending).
    pub fn push(&mut self, data: Bytes) {
        self.buf.push(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The GROUP header, once read.
    pub fn group(&self) -> Option<Group> {
        match self.state {
            GroupState::Frames(g) => Some(g),
            _ => None,
        }
    }

    fn advance(&mut self, rest: Bytes) {
        self.consumed += self.buf.consume(rest);
    }

    /// The next header or frame, `Ok(None)` until enough bytes arrived.
    pub fn next_event(&mut self) -> Result<Option<GroupEvent>, DecodeError> {
        loop {
            let Some(head) = self.buf.ready() else {
                return Ok(None);
            };
            let mut view = head.clone();
            let res = match self.state {
                GroupState::StreamType => UniStreamType::decode(&mut view).map(|_| None),
                GroupState::Header => {
                    Group::decode(&mut view, self.version).map(|g| Some(GroupEvent::Group(g)))
                }
                GroupState::Frames(_) => {
                    let mut probe = &head[..];
                    if let Ok(size) = varint::read(&mut probe) {
                        if size > self.max_frame as u64 {
                            return Err(DecodeError::invalid(
                                Rule::ObjectTooLarge,
                                format!("frame of {size} bytes, limit {}", self.max_frame),
                            ));
                        }
                    }
                    Frame::decode(&mut view, self.version).map(|f| Some(GroupEvent::Frame(f)))
                }
            };
            match res {
                Ok(ev) => {
                    self.advance(view);
                    self.state = match (&ev, self.state) {
                        (None, _) => GroupState::Header,
                        (Some(GroupEvent::Group(g)), _) => GroupState::Frames(*g),
                        (Some(GroupEvent::Frame(_)), s) => s,
                    };
                    if ev.is_some() {
                        return Ok(ev);
                    }
                }
                Err(DecodeError::Short) => {
                    let head = self.buf.head();
                    let framed = match self.state {
                        GroupState::StreamType => None,
                        GroupState::Header => frame_need(MessageKind::Group, head),
                        GroupState::Frames(_) => frame_need(MessageKind::Frame, head),
                    };
                    let total = framed.unwrap_or(0).max(head.len() + 1);
                    self.buf.wait_for(total);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks the stream ended (FIN) cleanly: a GROUP was read and no frame is cut short.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match (self.state, self.buf.is_empty()) {
            (GroupState::Frames(_), true) => Ok(()),
            (GroupState::Frames(_), false) => Err(DecodeError::invalid(
                Rule::Truncated,
                format!(
                    "stream ended inside a frame ({} bytes left)",
                    self.buf.len()
                ),
            )),
            _ => Err(DecodeError::invalid(
                Rule::Truncated,
                "stream ended before its GROUP header",
            )),
        }
    }
}
