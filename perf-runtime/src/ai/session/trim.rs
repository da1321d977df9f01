//! What a session keeps ([`cap`]) and what of it goes to the model
//! ([`fit`]). Pure functions over messages: the store calls them, the tests
//! pin their edges.
//!
//! Token counts are estimates, the same as
//! [`ChatRequest::estimated_prompt_tokens`](crate::ai::ChatRequest::estimated_prompt_tokens):
//! four tokens of framing per message plus about one per four characters.

use crate::ai::chat::estimate_tokens;
use crate::ai::{ChatMessage, Role};

/// Estimated tokens of `message` in a prompt.
pub(crate) fn message_tokens(message: &ChatMessage) -> u64 {
    4 + estimate_tokens(&message.content)
}

/// Drops messages until at most `max` remain: the oldest non-system ones
/// first, then, only if system messages alone are over `max`, the oldest
/// system ones. Order is kept.
pub(crate) fn cap(messages: &mut Vec<ChatMessage>, max: usize) {
    let excess = messages.len().saturating_sub(max);
    if excess == 0 {
        return;
    }
    let others = messages.iter().filter(|m| m.role != Role::System).count();
    let mut drop_others = excess.min(others);
    let mut drop_systems = excess - drop_others;
    messages.retain(|m| {
        let budget = if m.role == Role::System {
            &mut drop_systems
        } else {
            &mut drop_others
        };
        if *budget > 0 {
            *budget -= 1;
            false
        } else {
            true
        }
    });
}

/// The context for a model call under `budget` estimated tokens: every
/// system message first (in order), then the longest run of the most
/// recent other messages that fits in what is left, in order.
///
/// A run never starts with a tool result, which would answer a call no
/// longer in the context (providers refuse that). When not even the newest
/// message fits (the system messages alone may be over budget), the newest
/// user message is kept anyway: a prompt without the question is of no use,
/// so this is the one case where the result exceeds `budget`.
pub(crate) fn fit(messages: &[ChatMessage], budget: u64) -> Vec<ChatMessage> {
    let (systems, others): (Vec<&ChatMessage>, Vec<&ChatMessage>) =
        messages.iter().partition(|m| m.role == Role::System);
    let system_tokens: u64 = systems.iter().map(|m| message_tokens(m)).sum();
    let mut start = others.len();
    if let Some(mut left) = budget.checked_sub(system_tokens) {
        while start > 0 {
            let cost = message_tokens(others[start - 1]);
            if cost > left {
                break;
            }
            left -= cost;
            start -= 1;
        }
    }
    while start < others.len() && others[start].role == Role::Tool {
        start += 1;
    }
    let mut context: Vec<ChatMessage> = systems.into_iter().cloned().collect();
    if start < others.len() {
        context.extend(others[start..].iter().map(|m| (*m).clone()));
    } else if let Some(question) = others.iter().rev().find(|m| m.role == Role::User) {
        context.push((*question).clone());
    }
    context
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tokens(messages: &[ChatMessage]) -> u64 {
        messages.iter().map(message_tokens).sum()
    }

    /// A message of exactly `n` estimated tokens (n >= 4).
    fn sized(role: Role, n: u64, tag: &str) -> ChatMessage {
        let chars = (n - 4) as usize * 4;
        let mut content = tag.to_owned();
        content.push_str(&"x".repeat(chars.saturating_sub(tag.len())));
        let message = ChatMessage::new(role, content);
        assert_eq!(message_tokens(&message), n);
        message
    }

    fn contents(messages: &[ChatMessage]) -> Vec<&str> {
        messages.iter().map(|m| &m.content[..2]).collect()
    }

    #[test]
    fn estimate_matches_chat_request() {
        let messages = vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("hello there"),
        ];
        let request = crate::ai::ChatRequest::new("m", messages.clone());
        assert_eq!(tokens(&messages), request.estimated_prompt_tokens());
    }

    #[test]
    fn cap_drops_oldest_non_system_first() {
        let mut messages = vec![
            ChatMessage::system("s1"),
            ChatMessage::user("u1"),
            ChatMessage::assistant("a1"),
            ChatMessage::user("u2"),
            ChatMessage::system("s2"),
            ChatMessage::assistant("a2"),
        ];
        cap(&mut messages, 6);
        assert_eq!(messages.len(), 6, "at the cap nothing is dropped");
        cap(&mut messages, 4);
        let kept: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(kept, ["s1", "u2", "s2", "a2"]);
        cap(&mut messages, 2);
        let kept: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(kept, ["s1", "s2"]);
        cap(&mut messages, 1);
        let kept: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            kept,
            ["s2"],
            "system messages alone over the cap: oldest dropped"
        );
    }

    #[test]
    fn fit_keeps_system_and_the_newest_run() {
        let messages = vec![
            sized(Role::System, 10, "s1"),
            sized(Role::User, 20, "u1"),
            sized(Role::Assistant, 20, "a1"),
            sized(Role::User, 20, "u2"),
            sized(Role::Assistant, 20, "a2"),
        ];
        // Everything fits exactly.
        assert_eq!(fit(&messages, 90), messages);
        // One token short: the oldest other message goes.
        assert_eq!(contents(&fit(&messages, 89)), ["s1", "a1", "u2", "a2"]);
        assert_eq!(contents(&fit(&messages, 50)), ["s1", "u2", "a2"]);
        assert_eq!(contents(&fit(&messages, 30)), ["s1", "a2"]);
        // The newest does not fit: the newest user message anyway.
        assert_eq!(contents(&fit(&messages, 29)), ["s1", "u2"]);
        // System messages alone over budget.
        assert_eq!(contents(&fit(&messages, 5)), ["s1", "u2"]);
        assert_eq!(contents(&fit(&messages, 0)), ["s1", "u2"]);
        assert!(fit(&[], 100).is_empty());
    }

    #[test]
    fn fit_moves_system_messages_to_the_front() {
        let messages = vec![
            sized(Role::User, 10, "u1"),
            sized(Role::System, 10, "s1"),
            sized(Role::Assistant, 10, "a1"),
        ];
        assert_eq!(contents(&fit(&messages, 30)), ["s1", "u1", "a1"]);
        assert_eq!(contents(&fit(&messages, 20)), ["s1", "a1"]);
    }

    #[test]
    fn fit_never_starts_with_a_tool_result() {
        let messages = vec![
            sized(Role::User, 10, "u1"),
            sized(Role::Assistant, 10, "a1"),
            sized(Role::Tool, 10, "t1"),
            sized(Role::Assistant, 10, "a2"),
        ];
        assert_eq!(contents(&fit(&messages, 30)), ["a1", "t1", "a2"]);
        assert_eq!(contents(&fit(&messages, 20)), ["a2"]);
        // Only the tool result and the answer fit, and no user message exists
        // after the cut: the newest user message is the fallback.
        let only_tool = vec![sized(Role::User, 50, "u1"), sized(Role::Tool, 10, "t1")];
        assert_eq!(contents(&fit(&only_tool, 15)), ["u1"]);
        let no_user = vec![sized(Role::System, 10, "s1"), sized(Role::Tool, 10, "t1")];
        assert_eq!(contents(&fit(&no_user, 15)), ["s1"]);
    }

    fn message() -> impl Strategy<Value = ChatMessage> {
        (
            prop_oneof![
                Just(Role::System),
                Just(Role::User),
                Just(Role::Assistant),
                Just(Role::Tool)
            ],
            "[a-z ]{0,80}",
        )
            .prop_map(|(role, content)| ChatMessage::new(role, content))
    }

    proptest! {
        #[test]
        fn fit_is_an_ordered_suffix_within_budget(
            messages in proptest::collection::vec(message(), 0..30),
            budget in 0u64..400,
        ) {
            let context = fit(&messages, budget);
            let systems: Vec<_> = messages.iter().filter(|m| m.role == Role::System).cloned().collect();
            let others: Vec<_> = messages.iter().filter(|m| m.role != Role::System).cloned().collect();
            prop_assert_eq!(&context[..systems.len()], &systems[..]);
            let rest = &context[systems.len()..];
            let newest_user = others.iter().rev().find(|m| m.role == Role::User);
            // The documented fallback: only the newest user message.
            let fallback = rest.len() == 1 && newest_user == Some(&rest[0]);
            if !fallback {
                prop_assert!(tokens(&context) <= budget || rest.is_empty());
                prop_assert!(others.ends_with(rest), "a suffix of the conversation, in order");
                prop_assert!(rest.first().is_none_or(|m| m.role != Role::Tool));
            }
            if rest.is_empty() {
                prop_assert!(newest_user.is_none(), "a user message is always kept");
            }
            if tokens(&messages) <= budget && others.first().is_none_or(|m| m.role != Role::Tool) {
                prop_assert_eq!(context.len(), messages.len(), "everything fits: everything kept");
            }
        }

        #[test]
        fn cap_keeps_at_most_max_and_the_newest(
            messages in proptest::collection::vec(message(), 0..30),
            max in 1usize..20,
        ) {
            let mut capped = messages.clone();
            cap(&mut capped, max);
            prop_assert_eq!(capped.len(), messages.len().min(max));
            let systems = messages.iter().filter(|m| m.role == Role::System).count();
            if systems < max {
                prop_assert_eq!(capped.last(), messages.last(), "the newest message stays");
            }
            let kept_systems = capped.iter().filter(|m| m.role == Role::System).count();
            prop_assert_eq!(kept_systems, systems.min(max));
        }
    }
}
