//! MoQ priorities (§7) as QUIC stream priorities.

use moqlink_model::GroupOrder;

/// The QUIC send priority (higher is sent first) for a stream of `group`: subscriber priority
/// first, then publisher priority (both: lower number = more important), then the group order
/// (ascending: older groups first; descending: newer groups first), by the group ID's low 15 bits.
pub fn stream_priority(subscriber: u8, publisher: u8, order: GroupOrder, group: u64) -> i32 {
    let sub = i32::from(255 - subscriber) << 23;
    let publ = i32::from(255 - publisher) << 15;
    let g = (group & 0x7fff) as i32;
    let rank = match order {
        GroupOrder::Descending => g,
        GroupOrder::Ascending | GroupOrder::Original => 0x7fff - g,
    };
    sub | publ | rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_numbers_are_more_important() {
        use GroupOrder::*;
        // Subscriber priority dominates publisher priority and group.
        assert!(stream_priority(0, 255, Ascending, 9) > stream_priority(1, 0, Ascending, 0));
        // Then publisher priority.
        assert!(stream_priority(5, 1, Ascending, 9) > stream_priority(5, 2, Ascending, 0));
        // Then group order.
        assert!(stream_priority(5, 5, Ascending, 3) > stream_priority(5, 5, Ascending, 4));
        assert!(stream_priority(5, 5, Descending, 4) > stream_priority(5, 5, Descending, 3));
        // Extremes stay inside i32.
        assert!(stream_priority(0, 0, Descending, u64::MAX) > 0);
        assert!(stream_priority(255, 255, Ascending, 0x7fff) >= 0);
    }
}
