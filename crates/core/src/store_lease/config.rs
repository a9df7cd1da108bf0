//! [`StoreLeaseConfig`]: the timing of a store lease, valid by construction.

use std::fmt;

use crate::config::{lease_hold_for, HEARTBEAT_LEASE_DIVISOR, MAX_DRIFT_PPM, PPM};
use crate::store_lease::store::ExpiryJudge;
use crate::store_lease::variant::StoreVariant;
use crate::time::Duration;

/// The parameters of a store lease (protocol: Store leases). [`StoreLeaseConfig::new`] checks
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreLeaseParams {
    /// D: how long a renewal keeps the tenure, measured by contenders (or the store) from when
    /// they saw it.
    pub lease_duration: Duration,
    /// ρ, in parts per million: how far any clock involved may run fast or slow.
    pub max_drift_ppm: u32,
    /// The time the driver needs to stop the child for sure (protocol: The deadline guard).
    pub stop_margin: Duration,
    /// The holder renews this long after sending its latest successful renewal.
    pub renew_interval: Duration,
    /// A contender reads the record this often.
    pub poll_interval: Duration,
    /// A request unanswered for this long is given up as failed: its outcome is unknown.
    pub request_timeout: Duration,
    pub judge: ExpiryJudge,
    /// Which rule, if any, this core breaks on purpose (tests only; protocol: Checking the
    /// checkers).
    #[cfg(feature = "broken-variants")]
    pub variant: StoreVariant,
}

impl StoreLeaseParams {
    /// The defaults for a lease of `lease_duration` and a stop margin of `stop_margin`:
    /// renewals and polls every L/8 (as the quorum's heartbeat), a request given up after one
    /// renew interval, and the default drift bound.
    #[must_use]
    pub fn for_lease(
        lease_duration: Duration,
        stop_margin: Duration,
        judge: ExpiryJudge,
    ) -> StoreLeaseParams {
        let interval = lease_duration.mul_ratio(1, HEARTBEAT_LEASE_DIVISOR);
        StoreLeaseParams {
            lease_duration,
            max_drift_ppm: crate::config::DEFAULT_MAX_DRIFT_PPM,
            stop_margin,
            renew_interval: interval,
            poll_interval: interval,
            request_timeout: interval,
            judge,
            #[cfg(feature = "broken-variants")]
            variant: StoreVariant::Correct,
        }
    }
}

/// A valid store-lease configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreLeaseConfig {
    params: StoreLeaseParams,
    lease_hold: Duration,
}

/// Why [`StoreLeaseParams`] were refused. Each names the rule it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreLeaseConfigError {
    /// A duration that must be positive is zero.
    Zero { field: &'static str },
    /// ρ above the largest the core supports.
    DriftTooLarge { max_drift_ppm: u32 },
    /// The acting window, `L·(1−ρ)/(1+ρ) − stop_margin`, leaves no time for one renewal.
    NoActingWindow {
        acting_window: Duration,
        renew_interval: Duration,
    },
    /// A request would be given up only after the next one is due.
    TimeoutTooLong {
        request_timeout: Duration,
        renew_interval: Duration,
    },
}

impl fmt::Display for StoreLeaseConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StoreLeaseConfigError::Zero { field } => write!(f, "{field} must be above zero"),
            StoreLeaseConfigError::DriftTooLarge { max_drift_ppm } => write!(
                f,
                "the drift bound {max_drift_ppm} ppm is above the largest supported, \
                 {MAX_DRIFT_PPM} ppm"
            ),
            StoreLeaseConfigError::NoActingWindow {
                acting_window,
                renew_interval,
            } => write!(
                f,
                "the acting window (lease·(1−drift)/(1+drift) − stop grace = {} ms) must be \
                 longer than the renew interval ({} ms): lengthen the lease or shorten the \
                 stop grace",
                acting_window.as_millis(),
                renew_interval.as_millis()
            ),
            StoreLeaseConfigError::TimeoutTooLong {
                request_timeout,
                renew_interval,
            } => write!(
                f,
                "the request timeout ({} ms) must not exceed the renew interval ({} ms)",
                request_timeout.as_millis(),
                renew_interval.as_millis()
            ),
        }
    }
}

impl std::error::Error for StoreLeaseConfigError {}

impl StoreLeaseConfig {
    /// Checks `params`.
    pub fn new(params: StoreLeaseParams) -> Result<StoreLeaseConfig, StoreLeaseConfigError> {
        for (field, value) in [
            ("the lease", params.lease_duration),
            ("the renew interval", params.renew_interval),
            ("the poll interval", params.poll_interval),
            ("the request timeout", params.request_timeout),
        ] {
            if value == Duration::ZERO {
                return Err(StoreLeaseConfigError::Zero { field });
            }
        }
        if params.max_drift_ppm > MAX_DRIFT_PPM {
            return Err(StoreLeaseConfigError::DriftTooLarge {
                max_drift_ppm: params.max_drift_ppm,
            });
        }
        let drift = f64::from(params.max_drift_ppm) / PPM as f64;
        let lease_hold = lease_hold_for(params.lease_duration, drift);
        let acting_window = lease_hold.saturating_sub(params.stop_margin);
        if acting_window <= params.renew_interval {
            return Err(StoreLeaseConfigError::NoActingWindow {
                acting_window,
                renew_interval: params.renew_interval,
            });
        }
        if params.request_timeout > params.renew_interval {
            return Err(StoreLeaseConfigError::TimeoutTooLong {
                request_timeout: params.request_timeout,
                renew_interval: params.renew_interval,
            });
        }
        Ok(StoreLeaseConfig { params, lease_hold })
    }

    #[must_use]
    pub fn params(&self) -> &StoreLeaseParams {
        &self.params
    }

    #[must_use]
    pub fn lease_duration(&self) -> Duration {
        self.params.lease_duration
    }

    /// How long after sending a successful renewal the holder holds the tenure on its own
    /// clock: `L·(1−ρ)/(1+ρ)`, or `L` in the `no_drift_compensation` variant
    /// (protocol: The store-lease acting rule).
    #[must_use]
    pub fn lease_hold(&self) -> Duration {
        if self.breaks(StoreVariant::NoDriftCompensation) {
            self.params.lease_duration
        } else {
            self.lease_hold
        }
    }

    #[must_use]
    pub fn stop_margin(&self) -> Duration {
        self.params.stop_margin
    }

    #[must_use]
    pub fn judge(&self) -> ExpiryJudge {
        self.params.judge
    }

    /// Which broken variant this configuration runs.
    #[cfg(feature = "broken-variants")]
    #[must_use]
    pub fn variant(&self) -> StoreVariant {
        self.params.variant
    }

    /// Whether the configuration runs `variant`. Always false without the `broken-variants`
    /// feature.
    #[must_use]
    pub(crate) fn breaks(&self, variant: StoreVariant) -> bool {
        #[cfg(feature = "broken-variants")]
        {
            self.params.variant == variant
        }
        #[cfg(not(feature = "broken-variants"))]
        {
            let _ = variant;
            false
        }
    }
}
