//! saker's gRPC API, package `saker.v1`, generated from `proto/saker/v1/*.proto`.
//!
//! * [`v1`]: messages, enums, and for each service a `*_client` module (tonic client
//!   over any channel) and a `*_server` module (trait to implement plus the tonic
//!   service wrapper). The `.proto` files document every message and field and the
//!   conventions (times, filters, errors, paging, attacker-controlled strings).
//! * Every message also implements `serde::Serialize`/`Deserialize` with the canonical
//!   proto3 JSON mapping, keeping the proto field names (`time_ns`, not `timeNs`):
//!   64-bit integers are strings, bytes are base64, enums are their value names.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded `FileDescriptorSet` of all saker.v1 files,
//!   for gRPC server reflection (`tonic-reflection`).

/// The `saker.v1` package.
pub mod v1 {
    #![allow(clippy::all, missing_docs, rustdoc::all)]
    tonic::include_proto!("saker.v1");
    include!(concat!(env!("OUT_DIR"), "/saker.v1.serde.rs"));
}

/// Encoded `google.protobuf.FileDescriptorSet` of every `saker.v1` file, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/saker_v1_descriptor.bin"));

/// Fully qualified service names, as registered with gRPC (and reflection).
pub const SERVICE_NAMES: &[&str] = &[
    "saker.v1.EventService",
    "saker.v1.IncidentService",
    "saker.v1.AssistantService",
    "saker.v1.NodeService",
];

#[cfg(test)]
mod tests {
    use super::v1;
    use super::*;
    use prost::Message;

    #[test]
    fn descriptor_set_lists_every_service() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let mut names = Vec::new();
        for f in &set.file {
            assert_eq!(f.package(), "saker.v1");
            for s in &f.service {
                names.push(format!("saker.v1.{}", s.name()));
            }
        }
        names.sort();
        let mut want: Vec<String> = SERVICE_NAMES.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn descriptor_set_keeps_comments() {
        // Reflection clients (grpcurl describe) show the documentation.
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let with_info = set
            .file
            .iter()
            .filter(|f| f.source_code_info.is_some())
            .count();
        assert_eq!(with_info, set.file.len());
    }

    #[test]
    fn json_uses_proto_names_and_keeps_bytes() {
        let s = v1::RawString {
            raw: vec![0x1b, b'[', b'2', b'J', 0xff],
            lossy: "\u{1b}[2J\u{fffd}".into(),
        };
        let alert = v1::Alert {
            id: "n-1-0".into(),
            time_ns: 1_700_000_000_000_000_000,
            severity: v1::Severity::Critical as i32,
            event: Some(v1::Event {
                seq: 7,
                process: Some(v1::Process {
                    name: Some(s.clone()),
                    ..Default::default()
                }),
                body: Some(v1::event::Body::Fork(v1::Fork {})),
                ..Default::default()
            }),
            ..Default::default()
        };
        let j = serde_json::to_value(&alert).unwrap();
        assert_eq!(j["time_ns"], "1700000000000000000");
        assert_eq!(j["severity"], "SEVERITY_CRITICAL");
        assert_eq!(j["event"]["process"]["name"]["raw"], "G1sySv8=");
        let back: v1::Alert = serde_json::from_value(j).unwrap();
        assert_eq!(back, alert);
        // And the wire form round-trips too.
        assert_eq!(
            v1::Alert::decode(alert.encode_to_vec().as_slice()).unwrap(),
            alert
        );
    }
}
