//! A lenient function parser: attributes, visibility and signature are
//! parsed, the body is kept as an untouched token group. Not parsing the body
//! keeps expansion cheap and keeps IDE completion working inside half-written
//! code (tokio's `ItemFn` and tracing's `MaybeItemFn` do the same).

use proc_macro2::{Delimiter, Group, TokenTree};
use syn::parse::ParseStream;
use syn::visit::Visit;
use syn::{Attribute, Signature, Token, Visibility};

/// What every attribute does with its input: its arguments parsed, the
/// function parsed, both checked, then the expansion. Errors are gathered
/// through all three steps, so one build shows every mistake; when there
/// is any, the item is emitted unchanged beside them (still defined for
/// IDE completion and the code that calls it).
///
/// `validate` returns `None` only after pushing an error.
pub(crate) fn expand_with<Args, Checked>(
    attribute: &'static str,
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
    parse: impl FnOnce(proc_macro2::TokenStream, &mut crate::args::Errors) -> Args,
    validate: impl FnOnce(&Args, &MaybeFn, &mut crate::args::Errors) -> Option<Checked>,
    emit: impl FnOnce(Args, MaybeFn, Checked) -> proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut errors = crate::args::Errors::default();
    let parsed = parse(args, &mut errors);
    let function = match MaybeFn::parse_or_report(attribute, &item, &mut errors) {
        Ok(function) => function,
        Err(output) => return output,
    };
    let checked = validate(&parsed, &function, &mut errors);
    match (errors.take(), checked) {
        (None, Some(checked)) => emit(parsed, function, checked),
        (Some(error), _) => crate::args::item_with_error(item, error),
        (None, None) => unreachable!("`#[{attribute}]`: validation fails only with an error"),
    }
}

pub(crate) struct MaybeFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Group,
}

impl MaybeFn {
    /// Parses `item` for `#[attribute]`. On failure returns what to emit
    /// instead: the item unchanged plus every error gathered so far.
    pub(crate) fn parse_or_report(
        attribute: &'static str,
        item: &proc_macro2::TokenStream,
        errors: &mut crate::args::Errors,
    ) -> Result<Self, proc_macro2::TokenStream> {
        let parser = |input: ParseStream<'_>| MaybeFn::parse_for(attribute, input);
        syn::parse::Parser::parse2(parser, item.clone()).map_err(|error| {
            errors.push(error);
            match errors.take() {
                Some(all) => crate::args::item_with_error(item.clone(), all),
                None => item.clone(),
            }
        })
    }

    /// Parses a function for `#[attribute]`, with errors that name the
    /// attribute and point at the token that is wrong.
    pub(crate) fn parse_for(attribute: &'static str, input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if !looks_like_fn(input) {
            let token: TokenTree = input.parse().map_err(|_| {
                syn::Error::new(
                    input.span(),
                    format!("`#[{attribute}]` goes on a function, but no item follows"),
                )
            })?;
            return Err(syn::Error::new(
                token.span(),
                format!(
                    "`#[{attribute}]` goes on a function (`fn` or `async fn`), not on this item"
                ),
            ));
        }
        let sig: Signature = input.parse()?;
        if input.peek(Token![;]) {
            let semi: Token![;] = input.parse()?;
            return Err(syn::Error::new(
                semi.span,
                format!("`#[{attribute}]` needs a function body; put it on the implementation"),
            ));
        }
        let body = match input.parse::<TokenTree>()? {
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => group,
            other => return Err(syn::Error::new(other.span(), "expected a function body")),
        };
        Ok(MaybeFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// Whether the next tokens start a function signature.
fn looks_like_fn(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    loop {
        if fork.peek(Token![fn]) {
            return true;
        }
        let qualifier = fork.peek(Token![const])
            || fork.peek(Token![async])
            || fork.peek(Token![unsafe])
            || fork.peek(Token![extern])
            || fork.peek(syn::LitStr);
        if !qualifier || fork.parse::<TokenTree>().is_err() {
            return false;
        }
    }
}

/// Whether a type mentions `impl Trait` anywhere; such a type cannot be
/// written in a `let` binding, so the expansion omits its typed fake return.
pub(crate) fn contains_impl_trait(ty: &syn::Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// Refuses what a typed cache per function cannot take: a function that is
/// not `async`, or one with type or const generics. `attribute` names the
/// attribute; `what` completes "caches what an `async fn` ..."; `wrapper`
/// says what to do with the non-generic wrapper.
pub(crate) fn require_async_and_concrete(
    sig: &Signature,
    attribute: &str,
    what: &str,
    wrapper: &str,
    errors: &mut crate::args::Errors,
) {
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "`#[{attribute}]` caches what an `async fn` {what}; make this function `async`"
            ),
        ));
    }
    if let Some(param) = sig
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
    {
        errors.push(syn::Error::new_spanned(
            param,
            format!(
                "`#[{attribute}]` keeps one typed cache per function, so it cannot be generic; \
                 write a non-generic wrapper and {wrapper}"
            ),
        ));
    }
}

/// Whether `Self` appears anywhere in `ty` (a token walk: the printed
/// form of a type has no reliable spacing to split on).
pub(crate) fn mentions_self(ty: &syn::Type) -> bool {
    fn walk(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "Self",
            proc_macro2::TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(quote::ToTokens::to_token_stream(ty))
}

/// Whether `ty` holds a reference or a lifetime: not an owned value.
pub(crate) fn contains_reference(ty: &syn::Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::visit_type(&mut finder, ty);
    finder.0
}
