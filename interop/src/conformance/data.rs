//! Data-plane checks: subgroups sent with each of the 12 SUBGROUP_HEADER types keep their object
//! properties (§10.4.2, §8.5; the type the relay uses is its choice), extension headers
//! (§10.2.1.2, compared as key-value pairs), object statuses (§10.2.1.1), Object ID gaps,
//! subgroups and priorities, opaque payloads (§8.5) and datagrams (§10.3).

use super::harness::{
    hex, listing, payload, relayed, DirectSub, Endpoint, Got, Publisher, StreamEnd,
};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::Bytes;
use moqlink_model::data::{Extensions, ObjectStatus, SubgroupIdMode};
use moqlink_model::params::KeyValuePair;
use moqlink_transport::track::{Object, SubgroupInfo};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// Waits for `n` objects (and a short settle), failing with what arrived.
async fn receive(env: &Env, sub: &DirectSub, n: usize, what: &str) -> Result<Vec<Got>, Failure> {
    env.step(what.to_string());
    let complete = sub.wait_count(n, T).await;
    sub.settle(Duration::from_millis(150), Duration::from_secs(1))
        .await;
    let got = sub.objects();
    if !complete {
        return Err(Failure::new(
            what,
            listing(&got),
            "the relay did not forward every object",
        ));
    }
    Ok(got)
}

/// Extension blocks used across the checks, minimally encoded: an even (varint) pair, odd
/// (bytes) pairs with a repeated type, a large type and value, and a 300-byte value.
fn ext_blocks() -> Vec<Extensions> {
    let a = Extensions::from_pairs(&[
        KeyValuePair::varint(0x40, 7),
        KeyValuePair::bytes(0x41, "conformance"),
        KeyValuePair::bytes(0x41, "repeated"),
    ])
    .unwrap_or_default();
    let big = Extensions::from_pairs(&[
        KeyValuePair::varint(0x3e_0000, 1 << 40),
        KeyValuePair::bytes(0x45, vec![0x5a; 300]),
    ])
    .unwrap_or_default();
    let c = Extensions::from_pairs(&[KeyValuePair::bytes(0x2d, "abc")]).unwrap_or_default();
    vec![a, big, c]
}

/// A block written with non-minimal varints: type 0x40 in 2 bytes, value 5 in 4 bytes, then
/// type 0x2d with 3 bytes. Valid QUIC varints; re-encoding them changes the bytes.
fn nonminimal_block() -> Extensions {
    let raw = Bytes::from_static(&[
        0x40, 0x40, 0x80, 0x00, 0x00, 0x05, 0x2d, 0x03, b'a', b'b', b'c',
    ]);
    Extensions::from_raw(raw).unwrap_or_default()
}

/// The key-value pairs of an extension block as received, or `None` when they do not parse.
fn pairs_of(raw: &Bytes) -> Option<Vec<KeyValuePair>> {
    Extensions::from_raw(raw.clone()).ok().map(|e| e.pairs())
}

/// How the subscriber learnt that object `last` ends group 0, if it did: a FIN on an
/// end-of-group stream type right after `last`, or an END_OF_GROUP status object `last`+1.
fn end_of_group_signal(got: &[Got], ends: &[StreamEnd], last: u64) -> Option<String> {
    let by_stream = ends.iter().find(|e| {
        e.reset.is_none()
            && e.header_type & 0x08 != 0
            && got
                .iter()
                .filter(|g| g.stream == e.stream)
                .max_by_key(|g| g.seq)
                .is_some_and(|g| g.id == last && g.group == 0)
    });
    if let Some(e) = by_stream {
        return Some(format!(
            "a 0x{:x} stream ending in FIN after 0.{last}",
            e.header_type
        ));
    }
    got.iter()
        .any(|g| g.group == 0 && g.id == last + 1 && g.status == ObjectStatus::EndOfGroup)
        .then(|| format!("an END_OF_GROUP status object 0.{}", last + 1))
}

/// Sends group 0 as one subgroup whose header has type `code` and compares the properties of
/// what arrives (§8.5): group, Subgroup ID, Object IDs, payloads, Publisher Priority, decoded
/// extension key-value pairs and, for the end-of-group types, End of Group. The header type the
/// relay uses is its encoding choice (§10.4.3 can force it to open a stream of another type); the
/// pass message names it.
async fn header_type(env: Env, code: u64) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    let extensions = code & 0x01 != 0;
    let first_id = code & 0x02 != 0;
    let explicit = code & 0x04 != 0;
    let end_of_group = code & 0x08 != 0;
    // Non-zero IDs so no other header type could carry the same subgroup.
    let (subgroup, mode, ids) = if explicit {
        (7, SubgroupIdMode::Explicit(7), 0..3)
    } else if first_id {
        (3, SubgroupIdMode::FirstObjectId, 3..6)
    } else {
        (0, SubgroupIdMode::Zero, 0..3)
    };
    let last = ids.end - 1;
    let info = SubgroupInfo {
        group: 0,
        subgroup,
        priority: 100,
        mode,
        extensions,
        end_of_group,
    };
    let blocks = ext_blocks();
    let mut sent = Vec::new();
    let mut sg = p.track().create_subgroup(info);
    for (i, id) in ids.clone().enumerate() {
        let e = if extensions && i != 1 {
            blocks[i % blocks.len()].clone()
        } else {
            Extensions::empty()
        };
        let o = Object {
            extensions: e.clone(),
            ..Object::new(id, payload(&env, 0, id))
        };
        sent.push((id, e));
        let _ = sg.write(o);
    }
    sg.finish();
    let got = receive(&env, &sub, 3, "the subgroup's three objects").await?;
    let got = if end_of_group {
        env.step("the End of Group: a FIN on an end-of-group stream or an END_OF_GROUP object");
        sub.wait(T, |g| end_of_group_signal(g, &sub.ends(), last).is_some())
            .await;
        sub.objects()
    } else {
        got
    };
    let ends = sub.ends();
    let eog = end_of_group_signal(&got, &ends, last);
    let mut issues = Vec::new();
    let mut reencoded = false;
    for g in &got {
        if end_of_group && g.id == last + 1 && g.status == ObjectStatus::EndOfGroup {
            continue;
        }
        let Some((_, e)) = sent.iter().find(|(id, _)| *id == g.id && g.group == 0) else {
            issues.push(format!("unexpected {g}"));
            continue;
        };
        if g.subgroup != Some(subgroup) {
            issues.push(format!(
                "object {}.{} in subgroup {:?}, sent in {subgroup}",
                g.group, g.id, g.subgroup
            ));
        }
        if g.priority != 100 {
            issues.push(format!(
                "object {}.{} priority {}, sent 100",
                g.group, g.id, g.priority
            ));
        }
        match pairs_of(&g.extensions) {
            Some(pairs) if pairs == e.pairs() => reencoded |= g.extensions != *e.raw(),
            _ => issues.push(format!(
                "object 0.{} extensions {}, sent {}",
                g.id,
                hex(&g.extensions),
                hex(e.raw())
            )),
        }
        if g.status != ObjectStatus::Normal || g.payload != payload(&env, g.group, g.id) {
            issues.push(format!("object 0.{} status or payload differs: {g}", g.id));
        }
    }
    let ids_got: Vec<u64> = got.iter().filter(|g| g.group == 0).map(|g| g.id).collect();
    for id in ids.clone() {
        if !ids_got.contains(&id) {
            issues.push(format!("object 0.{id} missing"));
        }
    }
    match (&eog, end_of_group) {
        (None, true) => issues.push(format!(
            "no End of Group after object 0.{last} (neither a FIN on an end-of-group stream \
             type nor an END_OF_GROUP object)"
        )),
        (Some(how), false) => issues.push(format!(
            "the relay signalled End of Group ({how}), the publisher did not"
        )),
        _ => {}
    }
    let streams: Vec<String> = ends
        .iter()
        .map(|e| match e.reset {
            None => format!("0x{:x} FIN", e.header_type),
            Some(c) => format!("0x{:x} reset 0x{c:x}", e.header_type),
        })
        .collect();
    if let Some(first) = issues.first() {
        return Err(Failure::new(
            format!(
                "objects 0.{}..0.{last} in subgroup {subgroup}, priority 100, their payloads and \
                 extension pairs{}",
                ids.start,
                if end_of_group { ", End of Group" } else { "" }
            ),
            format!(
                "{first} ({} problem(s)); streams: [{}]",
                issues.len(),
                streams.join(", ")
            ),
            "a relay MUST NOT modify Object properties when forwarding (§8.5); a non-zero-length \
             object can be the End of Group, signalled in the SUBGROUP_HEADER type (§10.2.1.1); an \
             END_OF_GROUP object carries it too",
        )
        .into());
    }
    let types: std::collections::BTreeSet<u64> = got.iter().map(|g| g.wire_type).collect();
    let types: Vec<String> = types.iter().map(|t| format!("0x{t:x}")).collect();
    let same_type = types == [format!("0x{code:x}")];
    Ok(format!(
        "3 objects keep their properties{}{}; relayed on {} (sent on 0x{code:x}{}); streams: [{}]",
        eog.map(|h| format!(", End of Group by {h}"))
            .unwrap_or_default(),
        if reencoded {
            ", extension pairs re-encoded"
        } else {
            ""
        },
        types.join(", "),
        if same_type { ", the same type" } else { "" },
        streams.join(", ")
    ))
}

/// `subgroup-header-0x10`.
pub async fn header_0x10(env: Env) -> CheckOutput {
    header_type(env, 0x10).await
}
/// `subgroup-header-0x11`.
pub async fn header_0x11(env: Env) -> CheckOutput {
    header_type(env, 0x11).await
}
/// `subgroup-header-0x12`.
pub async fn header_0x12(env: Env) -> CheckOutput {
    header_type(env, 0x12).await
}
/// `subgroup-header-0x13`.
pub async fn header_0x13(env: Env) -> CheckOutput {
    header_type(env, 0x13).await
}
/// `subgroup-header-0x14`.
pub async fn header_0x14(env: Env) -> CheckOutput {
    header_type(env, 0x14).await
}
/// `subgroup-header-0x15`.
pub async fn header_0x15(env: Env) -> CheckOutput {
    header_type(env, 0x15).await
}
/// `subgroup-header-0x18`.
pub async fn header_0x18(env: Env) -> CheckOutput {
    header_type(env, 0x18).await
}
/// `subgroup-header-0x19`.
pub async fn header_0x19(env: Env) -> CheckOutput {
    header_type(env, 0x19).await
}
/// `subgroup-header-0x1a`.
pub async fn header_0x1a(env: Env) -> CheckOutput {
    header_type(env, 0x1a).await
}
/// `subgroup-header-0x1b`.
pub async fn header_0x1b(env: Env) -> CheckOutput {
    header_type(env, 0x1b).await
}
/// `subgroup-header-0x1c`.
pub async fn header_0x1c(env: Env) -> CheckOutput {
    header_type(env, 0x1c).await
}
/// `subgroup-header-0x1d`.
pub async fn header_0x1d(env: Env) -> CheckOutput {
    header_type(env, 0x1d).await
}

/// Publishes one object per extension block and compares what arrives.
async fn extension_blocks(env: &Env, blocks: &[Extensions]) -> Result<Vec<Got>, Verdict> {
    let (p, _s, sub) = relayed(env).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    for (i, e) in blocks.iter().enumerate() {
        let id = i as u64;
        let _ = sg.write(Object {
            extensions: e.clone(),
            ..Object::new(id, payload(env, 0, id))
        });
    }
    sg.finish();
    Ok(receive(
        env,
        &sub,
        blocks.len(),
        "the objects with extension headers",
    )
    .await?)
}

/// Compares object `id`'s extension key-value pairs with `e`'s. `Ok(true)` when they are the
/// same pairs in other bytes (re-encoded): the pairs are what §10.2.1.2 protects.
fn same_extensions(got: &[Got], id: u64, e: &Extensions) -> Result<bool, Failure> {
    let Some(g) = got.iter().find(|g| g.id == id) else {
        return Err(Failure::new(
            format!("object 0.{id}"),
            listing(got),
            "object missing",
        ));
    };
    match pairs_of(&g.extensions) {
        Some(pairs) if pairs == e.pairs() => Ok(g.extensions != *e.raw()),
        pairs => Err(Failure::new(
            format!("object 0.{id} extension pairs {:?}", e.pairs()),
            match pairs {
                Some(p) => format!("object 0.{id} extension pairs {p:?} ({})", hex(&g.extensions)),
                None => format!(
                    "object 0.{id} extensions {} (not key-value pairs)",
                    hex(&g.extensions)
                ),
            },
            "extension headers a relay does not support MUST NOT be modified and MUST be forwarded \
             (§10.2.1.2)",
        )),
    }
}

/// `extension-headers-preserved`.
pub async fn extensions_preserved(env: Env) -> CheckOutput {
    let blocks = ext_blocks();
    let got = extension_blocks(&env, &blocks).await?;
    let mut reencoded = 0;
    for (i, e) in blocks.iter().enumerate() {
        reencoded += usize::from(same_extensions(&got, i as u64, e)?);
    }
    Ok(format!(
        "{} extension blocks ({} bytes in all) arrived with the same key-value pairs, {}",
        blocks.len(),
        blocks.iter().map(|b| b.raw().len()).sum::<usize>(),
        if reencoded == 0 {
            "byte-exact".to_string()
        } else {
            format!("{reencoded} re-encoded")
        }
    ))
}

/// `extension-headers-byte-exact`: non-minimal varints inside the block. Re-encoding them
/// minimally keeps the pairs (a note, not a failure: no sentence asks for the bytes).
pub async fn extensions_byte_exact(env: Env) -> CheckOutput {
    let block = nonminimal_block();
    let got = extension_blocks(&env, std::slice::from_ref(&block)).await?;
    let reencoded = same_extensions(&got, 0, &block)?;
    Ok(if reencoded {
        let g = got.iter().find(|g| g.id == 0).map(|g| g.extensions.clone());
        format!(
            "the key-value pairs of {} arrived unchanged, re-encoded as {} (note: not byte-exact)",
            hex(block.raw()),
            g.map(|b| hex(&b)).unwrap_or_default()
        )
    } else {
        format!("{} arrived byte-exact", hex(block.raw()))
    })
}

/// Sends objects `normal` then a status object and requires the status to arrive.
async fn status_check(env: Env, status: ObjectStatus, group: u64, id: u64) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(group, 0, 128));
    let normal: Vec<u64> = (0..id).collect();
    for o in &normal {
        let _ = sg.write(Object::new(*o, payload(&env, group, *o)));
    }
    let _ = sg.write(Object::status(id, status));
    sg.finish();
    let got = receive(
        &env,
        &sub,
        normal.len() + 1,
        "the objects and the status object",
    )
    .await?;
    match got.iter().find(|g| (g.group, g.id) == (group, id)) {
        Some(g) if g.status == status && g.payload.is_empty() => Ok(format!(
            "{:?} at {group}.{id} relayed after {}",
            status,
            listing(&got[..got.len().saturating_sub(1)])
        )),
        other => Err(Failure::new(
            format!("object {group}.{id} with status {status:?}"),
            other.map_or_else(|| listing(&got), |g| g.to_string()),
            "object status is an object property relays forward unchanged (§10.2.1.1, §8.5)",
        )
        .into()),
    }
}

/// `object-status-end-of-group`.
pub async fn status_end_of_group(env: Env) -> CheckOutput {
    status_check(env, ObjectStatus::EndOfGroup, 0, 3).await
}

/// `object-status-end-of-track`.
pub async fn status_end_of_track(env: Env) -> CheckOutput {
    status_check(env, ObjectStatus::EndOfTrack, 0, 2).await
}

/// `object-status-does-not-exist`: 0.0, then 0.1 does not exist, then 0.2.
pub async fn status_does_not_exist(env: Env) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    let _ = sg.write(Object::new(0, payload(&env, 0, 0)));
    let _ = sg.write(Object::status(1, ObjectStatus::DoesNotExist));
    let _ = sg.write(Object::new(2, payload(&env, 0, 2)));
    sg.finish();
    let got = receive(&env, &sub, 3, "objects 0.0, 0.1 (does not exist), 0.2").await?;
    let ok = got
        .iter()
        .any(|g| g.id == 1 && g.status == ObjectStatus::DoesNotExist)
        && got
            .iter()
            .any(|g| g.id == 2 && g.payload == payload(&env, 0, 2));
    if !ok {
        return Err(Failure::new(
            "0.0, 0.1 with status OBJECT_DOES_NOT_EXIST, 0.2",
            got.iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            "object status is an object property relays forward unchanged (§10.2.1.1, §8.5)",
        )
        .into());
    }
    Ok("0.1 OBJECT_DOES_NOT_EXIST relayed between 0.0 and 0.2".into())
}

/// `object-id-gaps-preserved`: IDs 0, 3, 4, 10 on one stream.
pub async fn object_id_gaps(env: Env) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    let ids = [0u64, 3, 4, 10];
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    for id in ids {
        let _ = sg.write(Object::new(id, payload(&env, 0, id)));
    }
    sg.finish();
    let got = receive(&env, &sub, ids.len(), "objects 0.0, 0.3, 0.4, 0.10").await?;
    let received: Vec<u64> = got.iter().map(|g| g.id).collect();
    let same_stream = got.windows(2).all(|w| w[0].stream == w[1].stream);
    if received != ids || got.iter().any(|g| g.payload != payload(&env, 0, g.id)) {
        return Err(Failure::new(
            "objects 0.0, 0.3, 0.4, 0.10 in that order with their payloads",
            listing(&got),
            "Object IDs are object properties; a relay MUST NOT change them (§8.5, §10.4.2)",
        )
        .into());
    }
    Ok(format!(
        "IDs 0, 3, 4, 10 relayed{}",
        if same_stream {
            " on one stream"
        } else {
            " (on several streams)"
        }
    ))
}

/// `subgroups-and-priorities-preserved`: three subgroups of group 0.
pub async fn subgroups_and_priorities(env: Env) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    let layout = [(0u64, 10u8, [0u64, 3]), (1, 200, [1, 4]), (2, 0, [2, 5])];
    let mut open: Vec<_> = layout
        .iter()
        .map(|(sg, prio, _)| p.track().create_subgroup(SubgroupInfo::new(0, *sg, *prio)))
        .collect();
    for round in 0..2 {
        for (i, (_, _, ids)) in layout.iter().enumerate() {
            let id = ids[round];
            let _ = open[i].write(Object::new(id, payload(&env, 0, id)));
        }
    }
    for sg in open {
        sg.finish();
    }
    let got = receive(&env, &sub, 6, "six objects in three subgroups").await?;
    for (sg, prio, ids) in layout {
        for id in ids {
            match got.iter().find(|g| g.id == id) {
                Some(g) if g.subgroup == Some(sg) && g.priority == prio => {}
                other => {
                    return Err(Failure::new(
                        format!("object 0.{id} in subgroup {sg} with priority {prio}"),
                        other.map_or("missing".into(), |g| g.to_string()),
                        "Subgroup ID and Publisher Priority are object properties (§8.5)",
                    )
                    .into())
                }
            }
        }
    }
    Ok("subgroups 0, 1, 2 with priorities 10, 200, 0 relayed".into())
}

/// `payload-opaque`: 1 MiB, empty and one-byte payloads.
pub async fn payload_opaque(env: Env) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    let big: Bytes = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let bodies = [big, Bytes::new(), Bytes::from_static(b"x")];
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    for (i, b) in bodies.iter().enumerate() {
        let _ = sg.write(Object::new(i as u64, b.clone()));
    }
    sg.finish();
    let got = receive(&env, &sub, 3, "objects of 1 MiB, 0 and 1 bytes").await?;
    for (i, b) in bodies.iter().enumerate() {
        match got.iter().find(|g| g.id == i as u64) {
            Some(g) if g.payload == *b && g.status == ObjectStatus::Normal => {}
            other => {
                return Err(Failure::new(
                    format!("object 0.{i}: {} bytes, status Normal", b.len()),
                    other.map_or("missing".into(), |g| g.to_string()),
                    "a relay MUST treat payloads as opaque and not split or combine them (§8.5)",
                )
                .into())
            }
        }
    }
    Ok("1 MiB, zero-length (status Normal) and 1-byte payloads arrived byte-exact".into())
}

/// Writes datagram objects and waits for them.
async fn datagrams(
    env: &Env,
    objects: &[(u64, u8, Object)],
) -> Result<(Vec<Got>, DirectSub, Publisher, Endpoint), Verdict> {
    let (p, s, sub) = relayed(env).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (g, prio, o) in objects {
        p.track().write_datagram(*g, *prio, o.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    env.step("the datagrams at the subscriber");
    sub.wait_count(objects.len(), T).await;
    sub.settle(Duration::from_millis(200), Duration::from_secs(1))
        .await;
    Ok((sub.objects(), sub, p, s))
}

/// Compares received datagrams with what was sent (extensions as key-value pairs): none changed,
/// none on a stream.
fn compare_datagrams(got: &[Got], sent: &[(u64, u8, Object)]) -> Result<usize, Failure> {
    for g in got {
        if g.subgroup.is_some() {
            return Err(Failure::new(
                "every object as a datagram",
                format!("{g}"),
                "objects are sent according to their Forwarding Preference (§10.2.1)",
            ));
        }
        let Some((_, prio, o)) = sent
            .iter()
            .find(|(grp, _, o)| *grp == g.group && o.id == g.id)
        else {
            return Err(Failure::new(
                "only the datagrams sent",
                g.to_string(),
                "unexpected object",
            ));
        };
        if g.priority != *prio
            || g.payload != o.payload
            || g.status != o.status
            || pairs_of(&g.extensions) != Some(o.extensions.pairs())
        {
            return Err(Failure::new(
                format!(
                    "object {}.{} priority {prio}, {:?}, {} payload bytes, extensions {}",
                    g.group,
                    g.id,
                    o.status,
                    o.payload.len(),
                    hex(o.extensions.raw())
                ),
                format!("{g}, extensions {}", hex(&g.extensions)),
                "a relay MUST NOT modify object properties (§8.5)",
            ));
        }
    }
    Ok(got.len())
}

/// `datagram-relay`.
pub async fn datagram_relay(env: Env) -> CheckOutput {
    let sent: Vec<(u64, u8, Object)> = (0..3)
        .flat_map(|g| (0..3).map(move |o| (g, o)))
        .map(|(g, o)| (g, (10 * g + o) as u8, Object::new(o, payload(&env, g, o))))
        .collect();
    let (got, ..) = datagrams(&env, &sent).await?;
    let n = compare_datagrams(&got, &sent)?;
    if n == 0 {
        return Err(Failure::new(
            "the 9 datagrams (datagrams may be lost, but not all on loopback)",
            "no datagram",
            "the relay did not forward datagrams (§10.3)",
        )
        .into());
    }
    let types: std::collections::BTreeSet<String> = got
        .iter()
        .map(|g| format!("0x{:02x}", g.wire_type))
        .collect();
    Ok(format!(
        "{n} of {} datagrams arrived unchanged (types {})",
        sent.len(),
        types.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

/// `datagram-status-and-extensions`.
pub async fn datagram_status_extensions(env: Env) -> CheckOutput {
    let blocks = ext_blocks();
    let with_ext = Object {
        extensions: blocks[0].clone(),
        ..Object::new(0, payload(&env, 0, 0))
    };
    let status = Object::status(1, ObjectStatus::EndOfGroup);
    let status_ext = Object {
        extensions: blocks[1].clone(),
        ..Object::status(0, ObjectStatus::EndOfTrack)
    };
    let sent = vec![(0, 128, with_ext), (0, 128, status), (1, 128, status_ext)];
    let (got, ..) = datagrams(&env, &sent).await?;
    // Every datagram that arrived must keep its properties; one that did not is no violation
    // (a datagram may be dropped, §10.3), so the judgement is on what arrived.
    let n = compare_datagrams(&got, &sent)?;
    if n == 0 {
        return Err(Verdict::NotApplicable(
            "none of the three datagrams arrived (datagrams may be dropped, §10.3)".into(),
        ));
    }
    let arrived: Vec<String> = got
        .iter()
        .map(|g| format!("0x{:02x} {}.{}", g.wire_type, g.group, g.id))
        .collect();
    Ok(format!(
        "{n} of {} datagrams (extensions, END_OF_GROUP, END_OF_TRACK with extensions) relayed with \
         their properties (extension key-value pairs compared): {}",
        sent.len(),
        arrived.join(", ")
    ))
}
