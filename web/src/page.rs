//! The volunteer page, and the page shown instead without the right token.

/// The volunteer page's HTML; `{{FUNCTION}}` becomes the function file's
/// name as a JSON string (or `null` without one).
const VOLUNTEER_HTML: &str = include_str!("../assets/volunteer.html");

/// The page's script (the connection, the Web Workers, the counters).
pub(crate) const VOLUNTEER_JS: &str = include_str!("../assets/volunteer.js");

/// The Web Workers' script (loads the user's function, runs values).
pub(crate) const WORKER_JS: &str = include_str!("../assets/volunteer-worker.js");

/// The volunteer page for a run whose function file is `function`.
pub(crate) fn volunteer(function: Option<&str>) -> String {
    let name = serde_json::to_string(&function).expect("a file name encodes");
    // Inside a <script>, `</` must not appear: JSON may escape `/` as `\/`.
    VOLUNTEER_HTML.replace("{{FUNCTION}}", &name.replace("</", "<\\/"))
}

/// A short page that says why the volunteer page is not shown.
pub(crate) fn refused(title: &str, explanation: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Pando: {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5}}</style>\
         </head><body><h1 id=\"refused\">{title}</h1><p>{explanation}</p></body></html>",
        title = escape(title),
        explanation = escape(explanation),
    )
}

/// `text` with the characters HTML gives meaning to escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_name_cannot_end_the_script() {
        let page = volunteer(Some("</script><b>.js"));
        assert!(page.contains(r#""<\/script><b>.js""#));
        assert!(volunteer(None).contains("null"));
        assert!(!refused("a<b", "c&d").contains("a<b"));
    }
}
