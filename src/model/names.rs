//! Interning of names (queues, agents, skills, tags) to dense ids.

use std::collections::HashMap;

/// A two-way map between names and dense ids, for one kind of id.
#[derive(Debug, Clone, Default)]
pub struct Names {
    by_name: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, assigning the next one if it is new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.by_name.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if known.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// The name of `id`, if assigned.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is known.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_reversible() {
        let mut names = Names::new();
        let es = names.intern("language=es");
        assert_eq!(names.intern("language=es"), es);
        let en = names.intern("language=en");
        assert_ne!(es, en);
        assert_eq!(names.name(en), Some("language=en"));
        assert_eq!(names.get("nope"), None);
    }
}
