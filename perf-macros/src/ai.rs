//! `#[ai_optimized]`: parse here → validate in `ai_valid` → emit in `ai_emit`.
//!
//! ```text
//! #[ai_optimized(provider = "..", model = "..", cache_ttl = .., similarity = ..,
//!                scope = arg, prompt = arg, max_concurrency = .., rpm = .., tpm = ..,
//!                timeout = .., name = "..", crate = "..")]
//! ```
//!
//! Everything a call does (canonical prompt, exact and semantic lookups,
//! limits, storing the answer) lives in `__private::ai::AiSite`; the
//! attribute only reads its arguments, checks the function can be cached
//! and hands the body to the site as a future.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::{Ident, LitStr, Token};

use crate::args::{self, Errors};

const ACCEPTED: &[&str] = &[
    "provider",
    "model",
    "cache_ttl",
    "similarity",
    "scope",
    "prompt",
    "max_concurrency",
    "rpm",
    "tpm",
    "timeout",
    "name",
    "crate",
];

const SIMILARITY_FORMS: &str = "expected a threshold above 0 and at most 1 (`similarity = 0.92`), \
     or `similarity = 0` / `similarity = \"exact\"` to turn semantic matching off";

#[derive(Default)]
pub(crate) struct AiArgs {
    pub(crate) provider: Option<LitStr>,
    pub(crate) model: Option<LitStr>,
    pub(crate) ttl_ms: Option<u64>,
    pub(crate) similarity: Option<Similarity>,
    pub(crate) scope: Option<Ident>,
    pub(crate) prompt: Option<Ident>,
    pub(crate) max_concurrency: Option<u32>,
    /// The limit, and the argument's name (a non-`Result` function is
    /// refused there).
    pub(crate) rpm: Option<(u32, Ident)>,
    pub(crate) tpm: Option<(u64, Ident)>,
    /// Milliseconds, and the argument's name.
    pub(crate) timeout: Option<(u64, Ident)>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<syn::Path>,
    /// Every argument written, refused or not: a refused one is not also
    /// reported as missing or guessed at.
    pub(crate) given: Vec<String>,
}

impl AiArgs {
    /// The arguments that can end a call with an error instead of the body's
    /// answer, in the order they were checked.
    pub(crate) fn failing(&self) -> impl Iterator<Item = &Ident> {
        let rpm = self.rpm.as_ref().map(|(_, ident)| ident);
        let tpm = self.tpm.as_ref().map(|(_, ident)| ident);
        let timeout = self.timeout.as_ref().map(|(_, ident)| ident);
        timeout.into_iter().chain(rpm).chain(tpm)
    }

    pub(crate) fn was_given(&self, name: &str) -> bool {
        self.given.iter().any(|given| given == name)
    }

    /// Whether a limit may fail a call, so the expansion passes `fail`.
    pub(crate) fn can_fail(&self) -> bool {
        self.failing().next().is_some()
    }
}

/// `similarity = ..` as written; omitted means the runtime's default.
#[derive(Clone, Copy)]
pub(crate) enum Similarity {
    Off,
    Floor(f32),
}

/// What the function returns, which decides the site's method and mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Any owned answer type, cached whole.
    Plain,
    /// `Result<T, E>`: the `Ok` is cached, limits fail into `E`.
    Result,
    /// `ChatStream`: replayed from the cache as a stream.
    Stream,
    /// `Result<ChatStream, E>`.
    StreamResult,
}

/// What validation found out about the function.
pub(crate) struct Checked {
    pub(crate) shape: Shape,
    /// The argument holding the prompt.
    pub(crate) prompt: Ident,
    pub(crate) scope: Option<Ident>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    crate::item::expand_with(
        "ai_optimized",
        args,
        item,
        parse_args,
        crate::ai_valid::validate,
        crate::ai_emit::emit,
    )
}

fn parse_args(tokens: TokenStream, errors: &mut Errors) -> AiArgs {
    let mut parsed = AiArgs::default();
    args::parse_arguments(
        tokens,
        "ai_optimized",
        ACCEPTED,
        errors,
        |name, ident, meta| {
            parsed.given.push(name.to_owned());
            Some(match name {
                "provider" => {
                    non_empty(meta, "provider = \"openai\"").map(|p| parsed.provider = Some(p))
                }
                "model" => {
                    non_empty(meta, "model = \"gpt-4o-mini\"").map(|m| parsed.model = Some(m))
                }
                "name" => non_empty(meta, "name = \"chat.answer\"").map(|n| parsed.name = Some(n)),
                "cache_ttl" => args::duration_value(meta).map(|(ms, _)| parsed.ttl_ms = Some(ms)),
                "timeout" => args::duration_value(meta)
                    .map(|(ms, _)| parsed.timeout = Some((ms, ident.clone()))),
                "similarity" => parse_similarity(meta).map(|s| parsed.similarity = Some(s)),
                "scope" => argument_name(meta, "scope = user_id").map(|s| parsed.scope = Some(s)),
                "prompt" => {
                    argument_name(meta, "prompt = question").map(|p| parsed.prompt = Some(p))
                }
                "max_concurrency" => args::positive_int(meta, "max_concurrency = 16")
                    .map(|n| parsed.max_concurrency = Some(n)),
                "rpm" => args::positive_int(meta, "rpm = 500")
                    .map(|n| parsed.rpm = Some((n, ident.clone()))),
                "tpm" => args::positive_int(meta, "tpm = 200000")
                    .map(|n| parsed.tpm = Some((n, ident.clone()))),
                "crate" => args::crate_path(meta).map(|p| parsed.krate = Some(p)),
                _ => return None,
            })
        },
    );
    for example in ["provider = \"openai\"", "model = \"gpt-4o-mini\""] {
        let key = example.split(' ').next().unwrap_or(example);
        // A refused value was reported on its token already.
        if !parsed.was_given(key) {
            // The attribute itself: there is no argument token to point at.
            errors.push(syn::Error::new(
                Span::call_site(),
                format!("missing `{key} = \"...\"` (for example `{example}`)"),
            ));
        }
    }
    parsed
}

/// `= "text"` with something in it.
fn non_empty(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let lit = args::string_value(meta, example)?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("expected a non-empty string, e.g. `{example}`"),
        ));
    }
    Ok(lit)
}

/// `= 0.92`, `= 1`, `= 0` / `= 0.0` / `= "exact"` (off).
fn parse_similarity(meta: &ParseNestedMeta<'_>) -> syn::Result<Similarity> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!("`similarity` needs a value: {SIMILARITY_FORMS}")));
    }
    meta.input.parse::<Token![=]>()?;
    let expr: syn::Expr = meta.input.parse()?;
    let value = match &expr {
        syn::Expr::Lit(syn::ExprLit { lit, .. }) => match lit {
            syn::Lit::Float(float) => float.base10_parse::<f32>().ok(),
            syn::Lit::Int(int) => int.base10_parse::<u8>().ok().map(f32::from),
            syn::Lit::Str(text) if text.value() == "exact" => return Ok(Similarity::Off),
            _ => None,
        },
        _ => None,
    };
    match value {
        Some(0.0) => Ok(Similarity::Off),
        Some(x) if x > 0.0 && x <= 1.0 => Ok(Similarity::Floor(x)),
        _ => Err(syn::Error::new_spanned(expr, SIMILARITY_FORMS)),
    }
}

/// `= argument`: the name of one of the function's arguments (checked
/// against the signature in `validate`).
fn argument_name(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Ident> {
    let expected = format!("expected the name of an argument of the function, e.g. `{example}`");
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(expected));
    }
    meta.input.parse::<Token![=]>()?;
    let expr: syn::Expr = meta.input.parse()?;
    match &expr {
        syn::Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            if let Some(ident) = path.path.get_ident() {
                return Ok(ident.clone());
            }
        }
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => {
            let key = example.split(' ').next().unwrap_or(example);
            return Err(syn::Error::new(
                text.span(),
                format!(
                    "write the argument's name without quotes: `{key} = {}`",
                    text.value()
                ),
            ));
        }
        _ => {}
    }
    Err(syn::Error::new_spanned(expr, expected))
}
