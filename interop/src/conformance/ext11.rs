//! The extension headers §11 defines: Prior Group ID Gap (0x3C), Immutable Extensions (0xB)
//! and Prior Object ID Gap (0x3E) reach the subscriber as the publisher sent them, and a relay
//! adds none of them to objects that came without. Pairs are compared decoded: re-encoding a
//! block minimally changes no pair.

use super::harness::{hex, listing, payload, relayed, Got};
use super::raw::varint;
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::{BufMut, Bytes, BytesMut};
use moqlink_model::data::Extensions;
use moqlink_model::params::KeyValuePair;
use moqlink_transport::track::{Object, SubgroupInfo};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// Prior Group ID Gap (§11.1).
const PRIOR_GROUP_ID_GAP: u64 = 0x3c;
/// Immutable Extensions (§11.2).
const IMMUTABLE: u64 = 0x0b;
/// Prior Object ID Gap (§11.3).
const PRIOR_OBJECT_ID_GAP: u64 = 0x3e;

/// One object to publish: its location and extension pairs.
struct Sent {
    group: u64,
    id: u64,
    pairs: Vec<KeyValuePair>,
}

/// Publishes `objects` (one subgroup per group, in order), waits for them all, and compares
/// the pairs of every key in `keys`: the same values in the same order, none added.
async fn compare(env: &Env, objects: &[Sent], keys: &[(u64, &str)]) -> Result<String, Verdict> {
    let (p, _s, sub) = relayed(env).await?;
    let mut groups: Vec<u64> = objects.iter().map(|o| o.group).collect();
    groups.dedup();
    for g in groups {
        let mut sg = p.track().create_subgroup(SubgroupInfo::new(g, 0, 128));
        for o in objects.iter().filter(|o| o.group == g) {
            let extensions = Extensions::from_pairs(&o.pairs).map_err(|e| {
                Failure::new("an encodable extension block", e.to_string(), "local")
            })?;
            let _ = sg.write(Object {
                extensions,
                ..Object::new(o.id, payload(env, g, o.id))
            });
        }
        sg.finish();
        tokio::time::sleep(super::harness::GROUP_PACING).await;
    }
    env.step("every object at the subscriber");
    sub.wait(T, |got| {
        objects
            .iter()
            .all(|o| got.iter().any(|x| (x.group, x.id) == (o.group, o.id)))
    })
    .await;
    let got = sub.objects();
    // Only objects that arrived are judged: a relay that drops one breaks another rule.
    let missing: Vec<String> = objects
        .iter()
        .filter(|o| !got.iter().any(|x| (x.group, x.id) == (o.group, o.id)))
        .map(|o| format!("{}.{}", o.group, o.id))
        .collect();
    let judged = objects.iter().any(|o| {
        got.iter().any(|x| (x.group, x.id) == (o.group, o.id))
            && o.pairs
                .iter()
                .any(|p| keys.iter().any(|(k, _)| p.key == *k))
    });
    if !judged {
        return Err(Verdict::NotApplicable(format!(
            "no object carrying {} arrived (subscriber got {}): nothing to judge",
            keys.iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(" or "),
            listing(&got)
        )));
    }
    let mut carried = 0;
    for o in objects {
        let Some(g) = got.iter().find(|x| (x.group, x.id) == (o.group, o.id)) else {
            continue;
        };
        for (key, name) in keys {
            let want: Vec<&KeyValuePair> = o.pairs.iter().filter(|p| p.key == *key).collect();
            let have = pairs_of(g, *key);
            if have.iter().collect::<Vec<_>>() == want {
                carried += want.len();
                continue;
            }
            let sent = if want.is_empty() {
                format!("object {}.{} sent without {name}", o.group, o.id)
            } else {
                format!("object {}.{} with {name} {:?}", o.group, o.id, want)
            };
            let what = if want.is_empty() {
                "added by the relay"
            } else if have.is_empty() {
                "removed by the relay"
            } else {
                "modified by the relay"
            };
            return Err(Failure::new(
                sent,
                format!(
                    "{name} {what}: {:?} (extensions {})",
                    have,
                    hex(&g.extensions)
                ),
                format!(
                    "{name} (0x{key:x}) MUST NOT be added by relays, modified or removed (§11)"
                ),
            )
            .into());
        }
    }
    Ok(format!(
        "{} of {} objects relayed{}; {carried} pair(s) of {} unchanged, none added",
        objects.len() - missing.len(),
        objects.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (not judged, never arrived: {})", missing.join(", "))
        },
        keys.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
    ))
}

/// The pairs of `key` in a received object's extension block.
fn pairs_of(g: &Got, key: u64) -> Vec<KeyValuePair> {
    Extensions::from_raw(g.extensions.clone())
        .map(|e| e.pairs().into_iter().filter(|p| p.key == key).collect())
        .unwrap_or_default()
}

/// `gap-extensions-unchanged`: group 0 object 0 without extensions; group 2 (group 1 never
/// exists) object 0 with Prior Group ID Gap 1 next to an unknown extension, object 1 without,
/// object 4 with Prior Object ID Gap 2 (objects 2 and 3 never exist).
pub async fn gap_extensions(env: Env) -> CheckOutput {
    let objects = [
        Sent {
            group: 0,
            id: 0,
            pairs: vec![],
        },
        Sent {
            group: 2,
            id: 0,
            pairs: vec![
                KeyValuePair::varint(PRIOR_GROUP_ID_GAP, 1),
                KeyValuePair::bytes(0x41, "unknown"),
            ],
        },
        Sent {
            group: 2,
            id: 1,
            pairs: vec![],
        },
        Sent {
            group: 2,
            id: 4,
            pairs: vec![KeyValuePair::varint(PRIOR_OBJECT_ID_GAP, 2)],
        },
    ];
    compare(
        &env,
        &objects,
        &[
            (PRIOR_GROUP_ID_GAP, "Prior Group ID Gap"),
            (PRIOR_OBJECT_ID_GAP, "Prior Object ID Gap"),
        ],
    )
    .await
}

/// An Immutable Extensions value: the key-value pairs `pairs`, serialized.
fn immutable(pairs: &[(u64, &[u8])]) -> Bytes {
    let mut b = BytesMut::new();
    for (k, v) in pairs {
        varint(&mut b, *k);
        if k % 2 == 0 {
            // Even keys carry a varint; the test values are single bytes below 64.
            b.put_u8(v[0]);
        } else {
            varint(&mut b, v.len() as u64);
            b.put_slice(v);
        }
    }
    b.freeze()
}

/// `immutable-extensions-unchanged`: group 0 objects 0 (Immutable Extensions holding a varint
/// and a bytes pair, next to an unknown extension), 1 (none) and 2 (Immutable Extensions with
/// one pair).
pub async fn immutable_extensions(env: Env) -> CheckOutput {
    let objects = [
        Sent {
            group: 0,
            id: 0,
            pairs: vec![
                KeyValuePair::bytes(0x41, "mutable"),
                KeyValuePair::bytes(IMMUTABLE, immutable(&[(0x2, &[5]), (0x3, b"abc")])),
            ],
        },
        Sent {
            group: 0,
            id: 1,
            pairs: vec![],
        },
        Sent {
            group: 0,
            id: 2,
            pairs: vec![KeyValuePair::bytes(IMMUTABLE, immutable(&[(0x4, &[7])]))],
        },
    ];
    compare(&env, &objects, &[(IMMUTABLE, "Immutable Extensions")]).await
}
