//! A session as the process holds it: its messages, when it expires, and
//! (with Redis) how it stands against the copy in Redis, which is what lets
//! a write that lost a race, or that Redis never got, be merged without
//! losing or repeating a message.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::trim;
use crate::ai::ChatMessage;

/// Writes of unknown outcome remembered per session (older ones are
/// forgotten: a message could then be repeated, never lost).
#[cfg(feature = "redis")]
const MAX_ATTEMPTS: usize = 16;

/// One conversation in process (the L1 value, shared as `Arc<Session>`).
#[derive(Clone, Debug)]
pub(super) struct Session {
    /// Oldest first, at most `max_messages`.
    pub(super) messages: Vec<ChatMessage>,
    /// The end of its life: the last write plus the TTL.
    pub(super) expires_at: Instant,
    #[cfg(feature = "redis")]
    pub(super) sync: SyncState,
}

/// How a session stands against Redis.
#[cfg(feature = "redis")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SyncState {
    /// The token of the Redis version this session last matched; `None`:
    /// no version known (Redis had none, or was not reached).
    pub(super) head: Option<u64>,
    /// How many of the newest messages that version lacks.
    pub(super) unsynced: usize,
    /// Removed here after that version, and Redis not told yet.
    pub(super) cleared: bool,
    /// Writes sent since that version whose outcome is unknown (they failed
    /// or timed out, and may have landed): each one's token and how many of
    /// the newest messages it carried.
    pub(super) attempts: Vec<(u64, usize)>,
}

#[cfg(feature = "redis")]
impl SyncState {
    /// In step with the version `token`.
    pub(super) fn synced(token: u64) -> Self {
        SyncState {
            head: Some(token),
            ..SyncState::default()
        }
    }

    /// Whether Redis lacks something this session has.
    pub(super) fn dirty(&self) -> bool {
        self.unsynced > 0 || self.cleared || !self.attempts.is_empty()
    }

    /// Remembers a write of unknown outcome.
    pub(super) fn note_attempt(&mut self, token: u64) {
        if self.attempts.len() == MAX_ATTEMPTS {
            self.attempts.remove(0);
        }
        self.attempts.push((token, self.unsynced));
    }
}

impl Session {
    /// No messages, living until `expires_at`.
    pub(super) fn empty(expires_at: Instant) -> Self {
        Session {
            messages: Vec::new(),
            expires_at,
            #[cfg(feature = "redis")]
            sync: SyncState::default(),
        }
    }

    /// Adds `new` at the end and drops the oldest past `max`.
    pub(super) fn push(&mut self, new: Vec<ChatMessage>, max: usize) {
        #[cfg(feature = "redis")]
        {
            self.sync.unsynced += new.len();
        }
        self.messages.extend(new);
        trim::cap(&mut self.messages, max);
        #[cfg(feature = "redis")]
        {
            self.sync.unsynced = self.sync.unsynced.min(self.messages.len());
        }
    }

    /// The end of its life in Unix milliseconds (what Redis stores).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn expires_at_ms(&self) -> u64 {
        let now = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (wall + self.expires_at.saturating_duration_since(now)).as_millis() as u64
    }

    /// Time left to live.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn ttl_left(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }
}

#[cfg(feature = "redis")]
impl Session {
    /// The version Redis holds, in step with it.
    pub(super) fn from_stored(stored: super::codec::Decoded) -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let left = Duration::from_millis(stored.expires_at_ms.saturating_sub(wall));
        Session {
            messages: stored.messages,
            expires_at: Instant::now() + left,
            sync: SyncState::synced(stored.token),
        }
    }

    /// Another writer stored `theirs` since this session's version: take it
    /// and put on top what Redis lacks of ours (unless a write of ours that
    /// seemed to fail is what Redis holds). A removal made here wins over a
    /// version written before it.
    pub(super) fn rebase(&mut self, theirs: super::codec::Decoded, max: usize) {
        let landed = self
            .sync
            .attempts
            .iter()
            .rev()
            .find(|(token, _)| *token == theirs.token)
            .map(|&(_, carried)| carried);
        if self.sync.cleared && landed.is_none() {
            self.sync = SyncState {
                head: Some(theirs.token),
                unsynced: self.messages.len(),
                cleared: true,
                attempts: Vec::new(),
            };
            return;
        }
        let missing = landed
            .map_or(self.sync.unsynced, |carried| {
                self.sync.unsynced.saturating_sub(carried)
            })
            .min(self.messages.len());
        let ours = self.messages.split_off(self.messages.len() - missing);
        self.messages = theirs.messages;
        self.messages.extend(ours);
        trim::cap(&mut self.messages, max);
        self.sync = SyncState {
            head: Some(theirs.token),
            unsynced: missing.min(self.messages.len()),
            cleared: false,
            attempts: Vec::new(),
        };
    }

    /// Redis holds nothing where this session had a version (Redis lost
    /// it, or it expired there a moment earlier): all of it is to be
    /// written again.
    pub(super) fn rebase_on_absent(&mut self) {
        self.sync.head = None;
        self.sync.unsynced = self.messages.len();
        self.sync.attempts.clear();
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::super::codec;
    use super::*;

    fn texts(session: &Session) -> Vec<&str> {
        session
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect()
    }

    fn stored(token: u64, texts: &[&str]) -> codec::Decoded {
        let messages: Vec<_> = texts.iter().map(|t| ChatMessage::user(*t)).collect();
        codec::decode(
            codec::encode(&messages, token, u64::MAX / 2)
                .unwrap()
                .bytes(),
        )
        .unwrap()
    }

    fn session(texts: &[&str], sync: SyncState) -> Session {
        Session {
            messages: texts.iter().map(|t| ChatMessage::user(*t)).collect(),
            expires_at: Instant::now() + Duration::from_secs(60),
            sync,
        }
    }

    #[test]
    fn a_lost_race_puts_our_new_messages_on_theirs() {
        let mut ours = session(&["a", "b"], SyncState::synced(1));
        ours.push(vec![ChatMessage::user("mine")], 10);
        assert_eq!(ours.sync.unsynced, 1);
        ours.rebase(stored(2, &["a", "b", "theirs"]), 10);
        assert_eq!(texts(&ours), ["a", "b", "theirs", "mine"]);
        assert_eq!(ours.sync.head, Some(2));
        assert_eq!(ours.sync.unsynced, 1);
        assert!(ours.sync.dirty());
    }

    #[test]
    fn a_write_that_seemed_to_fail_but_landed_is_not_repeated() {
        // "x" was written by attempt 7 (which timed out but landed), then
        // "y" was appended while Redis was away.
        let mut ours = session(&["a", "x", "y"], SyncState::synced(1));
        ours.sync.unsynced = 1;
        ours.sync.note_attempt(7);
        ours.sync.unsynced = 2;
        ours.rebase(stored(7, &["a", "x"]), 10);
        assert_eq!(texts(&ours), ["a", "x", "y"]);
        assert_eq!(ours.sync.unsynced, 1);
        assert!(ours.sync.attempts.is_empty());
        // Had Redis kept the older version, both would go on top.
        let mut ours = session(&["a", "x", "y"], SyncState::synced(1));
        ours.sync.unsynced = 1;
        ours.sync.note_attempt(7);
        ours.sync.unsynced = 2;
        ours.rebase(stored(9, &["a", "z"]), 10);
        assert_eq!(texts(&ours), ["a", "z", "x", "y"]);
    }

    #[test]
    fn a_removal_here_wins_over_an_older_version_there() {
        let mut ours = session(
            &["after"],
            SyncState {
                head: Some(1),
                unsynced: 1,
                cleared: true,
                attempts: Vec::new(),
            },
        );
        ours.rebase(stored(5, &["old", "history"]), 10);
        assert_eq!(texts(&ours), ["after"]);
        assert_eq!(ours.sync.head, Some(5));
        assert!(ours.sync.dirty());
    }

    #[test]
    fn rebase_keeps_the_cap() {
        let mut ours = session(&["m1", "m2"], SyncState::synced(1));
        ours.sync.unsynced = 2;
        ours.rebase(stored(2, &["t1", "t2", "t3"]), 3);
        assert_eq!(texts(&ours), ["t3", "m1", "m2"]);
        assert_eq!(ours.sync.unsynced, 2);
    }

    #[test]
    fn absent_in_redis_means_everything_is_written_again() {
        let mut ours = session(&["a", "b"], SyncState::synced(3));
        ours.rebase_on_absent();
        assert_eq!(ours.sync.head, None);
        assert_eq!(ours.sync.unsynced, 2);
    }

    #[test]
    fn attempts_are_bounded() {
        let mut sync = SyncState::default();
        for token in 0..40 {
            sync.note_attempt(token);
        }
        assert_eq!(sync.attempts.len(), MAX_ATTEMPTS);
        assert_eq!(sync.attempts[0].0, 40 - MAX_ATTEMPTS as u64);
    }
}
