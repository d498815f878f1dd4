//! Relaxation over waiting time: what a criterion demands, and which tier levels are reachable,
//! after a contact has waited a while. Relaxation only ever loosens.

use std::time::Duration;

use crate::model::Level;

use super::spec::{Criterion, QueueSpec, RelaxAction};
use crate::model::SkillId;

/// One bit of a 128-bit key filter: agents whose filter lacks a required key's bit certainly
/// lack the key, so most ineligible agent/contact pairs are rejected with one AND.
#[inline]
pub fn key_bit(key: SkillId) -> u128 {
    1u128 << (key.0.wrapping_mul(0x9E37_79B9) >> 25)
}

/// The filter of keys a signature requires at any waiting time (criteria that a relaxation
/// step may drop are left out).
pub fn required_mask(queue: &QueueSpec, signature: &[Criterion]) -> u128 {
    signature
        .iter()
        .filter(|c| {
            !queue
                .relax
                .iter()
                .any(|step| matches!(step.action, RelaxAction::Drop { tag } if tag == c.tag))
        })
        .fold(0, |mask, c| mask | key_bit(c.key))
}

/// The minimum level `criterion` demands after `wait`, or `None` once it is dropped.
#[inline]
pub fn effective_min(queue: &QueueSpec, criterion: &Criterion, wait: Duration) -> Option<Level> {
    let mut min = criterion.min_level;
    for step in &queue.relax {
        if step.after > wait {
            break;
        }
        match step.action {
            RelaxAction::MinLevel { tag, level } if tag == criterion.tag => min = min.min(level),
            RelaxAction::Drop { tag } if tag == criterion.tag => return None,
            _ => {}
        }
    }
    Some(min)
}

/// The highest tier level reachable after `wait` (`u32::MAX`: all).
#[inline]
pub fn allowed_tier(queue: &QueueSpec, wait: Duration) -> u32 {
    let Some(base) = queue.max_tier_level else {
        return u32::MAX;
    };
    let mut allowed = base;
    if let Some(step) = queue.tier_step {
        let steps = wait.as_micros() / step.as_micros().max(1);
        allowed = allowed.saturating_add(u32::try_from(steps).unwrap_or(u32::MAX));
    }
    for step in &queue.relax {
        if step.after > wait {
            break;
        }
        if let RelaxAction::MaxTierLevel(level) = step.action {
            allowed = allowed.max(level);
        }
    }
    allowed
}

/// The waiting time at which the next tier level becomes reachable, if tier rules apply and
/// members above the current level exist.
pub fn next_tier_step(
    queue: &QueueSpec,
    wait: Duration,
    max_member_level: u32,
) -> Option<Duration> {
    let step = queue.tier_step?;
    if allowed_tier(queue, wait) >= max_member_level {
        return None;
    }
    let done = wait.as_micros() / step.as_micros().max(1);
    let next = (done + 1).checked_mul(step.as_micros())?;
    Some(Duration::from_micros(u64::try_from(next).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{QueueId, SkillId, TagId, TenantId};
    use crate::routing::spec::{Modifier, RelaxStep};

    fn language_queue() -> (QueueSpec, Criterion) {
        let mut q = QueueSpec::new(QueueId(0), TenantId(0));
        let lang = TagId(1);
        q.relax = vec![
            RelaxStep {
                after: Duration::from_secs(30),
                action: RelaxAction::MinLevel {
                    tag: lang,
                    level: Level::new(3).unwrap(),
                },
            },
            RelaxStep {
                after: Duration::from_secs(90),
                action: RelaxAction::Drop { tag: lang },
            },
        ];
        let c = Criterion {
            key: SkillId(7),
            tag: lang,
            min_level: Level::new(5).unwrap(),
            modifier: Modifier::Required,
        };
        (q, c)
    }

    #[test]
    fn after_30s_level_3_is_accepted_and_after_90s_the_language_is_dropped() {
        let (q, c) = language_queue();
        assert_eq!(
            effective_min(&q, &c, Duration::from_secs(29))
                .unwrap()
                .get(),
            5
        );
        assert_eq!(
            effective_min(&q, &c, Duration::from_secs(30))
                .unwrap()
                .get(),
            3
        );
        assert_eq!(effective_min(&q, &c, Duration::from_secs(90)), None);
    }

    #[test]
    fn relaxation_never_raises_a_level() {
        let (q, mut c) = language_queue();
        c.min_level = Level::new(2).unwrap();
        assert_eq!(
            effective_min(&q, &c, Duration::from_secs(60))
                .unwrap()
                .get(),
            2
        );
    }

    #[test]
    fn the_key_filter_leaves_out_criteria_that_relaxation_may_drop() {
        let (q, c) = language_queue();
        assert_eq!(required_mask(&q, &[c]), 0, "language is dropped after 90 s");
        let mut product = c;
        product.key = SkillId(3);
        product.tag = TagId(9);
        assert_eq!(required_mask(&q, &[c, product]), key_bit(SkillId(3)));
        let bits: std::collections::BTreeSet<u32> = (0..500)
            .map(|k| key_bit(SkillId(k)).trailing_zeros())
            .collect();
        assert!(
            bits.len() > 100,
            "500 keys spread over {} of 128 bits",
            bits.len()
        );
    }

    #[test]
    fn tier_rules_open_one_level_per_step() {
        let mut q = QueueSpec::new(QueueId(0), TenantId(0));
        assert_eq!(allowed_tier(&q, Duration::from_secs(1000)), u32::MAX);
        q.max_tier_level = Some(1);
        q.tier_step = Some(Duration::from_secs(10));
        assert_eq!(allowed_tier(&q, Duration::from_secs(9)), 1);
        assert_eq!(allowed_tier(&q, Duration::from_secs(10)), 2);
        assert_eq!(allowed_tier(&q, Duration::from_secs(25)), 3);
        assert_eq!(
            next_tier_step(&q, Duration::from_secs(25), 5),
            Some(Duration::from_secs(30))
        );
        assert_eq!(next_tier_step(&q, Duration::from_secs(25), 3), None);
    }

    #[test]
    fn penalty_rules_widen_at_their_time() {
        let mut q = QueueSpec::new(QueueId(0), TenantId(0));
        q.max_tier_level = Some(0);
        q.relax = vec![RelaxStep {
            after: Duration::from_secs(60),
            action: RelaxAction::MaxTierLevel(5),
        }];
        assert_eq!(allowed_tier(&q, Duration::from_secs(59)), 0);
        assert_eq!(allowed_tier(&q, Duration::from_secs(60)), 5);
    }
}
