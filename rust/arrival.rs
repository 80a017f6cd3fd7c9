// SPDX-License-Identifier: GPL-2.0

//! How a request arrived at its CPU: alone, as a probe, or from a
//! submitter that keeps a queue. The device counts each CPU's requests in
//! flight (`device::workers`); this decides from what the count held.
//!
//! Kernel-free: it uses only `core`, so host `cargo test` (tests/host)
//! compiles this file unchanged.

/// How a request arrived, by the count of its CPU's requests in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// The only one of its CPU in flight, or the others are another
    /// task's, and the CPU has not been deep lately: its submitter waits
    /// for it.
    Alone,
    /// Alone, and picked to go through a worker: whether the submitter
    /// sends more while it is under way shows whether it waits for it. A
    /// request that a RAM disk or the page cache serves inline is over
    /// before the next comes, so the count alone cannot see that.
    Probe,
    /// Its CPU has had two of one task's requests in flight within its
    /// last [`DEEP_REQUESTS`]: its submitter keeps a queue.
    Deep,
}

/// How many requests of a CPU after it was seen deep do not count as
/// alone: a submitter at depth has requests in flight most of the time,
/// and this bridges the moments it has none.
pub(crate) const DEEP_REQUESTS: u32 = 64;

/// One in this many requests that come alone from a CPU is a probe
/// ([`Arrival::Probe`]).
pub(crate) const PROBE_INTERVAL: u32 = 128;

/// What a CPU remembers of its recent requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuHistory {
    /// Requests still to come that count as deep, since a task was last
    /// seen with two in flight.
    pub(crate) deep_for: u32,
    /// Requests that came alone since the last probe.
    pub(crate) alone_since_probe: u32,
}

impl CpuHistory {
    /// How a request arrives at a CPU with this history, and the history
    /// after it. `overlaps_own` says whether a request of the same task
    /// was still in flight on the CPU: one of another task's says nothing
    /// of either, as it is there because its task sleeps waiting for it.
    pub(crate) fn arrive(self, overlaps_own: bool) -> (Arrival, Self) {
        if overlaps_own {
            let next = Self {
                deep_for: DEEP_REQUESTS,
                ..self
            };
            return (Arrival::Deep, next);
        }
        if self.deep_for > 0 {
            let next = Self {
                deep_for: self.deep_for - 1,
                ..self
            };
            return (Arrival::Deep, next);
        }
        match self.alone_since_probe + 1 {
            n if n >= PROBE_INTERVAL => (
                Arrival::Probe,
                Self {
                    alone_since_probe: 0,
                    ..self
                },
            ),
            n => (
                Arrival::Alone,
                Self {
                    alone_since_probe: n,
                    ..self
                },
            ),
        }
    }
}
