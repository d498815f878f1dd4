//! Newtype ids. Names (strings) live in [`super::Names`]; the cores work on these.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The id as an index into dense tables.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A client (tenant): the business that owns queues, agents and contacts.
    TenantId(u32), "tenant#"
);
id_type!(
    /// A queue of the universal queue (one per service/script a client offers).
    QueueId(u32), "queue#"
);
id_type!(
    /// An agent, who owns media slots.
    AgentId(u32), "agent#"
);
id_type!(
    /// One customer interaction of any media type; assigned by the store.
    ContactId(u64), "contact#"
);
id_type!(
    /// A matchable key: a skill (`mortgage`) or an attribute value (`language=es`).
    SkillId(u32), "skill#"
);
id_type!(
    /// The name a criterion came from (`language`), which relaxation rules refer to.
    TagId(u32), "tag#"
);
id_type!(
    /// A customer as known to a tenant (a stable hash of the tenant's customer reference).
    CustomerId(u64), "customer#"
);

impl CustomerId {
    /// A stable id for a tenant's customer reference (FNV-1a, identical across runs and builds).
    pub fn from_reference(tenant: TenantId, reference: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in tenant.0.to_le_bytes().iter().chain(reference.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        CustomerId(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_stable_and_scoped_by_tenant() {
        let a = CustomerId::from_reference(TenantId(1), "C-991");
        assert_eq!(a, CustomerId::from_reference(TenantId(1), "C-991"));
        assert_ne!(a, CustomerId::from_reference(TenantId(2), "C-991"));
        assert_ne!(a, CustomerId::from_reference(TenantId(1), "C-992"));
    }
}
