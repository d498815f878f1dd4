//! The index of waiting contacts.
//!
//! Contacts that share a queue, a media type, a priority and the same required criteria wait
//! in one bucket, ordered by arrival. Within a bucket the oldest contact is both the one with
//! the best claim and the most relaxed (relaxation only loosens with waiting time), so an agent
//! who cannot serve a bucket's head cannot serve anyone behind it. Each (queue, media) lane
//! keeps its buckets ordered by their heads, so a freed slot walks a lane from the best claim
//! down and stops at the first head it can serve.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};

use crate::model::{ContactId, MediaType, Priority, QueueId, Timestamp};

use super::spec::Criterion;

/// Required criteria, sorted: the part of a contact that decides who can serve it.
pub type Signature = SmallVec<[Criterion; 4]>;

/// Identifies a bucket in the slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketId(u32);

/// Order of bucket heads within a lane: higher priority, then earlier arrival, then lower id.
pub type HeadKey = (Reverse<Priority>, Timestamp, ContactId);

/// Contacts waiting with the same queue, media, priority and signature, in arrival order.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The queue.
    pub queue: QueueId,
    /// The media type.
    pub media: MediaType,
    /// The priority.
    pub priority: Priority,
    /// Required criteria shared by every contact here.
    pub signature: Signature,
    /// Filter of the keys the signature always requires.
    pub mask: u128,
    /// (arrival, id), sorted ascending.
    pub entries: VecDeque<(Timestamp, ContactId)>,
}

impl Bucket {
    fn head_key(&self) -> Option<HeadKey> {
        self.entries
            .front()
            .map(|(at, id)| (Reverse(self.priority), *at, *id))
    }

    /// The contact with the best claim in this bucket.
    pub fn head(&self) -> Option<(Timestamp, ContactId)> {
        self.entries.front().copied()
    }

    /// How many entries sort before `(arrival, id)`.
    pub fn rank_of(&self, arrival: Timestamp, id: ContactId) -> usize {
        self.entries.partition_point(|entry| *entry < (arrival, id))
    }
}

type BucketKey = (QueueId, MediaType, Priority, Signature);

/// What decides a contact's bucket.
#[derive(Debug, Clone, Copy)]
pub struct BucketClass<'a> {
    /// The queue.
    pub queue: QueueId,
    /// The media type.
    pub media: MediaType,
    /// The priority.
    pub priority: Priority,
    /// Required criteria.
    pub signature: &'a Signature,
    /// Filter of the keys the signature always requires.
    pub mask: u128,
}

/// Lanes of buckets for every (queue, media) pair.
#[derive(Debug, Default)]
pub struct Waiting {
    buckets: Vec<Option<Bucket>>,
    free_ids: Vec<u32>,
    by_key: FxHashMap<BucketKey, BucketId>,
    lanes: Vec<BTreeSet<(HeadKey, BucketId)>>,
    lane_counts: Vec<usize>,
    total: usize,
}

fn lane_index(queue: QueueId, media: MediaType) -> usize {
    queue.index() * MediaType::COUNT + media.index()
}

impl Waiting {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of waiting contacts.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Number of contacts waiting in a lane.
    pub fn lane_len(&self, queue: QueueId, media: MediaType) -> usize {
        self.lane_counts
            .get(lane_index(queue, media))
            .copied()
            .unwrap_or(0)
    }

    /// A bucket by id.
    pub fn bucket(&self, id: BucketId) -> Option<&Bucket> {
        self.buckets.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// Buckets of a lane, best head first.
    pub fn lane(
        &self,
        queue: QueueId,
        media: MediaType,
    ) -> impl Iterator<Item = (BucketId, &Bucket)> + '_ {
        self.lanes
            .get(lane_index(queue, media))
            .into_iter()
            .flat_map(|lane| lane.iter())
            .filter_map(|(_, id)| self.bucket(*id).map(|b| (*id, b)))
    }

    fn ensure_lane(&mut self, index: usize) {
        if self.lanes.len() <= index {
            self.lanes.resize_with(index + 1, BTreeSet::new);
            self.lane_counts.resize(index + 1, 0);
        }
    }

    /// Puts a contact in its bucket at its place (by arrival); returns the bucket.
    pub fn insert(
        &mut self,
        class: &BucketClass<'_>,
        arrival: Timestamp,
        id: ContactId,
    ) -> BucketId {
        let BucketClass {
            queue,
            media,
            priority,
            signature,
            mask,
        } = *class;
        let lane = lane_index(queue, media);
        self.ensure_lane(lane);
        let key: BucketKey = (queue, media, priority, signature.clone());
        let bucket_id = match self.by_key.get(&key) {
            Some(id) => *id,
            None => {
                let bucket = Bucket {
                    queue,
                    media,
                    priority,
                    signature: signature.clone(),
                    mask,
                    entries: VecDeque::new(),
                };
                let id = match self.free_ids.pop() {
                    Some(slot) => {
                        self.buckets[slot as usize] = Some(bucket);
                        BucketId(slot)
                    }
                    None => {
                        self.buckets.push(Some(bucket));
                        BucketId(self.buckets.len() as u32 - 1)
                    }
                };
                self.by_key.insert(key, id);
                id
            }
        };
        let Some(bucket) = self.buckets[bucket_id.0 as usize].as_mut() else {
            return bucket_id;
        };
        let old_head = bucket.head_key();
        // Arrivals almost always come last; returns and moves insert at their place.
        let entry = (arrival, id);
        if bucket.entries.back().is_none_or(|last| *last < entry) {
            bucket.entries.push_back(entry);
        } else {
            let at = bucket.entries.partition_point(|e| *e < entry);
            bucket.entries.insert(at, entry);
        }
        let new_head = bucket.head_key();
        if old_head != new_head {
            if let Some(old) = old_head {
                self.lanes[lane].remove(&(old, bucket_id));
            }
            if let Some(new) = new_head {
                self.lanes[lane].insert((new, bucket_id));
            }
        }
        self.lane_counts[lane] += 1;
        self.total += 1;
        bucket_id
    }

    /// Takes a contact out of its bucket; false if it was not there.
    pub fn remove(&mut self, bucket_id: BucketId, arrival: Timestamp, id: ContactId) -> bool {
        let Some(bucket) = self
            .buckets
            .get_mut(bucket_id.0 as usize)
            .and_then(Option::as_mut)
        else {
            return false;
        };
        let lane = lane_index(bucket.queue, bucket.media);
        let old_head = bucket.head_key();
        let Ok(at) = bucket.entries.binary_search(&(arrival, id)) else {
            return false;
        };
        bucket.entries.remove(at);
        let new_head = bucket.head_key();
        if old_head != new_head {
            if let Some(old) = old_head {
                self.lanes[lane].remove(&(old, bucket_id));
            }
            if let Some(new) = new_head {
                self.lanes[lane].insert((new, bucket_id));
            }
        }
        if bucket.entries.is_empty() {
            let key: BucketKey = (
                bucket.queue,
                bucket.media,
                bucket.priority,
                bucket.signature.clone(),
            );
            self.by_key.remove(&key);
            self.buckets[bucket_id.0 as usize] = None;
            self.free_ids.push(bucket_id.0);
        }
        self.lane_counts[lane] -= 1;
        self.total -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, SkillId, TagId};
    use crate::routing::spec::Modifier;

    fn sig(keys: &[u32]) -> Signature {
        keys.iter()
            .map(|k| Criterion {
                key: SkillId(*k),
                tag: TagId(*k),
                min_level: Level::MIN,
                modifier: Modifier::Required,
            })
            .collect()
    }

    #[test]
    fn lanes_order_buckets_by_priority_then_oldest_head() {
        let mut w = Waiting::new();
        let q = QueueId(0);
        let voice = MediaType::Voice;
        w.insert(
            &BucketClass {
                queue: q,
                media: voice,
                priority: Priority(0),
                signature: &sig(&[1]),
                mask: 0,
            },
            Timestamp(10),
            ContactId(1),
        );
        w.insert(
            &BucketClass {
                queue: q,
                media: voice,
                priority: Priority(0),
                signature: &sig(&[2]),
                mask: 0,
            },
            Timestamp(5),
            ContactId(2),
        );
        w.insert(
            &BucketClass {
                queue: q,
                media: voice,
                priority: Priority(3),
                signature: &sig(&[1]),
                mask: 0,
            },
            Timestamp(50),
            ContactId(3),
        );
        let heads: Vec<ContactId> = w.lane(q, voice).map(|(_, b)| b.head().unwrap().1).collect();
        assert_eq!(heads, vec![ContactId(3), ContactId(2), ContactId(1)]);
        assert_eq!(w.lane_len(q, voice), 3);
    }

    #[test]
    fn returning_contacts_take_their_old_place() {
        let mut w = Waiting::new();
        let q = QueueId(0);
        let s = sig(&[]);
        let b = w.insert(
            &BucketClass {
                queue: q,
                media: MediaType::Chat,
                priority: Priority(0),
                signature: &s,
                mask: 0,
            },
            Timestamp(10),
            ContactId(1),
        );
        w.insert(
            &BucketClass {
                queue: q,
                media: MediaType::Chat,
                priority: Priority(0),
                signature: &s,
                mask: 0,
            },
            Timestamp(20),
            ContactId(2),
        );
        assert!(w.remove(b, Timestamp(10), ContactId(1)));
        assert_eq!(w.bucket(b).unwrap().head().unwrap().1, ContactId(2));
        let b2 = w.insert(
            &BucketClass {
                queue: q,
                media: MediaType::Chat,
                priority: Priority(0),
                signature: &s,
                mask: 0,
            },
            Timestamp(10),
            ContactId(1),
        );
        assert_eq!(b, b2);
        assert_eq!(w.bucket(b).unwrap().head().unwrap().1, ContactId(1));
        assert_eq!(w.bucket(b).unwrap().rank_of(Timestamp(20), ContactId(2)), 1);
    }

    #[test]
    fn empty_buckets_are_freed_and_reused() {
        let mut w = Waiting::new();
        let q = QueueId(1);
        let b = w.insert(
            &BucketClass {
                queue: q,
                media: MediaType::Email,
                priority: Priority(0),
                signature: &sig(&[1]),
                mask: 0,
            },
            Timestamp(1),
            ContactId(1),
        );
        assert!(w.remove(b, Timestamp(1), ContactId(1)));
        assert!(!w.remove(b, Timestamp(1), ContactId(1)));
        assert!(w.bucket(b).is_none());
        assert_eq!(w.lane(q, MediaType::Email).count(), 0);
        let b2 = w.insert(
            &BucketClass {
                queue: q,
                media: MediaType::Email,
                priority: Priority(0),
                signature: &sig(&[9]),
                mask: 0,
            },
            Timestamp(1),
            ContactId(2),
        );
        assert_eq!(b, b2, "the slot is reused");
        assert_eq!(w.len(), 1);
    }
}
