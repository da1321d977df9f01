//! `#[ai_optimized]`: the expansion, from arguments `ai` has validated.
//!
//! The signature stays as written; the body becomes `async move { body }`
//! (so `return` and `?` keep their meaning) handed to one `AiSite` method,
//! chosen by what the function returns. Statics hold the spec and the site,
//! so nothing is built twice.

use proc_macro2::{Group, Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{LitStr, ReturnType};

use crate::ai::{AiArgs, Checked, Shape, Similarity};
use crate::ai_valid::last_segment;
use crate::args;
use crate::item::MaybeFn;

pub(crate) fn emit(args: AiArgs, function: MaybeFn, checked: Checked) -> TokenStream {
    let krate = args.krate.clone().unwrap_or_else(args::default_crate_path);
    let private = quote!(#krate::__private::ai);
    let can_fail = args.can_fail();
    let MaybeFn {
        attrs,
        vis,
        sig,
        body,
    } = function;
    let ReturnType::Type(_, ret) = &sig.output else {
        unreachable!("validated: the function returns an answer")
    };
    let fn_name = sig.ident.to_string();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&fn_name, sig.ident.span()));
    let provider = args.provider.as_ref().expect("validated: provider is set");
    let model = args.model.as_ref().expect("validated: model is set");
    let duration = |ms: Option<u64>| match ms {
        Some(ms) => quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms))),
        None => quote!(::core::option::Option::None),
    };
    let cache_ttl = duration(args.ttl_ms);
    let timeout = duration(args.timeout.as_ref().map(|(ms, _)| *ms));
    let semantic = match args.similarity {
        None => quote!(#private::Semantic::Default),
        Some(Similarity::Off) => quote!(#private::Semantic::Off),
        Some(Similarity::Floor(floor)) => {
            let floor = Literal::f32_suffixed(floor);
            quote!(#private::Semantic::Floor(#floor))
        }
    };
    let optional = |value: Option<TokenStream>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let max_concurrency = optional(args.max_concurrency.map(|n| quote!(#n)));
    let rpm = optional(args.rpm.as_ref().map(|(n, _)| quote!(#n)));
    let tpm = optional(args.tpm.as_ref().map(|(n, _)| quote!(#n)));

    // The answer the site caches. Any type but a stream's goes through a
    // local trait bounded by `AiAnswer`: a type the runtime cannot cache is
    // then reported once, at the user's type, with `AiAnswer`'s message
    // (the projection fails into an error type, which silences the
    // follow-on errors of the site's methods).
    let result_types = last_segment(ret)
        .map(|(_, types)| types)
        .unwrap_or_default();
    let answer = match checked.shape {
        Shape::Stream | Shape::StreamResult => quote!(#private::ChatResponse),
        Shape::Plain => quote_spanned!(ret.span()=> <#ret as __PerfAiAnswer>::Answer),
        Shape::Result => match result_types.first() {
            Some(ok) => quote_spanned!(ok.span()=> <#ok as __PerfAiAnswer>::Answer),
            _ => quote_spanned! {ret.span()=>
                <<#private::ResultMode as #private::Mode<#ret>>::Value as __PerfAiAnswer>::Answer
            },
        },
    };
    let answer_check = match checked.shape {
        Shape::Stream | Shape::StreamResult => TokenStream::new(),
        Shape::Plain | Shape::Result => quote! {
            trait __PerfAiAnswer {
                type Answer;
            }
            impl<T: #krate::ai::AiAnswer> __PerfAiAnswer for T {
                type Answer = T;
            }
        },
    };

    let prompt = &checked.prompt;
    let mut request = quote_spanned!(prompt.span()=> #private::AiRequest::new(&#prompt));
    if let Some(scope) = &checked.scope {
        request = quote_spanned!(scope.span()=> #request.scope(&#scope));
    }

    // Only a `Result` function gets a way to fail, and only when a limit
    // can fail a call (validation refused limits on other functions). The
    // conversion is called through a local name spanned at the error type,
    // so an error type without `From<AiError>` is reported there.
    let error_span = result_types
        .get(1)
        .map_or_else(|| ret.span(), |error| error.span());
    let limit_error = quote_spanned!(error_span=> __perf_limit_error(__perf_error));
    let fail = if can_fail && matches!(checked.shape, Shape::Result | Shape::StreamResult) {
        quote! {
            ::core::option::Option::Some(|__perf_error: #private::AiError| -> #ret {
                use #private::limit_error as __perf_limit_error;
                ::core::result::Result::Err(#limit_error)
            })
        }
    } else {
        quote!(::core::option::Option::None)
    };

    let fake_return = crate::profile::fake_return(&sig.output);
    // The body's braces, at the same place but marked as coming from the
    // expansion: a one-line body would otherwise draw `unused_braces` (its
    // braces are the only thing in the `async` block's tail position).
    let mut braces = Group::new(body.delimiter(), body.stream());
    braces.set_span(body.span().resolved_at(Span::call_site()));
    let future = quote!(async move { #fake_return #braces });
    let call = match checked.shape {
        Shape::Plain => quote! {
            __PERF_AI_SITE.get().call::<#private::PlainMode, _, _>(__perf_request, #fail, #future)
        },
        Shape::Result => quote! {
            __PERF_AI_SITE.get().call::<#private::ResultMode, _, _>(__perf_request, #fail, #future)
        },
        Shape::Stream => quote! {
            __PERF_AI_SITE.get().call_stream(__perf_request, #future)
        },
        Shape::StreamResult => quote! {
            __PERF_AI_SITE.get().call_stream_result(__perf_request, #fail, #future)
        },
    };

    quote! {
        #(#attrs)*
        #vis #sig {
            static __PERF_AI_SPEC: #private::AiSpec = #private::AiSpec {
                name: #name,
                namespace: ::core::concat!(::core::module_path!(), "::", #fn_name),
                provider: #provider,
                model: #model,
                cache_ttl: #cache_ttl,
                semantic: #semantic,
                max_concurrency: #max_concurrency,
                rpm: #rpm,
                tpm: #tpm,
                timeout: #timeout,
            };
            #answer_check
            static __PERF_AI_SITE: #private::AiSiteCell<#answer> =
                #private::AiSiteCell::new(&__PERF_AI_SPEC);
            let __perf_request = #request;
            #call.await
        }
    }
}
