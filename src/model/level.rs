//! Skill levels: 1 (novice) to 10 (expert).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A skill level from 1 to 10; constructing one validates the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Level(u8);

/// A number outside 1..=10 where a skill level was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("skill level {0} is outside 1 to 10")]
pub struct LevelError(pub i64);

impl Level {
    /// The lowest level (1): any agent with the skill qualifies.
    pub const MIN: Level = Level(1);
    /// The highest level (10).
    pub const MAX: Level = Level(10);

    /// A level, if `value` is within 1..=10.
    pub fn new(value: i64) -> Result<Self, LevelError> {
        if (1..=10).contains(&value) {
            Ok(Level(value as u8))
        } else {
            Err(LevelError(value))
        }
    }

    /// The level as a number.
    #[inline]
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Level {
    type Error = LevelError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Level::new(value)
    }
}

impl From<Level> for u8 {
    fn from(level: Level) -> u8 {
        level.0
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_to_ten_are_levels() {
        assert!(Level::new(0).is_err());
        assert!(Level::new(11).is_err());
        assert!(Level::new(-3).is_err());
        assert_eq!(Level::new(1).unwrap(), Level::MIN);
        assert_eq!(Level::new(10).unwrap(), Level::MAX);
    }

    #[test]
    fn levels_deserialize_with_validation() {
        #[derive(Deserialize)]
        struct S {
            level: Level,
        }
        assert_eq!(toml::from_str::<S>("level = 7").unwrap().level.get(), 7);
        let err = toml::from_str::<S>("level = 12").err().unwrap().to_string();
        assert!(err.contains("outside 1 to 10"), "{err}");
    }
}
