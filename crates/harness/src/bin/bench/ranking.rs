//! Which follower should take over: the one ranked first to campaign (protocol: Election
//! timing), and the share of takeovers it won.
//!
//! The core ranks the members in id order, round the ring, starting after the leader a follower
//! last heard and skipping it; with no leader heard since boot, from the lowest id. The node
//! gives every member the id of its place among the sorted member names
//! (`tenure_node::members`), so the benchmark can compute the same rank from the names alone.

use crate::results::Takeover;

/// The member ranked first after `last_leader` (`None`: a cold start, no leader heard), among
/// `members` in any order; `None` if there is no other member, or `last_leader` is none of
/// them.
pub(crate) fn first_ranked<'a>(
    members: &'a [String],
    last_leader: Option<&str>,
) -> Option<&'a str> {
    let mut sorted: Vec<&'a str> = members.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let Some(leader) = last_leader else {
        return sorted.first().copied();
    };
    let position = sorted.iter().position(|name| *name == leader)?;
    if sorted.len() < 2 {
        return None;
    }
    // Round the ring: after the last member comes the first.
    sorted.get((position + 1) % sorted.len()).copied()
}

/// How many of `takeovers` went to the first-ranked member, out of how many.
pub(crate) fn first_ranked_share(members: &[String], takeovers: &[Takeover]) -> (usize, usize) {
    let won = takeovers
        .iter()
        .filter(|takeover| {
            first_ranked(members, takeover.from.as_deref()) == Some(takeover.to.as_str())
        })
        .count();
    (won, takeovers.len())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_first_ranked_is_the_next_member_round_the_ring_after_the_leader() {
        let members = names(&["n3", "n1", "n2"]);
        assert_eq!(first_ranked(&members, Some("n1")), Some("n2"));
        assert_eq!(first_ranked(&members, Some("n2")), Some("n3"));
        // Round the ring, skipping the dead leader.
        assert_eq!(first_ranked(&members, Some("n3")), Some("n1"));
    }

    #[test]
    fn at_a_cold_start_the_lowest_id_is_ranked_first() {
        let members = names(&["n2", "n3", "n1"]);
        assert_eq!(first_ranked(&members, None), Some("n1"));
    }

    #[test]
    fn ids_follow_the_sorted_names_not_their_numbers() {
        // "n10" sorts before "n2", so it has the lower id.
        let members = names(&["n1", "n2", "n10"]);
        assert_eq!(first_ranked(&members, Some("n1")), Some("n10"));
        assert_eq!(first_ranked(&members, Some("n10")), Some("n2"));
    }

    #[test]
    fn nobody_is_ranked_without_another_member_or_after_a_stranger() {
        assert_eq!(first_ranked(&names(&["n1"]), Some("n1")), None);
        assert_eq!(first_ranked(&names(&["n1", "n2"]), Some("x")), None);
        assert_eq!(first_ranked(&[], None), None);
    }

    #[test]
    fn the_share_counts_takeovers_by_the_first_ranked_member() {
        let members = names(&["n1", "n2", "n3"]);
        let takeover = |from: Option<&str>, to: &str| Takeover {
            took: Duration::from_millis(1),
            from: from.map(ToString::to_string),
            to: to.to_string(),
            token_step: 1,
        };
        let takeovers = [
            takeover(Some("n1"), "n2"),
            takeover(Some("n2"), "n3"),
            takeover(Some("n3"), "n2"),
            takeover(None, "n1"),
        ];
        assert_eq!(first_ranked_share(&members, &takeovers), (3, 4));
        assert_eq!(first_ranked_share(&members, &[]), (0, 0));
    }
}
