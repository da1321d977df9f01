//! `#[profile]`: parse → validate → emit.
//!
//! ```text
//! #[profile(name = "..", level = "..", fields(..), crate = "..")]
//! ```
//!
//! The expansion keeps the signature and wraps the body so that early
//! `return` and `?` are measured too: an `async move` block for async fns, a
//! closure called once for sync fns. All the work is done by
//! `__private::ProfileSite` in the runtime.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{LitStr, ReturnType};

use crate::args::{self, Errors};
use crate::item::{self, MaybeFn};

const ACCEPTED: &[&str] = &["name", "level", "fields", "crate"];
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

#[derive(Default)]
struct ProfileArgs {
    name: Option<LitStr>,
    level: Option<syn::Ident>,
    fields: Option<TokenStream>,
    krate: Option<syn::Path>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    crate::item::expand_with(
        "profile",
        args,
        item,
        parse_args,
        |_, function, errors| {
            validate(function, errors);
            Some(())
        },
        |parsed, function, ()| emit(parsed, function),
    )
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> ProfileArgs {
    let mut parsed = ProfileArgs::default();
    args::parse_arguments(args, "profile", ACCEPTED, errors, |name, _, meta| {
        Some(match name {
            "name" => parse_name(meta).map(|name| parsed.name = Some(name)),
            "level" => parse_level(meta).map(|level| parsed.level = Some(level)),
            "fields" => parse_fields(meta).map(|fields| parsed.fields = Some(fields)),
            "crate" => args::crate_path(meta).map(|path| parsed.krate = Some(path)),
            _ => return None,
        })
    });
    parsed
}

fn parse_name(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let name = args::string_value(meta, "name = \"chat.send\"")?;
    if name.value().trim().is_empty() {
        return Err(syn::Error::new(
            name.span(),
            "the profile name is empty; give a short, stable name such as `name = \"chat.send\"`",
        ));
    }
    Ok(name)
}

fn parse_level(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::Ident> {
    let level = args::string_value(meta, "level = \"debug\"")?;
    let value = level.value();
    if !LEVELS.contains(&value.as_str()) {
        return Err(syn::Error::new(
            level.span(),
            format!(
                "unknown level `{value}`; expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\""
            ),
        ));
    }
    Ok(syn::Ident::new(&value.to_uppercase(), level.span()))
}

fn parse_fields(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<TokenStream> {
    if !meta.input.peek(syn::token::Paren) {
        return Err(
            meta.error("`fields` takes a list of span fields, e.g. `fields(user_id = %user_id)`")
        );
    }
    args::parenthesized_tokens(meta)
}

fn validate(function: &MaybeFn, errors: &mut Errors) {
    if let Some(constness) = &function.sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "`#[profile]` cannot measure a `const fn`: remove `const` or the attribute",
        ));
    }
}

fn emit(args: ProfileArgs, function: MaybeFn) -> TokenStream {
    let krate = args.krate.unwrap_or_else(args::default_crate_path);
    let name = match args.name {
        Some(name) => name,
        None => LitStr::new(&function.sig.ident.to_string(), function.sig.ident.span()),
    };
    let level = args
        .level
        .unwrap_or_else(|| syn::Ident::new("INFO", proc_macro2::Span::call_site()));
    let fields = args.fields.map(|fields| quote!(, #fields));
    let MaybeFn {
        attrs,
        vis,
        sig,
        body,
    } = function;

    let fake_return = fake_return(&sig.output);
    let run = if sig.asyncness.is_some() {
        quote! {
            #krate::__private::Instrument::instrument(
                async move { #fake_return #body },
                __perf_span,
            ).await
        }
    } else {
        quote! {{
            let __perf_entered = __perf_span.enter();
            #krate::__private::call_once(move || { #fake_return #body })
        }}
    };

    quote! {
        #(#attrs)*
        #vis #sig {
            static __PERF_SITE: #krate::__private::ProfileSite =
                #krate::__private::ProfileSite::new(#name, ::core::module_path!());
            let __perf_span = #krate::__private::tracing::span!(
                target: ::core::module_path!(),
                #krate::__private::tracing::Level::#level,
                #name
                #fields
            );
            let __perf_call = __PERF_SITE.start();
            let __perf_out = #run;
            {
                #[allow(unused_imports)]
                use #krate::__private::{OtherOutcome as _, ResultOutcome as _};
                __perf_call.finish((&#krate::__private::OutcomeProbe(&__perf_out)).perf_outcome());
            }
            __perf_out
        }
    }
}

/// A never-taken `return` of the declared type, so type inference inside the
/// wrapped body (`?`, `.into()`) follows the user's signature.
pub(crate) fn fake_return(output: &ReturnType) -> TokenStream {
    let (ty, span) = match output {
        ReturnType::Default => (quote!(()), proc_macro2::Span::call_site()),
        ReturnType::Type(_, ty) if item::contains_impl_trait(ty) => return TokenStream::new(),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    };
    // Spanned at the return type, so "return type inferred here" notes
    // point at the user's `-> T` rather than at the attribute.
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __perf_fake_return: #ty = loop {};
            return __perf_fake_return;
        }
    }
}
