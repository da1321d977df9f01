//! `#[fast_endpoint]`: parse → validate → emit.
//!
//! The expansion keeps the signature and hands the body (as a future) to
//! `__private::FunctionCache::call` with a key built from the arguments.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, LitStr, Pat, ReturnType, Type};

use crate::args::{self, Errors};
use crate::item::{self, MaybeFn};

const ACCEPTED: &[&str] = &[
    "cache_ttl",
    "key",
    "skip",
    "tier",
    "max_entries",
    "max_bytes",
    "tags",
    "stale_while_revalidate",
    "stale_if_error",
    "cache_none",
    "lock",
    "version",
    "name",
    "crate",
];

#[derive(Default)]
struct EndpointArgs {
    ttl_ms: Option<u64>,
    key: Option<LitStr>,
    skip: Vec<Ident>,
    tier: Option<(Ident, Span)>,
    max_entries: Option<u64>,
    /// Bytes, and the argument's span (for the checks).
    max_bytes: Option<(u64, Span)>,
    tags: Vec<LitStr>,
    swr_ms: Option<u64>,
    sie_ms: Option<u64>,
    cache_none: Option<Span>,
    /// Milliseconds, and the value's span (for the tier check).
    lock: Option<(u64, Span)>,
    version: Option<u32>,
    name: Option<LitStr>,
    krate: Option<syn::Path>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    crate::item::expand_with(
        "fast_endpoint",
        args,
        item,
        parse_args,
        |parsed, function, errors| Some(validate(parsed, function, errors)),
        emit,
    )
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> EndpointArgs {
    let mut parsed = EndpointArgs::default();
    args::parse_arguments(
        args,
        "fast_endpoint",
        ACCEPTED,
        errors,
        |name, ident, meta| {
            Some(match name {
                "cache_ttl" => args::duration_value(meta).map(|(ms, _)| parsed.ttl_ms = Some(ms)),
                "stale_while_revalidate" => {
                    args::duration_value(meta).map(|(ms, _)| parsed.swr_ms = Some(ms))
                }
                "stale_if_error" => {
                    args::duration_value(meta).map(|(ms, _)| parsed.sie_ms = Some(ms))
                }
                "lock" => args::duration_value(meta).map(|lock| parsed.lock = Some(lock)),
                "key" => args::string_value(meta, "key = \"user:{user_id}\"")
                    .map(|k| parsed.key = Some(k)),
                "name" => {
                    args::string_value(meta, "name = \"users.get\"").map(|n| parsed.name = Some(n))
                }
                "crate" => args::crate_path(meta).map(|p| parsed.krate = Some(p)),
                "skip" => args::ident_list(meta).map(|list| parsed.skip = list),
                "tags" => args::string_list(meta, "tags = [\"user:{user_id}\"]")
                    .map(|list| parsed.tags = list),
                "max_entries" => args::positive_int(meta, "max_entries = 10000")
                    .map(|n| parsed.max_entries = Some(n)),
                "max_bytes" => {
                    args::byte_size_value(meta).map(|n| parsed.max_bytes = Some((n, ident.span())))
                }
                "version" => {
                    args::positive_int(meta, "version = 2").map(|n| parsed.version = Some(n))
                }
                "cache_none" if meta.input.peek(syn::Token![=]) => {
                    Err(meta.error("`cache_none` is a flag: write it alone, without a value"))
                }
                "cache_none" => {
                    parsed.cache_none = Some(ident.span());
                    Ok(())
                }
                "tier" => parse_tier(meta).map(|tier| parsed.tier = Some(tier)),
                _ => return None,
            })
        },
    );
    parsed
}

fn parse_tier(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<(Ident, Span)> {
    let tier = args::string_value(meta, "tier = \"l1+l2\"")?;
    let variant = match tier.value().as_str() {
        "l1" => "L1",
        "l2" => "L2",
        "l1+l2" => "L1L2",
        other => {
            return Err(syn::Error::new(
                tier.span(),
                format!("unknown tier `{other}`; expected \"l1\", \"l2\" or \"l1+l2\""),
            ));
        }
    };
    Ok((Ident::new(variant, tier.span()), tier.span()))
}

/// An argument as the key sees it: the identifiers it binds, and whether
/// it is skipped.
struct Binding {
    idents: Vec<Ident>,
    skipped: bool,
}

fn validate(args: &EndpointArgs, function: &MaybeFn, errors: &mut Errors) -> Vec<Binding> {
    let sig = &function.sig;
    item::require_async_and_concrete(sig, "fast_endpoint", "returns", "cache that", errors);
    match &sig.output {
        ReturnType::Default => errors.push(syn::Error::new_spanned(
            &sig.ident,
            "`#[fast_endpoint]` has nothing to cache: this function returns `()`",
        )),
        ReturnType::Type(_, ty) => check_return_type(ty, errors),
    }
    if let (Some(span), ReturnType::Type(_, ty)) = (args.cache_none, &sig.output)
        && last_segment(ty).as_deref() != Some("Option")
    {
        errors.push(syn::Error::new(
            span,
            "`cache_none` applies to functions returning `Option`",
        ));
    }

    if let (Some((_, span)), Some((tier, _))) = (args.lock, &args.tier)
        && tier == "L1"
    {
        errors.push(syn::Error::new(
            span,
            "`lock` makes instances wait for each other through Redis, so it needs \
             the L2 tier: use tier = \"l1+l2\" or \"l2\", or drop `lock`",
        ));
    }

    if let Some((_, span)) = args.max_bytes {
        if args.max_entries.is_some() {
            errors.push(syn::Error::new(
                span,
                "L1 is bounded either by entries or by bytes: keep `max_entries` or `max_bytes`",
            ));
        }
        if let Some((tier, _)) = &args.tier
            && tier == "L2"
        {
            errors.push(syn::Error::new(
                span,
                "`max_bytes` bounds L1, which tier = \"l2\" does not use",
            ));
        }
    }

    let mut bindings = Vec::new();
    let mut receiver = None;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => receiver = Some(r),
            FnArg::Typed(typed) => {
                let mut idents = Vec::new();
                collect_idents(&typed.pat, &mut idents);
                let skipped = last_segment(&typed.ty).as_deref() == Some("State")
                    || idents.iter().any(|i| args.skip.iter().any(|s| s == i));
                bindings.push(Binding { idents, skipped });
            }
        }
    }
    let known: Vec<String> = bindings
        .iter()
        .flat_map(|b| b.idents.iter().map(Ident::to_string))
        .collect();
    for skipped in &args.skip {
        if !known.contains(&skipped.to_string()) {
            errors.push(syn::Error::new_spanned(
                skipped,
                format!(
                    "`skip({skipped})` names no argument; arguments: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    if let Some(receiver) = receiver {
        if args.key.is_none() {
            errors.push(syn::Error::new_spanned(
                receiver,
                "a method's cache key cannot include `self`; give `key = \"...\"` over the other arguments",
            ));
        }
        if args.swr_ms.is_some() && receiver.reference.is_some() {
            errors.push(syn::Error::new_spanned(
                receiver,
                "`stale_while_revalidate` refreshes in a background task, which cannot borrow `self`",
            ));
        }
    }
    for format in args.key.iter().chain(args.tags.iter()) {
        for name in args::placeholders(&format.value()) {
            if !known.contains(&name) {
                errors.push(syn::Error::new(
                    format.span(),
                    format!(
                        "`{{{name}}}` names no argument; arguments: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    bindings
}

fn check_return_type(ty: &Type, errors: &mut Errors) {
    if item::contains_impl_trait(ty) {
        errors.push(syn::Error::new_spanned(
            ty,
            "`#[fast_endpoint]` cannot cache an `impl Trait`; name the type",
        ));
    } else if item::contains_reference(ty) {
        errors.push(syn::Error::new_spanned(
            ty,
            "`#[fast_endpoint]` cannot cache a reference: return an owned value (clone it, or wrap it in `Arc`)",
        ));
    } else if item::mentions_self(ty) {
        errors.push(syn::Error::new_spanned(ty, "`#[fast_endpoint]` needs the return type spelled out; replace `Self` with the type's name"));
    }
}

fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        Type::Paren(inner) => last_segment(&inner.elem),
        Type::Group(inner) => last_segment(&inner.elem),
        _ => None,
    }
}

fn collect_idents(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(binding) => {
            out.push(binding.ident.clone());
            if let Some((_, sub)) = &binding.subpat {
                collect_idents(sub, out);
            }
        }
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| collect_idents(p, out)),
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| collect_idents(p, out)),
        Pat::Struct(fields) => fields
            .fields
            .iter()
            .for_each(|f| collect_idents(&f.pat, out)),
        Pat::Reference(reference) => collect_idents(&reference.pat, out),
        Pat::Type(typed) => collect_idents(&typed.pat, out),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| collect_idents(p, out)),
        _ => {}
    }
}

fn emit(args: EndpointArgs, function: MaybeFn, bindings: Vec<Binding>) -> TokenStream {
    let krate = args.krate.clone().unwrap_or_else(args::default_crate_path);
    let MaybeFn {
        attrs,
        vis,
        sig,
        body,
    } = function;
    let fn_name = sig.ident.to_string();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&fn_name, sig.ident.span()));
    let ReturnType::Type(_, ret) = &sig.output else {
        unreachable!("validated: the function returns a value")
    };
    let mode = match (last_segment(ret).as_deref(), args.cache_none.is_some()) {
        (Some("Result"), _) => quote!(ResultMode),
        (Some("Option"), true) => quote!(OptionCacheNone),
        (Some("Option"), false) => quote!(OptionMode),
        _ => quote!(PlainMode),
    };
    let private = quote!(#krate::__private);
    let mode = quote!(#private::#mode);
    let tier = args
        .tier
        .as_ref()
        .map_or_else(|| format_ident!("L1L2"), |(ident, _)| ident.clone());
    let uses_l2 = tier != "L1";
    let max_bytes = args.max_bytes.map_or(0, |(bytes, _)| bytes);
    // Values are weighed by their encoded size, so `max_bytes` needs the
    // codec even on an L1-only function.
    let needs_codec = uses_l2 || max_bytes > 0;
    let ttl_ms = args.ttl_ms.unwrap_or(300_000);
    let swr_ms = args.swr_ms.unwrap_or(0);
    let sie_ms = args.sie_ms.unwrap_or(0);
    let max_entries = args.max_entries.unwrap_or(10_000);
    let lock_ms = args.lock.map_or(0, |(ms, _)| ms);
    let version = args.version.unwrap_or(1);

    let value_type = quote_spanned!(ret.span()=> <#mode as #private::Mode<#ret>>::Value);
    let codec = if needs_codec {
        quote_spanned! {ret.span()=> {
            #[allow(unused_imports)]
            use #private::{JsonCodec as _, SerdeCodec as _};
            ::core::option::Option::Some((&#private::CodecProbe::<__PerfValue>::new()).perf_codec())
        }}
    } else {
        quote!(::core::option::Option::None)
    };

    let parts: Vec<TokenStream> = match &args.key {
        Some(key) => vec![quote_spanned!(key.span()=> &::std::format!(#key))],
        None => bindings
            .iter()
            .filter(|b| !b.skipped)
            .flat_map(|b| b.idents.iter())
            .map(|ident| quote_spanned!(ident.span()=> &#ident))
            .collect(),
    };
    // One call per argument, spanned on it: an argument that cannot be part
    // of a key is reported on its own token.
    let key_parts = quote!(#( __perf_hasher.part(#parts)?; )*);
    let tags = &args.tags;
    let fake_return = crate::profile::fake_return(&sig.output);
    let call = if swr_ms > 0 {
        quote!(call_revalidating)
    } else {
        quote!(call)
    };

    quote! {
        #(#attrs)*
        #vis #sig {
            type __PerfValue = #value_type;
            static __PERF_SPEC: #private::CacheSpec = #private::CacheSpec {
                name: #name,
                namespace: ::core::concat!(::core::module_path!(), "::", #fn_name),
                schema_version: #version,
                key_seed: #private::key_seed(::core::concat!(::core::module_path!(), "::", #fn_name), #version),
                ttl: #private::Ttl {
                    fresh: ::core::time::Duration::from_millis(#ttl_ms),
                    stale_while_revalidate: ::core::time::Duration::from_millis(#swr_ms),
                    stale_if_error: ::core::time::Duration::from_millis(#sie_ms),
                },
                tier: #private::Tier::#tier,
                max_entries: #max_entries,
                max_bytes: #max_bytes,
                lock: ::core::time::Duration::from_millis(#lock_ms),
            };
            static __PERF_CACHE: ::std::sync::LazyLock<&'static #private::FunctionCache<__PerfValue>> =
                ::std::sync::LazyLock::new(|| #private::FunctionCache::leak(&__PERF_SPEC, #codec));
            let __perf_key = (|| -> ::core::result::Result<#private::CacheKey, #private::KeyError> {
                let mut __perf_hasher = #private::KeyHasher::seeded(__PERF_SPEC.key_seed);
                #key_parts
                ::core::result::Result::Ok(__perf_hasher.finish())
            })();
            // The body's future is only built on a miss: a hit returns
            // before anything is moved into it.
            let __perf_body = move || async move {
                let __perf_tags: ::std::vec::Vec<::std::string::String> =
                    ::std::vec![#(::std::format!(#tags)),*];
                let __perf_result: #ret = async move { #fake_return #body }.await;
                (__perf_result, __perf_tags)
            };
            match __perf_key {
                ::core::result::Result::Ok(__perf_key) => {
                    if let ::core::option::Option::Some(__perf_value) = (*__PERF_CACHE).hit(&__perf_key) {
                        return <#mode as #private::Mode<#ret>>::join(__perf_value);
                    }
                    (*__PERF_CACHE).#call::<#mode, #ret, _>(__perf_key, __PERF_SPEC.ttl, __perf_body()).await
                }
                // An argument that does not serialize: run uncached.
                ::core::result::Result::Err(_) => __perf_body().await.0,
            }
        }
    }
}
