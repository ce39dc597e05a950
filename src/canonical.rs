//! Closed sets of values with one spelling each: the protocol's terms
//! (`grant_type`, `response_mode`, …) and the settings Latch stores as text.
//! Each set is an enum parsed once where the text arrives (a request, a
//! row, a flag); everything past that point matches on variants, and every
//! list shown to others (discovery, error messages, `--help`) is derived
//! from the enum's `ALL`, so it cannot drift from what is handled.

/// A value outside its set. `kind` is the parameter or setting's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value} is not supported; use {}", one_of(expected))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// `a`, `a or b`, `a, b or c`: the choices as a sentence says them.
pub fn one_of(choices: &[&str]) -> String {
    match choices {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Defines `enum $name` with `ALL` (in the order lists show them), `NAMES`
/// (their spellings, same order), `as_str`, `FromStr`, `Display` and
/// `Serialize` as the canonical spelling. `$kind` names the set in errors.
macro_rules! canonical_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::canonical::UnknownValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::canonical::UnknownValue {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

/// A `canonical_enum!` as a command-line value: `--help` and clap's errors
/// list the canonical spellings, exactly as stored.
macro_rules! canonical_value_enum {
    ($name:ident) => {
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }
    };
}

pub(crate) use {canonical_enum, canonical_value_enum};

#[cfg(test)]
mod tests {
    use super::*;

    canonical_enum! {
        enum Fruit ("fruit") { Apple = "apple", BloodOrange = "blood_orange", Cherry = "Cherry" }
    }

    #[test]
    fn every_value_round_trips_through_its_spelling() {
        for (fruit, name) in Fruit::ALL.iter().zip(Fruit::NAMES) {
            assert_eq!(fruit.as_str(), *name);
            assert_eq!(name.parse::<Fruit>(), Ok(*fruit));
            assert_eq!(fruit.to_string(), *name);
            assert_eq!(format!("{fruit:<13}|"), format!("{name:<13}|"));
            assert_eq!(serde_json::to_value(fruit).unwrap(), serde_json::json!(name));
        }
    }

    #[test]
    fn spellings_are_exact_and_unknowns_are_named() {
        let error = "cherry".parse::<Fruit>().unwrap_err();
        assert_eq!(error.to_string(), "fruit cherry is not supported; use apple, blood_orange or Cherry");
        assert!("Apple".parse::<Fruit>().is_err());
        assert!(" apple".parse::<Fruit>().is_err());
    }

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["a", "b"]), "a or b");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }
}
