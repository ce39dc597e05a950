//! A posted console form: `application/x-www-form-urlencoded` pairs, where
//! a name may repeat (a checkbox per group).

/// The pairs of a posted form, in order.
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self { pairs: url::form_urlencoded::parse(body).into_owned().collect() }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, trimmed; `""` when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_owned()
    }

    /// The trimmed value of `name`, `None` when absent or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|value| !value.is_empty())
    }

    /// Every non-blank value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, value)| key == name && !value.trim().is_empty())
            .map(|(_, value)| value.trim().to_owned())
            .collect()
    }

    /// Whether checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The non-blank lines of textarea `name`, trimmed.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_blank_values_and_lines() {
        let form = Form::parse(b"group=a&group=&group=b&name=+Ada+&uris=x%0D%0A%0D%0A+y+&tick=on");
        assert_eq!(form.all("group"), ["a", "b"]);
        assert_eq!(form.get("group"), Some("a"));
        assert_eq!(form.text("name"), "Ada");
        assert_eq!(form.optional("missing"), None);
        assert_eq!(form.lines("uris"), ["x", "y"]);
        assert!(form.checked("tick"));
        assert!(!form.checked("other"));
    }
}
