//! Placement: which member owns a user, by rendezvous (highest random weight)
//! hashing of the user id over the live members' names. Every node computes
//! the same owner from the same member set, and a change of members moves
//! only the users of the members that came or went.

use sha2::{Digest, Sha256};

/// The weight of `member` for `user_id`: the first 8 bytes of
/// SHA-256(member ‖ 0 ‖ user id). Stable across builds and platforms, so
/// nodes of two releases agree during an upgrade.
fn weight(member: &str, user_id: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(member.as_bytes());
    hasher.update([0]);
    hasher.update(user_id.as_bytes());
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The member that owns `user_id`; `None` when there are no members. Ties
/// (a 2⁻⁶⁴ event) go to the smaller name, so every node agrees.
pub(crate) fn owner<'a>(user_id: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .map(|m| (weight(m, user_id), m))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, m)| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn the_owner_is_always_a_member_and_none_without_members() {
        assert_eq!(owner("u1", &[]), None);
        let members = names(3);
        for i in 0..100 {
            let o = owner(&format!("user-{i}"), &members).unwrap();
            assert!(members.iter().any(|m| m == o));
        }
    }

    #[test]
    fn users_spread_over_every_member() {
        let members = names(3);
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let o = owner(&format!("user-{i}"), &members).unwrap();
            counts[members.iter().position(|m| m == o).unwrap()] += 1;
        }
        for c in counts {
            assert!((800..=1200).contains(&c), "{counts:?}");
        }
    }

    proptest! {
        /// Removing a member moves only its users; adding one moves users
        /// only to it.
        #[test]
        fn a_membership_change_moves_only_the_users_of_the_member_that_changed(
            n in 2usize..6, gone in 0usize..6, users in proptest::collection::vec("[a-z0-9]{8,16}", 50)
        ) {
            let before = names(n);
            let gone = gone % n;
            let after: Vec<String> = before.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, m)| m.clone()).collect();
            for u in &users {
                let was = owner(u, &before).unwrap();
                let is = owner(u, &after).unwrap();
                if was != before[gone] {
                    prop_assert_eq!(was, is);
                }
                // The way back: adding the member moves users only to it.
                let back = owner(u, &before).unwrap();
                prop_assert!(back == is || back == before[gone]);
            }
        }
    }
}
