//! The typed wire model and codec of MoQ Transport draft-14 (`0xff00000e`): varints, control
//! messages, parameters, data streams and datagrams. No I/O.
//!
//! Every element decodes from any [`bytes::Buf`] and encodes to any [`bytes::BufMut`]. Decoding an
//! incomplete buffer returns [`DecodeError::Short`]; every other error names the [`Rule`] broken
//! and the [`SessionErrorCode`] the session closes with. Payloads are zero-copy slices of the
//! input when it is a [`bytes::Bytes`].
//!
//! ```
//! use moqlink_model::{ControlMessage, Version};
//! let wire = hex::decode("20000d01c0000000ff00000e01024064").unwrap();
//! let msg = ControlMessage::decode(&mut &wire[..], Version::DRAFT_14).unwrap();
//! let ControlMessage::ClientSetup(setup) = msg else { panic!() };
//! assert_eq!(setup.versions, vec![Version::DRAFT_14]);
//! assert_eq!(setup.parameters.max_request_id(), Some(100));
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod blob;
pub mod codec;
pub mod codes;
pub mod control;
pub mod data;
pub mod error;
pub mod json;
pub mod limits;
pub mod lite;
pub mod params;
mod pending;
mod primitives;
pub mod varint;
mod version;

pub use blob::Blob;
pub use codec::{Decode, Encode, Encoding, Sizer};
pub use control::{ControlMessage, MessageType};
pub use error::{DecodeError, EncodeError, Rule, SessionErrorCode};
pub use primitives::{
    decode_reason, decode_track_name, encode_reason, encode_track_name, GroupOrder, Location,
    TrackNamespace,
};
pub use varint::VarInt;
pub use version::Version;
