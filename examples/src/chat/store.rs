//! Conversations in process memory, bounded so a flood of new conversations
//! cannot grow the process without limit.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

/// At most this many conversations are kept; the oldest is dropped first.
const MAX_CONVERSATIONS: usize = 10_000;
/// At most this many turns are kept per conversation.
const MAX_TURNS: usize = 200;

/// One message of a conversation.
#[derive(Clone, Debug, Serialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: &'static str,
    /// What was said.
    pub content: String,
}

/// A conversation and its turns, oldest first.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Conversation {
    /// Its id.
    pub id: u64,
    /// Its turns.
    pub turns: Vec<Turn>,
}

/// Conversations by id.
#[derive(Clone, Default)]
pub struct ConversationStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    by_id: HashMap<u64, Conversation>,
    order: std::collections::VecDeque<u64>,
}

impl ConversationStore {
    /// Conversation `id` if it exists, or a new one when `id` is `None`.
    pub fn open(&self, id: Option<u64>) -> Option<u64> {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        match id {
            Some(id) => inner.by_id.contains_key(&id).then_some(id),
            None => {
                inner.next_id += 1;
                let id = inner.next_id;
                if inner.order.len() >= MAX_CONVERSATIONS
                    && let Some(oldest) = inner.order.pop_front()
                {
                    inner.by_id.remove(&oldest);
                }
                inner.order.push_back(id);
                inner.by_id.insert(
                    id,
                    Conversation {
                        id,
                        turns: Vec::new(),
                    },
                );
                Some(id)
            }
        }
    }

    /// Appends a user turn and the assistant's answer to conversation `id`;
    /// false if it is gone (dropped as the oldest).
    pub fn append(&self, id: u64, user: String, assistant: String) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let Some(conversation) = inner.by_id.get_mut(&id) else {
            return false;
        };
        conversation.turns.push(Turn {
            role: "user",
            content: user,
        });
        conversation.turns.push(Turn {
            role: "assistant",
            content: assistant,
        });
        let excess = conversation.turns.len().saturating_sub(MAX_TURNS);
        conversation.turns.drain(..excess);
        true
    }

    /// A copy of conversation `id`.
    pub fn get(&self, id: u64) -> Option<Conversation> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .get(&id)
            .cloned()
    }
}
