//! The events of one data stream, written or read: its type, its header, then its objects.

use super::{data, DataEvent, Dir, Qlog};
use moqlink_model::data::{FetchObject, StreamEvent, SubgroupHeader, SubgroupObject};
use serde_json::json;

/// Logs one data stream's header and objects, remembering what the object events need.
#[derive(Debug, Clone)]
pub struct StreamTrace {
    qlog: Qlog,
    stream_id: u64,
    dir: Dir,
    header: Option<SubgroupHeader>,
    subgroup_id: Option<u64>,
}

impl StreamTrace {
    /// A stream this endpoint writes (`Dir::Created`) or reads (`Dir::Parsed`); `id` is the
    /// transport's stream ID (a trace-unique synthetic one when `None`).
    pub fn new(qlog: &Qlog, dir: Dir, id: Option<u64>) -> Self {
        StreamTrace {
            stream_id: id.unwrap_or_else(|| qlog.synthetic_stream_id()),
            qlog: qlog.clone(),
            dir,
            header: None,
            subgroup_id: None,
        }
    }

    fn stream_type(&self, ty: &'static str) {
        self.qlog
            .stream_type(self.dir == Dir::Created, self.stream_id, ty);
    }

    /// `stream_type_set` and `subgroup_header_*`.
    pub fn subgroup_header(&mut self, h: &SubgroupHeader) {
        self.stream_type("subgroup_header");
        self.qlog.data_event(
            DataEvent::SubgroupHeader,
            self.dir,
            data::subgroup_header(self.stream_id, h),
        );
        self.subgroup_id = h.subgroup_id(None);
        self.header = Some(*h);
    }

    /// `subgroup_object_*` (after the header).
    pub fn subgroup_object(&mut self, o: &SubgroupObject) {
        let Some(h) = self.header else { return };
        if self.subgroup_id.is_none() {
            // The Subgroup ID is the first object's ID in this header mode.
            self.subgroup_id = Some(o.object_id);
        }
        self.qlog.data_event(
            DataEvent::SubgroupObject,
            self.dir,
            data::subgroup_object(self.stream_id, &h, self.subgroup_id, o),
        );
    }

    /// `stream_type_set` and `fetch_header_*`.
    pub fn fetch_header(&mut self, request_id: u64) {
        self.stream_type("fetch_header");
        self.qlog.data_event(
            DataEvent::FetchHeader,
            self.dir,
            json!({ "stream_id": self.stream_id, "request_id": request_id }),
        );
    }

    /// `fetch_object_*`.
    pub fn fetch_object(&mut self, o: &FetchObject) {
        self.qlog.data_event(
            DataEvent::FetchObject,
            self.dir,
            data::fetch_object(self.stream_id, o),
        );
    }

    /// Logs whatever a stream reader produced.
    pub fn on_event(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::SubgroupHeader(h) => self.subgroup_header(h),
            StreamEvent::SubgroupObject(o) => self.subgroup_object(o),
            StreamEvent::FetchHeader(h) => self.fetch_header(h.request_id),
            StreamEvent::FetchObject(o) => self.fetch_object(o),
        }
    }
}
