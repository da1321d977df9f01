//! `#[ai_optimized]`: checks the function against its arguments.
//!
//! The cache lives in a `static` typed by the answer, so the function must
//! be async, not generic, and return an owned answer that a static can
//! name; a limit that can fail a call needs a `Result` to fail into; and
//! `prompt` / `scope` must name plain arguments. Every refusal is reported
//! on its token, all in one build.

use quote::ToTokens;
use syn::{FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Type};

use crate::ai::{AiArgs, Checked, Shape};
use crate::args::Errors;
use crate::item::{self, MaybeFn};

/// An argument of the function as `prompt` / `scope` see it.
struct Argument<'a> {
    /// Its name, when the pattern is a plain identifier.
    ident: Option<&'a Ident>,
    pat: &'a Pat,
    ty: &'a Type,
}

/// Checks the function and the arguments against each other. Returns
/// `None` when something was refused (and pushed to `errors`).
pub(crate) fn validate(args: &AiArgs, function: &MaybeFn, errors: &mut Errors) -> Option<Checked> {
    let sig = &function.sig;
    item::require_async_and_concrete(sig, "ai_optimized", "answers", "annotate that", errors);
    let shape = match &sig.output {
        ReturnType::Default => {
            errors.push(syn::Error::new_spanned(
                &sig.ident,
                "`#[ai_optimized]` has nothing to cache: this function returns `()`; \
                 return the answer (`String`, `ChatResponse`, `ChatStream`, or a `Result` of one)",
            ));
            None
        }
        ReturnType::Type(_, ty) => check_return_type(ty, errors),
    };
    if shape.is_some_and(|shape| matches!(shape, Shape::Plain | Shape::Stream)) {
        for ident in args.failing() {
            errors.push(syn::Error::new_spanned(
                ident,
                format!(
                    "`{ident}` can fail a call, so the function must return `Result<_, E>` \
                     with `E: From<perf_runtime::ai::AiError>`"
                ),
            ));
        }
    }
    let (prompt, scope) = check_arguments(args, function, errors);
    Some(Checked {
        shape: shape?,
        prompt: prompt?,
        scope,
    })
}

/// The prompt argument (given or the only candidate) and the scope
/// argument, each checked to name a plain argument of the function.
fn check_arguments(
    args: &AiArgs,
    function: &MaybeFn,
    errors: &mut Errors,
) -> (Option<Ident>, Option<Ident>) {
    let arguments: Vec<Argument<'_>> = function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(_) => None,
            FnArg::Typed(typed) => Some(Argument {
                ident: match &*typed.pat {
                    Pat::Ident(pat) if pat.subpat.is_none() && pat.by_ref.is_none() => {
                        Some(&pat.ident)
                    }
                    _ => None,
                },
                pat: &typed.pat,
                ty: &typed.ty,
            }),
        })
        .collect();
    let names = arguments
        .iter()
        .filter_map(|argument| argument.ident.map(|ident| format!("`{ident}`")))
        .collect::<Vec<_>>();
    let names = if names.is_empty() {
        "it has none".to_owned()
    } else {
        format!("its arguments are {}", names.join(", "))
    };
    let find = |key: &str, wanted: &Ident, errors: &mut Errors| -> bool {
        if arguments.iter().any(|a| a.ident == Some(wanted)) {
            return true;
        }
        let message = match arguments.iter().find(|a| pattern_binds(a.pat, wanted)) {
            Some(argument) => format!(
                "`{key} = {wanted}` names a binding inside the pattern `{}`; `#[ai_optimized]` \
                 can only name a plain argument: write `{wanted}: {}` and take it apart in the body",
                compact(argument.pat),
                compact(argument.ty),
            ),
            None => format!("`{key} = {wanted}` names no argument of this function; {names}"),
        };
        errors.push(syn::Error::new_spanned(wanted, message));
        false
    };

    let scope = args
        .scope
        .as_ref()
        .filter(|scope| find("scope", scope, errors))
        .cloned();
    let prompt = match &args.prompt {
        Some(prompt) => {
            if !find("prompt", prompt, errors) {
                return (None, scope);
            }
            if args.scope.as_ref() == Some(prompt) {
                errors.push(syn::Error::new_spanned(
                    args.scope.as_ref(),
                    format!(
                        "`scope` and `prompt` both name `{prompt}`; the scope is what isolates \
                         entries (a user, tenant or conversation id), not the prompt"
                    ),
                ));
            }
            prompt.clone()
        }
        // A `prompt` or `scope` that was refused (its value, or naming no
        // argument) was reported; guessing on would only add noise.
        None if args.was_given("prompt") || (scope.is_none() && args.was_given("scope")) => {
            return (None, scope);
        }
        None => {
            let candidates: Vec<&Argument<'_>> = arguments
                .iter()
                .filter(|a| a.ident.is_none() || a.ident != args.scope.as_ref())
                .collect();
            match candidates.as_slice() {
                [only] => match only.ident {
                    Some(ident) => ident.clone(),
                    None => {
                        errors.push(syn::Error::new_spanned(
                            only.pat,
                            format!(
                                "`#[ai_optimized]` takes this argument as the prompt, but a \
                                 pattern has no name to read it by: write `prompt: {}` and take \
                                 it apart in the body",
                                compact(only.ty)
                            ),
                        ));
                        return (None, scope);
                    }
                },
                [] if args.scope.is_some() => {
                    errors.push(syn::Error::new_spanned(
                        args.scope.as_ref(),
                        "the only argument is the scope, so there is no prompt; \
                         `#[ai_optimized]` needs an argument holding the prompt",
                    ));
                    return (None, scope);
                }
                _ => {
                    errors.push(syn::Error::new_spanned(
                        &function.sig,
                        "`#[ai_optimized]` needs to know which argument is the prompt: \
                         add `prompt = <argument>`",
                    ));
                    return (None, scope);
                }
            }
        }
    };
    (Some(prompt), scope)
}

/// Source-like text of a pattern or type for a message: `Json<String>`,
/// not the spaced `Json < String >` a token stream prints.
fn compact(tokens: &dyn ToTokens) -> String {
    let spaced = tokens.to_token_stream().to_string();
    let chars: Vec<char> = spaced.chars().collect();
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '\'');
    let mut out = String::with_capacity(spaced.len());
    for (i, c) in chars.iter().enumerate() {
        if *c != ' ' {
            out.push(*c);
            if *c == ',' {
                out.push(' ');
            }
        } else if word(i.checked_sub(1).and_then(|j| chars.get(j))) && word(chars.get(i + 1)) {
            out.push(' ');
        }
    }
    out
}

/// Whether `pat` binds `ident` somewhere inside.
fn pattern_binds(pat: &Pat, ident: &Ident) -> bool {
    struct Finder<'a>(&'a Ident, bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_pat_ident(&mut self, pat: &'ast syn::PatIdent) {
            self.1 |= &pat.ident == self.0;
            syn::visit::visit_pat_ident(self, pat);
        }
    }
    let mut finder = Finder(ident, false);
    syn::visit::Visit::visit_pat(&mut finder, pat);
    finder.1
}

/// Refuses answers that cannot be kept in a static cache and tells apart
/// the four shapes the site serves.
fn check_return_type(ty: &Type, errors: &mut Errors) -> Option<Shape> {
    let refusal = if item::contains_impl_trait(ty) {
        Some(
            "`#[ai_optimized]` cannot cache an `impl Trait`; name the type \
             (`String`, `ChatResponse`, `ChatStream`)",
        )
    } else if item::contains_reference(ty) {
        Some(
            "`#[ai_optimized]` cannot cache a reference: return an owned answer \
             (`String` for `&str`)",
        )
    } else if matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty()) {
        Some(
            "`#[ai_optimized]` has nothing to cache: this function returns `()`; \
             return the answer (`String`, `ChatResponse`, `ChatStream`, or a `Result` of one)",
        )
    } else if item::mentions_self(ty) {
        Some(
            "`#[ai_optimized]` keeps its cache in a `static`, which cannot name `Self`; \
             replace `Self` with the type's name",
        )
    } else {
        None
    };
    if let Some(message) = refusal {
        errors.push(syn::Error::new_spanned(ty, message));
        return None;
    }
    let is_stream = |ty: &Type| last_segment(ty).is_some_and(|(name, _)| name == "ChatStream");
    Some(match last_segment(ty) {
        Some((name, _)) if name == "ChatStream" => Shape::Stream,
        Some((name, types))
            if name == "Result" && types.first().is_some_and(|ok| is_stream(ok)) =>
        {
            Shape::StreamResult
        }
        Some((name, _)) if name == "Result" => Shape::Result,
        _ => Shape::Plain,
    })
}

/// The last path segment's name and its type arguments (`T` and `E` of
/// `Result<T, E>`; `T` alone of an alias such as `io::Result<T>`).
pub(crate) fn last_segment(ty: &Type) -> Option<(String, Vec<&Type>)> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let segment = path.path.segments.last()?;
            let types = match &segment.arguments {
                PathArguments::AngleBracketed(angle) => angle
                    .args
                    .iter()
                    .filter_map(|arg| match arg {
                        GenericArgument::Type(ty) => Some(ty),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Some((segment.ident.to_string(), types))
        }
        Type::Paren(inner) => last_segment(&inner.elem),
        Type::Group(inner) => last_segment(&inner.elem),
        _ => None,
    }
}
