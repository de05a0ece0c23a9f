//! Rewrites of the generated client that progenitor has no setting for. They run on the parsed
//! output (never by hand on the generated file), so a spec change regenerates them too:
//!
//! - every builder's `send()` returns the client crate's own `Error` (status, Lago's code and
//!   details, the host and attempts of a transport failure) instead of progenitor's
//!   `Error<ByteStream>`, so callers match on it without a conversion; progenitor's method stays,
//!   renamed `send_unconverted`, private to the builder;
//! - array setters take any iterator of values that convert (`["a", "b"]`, `Vec<&str>`,
//!   `Vec<String>`, typed values), and every setter reports a bad value with the parameter's
//!   name, the value given and the reason, instead of progenitor's fixed
//!   ``conversion to `:: path :: Type` for name failed``;
//! - path values are encoded by the client crate's `path::encode_segment`, which leaves only
//!   unreserved characters unescaped, so no value (`\`, `?`, `#`, `%2e%2e`) can leave its segment.

use quote::{format_ident, quote};
use syn::visit_mut::VisitMut;

/// The hand-written items the rewritten code calls, through the crate-independent path the
/// replacements use.
const CLIENT_CRATE: &str = "lago_audit_client";

/// Applies every rewrite to the generated client.
pub fn client(ast: &mut syn::File) {
    Rewrites.visit_file_mut(ast);
}

struct Rewrites;

impl VisitMut for Rewrites {
    fn visit_item_impl_mut(&mut self, item: &mut syn::ItemImpl) {
        let mut added = Vec::new();
        for impl_item in &mut item.items {
            let syn::ImplItem::Fn(f) = impl_item else {
                continue;
            };
            if f.sig.ident == "send" && f.sig.asyncness.is_some() {
                if let Some(wrapper) = convert_send(f) {
                    added.push(wrapper);
                }
            } else if let Some((target, optional)) = operation_setter(f) {
                rewrite_setter(f, &target, optional);
            }
        }
        item.items.extend(added);
        syn::visit_mut::visit_item_impl_mut(self, item);
    }

    fn visit_expr_call_mut(&mut self, call: &mut syn::ExprCall) {
        syn::visit_mut::visit_expr_call_mut(self, call);
        if let syn::Expr::Path(p) = &*call.func {
            if p.path.is_ident("encode_path") {
                let krate = format_ident!("{CLIENT_CRATE}");
                *call.func = syn::parse_quote!(::#krate::path::encode_segment);
            }
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        // `format!("{}/activity_logs/{}", client.baseurl, encode_path(..))`: the call sits inside
        // a macro's tokens, which the visitor does not enter on its own.
        if !mac.path.is_ident("format") {
            return;
        }
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        let Ok(mut args) = mac.parse_body_with(parser) else {
            return;
        };
        let before = quote!(#args).to_string();
        for arg in args.iter_mut() {
            self.visit_expr_mut(arg);
        }
        if quote!(#args).to_string() != before {
            mac.tokens = quote!(#args);
        }
    }
}

/// Renames progenitor's `send` to a private `send_unconverted` and returns a public `send` with
/// the same success type whose error is the client crate's `Error`.
fn convert_send(f: &mut syn::ImplItemFn) -> Option<syn::ImplItem> {
    let syn::ReturnType::Type(_, ty) = &f.sig.output else {
        return None;
    };
    let ok = result_ok_type(ty)?;
    let docs: Vec<&syn::Attribute> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    let docs = quote!(#(#docs)*);
    f.sig.ident = format_ident!("send_unconverted");
    f.vis = syn::Visibility::Inherited;
    let krate = format_ident!("{CLIENT_CRATE}");
    Some(syn::parse_quote! {
        #docs
        /// Sends the request. A failure is a [`lago_audit_client::Error`]:
        /// Lago's status, code and details, or where and after how many attempts the transport
        /// failed.
        pub async fn send(self) -> Result<#ok, ::#krate::Error> {
            let client = self.client;
            ::#krate::error::attempted(client, self, Self::send_unconverted).await
        }
    })
}

/// The first type argument of `path`'s last segment when that segment is `name`: `T` in
/// `Result<T, E>` (name `Result`), `Vec<T>` or `TryInto<T>`.
fn first_type_argument(path: &syn::Path, name: &str) -> Option<syn::Type> {
    let last = path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

/// `T` in `Result<T, E>`.
fn result_ok_type(ty: &syn::Type) -> Option<syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    first_type_argument(&p.path, "Result")
}

/// For a setter of an operation builder (progenitor's `fn name<V>(mut self, value: V) -> Self
/// where V: TryInto<T>`, whose error text is ``conversion to `T` for name failed``): `T`, and
/// whether the parameter is optional (stored as `Option<T>`). `None` for anything else, such as
/// the model builders typify generates, whose errors already carry the reason.
fn operation_setter(f: &syn::ImplItemFn) -> Option<(syn::Type, bool)> {
    let block = &f.block;
    let body = quote!(#block).to_string();
    if !body.contains("conversion to `") {
        return None;
    }
    let optional = body.contains("map (Some)");
    let generics = &f.sig.generics;
    if generics.params.len() != 1 || f.sig.inputs.len() != 2 {
        return None;
    }
    let where_clause = generics.where_clause.as_ref()?;
    let syn::WherePredicate::Type(pred) = where_clause.predicates.first()? else {
        return None;
    };
    let syn::TypeParamBound::Trait(bound) = pred.bounds.first()? else {
        return None;
    };
    first_type_argument(&bound.path, "TryInto").map(|t| (t, optional))
}

/// The element type of `::std::vec::Vec<T>`.
fn vec_element(ty: &syn::Type) -> Option<syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    first_type_argument(&p.path, "Vec")
}

/// Rewrites `fn name<V>(mut self, value: V) -> Self where V: TryInto<T>` so that a bad value is
/// reported with its parameter, the value and the reason; a `Vec<T>` setter takes any iterator
/// whose items convert into `T`.
fn rewrite_setter(f: &mut syn::ImplItemFn, target: &syn::Type, optional: bool) {
    let name = f.sig.ident.clone();
    let wrap = if optional {
        quote!(.map(Some))
    } else {
        quote!()
    };
    let label = name.to_string();
    let krate = format_ident!("{CLIENT_CRATE}");
    let (where_clause, body): (syn::WhereClause, syn::Block) = match vec_element(target) {
        Some(element) => (
            syn::parse_quote! {
                where
                    V: ::std::iter::IntoIterator,
                    V::Item: ::std::convert::TryInto<#element> + ::std::fmt::Debug,
                    <V::Item as ::std::convert::TryInto<#element>>::Error: ::std::fmt::Display,
            },
            syn::parse_quote! {{
                self.#name = value
                    .into_iter()
                    .map(|item| {
                        let shown = ::std::format!("{item:?}");
                        item.try_into()
                            .map_err(|e| ::#krate::error::invalid_value(#label, &shown, &e))
                    })
                    .collect::<::std::result::Result<::std::vec::Vec<#element>, _>>()
                    #wrap;
                self
            }},
        ),
        None => (
            syn::parse_quote! {
                where
                    V: ::std::convert::TryInto<#target> + ::std::fmt::Debug,
                    V::Error: ::std::fmt::Display,
            },
            syn::parse_quote! {{
                let shown = ::std::format!("{value:?}");
                self.#name = value
                    .try_into()
                    #wrap
                    .map_err(|e| ::#krate::error::invalid_value(#label, &shown, &e));
                self
            }},
        ),
    };
    f.sig.generics.where_clause = Some(where_clause);
    f.block = body;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rewritten code with all whitespace removed, so assertions do not depend on layout.
    fn rewrite(code: proc_macro2::TokenStream) -> String {
        let mut ast: syn::File = syn::parse2(code).unwrap();
        client(&mut ast);
        squash(&prettyplease::unparse(&ast))
    }

    fn squash(code: &str) -> String {
        code.split_whitespace().collect()
    }

    #[test]
    fn send_returns_the_crate_error_and_keeps_the_generated_body() {
        let out = rewrite(quote! {
            impl<'a> FindThing<'a> {
                /// Sends a `GET` request.
                pub async fn send(self) -> Result<ResponseValue<types::Thing>, Error<ByteStream>> {
                    todo!()
                }
            }
        });
        assert!(
            out.contains(&squash("async fn send_unconverted(self")),
            "{out}"
        );
        assert!(
            !out.contains(&squash("pub async fn send_unconverted")),
            "{out}"
        );
        assert!(
            out.contains(&squash("pub async fn send(self,) -> Result<ResponseValue<types::Thing>, ::lago_audit_client::Error>")),
            "{out}"
        );
        assert!(out.contains(&squash(
            "::lago_audit_client::error::attempted(client, self, Self::send_unconverted)"
        )));
    }

    #[test]
    fn array_setters_take_iterators_and_report_values() {
        let out = rewrite(quote! {
            impl<'a> FindAll<'a> {
                pub fn activity_types<V>(mut self, value: V) -> Self
                where
                    V: std::convert::TryInto<::std::vec::Vec<::std::string::String>>,
                {
                    self.activity_types = value.try_into().map(Some).map_err(|_| "conversion to `Vec` for activity_types failed".to_string());
                    self
                }
                pub fn page<V>(mut self, value: V) -> Self
                where
                    V: std::convert::TryInto<i64>,
                {
                    self.page = value.try_into().map(Some).map_err(|_| "conversion to `i64` for page failed".to_string());
                    self
                }
                pub fn id<V>(mut self, value: V) -> Self
                where
                    V: std::convert::TryInto<::std::string::String>,
                {
                    self.id = value.try_into().map_err(|_| "conversion to `String` for id failed".to_string());
                    self
                }
            }
            impl Model {
                pub fn name<T>(mut self, value: T) -> Self
                where
                    T: std::convert::TryInto<String>,
                    T::Error: std::fmt::Display,
                {
                    self.name = value.try_into().map_err(|e| format!("error converting supplied value for name: {}", e));
                    self
                }
            }
        });
        assert!(
            out.contains(&squash("V: ::std::iter::IntoIterator")),
            "{out}"
        );
        assert!(
            out.contains(&squash(
                "V::Item: ::std::convert::TryInto<::std::string::String>"
            )),
            "{out}"
        );
        assert!(
            out.contains(&squash(
                "V: ::std::convert::TryInto<i64> + ::std::fmt::Debug"
            )),
            "{out}"
        );
        assert!(out.contains(&squash("invalid_value(\"page\"")), "{out}");
        assert!(!out.contains(&squash("conversion to `")), "{out}");
        // A required parameter is stored without `Some`.
        assert!(out.contains(&squash("invalid_value(\"id\"")), "{out}");
        let id_setter = &out[out.find("pubfnid<V>").unwrap()..out.find("implModel").unwrap()];
        assert!(!id_setter.contains(&squash("Some")), "{id_setter}");
        // typify's model builders are left alone.
        assert!(
            out.contains(&squash("error converting supplied value for name")),
            "{out}"
        );
    }

    #[test]
    fn path_values_use_the_strict_encoder() {
        let out = rewrite(quote! {
            fn f(client: &Client, id: String) -> String {
                format!("{}/things/{}", client.baseurl, encode_path(&id.to_string()))
            }
        });
        assert!(
            out.contains(&squash(
                "::lago_audit_client::path::encode_segment(&id.to_string())"
            )),
            "{out}"
        );
        assert!(!out.contains(&squash(" encode_path(")), "{out}");
    }
}
