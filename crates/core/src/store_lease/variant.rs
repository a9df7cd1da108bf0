//! Deliberately broken variants of the store-lease core, for proving that the checkers have
//! teeth (protocol: Checking the checkers). The `tenure` binary never selects one.

use std::fmt;
use std::str::FromStr;

/// Which rule of the store lease, if any, the core breaks on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreVariant {
    /// The store lease as designed.
    #[default]
    Correct,
    /// The holder counts its lease from when a renewal's reply *arrived*, not from when the
    /// renewal was sent (client-go's rule). A reply delayed past the stop margin lets the
    /// holder act after a contender took over.
    DeadlineFromReply,
    /// The holder extends its lease on a renewal whose outcome is unknown (a timeout, a lost
    /// connection), as if it had been applied.
    ExtendOnAmbiguous,
    /// The holder holds the lease for `L` after a renewal instead of `L·(1−ρ)/(1+ρ)`: a slow
    /// holder clock and a fast contender clock overlap.
    NoDriftCompensation,
}

impl StoreVariant {
    /// Every variant, the correct one first.
    pub const ALL: [StoreVariant; 4] = [
        StoreVariant::Correct,
        StoreVariant::DeadlineFromReply,
        StoreVariant::ExtendOnAmbiguous,
        StoreVariant::NoDriftCompensation,
    ];

    /// The broken variants only.
    pub const BROKEN: [StoreVariant; 3] = [
        StoreVariant::DeadlineFromReply,
        StoreVariant::ExtendOnAmbiguous,
        StoreVariant::NoDriftCompensation,
    ];

    /// The snake_case name used on command lines.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StoreVariant::Correct => "correct",
            StoreVariant::DeadlineFromReply => "deadline_from_reply",
            StoreVariant::ExtendOnAmbiguous => "extend_on_ambiguous",
            StoreVariant::NoDriftCompensation => "no_drift_compensation",
        }
    }
}

impl fmt::Display for StoreVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StoreVariant {
    type Err = String;
    fn from_str(text: &str) -> Result<StoreVariant, String> {
        StoreVariant::ALL
            .into_iter()
            .find(|variant| variant.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = StoreVariant::ALL.iter().map(|v| v.name()).collect();
                format!(
                    "unknown store variant {text:?}; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}
