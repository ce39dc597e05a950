//! Request parameters as a flat list of pairs, refusing repeats (RFC 6749
//! §3.1: "parameters MUST NOT be included more than once").

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// `Err` names the first parameter that was sent twice.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(name);
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// A parameter sent empty counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// The parameters, sorted by name, for rebuilding a request URL.
    pub fn sorted_pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<_> = self.0.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        pairs.sort_unstable();
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_absent() {
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(Params::from_pairs(vec![pair("a", "1"), pair("a", "2")]).unwrap_err(), "a");
        let params = Params::from_pairs(vec![pair("a", ""), pair("b", "x")]).unwrap();
        assert_eq!(params.get("a"), None);
        assert_eq!(params.get("b"), Some("x"));
    }
}
