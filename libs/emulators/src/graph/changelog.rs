//! The append-only change log delta rounds read: every change to the tenant as one entry,
//! a delta token being a position in it (docs/graph.md §3).
//!
//! Each entry links to the next entry about the same object (or the same group member), so a
//! round can tell in constant time per link whether a later change supersedes an entry and
//! report each object once instead of once per change.

use std::collections::{HashMap, VecDeque};

use super::objects::Kind;

/// Entries kept; beyond it the oldest quarter is dropped, and delta tokens that point into the
/// dropped part are refused as expired, as Entra's are after their lifetime.
pub(crate) const MAX_ENTRIES: usize = 250_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Created,
    /// The names of the properties that changed.
    Updated(Vec<String>),
    /// A user moved to deleted items (restorable).
    SoftDeleted,
    Restored,
    /// Gone for good (users purged, groups deleted).
    HardDeleted,
    MemberAdded {
        member: String,
        kind: Kind,
    },
    MemberRemoved {
        member: String,
        kind: Kind,
    },
}

impl Event {
    fn member(&self) -> Option<&str> {
        match self {
            Event::MemberAdded { member, .. } | Event::MemberRemoved { member, .. } => Some(member),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Which resource changed: a user, or a group (its properties or its members).
    pub(crate) kind: Kind,
    /// The object's id (the group's, for membership events).
    pub(crate) id: String,
    pub(crate) event: Event,
    /// The position of the next entry about the same object, or the same group member.
    pub(crate) next_same: Option<u64>,
}

type ChainKey = (Kind, String, Option<String>);

#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    entries: VecDeque<Entry>,
    /// Position of `entries[0]`.
    first: u64,
    /// Position of the last entry per chain key.
    last: HashMap<ChainKey, u64>,
}

impl ChangeLog {
    /// The position the next entry will take; a deltaLink issued now points here.
    pub(crate) fn position(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The oldest position still held.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    pub(crate) fn get(&self, position: u64) -> Option<&Entry> {
        let index = usize::try_from(position.checked_sub(self.first)?).ok()?;
        self.entries.get(index)
    }

    pub(crate) fn push(&mut self, kind: Kind, id: &str, event: Event) {
        let position = self.position();
        let key = (kind, id.to_owned(), event.member().map(str::to_owned));
        if let Some(previous) = self.last.insert(key, position)
            && let Some(index) = previous
                .checked_sub(self.first)
                .and_then(|i| usize::try_from(i).ok())
            && let Some(entry) = self.entries.get_mut(index)
        {
            entry.next_same = Some(position);
        }
        self.entries.push_back(Entry {
            kind,
            id: id.to_owned(),
            event,
            next_same: None,
        });
        if self.entries.len() > MAX_ENTRIES {
            let drop = MAX_ENTRIES / 4;
            self.entries.drain(..drop);
            self.first += drop as u64;
            let first = self.first;
            self.last.retain(|_, position| *position >= first);
        }
    }

    /// Whether an entry after `position` and before `end` about the same chain satisfies
    /// `counts`: then the entry at `position` need not be reported.
    pub(crate) fn superseded(
        &self,
        position: u64,
        end: u64,
        counts: impl Fn(&Entry) -> bool,
    ) -> bool {
        let mut next = self.get(position).and_then(|e| e.next_same);
        while let Some(at) = next.filter(|at| *at < end) {
            let Some(entry) = self.get(at) else {
                return false;
            };
            if counts(entry) {
                return true;
            }
            next = entry.next_same;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_link_changes_of_the_same_object() {
        let mut log = ChangeLog::default();
        log.push(Kind::User, "u1", Event::Created);
        log.push(Kind::User, "u2", Event::Created);
        log.push(Kind::User, "u1", Event::Updated(vec!["mail".to_owned()]));
        log.push(
            Kind::Group,
            "g1",
            Event::MemberAdded {
                member: "u1".to_owned(),
                kind: Kind::User,
            },
        );
        assert_eq!(log.position(), 4);
        assert_eq!(log.get(0).and_then(|e| e.next_same), Some(2));
        assert!(log.superseded(0, 4, |_| true));
        // The later change is outside the range.
        assert!(!log.superseded(0, 2, |_| true));
        // The later change does not count.
        assert!(!log.superseded(0, 4, |e| e.event == Event::Created));
        assert!(!log.superseded(1, 4, |_| true));
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = ChangeLog::default();
        for i in 0..(MAX_ENTRIES + 1) {
            log.push(Kind::User, &format!("u{}", i % 10), Event::Created);
        }
        assert_eq!(log.position(), MAX_ENTRIES as u64 + 1);
        assert!(log.first() > 0);
        assert!(log.get(0).is_none());
        assert!(log.get(log.position() - 1).is_some());
    }
}
