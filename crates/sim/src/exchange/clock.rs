//! Simulated time. Service restarts take time on a real server (the Information Store
//! takes tens of seconds), and exctl must wait for them; tests must not. So the model
//! never reads the system clock directly: it asks a [`Clock`].
//!
//! - [`ScaledClock`] runs with real time, scaled: `time_scale` is the real seconds one
//!   simulated second takes. `1.0` (the default) is real time; `0.001` makes a 45 s
//!   Information Store restart take 45 ms. Simulated time starts at the real wall-clock
//!   time, so event log entries carry plausible dates.
//! - [`ManualClock`] only moves when a test calls [`ManualClock::advance`], for exact
//!   unit tests of restart phases.
//!
//! State changes that depend on time (a restart finishing) are settled lazily: every
//! model operation first brings the model up to `clock.now()`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in simulated time: milliseconds since 1970-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SimTime(pub u64);

impl SimTime {
    /// This time plus a duration.
    pub fn plus(self, d: Duration) -> SimTime {
        SimTime(
            self.0
                .saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64),
        )
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Year, month, day, hour, minute, second (UTC; the simulated host runs in UTC).
    pub fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let secs = (self.0 / 1000) as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Days to civil date (proleptic Gregorian), after H. Hinnant's algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = if m <= 2 { y + 1 } else { y };
        (
            y,
            m,
            d,
            (rem / 3600) as u32,
            ((rem / 60) % 60) as u32,
            (rem % 60) as u32,
        )
    }
}

impl fmt::Display for SimTime {
    /// The en-US `DateTime.ToString()` form Windows PowerShell prints:
    /// `11/24/2025 7:42:05 AM`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.civil();
        let (h12, ampm) = match h {
            0 => (12, "AM"),
            1..=11 => (h, "AM"),
            12 => (12, "PM"),
            _ => (h - 12, "PM"),
        };
        write!(f, "{mo}/{d}/{y} {h12}:{mi:02}:{s:02} {ampm}")
    }
}

/// Where the model gets the time from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current simulated time.
    fn now(&self) -> SimTime;
    /// How long to wait in real time for `simulated` to pass.
    fn real_duration(&self, simulated: Duration) -> Duration;
}

/// Real time, optionally scaled (see the module docs).
#[derive(Debug)]
pub struct ScaledClock {
    origin_real: Instant,
    origin_sim: SimTime,
    time_scale: f64,
}

impl ScaledClock {
    /// Simulated time passes at real speed.
    pub fn real() -> Self {
        Self::with_scale(1.0)
    }

    /// One simulated second takes `time_scale` real seconds (clamped to a sane range:
    /// 1e-6..=1e3, and 1.0 for NaN).
    pub fn with_scale(time_scale: f64) -> Self {
        let time_scale = if time_scale.is_finite() {
            time_scale.clamp(1e-6, 1e3)
        } else {
            1.0
        };
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        ScaledClock {
            origin_real: Instant::now(),
            origin_sim: SimTime(wall.as_millis() as u64),
            time_scale,
        }
    }

    /// The scale this clock runs at.
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> SimTime {
        let real = self.origin_real.elapsed().as_secs_f64();
        let sim = Duration::try_from_secs_f64(real / self.time_scale).unwrap_or(Duration::MAX);
        self.origin_sim.plus(sim)
    }

    fn real_duration(&self, simulated: Duration) -> Duration {
        Duration::try_from_secs_f64(simulated.as_secs_f64() * self.time_scale)
            .unwrap_or(Duration::MAX)
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SimTime>,
}

impl ManualClock {
    /// Starts at `start`.
    pub fn new(start: SimTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves simulated time forward.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.plus(d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SimTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn real_duration(&self, _simulated: Duration) -> Duration {
        // Nothing passes on its own: callers must advance the clock themselves.
        Duration::ZERO
    }
}

/// A shared clock handle that defaults to real time (so a deserialized model has one).
#[derive(Clone)]
pub struct ClockRef(pub Arc<dyn Clock>);

impl Default for ClockRef {
    fn default() -> Self {
        ClockRef(Arc::new(ScaledClock::real()))
    }
}

impl fmt::Debug for ClockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ClockRef {
    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.0.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_windows_powershell() {
        // 2009-10-10 17:44:29 UTC, the WhenChanged of the RTM default policy dump.
        assert_eq!(
            SimTime(1_255_196_669_000).to_string(),
            "10/10/2009 5:44:29 PM"
        );
        assert_eq!(SimTime(0).to_string(), "1/1/1970 12:00:00 AM");
    }

    #[test]
    fn scaled_clock_runs_faster_and_reports_real_waits() {
        let c = ScaledClock::with_scale(0.001);
        assert_eq!(
            c.real_duration(Duration::from_secs(45)),
            Duration::from_millis(45)
        );
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.now().since(t0) >= Duration::from_secs(4));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(SimTime(1000));
        assert_eq!(c.now(), SimTime(1000));
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now(), SimTime(3000));
    }
}
