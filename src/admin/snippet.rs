//! An app's settings as text to paste into its configuration: what `latch
//! app show` prints and the admin console shows, from one function so the
//! two never differ.

use serde_json::Value;

use super::AppDetails;
use crate::proxy::PREFIX;

/// The lines of `latch app show <slug>`: one `name value` line per setting,
/// names in alphabetical order and aligned; for a proxy app, a blank line
/// and where to route the outpost path. Errors: only if the settings cannot
/// be encoded (they always can).
pub fn app_snippet(details: &AppDetails) -> Result<Vec<String>, serde_json::Error> {
    match details {
        // Through a `Value`, whose fields are sorted: the order `app show`
        // has always printed them in.
        AppDetails::Oidc(details) => Ok(fields(&serde_json::to_value(details)?, 23, "")),
        AppDetails::Proxy(settings) => {
            let mut lines = fields(&serde_json::to_value(settings)?, 17, "-");
            lines.push(String::new());
            lines.push(format!(
                "Route {}{PREFIX}/ to {} and protect the rest of the host with the auth URL of your proxy \
                 (README: \"Forward auth\").",
                settings.external_url, settings.outpost_url
            ));
            Ok(lines)
        }
    }
}

/// One `name value` line per field of a JSON object; lists space-separated,
/// `null` as `none` when that is not empty.
fn fields(value: &Value, width: usize, none: &str) -> Vec<String> {
    let Some(fields) = value.as_object() else { return Vec::new() };
    fields
        .iter()
        .map(|(key, value)| {
            let shown = match value {
                Value::String(text) => text.clone(),
                Value::Array(items) => items.iter().filter_map(|item| item.as_str()).collect::<Vec<_>>().join(" "),
                Value::Null if !none.is_empty() => none.to_owned(),
                other => other.to_string(),
            };
            format!("{key:<width$} {shown}")
        })
        .collect()
}
