//! Restart pacing: the exponential restart delay and the start limit.
//!
//! Both are computed lazily when a service exits; neither needs a timer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::ServiceConfig;

/// Consecutive restarts so far; the delay doubles with each one.
#[derive(Debug, Clone, Default)]
pub(super) struct Backoff {
    consecutive: u32,
}

impl Backoff {
    /// The delay before the next restart: `restart_delay * 2^n`, capped at
    /// `restart_delay_max`. A service that stayed up at least
    /// `restart_delay_max` was not crash-looping, so its sequence starts over.
    pub(super) fn next(&mut self, config: &ServiceConfig, uptime: Duration) -> Duration {
        if uptime >= config.restart_delay_max {
            self.consecutive = 0;
        }
        let factor = 1u32 << self.consecutive.min(31);
        self.consecutive = self.consecutive.saturating_add(1);
        config
            .restart_delay
            .saturating_mul(factor)
            .min(config.restart_delay_max)
    }

    pub(super) fn reset(&mut self) {
        self.consecutive = 0;
    }
}

/// When the service was spawned lately, to refuse a start past the burst.
#[derive(Debug, Clone, Default)]
pub(super) struct StartLimit {
    starts: VecDeque<Instant>,
}

impl StartLimit {
    pub(super) fn record(&mut self, now: Instant) {
        self.starts.push_back(now);
    }

    /// Would a start at `at` make more than `start_limit_burst` starts within
    /// `start_limit_interval`?
    pub(super) fn exceeded(&mut self, config: &ServiceConfig, at: Instant) -> bool {
        let interval = config.start_limit_interval;
        while let Some(first) = self.starts.front() {
            if at.saturating_duration_since(*first) >= interval {
                self.starts.pop_front();
            } else {
                break;
            }
        }
        self.starts.len() >= config.start_limit_burst as usize
    }

    pub(super) fn reset(&mut self) {
        self.starts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delay_doubles_up_to_the_cap() {
        let config = ServiceConfig {
            restart_delay: ms(100),
            restart_delay_max: ms(1000),
            ..ServiceConfig::default()
        };
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..6).map(|_| backoff.next(&config, ms(1))).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
    }

    #[test]
    fn long_uptime_starts_over() {
        let config = ServiceConfig {
            restart_delay_max: ms(1000),
            ..ServiceConfig::default()
        };
        let mut backoff = Backoff::default();
        backoff.next(&config, ms(0));
        assert_eq!(backoff.next(&config, ms(999)), ms(200));
        assert_eq!(backoff.next(&config, ms(1000)), ms(100));
    }

    #[test]
    fn huge_counts_saturate() {
        let config = ServiceConfig::default();
        let mut backoff = Backoff { consecutive: u32::MAX };
        assert_eq!(backoff.next(&config, ms(0)), config.restart_delay_max);
    }

    #[test]
    fn start_limit_counts_starts_in_the_window() {
        let config = ServiceConfig {
            start_limit_burst: 2,
            start_limit_interval: ms(1000),
            ..ServiceConfig::default()
        };
        let t0 = Instant::now();
        let mut limit = StartLimit::default();
        limit.record(t0);
        assert!(!limit.exceeded(&config, t0 + ms(10)));
        limit.record(t0 + ms(10));
        assert!(limit.exceeded(&config, t0 + ms(20)));
        // the first start leaves the window
        assert!(!limit.exceeded(&config, t0 + ms(1000)));
    }
}
