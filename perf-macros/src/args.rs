//! Helpers shared by every attribute's argument parser: one place for the
//! "given more than once" check, error gathering, string values and the
//! `crate = ".."` override.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Ident, LitStr, Token};

/// Gathers every argument error so the user sees them all in one build
/// (as serde's `Ctxt` does), instead of fixing them one compile at a time.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn take(&mut self) -> Option<syn::Error> {
        self.0.take()
    }
}

/// Remembers which argument names were given, so a repeat is reported on the
/// second occurrence.
#[derive(Default)]
pub(crate) struct Seen(Vec<String>);

impl Seen {
    /// Returns an error spanned at `ident` when this name was given before.
    pub(crate) fn first_time(&mut self, ident: &Ident) -> syn::Result<()> {
        let name = ident.to_string();
        if self.0.contains(&name) {
            return Err(syn::Error::new(
                ident.span(),
                format!("`{name}` is given more than once; keep one"),
            ));
        }
        self.0.push(name);
        Ok(())
    }
}

/// Parses an attribute's `name = value, flag, name(..)` list. `handle` gets
/// each argument's name (given once, a plain identifier) and returns `None`
/// for a name it does not know. Unknown names, repeats and refused values
/// are all reported, each on its token, and parsing goes on past them.
pub(crate) fn parse_arguments(
    tokens: TokenStream,
    attribute: &str,
    accepted: &[&str],
    errors: &mut Errors,
    mut handle: impl FnMut(&str, &Ident, &ParseNestedMeta<'_>) -> Option<syn::Result<()>>,
) {
    let mut seen = Seen::default();
    let parser = syn::meta::parser(|meta| {
        let Some(ident) = meta.path.get_ident().cloned() else {
            errors.push(unknown_argument(attribute, &meta.path, accepted));
            return skip_value(&meta);
        };
        if let Err(error) = seen.first_time(&ident) {
            errors.push(error);
            return skip_value(&meta);
        }
        match handle(&ident.to_string(), &ident, &meta) {
            Some(Ok(())) => Ok(()),
            Some(Err(error)) => {
                errors.push(error);
                // Step over a value the handler refused, to reach the next argument.
                skip_value(&meta)
            }
            None => {
                errors.push(unknown_argument(attribute, &meta.path, accepted));
                skip_value(&meta)
            }
        }
    });
    if let Err(error) = syn::parse::Parser::parse2(parser, tokens) {
        errors.push(error);
    }
}

/// Parses `= <expression>` after an argument name, or says what value
/// `expected` when the `=` is missing.
fn value_expr(
    meta: &ParseNestedMeta<'_>,
    expected: impl FnOnce() -> String,
) -> syn::Result<syn::Expr> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(expected()));
    }
    meta.input.parse::<Token![=]>()?;
    meta.input.parse()
}

/// Parses `= "string"` after an argument name, with an error on the value
/// that shows the expected form.
pub(crate) fn string_value(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let name = meta.path.to_token_stream().to_string();
    let expr = value_expr(meta, || {
        format!("`{name}` needs a value: expected a string literal, e.g. `{example}`")
    })?;
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("expected a string literal, e.g. `{example}`"),
        )),
    }
}

/// Consumes the value of an argument we are rejecting, so parsing can go on
/// and report the other arguments' errors too.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _group: proc_macro2::Group = meta.input.parse()?;
    }
    Ok(())
}

/// Parses the tokens inside `name(..)` without interpreting them.
pub(crate) fn parenthesized_tokens(meta: &ParseNestedMeta<'_>) -> syn::Result<TokenStream> {
    let content;
    syn::parenthesized!(content in meta.input);
    content.parse()
}

/// `crate = "path"`: where the runtime is, for users who re-export it.
pub(crate) fn crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let lit = string_value(meta, "crate = \"::my_crate::perf\"")?;
    lit.parse::<syn::Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`{}` is not a path; expected e.g. `crate = \"::my_crate::perf\"`",
                lit.value()
            ),
        )
    })
}

/// The runtime's path when no `crate = ".."` is given.
pub(crate) fn default_crate_path() -> syn::Path {
    syn::parse_quote!(::perf_runtime)
}

/// Error for an argument this attribute does not know, listing those it does.
pub(crate) fn unknown_argument(attribute: &str, path: &syn::Path, accepted: &[&str]) -> syn::Error {
    let name = path.to_token_stream().to_string();
    let list = accepted
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ");
    syn::Error::new_spanned(
        path,
        format!("unknown `#[{attribute}]` argument `{name}`; expected one of: {list}"),
    )
}

/// The user's item unchanged, followed by the errors: keeps the item defined
/// (so IDE completion and later code still see it) while the build fails.
pub(crate) fn item_with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut out = item;
    out.extend(error.to_compile_error());
    out
}

/// Parses `= 300` (seconds) or `= "5m"` (`ms`, `s`, `m`, `h`, `d`) into
/// milliseconds, refusing zero, with errors on the value.
pub(crate) fn duration_value(meta: &ParseNestedMeta<'_>) -> syn::Result<(u64, proc_macro2::Span)> {
    let name = meta.path.to_token_stream().to_string();
    let expr = value_expr(meta, || {
        format!(
            "`{name}` needs a duration: seconds (`{name} = 300`) or a string (`{name} = \"5m\"`)"
        )
    })?;
    let (millis, span) = match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => {
            let seconds: u64 = int.base10_parse()?;
            (seconds.checked_mul(1000), int.span())
        }
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => (parse_duration_text(&text.value()), text.span()),
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!(
                    "expected a duration: seconds (`{name} = 300`) or a string (`{name} = \"5m\"`)"
                ),
            ));
        }
    };
    match millis {
        Some(0) => Err(syn::Error::new(
            span,
            format!("`{name}` must be longer than zero"),
        )),
        Some(millis) => Ok((millis, span)),
        None => Err(syn::Error::new(
            span,
            "not a duration; write a number and a unit: \"250ms\", \"30s\", \"5m\", \"1h\", \"1d\"",
        )),
    }
}

/// `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"` → milliseconds.
fn parse_duration_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Parses `= 1048576` or `= "64MB"` (B, KB, MB, GB in powers of 1000;
/// KiB, MiB, GiB in powers of 1024) as a positive number of bytes.
pub(crate) fn byte_size_value(meta: &ParseNestedMeta<'_>) -> syn::Result<u64> {
    let name = meta.path.to_token_stream().to_string();
    let expected =
        format!("expected a size: bytes (`{name} = 1048576`) or a string (`{name} = \"64MiB\"`)");
    let expr = value_expr(meta, || expected.clone())?;
    let bytes = match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => int.base10_parse::<u64>().ok(),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => parse_size_text(&text.value()),
        _ => None,
    };
    match bytes {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(syn::Error::new_spanned(expr, expected)),
    }
}

fn parse_size_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Parses `= 123` as a positive integer.
pub(crate) fn positive_int<T>(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let expr = value_expr(meta, || {
        format!("expected a positive integer, e.g. `{example}`")
    })?;
    match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) if int.base10_digits() != "0" => int.base10_parse(),
        other => Err(syn::Error::new_spanned(
            other,
            format!("expected a positive integer, e.g. `{example}`"),
        )),
    }
}

/// Parses `(a, b, c)`: a list of identifiers.
pub(crate) fn ident_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in meta.input);
    let list = content.parse_terminated(
        |input: syn::parse::ParseStream<'_>| input.parse::<Ident>(),
        Token![,],
    )?;
    Ok(list.into_iter().collect())
}

/// Parses `= ["a", "b"]`: a list of string literals.
pub(crate) fn string_list(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Vec<LitStr>> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!("expected a list of strings, e.g. `{example}`")));
    }
    meta.input.parse::<Token![=]>()?;
    let content;
    syn::bracketed!(content in meta.input);
    let list = content.parse_terminated(|input| input.parse::<LitStr>(), Token![,])?;
    Ok(list.into_iter().collect())
}

/// The `{name}` placeholders of a format string (without format specs).
pub(crate) fn placeholders(format: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        if rest[open..].starts_with("{{") {
            rest = &rest[open + 2..];
            continue;
        }
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        let name = inner.split(':').next().unwrap_or("").trim();
        names.push(name.to_owned());
        rest = &rest[open + close + 1..];
    }
    names
}
