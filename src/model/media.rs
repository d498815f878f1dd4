//! Media types of the universal queue, and small fixed maps over them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kind of a contact, and of the agent slot that can serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// A live phone call.
    Voice,
    /// A web chat.
    Chat,
    /// An email.
    Email,
    /// A fax.
    Fax,
    /// A live video call.
    Video,
    /// A recorded voicemail waiting for an agent.
    Voicemail,
    /// A caller who asked to be called back.
    Callback,
}

impl MediaType {
    /// Every media type, in their stable order.
    pub const ALL: [MediaType; 7] = [
        MediaType::Voice,
        MediaType::Chat,
        MediaType::Email,
        MediaType::Fax,
        MediaType::Video,
        MediaType::Voicemail,
        MediaType::Callback,
    ];
    /// Number of media types.
    pub const COUNT: usize = 7;

    /// Dense index of this media type.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The short stable code stored in the database and used in files.
    pub fn code(self) -> &'static str {
        match self {
            MediaType::Voice => "voice",
            MediaType::Chat => "chat",
            MediaType::Email => "email",
            MediaType::Fax => "fax",
            MediaType::Video => "video",
            MediaType::Voicemail => "voicemail",
            MediaType::Callback => "callback",
        }
    }
}

/// A string that is not a media type's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown media type {0:?} (expected voice, chat, email, fax, video, voicemail or callback)"
)]
pub struct UnknownMedia(pub String);

impl FromStr for MediaType {
    type Err = UnknownMedia;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MediaType::ALL
            .into_iter()
            .find(|m| m.code() == s)
            .ok_or_else(|| UnknownMedia(s.to_owned()))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A value per media type, stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MediaMap<T>(pub [T; MediaType::COUNT]);

impl<T> MediaMap<T> {
    /// The value for `media`.
    #[inline]
    pub fn get(&self, media: MediaType) -> &T {
        &self.0[media.index()]
    }

    /// The value for `media`, mutably.
    #[inline]
    pub fn get_mut(&mut self, media: MediaType) -> &mut T {
        &mut self.0[media.index()]
    }

    /// Pairs of media type and value.
    pub fn iter(&self) -> impl Iterator<Item = (MediaType, &T)> {
        MediaType::ALL.into_iter().zip(self.0.iter())
    }
}

/// A set of media types, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MediaSet(u8);

impl MediaSet {
    /// The empty set.
    pub const EMPTY: MediaSet = MediaSet(0);

    /// Whether `media` is in the set.
    #[inline]
    pub fn contains(self, media: MediaType) -> bool {
        self.0 & (1 << media.index()) != 0
    }

    /// Adds `media`.
    #[inline]
    pub fn insert(&mut self, media: MediaType) {
        self.0 |= 1 << media.index();
    }

    /// Removes `media`.
    #[inline]
    pub fn remove(&mut self, media: MediaType) {
        self.0 &= !(1 << media.index());
    }

    /// Whether the set is empty.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Members of both sets.
    #[inline]
    pub fn intersects(self, other: MediaSet) -> bool {
        self.0 & other.0 != 0
    }

    /// The media types in the set, in stable order.
    pub fn iter(self) -> impl Iterator<Item = MediaType> {
        MediaType::ALL
            .into_iter()
            .filter(move |m| self.contains(*m))
    }
}

impl FromIterator<MediaType> for MediaSet {
    fn from_iter<I: IntoIterator<Item = MediaType>>(iter: I) -> Self {
        let mut set = MediaSet::EMPTY;
        for media in iter {
            set.insert(media);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for media in MediaType::ALL {
            assert_eq!(media.code().parse::<MediaType>().unwrap(), media);
        }
        assert!("telex".parse::<MediaType>().is_err());
    }

    #[test]
    fn sets_hold_what_was_inserted() {
        let set: MediaSet = [MediaType::Voice, MediaType::Email].into_iter().collect();
        assert!(set.contains(MediaType::Voice));
        assert!(!set.contains(MediaType::Chat));
        assert_eq!(set.iter().count(), 2);
    }
}
