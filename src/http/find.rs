//! The resource finder (`/find`): a phone-first page for partner staff and families to find the
//! nearest resources, in English or Spanish, that keeps working offline through its service
//! worker (`/find/sw.js`). The server only picks the language (`?lang=`, else `Accept-Language`)
//! and fills the page's strings in from `web/src/find-strings.json`; the page, like `/map`,
//! talks to the service over HTTP.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Redirect, Response};
use serde_json::{Map, Value};

use super::AppError;
use super::format::QueryPairs;
use super::map::{Asset, REVALIDATE, WEB_SRC, digest_hex, escape_html, find, maplibre_version};

/// A language the finder is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English, the default.
    En,
    /// Spanish.
    Es,
}

impl Lang {
    /// Every language of the page, the default first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Es];

    /// The BCP 47 code (`en`, `es`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    /// The language of a tag by its primary subtag (`es-MX` is Spanish); `None` for others.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        Lang::ALL.into_iter().find(|l| primary.eq_ignore_ascii_case(l.code()))
    }
}

/// The page's language: `?lang=` when it names one of ours, else the best of `Accept-Language`
/// (highest `q`, the first listed among equals; `q=0` refuses), else English.
pub fn negotiate(query_lang: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = query_lang.and_then(Lang::from_tag) {
        return lang;
    }
    let mut best: Option<(f32, Lang)> = None;
    for part in accept_language.unwrap_or("").split(',') {
        let mut it = part.split(';');
        let Some(lang) = it.next().and_then(Lang::from_tag) else { continue };
        let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::En, |(_, lang)| lang)
}

/// The strings of each language, from `find-strings.json`.
fn strings() -> Result<Map<String, Value>, String> {
    let file = find(&WEB_SRC, "find-strings.json").ok_or("web/src/find-strings.json not embedded")?;
    match serde_json::from_slice(&file.bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("find-strings.json is not an object of languages".into()),
        Err(e) => Err(format!("find-strings.json: {e}")),
    }
}

/// Fill a template's `{{key}}` placeholders: `lang` with the language code, every other key with
/// that language's string (HTML-escaped). Unknown keys are an error, naming them.
pub fn render(template: &str, lang: Lang, strings: &Map<String, Value>) -> Result<String, String> {
    let table = strings.get(lang.code()).and_then(Value::as_object).ok_or(format!("no strings for {}", lang.code()))?;
    let mut out = String::with_capacity(template.len() + template.len() / 4);
    let mut missing = BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let key = &after[..end];
        if key == "lang" {
            out.push_str(lang.code());
        } else if let Some(text) = table.get(key).and_then(Value::as_str) {
            out.push_str(&escape_html(text));
        } else {
            missing.insert(key.to_string());
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!("find.html uses strings {} has no {:?}", lang.code(), missing))
    }
}

/// The page in each language (rendered once), or why it could not be.
static PAGES: LazyLock<Result<Vec<(Lang, Asset)>, String>> = LazyLock::new(|| {
    let template = find(&WEB_SRC, "find.html").ok_or("web/src/find.html not embedded")?;
    let template = String::from_utf8_lossy(&template.bytes);
    let strings = strings()?;
    Lang::ALL
        .into_iter()
        .map(|lang| Ok((lang, Asset::new("find.html", render(&template, lang, &strings)?, REVALIDATE))))
        .collect()
});

/// `GET /find`: the finder, in the language asked for.
pub async fn page(q: QueryPairs, headers: HeaderMap) -> Result<Response, AppError> {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = negotiate(q.get("lang"), accept);
    let pages = PAGES.as_ref().map_err(|e| AppError::Internal(e.clone()))?;
    let (_, page) =
        pages.iter().find(|(l, _)| *l == lang).ok_or_else(|| AppError::Internal("no finder page".into()))?;
    let mut res = page.respond(&headers);
    let h = res.headers_mut();
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    // Same URL, different languages by Accept-Language: caches must keep them apart.
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    Ok(res)
}

/// `GET /find/`: the page lives at `/find`, which its relative links (and the worker's scope) assume.
pub async fn trailing_slash() -> Redirect {
    Redirect::permanent("../find")
}

/// The service worker, with the version of this build's web files filled in.
static WORKER: LazyLock<Result<Asset, String>> = LazyLock::new(|| {
    let source = find(&WEB_SRC, "sw.js").ok_or("web/src/sw.js not embedded")?;
    let mut all = Vec::new();
    for (name, asset) in WEB_SRC.iter() {
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(&asset.bytes);
    }
    all.extend_from_slice(maplibre_version().unwrap_or("none").as_bytes());
    let text = String::from_utf8_lossy(&source.bytes)
        .replace("{{version}}", &digest_hex(&all))
        .replace("{{maplibre}}", maplibre_version().unwrap_or(""));
    Ok(Asset::new("sw.js", text, REVALIDATE))
});

/// `GET /find/sw.js`: the service worker. Its scope is the page, one level up from the script,
/// which `Service-Worker-Allowed` permits (relative, so it holds behind a path prefix).
pub async fn service_worker(headers: HeaderMap) -> Result<Response, AppError> {
    let worker = WORKER.as_ref().map_err(|e| AppError::Internal(e.clone()))?;
    let mut res = worker.respond(&headers);
    res.headers_mut().insert("service-worker-allowed", HeaderValue::from_static("../find"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_then_the_best_accept_language() {
        for (query, accept, want) in [
            (None, None, Lang::En),
            (None, Some("es-MX,es;q=0.9,en;q=0.8"), Lang::Es),
            (None, Some("en-US,en;q=0.9,es;q=0.8"), Lang::En),
            (None, Some("fr-FR, es;q=0.5, en;q=0.4"), Lang::Es),
            (None, Some("fr, de"), Lang::En),
            (None, Some("es;q=0, en;q=0.1"), Lang::En),
            (None, Some("ES"), Lang::Es),
            (Some("en"), Some("es"), Lang::En),
            (Some("es"), Some("en"), Lang::Es),
            (Some("es-419"), None, Lang::Es),
            (Some("fr"), Some("es"), Lang::Es),
            (Some(""), None, Lang::En),
        ] {
            assert_eq!(negotiate(query, accept), want, "lang={query:?} Accept-Language: {accept:?}");
        }
    }

    #[test]
    fn every_placeholder_has_a_string_in_every_language_and_the_languages_match() {
        let strings = strings().unwrap();
        let template = String::from_utf8_lossy(&find(&WEB_SRC, "find.html").unwrap().bytes).to_string();
        for lang in Lang::ALL {
            let page = render(&template, lang, &strings).unwrap();
            assert!(!page.contains("{{"), "{page}");
            assert!(page.contains(&format!("<html lang=\"{}\">", lang.code())));
        }
        // Both languages have the same keys, nested tables too, and no empty string.
        fn keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
            for (k, v) in v.as_object().unwrap() {
                match v {
                    Value::Object(_) => keys(v, &format!("{prefix}{k}."), out),
                    Value::String(s) => {
                        assert!(!s.trim().is_empty(), "{prefix}{k} is empty");
                        out.insert(format!("{prefix}{k}"));
                    }
                    other => panic!("{prefix}{k} is not a string: {other}"),
                }
            }
        }
        let (mut en, mut es) = (BTreeSet::new(), BTreeSet::new());
        keys(&strings["en"], "", &mut en);
        keys(&strings["es"], "", &mut es);
        assert_eq!(en.symmetric_difference(&es).collect::<Vec<_>>(), Vec::<&String>::new());
    }

    #[test]
    fn render_escapes_and_names_what_is_missing() {
        let strings: Map<String, Value> = serde_json::from_str(r#"{"en": {"a": "<b> & \"c\""}, "es": {}}"#).unwrap();
        assert_eq!(render("{{lang}}: {{a}}", Lang::En, &strings).unwrap(), "en: &lt;b&gt; &amp; &quot;c&quot;");
        let err = render("{{a}} {{b}}", Lang::Es, &strings).unwrap_err();
        assert!(err.contains("\"a\"") && err.contains("\"b\""), "{err}");
        assert_eq!(render("no {{ end", Lang::En, &strings).unwrap(), "no {{ end");
    }
}
