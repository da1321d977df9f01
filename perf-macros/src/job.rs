//! `#[async_job]`: parse → validate → emit.
//!
//! The function becomes an enqueuer: called, it returns an
//! `Enqueue<(args..)>` that stores the job when awaited. The body moves to
//! a hidden function with the original signature, which a handler
//! registered at compile time (`inventory`) runs on a worker from the
//! stored arguments.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, LitStr, Pat, ReturnType, Type};

use crate::args::{self, Errors};
use crate::item::MaybeFn;

const ACCEPTED: &[&str] = &[
    "priority",
    "queue",
    "max_retries",
    "backoff",
    "backoff_base",
    "backoff_cap",
    "timeout",
    "delay",
    "unique",
    "name",
    "cron",
    "crate",
];

#[derive(Default)]
struct JobArgs {
    priority: Option<i16>,
    queue: Option<LitStr>,
    max_retries: Option<u32>,
    backoff: Option<LitStr>,
    backoff_base_ms: Option<u64>,
    backoff_cap_ms: Option<u64>,
    timeout_ms: Option<u64>,
    /// The delay and where it was written.
    delay: Option<(u64, Span)>,
    unique: Option<LitStr>,
    name: Option<LitStr>,
    cron: Option<LitStr>,
    krate: Option<syn::Path>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    crate::item::expand_with(
        "async_job",
        args,
        item,
        parse_args,
        |parsed, function, errors| Some(validate(parsed, function, errors)),
        emit,
    )
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> JobArgs {
    let mut parsed = JobArgs::default();
    args::parse_arguments(args, "async_job", ACCEPTED, errors, |name, _, meta| {
        Some(match name {
            "priority" => parse_priority(meta).map(|p| parsed.priority = Some(p)),
            "queue" => args::string_value(meta, "queue = \"emails\"")
                .and_then(non_empty)
                .map(|q| parsed.queue = Some(q)),
            "max_retries" => retries(meta).map(|n| parsed.max_retries = Some(n)),
            "backoff" => parse_backoff(meta).map(|b| parsed.backoff = Some(b)),
            "backoff_base" => {
                args::duration_value(meta).map(|(ms, _)| parsed.backoff_base_ms = Some(ms))
            }
            "backoff_cap" => {
                args::duration_value(meta).map(|(ms, _)| parsed.backoff_cap_ms = Some(ms))
            }
            "timeout" => args::duration_value(meta).map(|(ms, _)| parsed.timeout_ms = Some(ms)),
            "delay" => args::duration_value(meta).map(|delay| parsed.delay = Some(delay)),
            "unique" => {
                args::string_value(meta, "unique = \"{user_id}\"").map(|u| parsed.unique = Some(u))
            }
            "name" => args::string_value(meta, "name = \"emails.welcome\"")
                .and_then(non_empty)
                .map(|n| parsed.name = Some(n)),
            "cron" => parse_cron(meta).map(|c| parsed.cron = Some(c)),
            "crate" => args::crate_path(meta).map(|p| parsed.krate = Some(p)),
            _ => return None,
        })
    });
    parsed
}

fn non_empty(lit: LitStr) -> syn::Result<LitStr> {
    if lit.value().trim().is_empty() {
        Err(syn::Error::new(lit.span(), "expected a non-empty string"))
    } else {
        Ok(lit)
    }
}

/// `"critical" | "high" | "normal" | "low"`, or a number (higher first).
fn parse_priority(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<i16> {
    const EXPECTED: &str =
        "expected \"critical\", \"high\", \"normal\", \"low\" or a number (higher runs first)";
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format!("`priority` needs a value: {EXPECTED}")));
    }
    meta.input.parse::<syn::Token![=]>()?;
    let expr: syn::Expr = meta.input.parse()?;
    let (negative, lit) = match &expr {
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => (true, &**expr),
        other => (false, other),
    };
    match lit {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) if !negative => match text.value().as_str() {
            "critical" => Ok(30),
            "high" => Ok(20),
            "normal" => Ok(10),
            "low" => Ok(0),
            other => Err(syn::Error::new(
                text.span(),
                format!("unknown priority `{other}`; {EXPECTED}"),
            )),
        },
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => {
            let value: i16 = int.base10_parse().map_err(|_| {
                syn::Error::new(int.span(), "priority must fit in an i16 (-32768..=32767)")
            })?;
            Ok(if negative { -value } else { value })
        }
        _ => Err(syn::Error::new_spanned(expr, EXPECTED)),
    }
}

fn retries(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<u32> {
    const EXPECTED: &str = "expected a number of retries, e.g. `max_retries = 5` (0 for none)";
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(EXPECTED));
    }
    meta.input.parse::<syn::Token![=]>()?;
    let expr: syn::Expr = meta.input.parse()?;
    match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => int.base10_parse(),
        other => Err(syn::Error::new_spanned(other, EXPECTED)),
    }
}

fn parse_backoff(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let backoff = args::string_value(meta, "backoff = \"exponential\"")?;
    match backoff.value().as_str() {
        "exponential" | "fixed" | "linear" => Ok(backoff),
        other => Err(syn::Error::new(
            backoff.span(),
            format!("unknown backoff `{other}`; expected \"exponential\", \"fixed\" or \"linear\""),
        )),
    }
}

/// A cron expression, checked here so a typo fails the build, not the
/// process start.
fn parse_cron(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let cron = args::string_value(meta, "cron = \"0 */5 * * * *\"")?;
    match cron.value().parse::<croner::Cron>() {
        Ok(_) => Ok(cron),
        Err(error) => Err(syn::Error::new(
            cron.span(),
            format!(
                "`{}` is not a cron expression ({error}); expected 5 fields (minute hour \
                 day-of-month month day-of-week) or 6 with seconds first, e.g. \"0 */5 * * * *\"",
                cron.value()
            ),
        )),
    }
}

/// A job on a `cron` schedule is stored by the scheduler with nothing
/// but its spec: it can take no arguments, and a `delay` or `unique` key
/// has nothing to act on.
fn validate_cron(args: &JobArgs, arguments: &[Argument], errors: &mut Errors) {
    if args.cron.is_none() {
        return;
    }
    if let Some(first) = arguments.first() {
        errors.push(syn::Error::new(
            first.ident.span(),
            "a job with `cron = \"…\"` takes no arguments: the scheduler stores each run \
             with none; read what the run needs inside the job, or schedule a job with \
             arguments at run time with `perf_runtime::jobs::Schedule::new`",
        ));
    }
    if let Some((_, span)) = args.delay {
        errors.push(syn::Error::new(
            span,
            "`delay` does not apply to a `cron` job: it runs at the schedule's times; \
             shift the expression instead",
        ));
    }
    if let Some(unique) = &args.unique {
        errors.push(syn::Error::new(
            unique.span(),
            "`unique` does not apply to a `cron` job: each run is stored once already",
        ));
    }
}

/// An argument of the job: its name and type.
struct Argument {
    ident: Ident,
    ty: Type,
}

fn validate(args: &JobArgs, function: &MaybeFn, errors: &mut Errors) -> Vec<Argument> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "`#[async_job]` runs an `async fn` on a worker; make this function `async`",
        ));
    }
    if let Some(param) = sig.generics.params.first() {
        errors.push(syn::Error::new_spanned(
            param,
            "`#[async_job]` functions cannot be generic: a stored job names one concrete \
             function to run; write a non-generic job that calls the generic code",
        ));
    }
    let mut arguments = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "`#[async_job]` goes on a free function: a job is run later from its stored \
                 arguments, and `self` cannot be stored; pass what the job needs as arguments",
            )),
            FnArg::Typed(typed) => {
                if let Some(span) = borrowed(&typed.ty) {
                    errors.push(syn::Error::new(
                        span,
                        "job arguments are stored and read back on a worker, so they must be \
                         owned: use `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
                    ));
                }
                match &*typed.pat {
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                        arguments.push(Argument {
                            ident: pat.ident.clone(),
                            ty: (*typed.ty).clone(),
                        });
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "`#[async_job]` needs a plain name for each argument (`user_id: u64`), \
                         not a pattern",
                    )),
                }
            }
        }
    }
    validate_cron(args, &arguments, errors);
    if let Some(unique) = &args.unique {
        for name in args::placeholders(&unique.value()) {
            if !arguments.iter().any(|argument| argument.ident == name) {
                errors.push(syn::Error::new(
                    unique.span(),
                    format!("`unique` names `{name}`, which is not an argument of this function"),
                ));
            }
        }
    }
    arguments
}

/// The span of a reference or lifetime in `ty`, if any.
fn borrowed(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            self.0.get_or_insert(reference.span());
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.0.get_or_insert(lifetime.span());
            }
        }
    }
    let mut finder = Finder(None);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

fn emit(args: JobArgs, function: MaybeFn, arguments: Vec<Argument>) -> TokenStream {
    let krate = args.krate.clone().unwrap_or_else(args::default_crate_path);
    let private = quote!(#krate::__private::jobs);
    let MaybeFn {
        attrs,
        vis,
        sig,
        body,
    } = function;
    let fn_name = sig.ident.clone();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&fn_name.to_string(), fn_name.span()));
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| LitStr::new("default", Span::call_site()));
    let priority = args.priority.unwrap_or(10);
    let max_retries = args.max_retries.unwrap_or(3);
    let base_ms = args.backoff_base_ms.unwrap_or(1_000);
    let cap_ms = args.backoff_cap_ms.unwrap_or(300_000);
    let backoff = match args.backoff.as_ref().map(LitStr::value).as_deref() {
        Some("fixed") => {
            quote!(#private::Backoff::Fixed(::core::time::Duration::from_millis(#base_ms)))
        }
        Some("linear") => quote!(#private::Backoff::Linear {
            step: ::core::time::Duration::from_millis(#base_ms),
            cap: ::core::time::Duration::from_millis(#cap_ms),
        }),
        _ => quote!(#private::Backoff::Exponential {
            base: ::core::time::Duration::from_millis(#base_ms),
            cap: ::core::time::Duration::from_millis(#cap_ms),
        }),
    };
    let timeout_ms = args.timeout_ms.unwrap_or(30_000);
    let delay_ms = args.delay.map_or(0, |(ms, _)| ms);

    let spec = format_ident!("__perf_job_spec_{}", fn_name);
    let run = format_ident!("__perf_job_run_{}", fn_name);
    let decode = format_ident!("__perf_job_decode_{}", fn_name);
    let body_fn = format_ident!("__perf_job_body_{}", fn_name);

    let idents: Vec<&Ident> = arguments.iter().map(|a| &a.ident).collect();
    let types: Vec<&Type> = arguments.iter().map(|a| &a.ty).collect();
    let args_type = quote!((#(#types,)*));
    let args_tuple = quote!((#(#idents,)*));
    // One check per argument, on its type: a type that cannot be stored is
    // reported there.
    let arg_checks = types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> #private::assert_job_argument::<#ty>();));
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let output_span = match &sig.output {
        ReturnType::Default => fn_name.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let outcome =
        quote_spanned!(output_span=> #private::IntoJobOutcome::into_outcome(__perf_result));
    let unique = match &args.unique {
        None => quote!(::core::option::Option::None),
        Some(format) => {
            let parts = args::placeholders(&format.value())
                .into_iter()
                .map(|part| {
                    let ident = Ident::new(&part, format.span());
                    quote_spanned!(format.span()=> (#part, &#ident as &dyn ::core::fmt::Display))
                })
                .collect::<Vec<_>>();
            quote!(::core::option::Option::Some(#private::unique_key(#name, &[#(#parts),*], #format)))
        }
    };
    let cron = match &args.cron {
        Some(expression) => quote!(::core::option::Option::Some(#expression)),
        None => quote!(::core::option::Option::None),
    };
    let inputs = &sig.inputs;
    let mut body_sig = sig.clone();
    body_sig.ident = body_fn.clone();

    quote! {
        #(#attrs)*
        #vis fn #fn_name(#inputs) -> #private::Enqueue<#args_type> {
            let __perf_unique = #unique;
            #private::Enqueue::new(&#spec, #args_tuple, #run, __perf_unique)
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #spec: #private::JobSpec = #private::JobSpec::__from_attribute(
            #name,
            #queue,
            #private::Priority(#priority),
            #max_retries,
            #backoff,
            ::core::time::Duration::from_millis(#timeout_ms),
            ::core::time::Duration::from_millis(#delay_ms),
        );

        #[doc(hidden)]
        #[allow(non_snake_case, clippy::unused_async)]
        #body_sig #body

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #run(__perf_args: #args_type) -> #private::BoxFuture<'static, #private::JobOutcome> {
            #(#arg_checks)*
            let #args_tuple = __perf_args;
            ::std::boxed::Box::pin(async move {
                let __perf_result: #output = #body_fn(#(#idents),*).await;
                #outcome
            })
        }

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #decode(__perf_payload: &[u8]) -> #private::BoxFuture<'static, #private::JobOutcome> {
            match #private::decode::<#args_type>(__perf_payload) {
                ::core::result::Result::Ok(__perf_args) => #run(__perf_args),
                ::core::result::Result::Err(__perf_reason) => ::std::boxed::Box::pin(async move {
                    #private::JobOutcome::Malformed(__perf_reason)
                }),
            }
        }

        #private::inventory::submit! {
            #private::JobHandler { spec: &#spec, run: #decode, cron: #cron }
        }
    }
}
