//! Cached object statuses (§10.2.1.1): Object Does Not Exist, End of Group and End of Track
//! "SHOULD be cached", so a FETCH of the range after the relay forwarded them returns them with
//! their status.

use super::fetch::{fetch_group_0, fetched};
use super::harness::{payload, subscribe, Endpoint, Publisher, SubOpts};
use super::{CheckOutput, Env};
use crate::cases::Failure;
use moqlink_model::data::ObjectStatus;
use moqlink_transport::track::{Object, SubgroupInfo};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn name(s: ObjectStatus) -> &'static str {
    match s {
        ObjectStatus::DoesNotExist => "OBJECT_DOES_NOT_EXIST",
        ObjectStatus::EndOfGroup => "END_OF_GROUP",
        ObjectStatus::EndOfTrack => "END_OF_TRACK",
        _ => "NORMAL",
    }
}

/// A publisher writes group 0 on one subgroup stream: 0.0, 0.1 with `status`, and (for Object
/// Does Not Exist) 0.2; a watcher receives them through the relay; then a FETCH of group 0
/// must return 0.1 with that status.
async fn cached_status(env: Env, status: ObjectStatus) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let w = Endpoint::connect(&env, "watcher_connection_id").await?;
    let wsub = subscribe(&env, &w, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    let _ = sg.write(Object::new(0, payload(&env, 0, 0)));
    let _ = sg.write(Object::status(1, status));
    let mut n = 2;
    if status == ObjectStatus::DoesNotExist {
        let _ = sg.write(Object::new(2, payload(&env, 0, 2)));
        n = 3;
    }
    sg.finish();
    env.step("the objects at the watcher");
    let relayed = if wsub.wait_count(n, T).await {
        format!("{n} objects relayed to a subscriber")
    } else {
        format!(
            "the subscriber received {} of the {n} objects",
            wsub.objects().len()
        )
    };
    let objs = fetch_group_0(&env).await?;
    let want = name(status);
    match objs.iter().find(|o| o.group_id == 0 && o.object_id == 1) {
        Some(o) if o.status == status => Ok(format!(
            "{relayed}; FETCH of group 0: {} with 0.1 {want}",
            fetched(&objs)
        )),
        other => Err(Failure::new(
            format!("object 0.1 with status {want} in the FETCH of group 0"),
            match other {
                Some(o) => format!("object 0.1 with status {}", name(o.status)),
                None => format!("no object 0.1 ({})", fetched(&objs)),
            },
            format!("{relayed}; the {want} status object was not returned from the cache"),
        )
        .into()),
    }
}

/// `fetch-cached-does-not-exist`.
pub async fn does_not_exist(env: Env) -> CheckOutput {
    cached_status(env, ObjectStatus::DoesNotExist).await
}

/// `fetch-cached-end-of-group`.
pub async fn end_of_group(env: Env) -> CheckOutput {
    cached_status(env, ObjectStatus::EndOfGroup).await
}

/// `fetch-cached-end-of-track`.
pub async fn end_of_track(env: Env) -> CheckOutput {
    cached_status(env, ObjectStatus::EndOfTrack).await
}
