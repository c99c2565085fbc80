//! `choice!`: an enum of named values (a setting's choices, a log level). serde and strum derive
//! its names alike (`snake_case`), so one enum reads, writes, shows, parses (any case) and lists
//! (`VariantNames`, for messages naming the accepted values) the same names.

/// Declare a choice: `choice! { /// doc \n Name { #[default] A, B } }`. Attributes before the
/// name (docs, more derives) go on the enum.
macro_rules! choice {
    ($(#[$attr:meta])* $name:ident { $($(#[$vattr:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(
            Debug,
            Clone,
            Copy,
            Default,
            PartialEq,
            Eq,
            serde::Serialize,
            serde::Deserialize,
            strum::Display,
            strum::EnumString,
            strum::IntoStaticStr,
            strum::VariantNames,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case", ascii_case_insensitive)]
        pub enum $name {
            $($(#[$vattr])* $variant),+
        }

        impl $name {
            /// The name.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    };
}

pub(crate) use choice;

/// Each listed name of `T` reads (serde) as a variant that writes and shows as that name.
#[cfg(test)]
pub(crate) fn names_round_trip<T>()
where
    T: strum::VariantNames
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Display
        + std::str::FromStr<Err = strum::ParseError>
        + PartialEq
        + std::fmt::Debug,
{
    for name in T::VARIANTS {
        let v: T = serde_json::from_value(serde_json::json!(name)).unwrap();
        assert_eq!(serde_json::to_value(&v).unwrap(), *name);
        assert_eq!(v.to_string(), *name);
        assert_eq!(name.to_ascii_uppercase().parse::<T>(), Ok(v));
    }
}
