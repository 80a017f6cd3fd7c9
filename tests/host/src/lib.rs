// SPDX-License-Identifier: GPL-2.0

//! Host tests for the kernel-free parts of rloop.
//!
//! The module's kernel-free files are compiled here unchanged through
//! `#[path]`, so `cargo test` checks the very code the module runs.

/// Stand-in for the module's `kernel_defs` (what it takes from the kernel
/// crate), with the same names and values, for the kernel-free files.
#[allow(dead_code)]
mod kernel_defs {
    pub(crate) const SECTOR_SHIFT: u32 = 9;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) struct Error(i32);

    impl Error {
        pub(crate) fn from_errno(errno: i32) -> Self {
            assert!((-4095..0).contains(&errno), "not an errno: {errno}");
            Self(errno)
        }

        pub(crate) fn to_errno(self) -> i32 {
            self.0
        }
    }

    pub(crate) const EIO: Error = Error(-5);

    pub(crate) fn eopnotsupp() -> Error {
        Error(-95)
    }

    // x86-64's C types; the tests build the other architectures' layouts.
    pub(crate) type OldDevT = u64;
    pub(crate) type ULong = u64;
    pub(crate) type CompatDevT = u16;
    pub(crate) type CompatULong = u32;
}

#[path = "../../../rust/capacity.rs"]
#[allow(dead_code)]
mod capacity;

#[cfg(test)]
mod capacity_tests {
    use super::capacity::*;

    #[test]
    fn capacity_is_file_size_in_sectors() {
        assert_eq!(capacity_sectors(1 << 20, 0, 0), 2048);
        // A partial trailing sector is not addressable.
        assert_eq!(capacity_sectors(1000, 0, 0), 1);
        assert_eq!(capacity_sectors(511, 0, 0), 0);
    }

    #[test]
    fn capacity_honours_offset_and_sizelimit() {
        assert_eq!(capacity_sectors(1 << 20, 4096, 0), 2040);
        assert_eq!(capacity_sectors(1 << 20, 0, 8192), 16);
        // A sizelimit beyond the file end does not extend the device.
        assert_eq!(capacity_sectors(1 << 20, 0, 4 << 20), 2048);
        assert_eq!(capacity_sectors(1 << 20, 4096, 1 << 20), 2040);
    }

    #[test]
    fn capacity_is_zero_when_offset_is_past_the_end() {
        assert_eq!(capacity_sectors(4096, 4096, 0), 0);
        assert_eq!(capacity_sectors(4096, 1 << 40, 0), 0);
        assert_eq!(capacity_sectors(0, 0, 0), 0);
    }

    #[test]
    fn capacity_of_huge_files_does_not_overflow() {
        assert_eq!(
            capacity_sectors(i64::MAX as u64, 0, 0),
            (i64::MAX as u64) >> 9
        );
    }
}

#[path = "../../../rust/hw_queues.rs"]
#[allow(dead_code)]
mod hw_queues;

#[cfg(test)]
mod hw_queues_tests {
    use super::hw_queues::*;

    #[test]
    fn zero_means_one_queue_per_cpu() {
        assert_eq!(hw_queue_count(0, 4), Some(4));
        assert_eq!(hw_queue_count(0, 1), Some(1));
        // Even on a machine with more CPUs than workers allowed.
        assert_eq!(hw_queue_count(0, 64), Some(MAX_HW_QUEUES));
    }

    #[test]
    fn no_more_queues_than_cpus() {
        assert_eq!(hw_queue_count(1, 4), Some(1));
        assert_eq!(hw_queue_count(4, 4), Some(4));
        assert_eq!(hw_queue_count(8, 2), Some(2));
        assert_eq!(hw_queue_count(MAX_HW_QUEUES, 64), Some(MAX_HW_QUEUES));
    }

    #[test]
    fn above_the_maximum_is_refused() {
        assert_eq!(hw_queue_count(MAX_HW_QUEUES + 1, 64), None);
        assert_eq!(hw_queue_count(u32::MAX, 4), None);
    }
}

#[path = "../../../rust/load_params.rs"]
#[allow(dead_code)]
mod load_params;

#[cfg(test)]
mod load_params_tests {
    use super::load_params::*;

    fn ok(max_loop: i64, max_part: i64, depth: i64) -> LoadParams {
        check(max_loop, max_part, depth).expect("accepted")
    }

    #[test]
    fn defaults_make_eight_devices_and_no_autoload_limit() {
        let p = ok(MAX_LOOP_NOT_GIVEN, 0, 128);
        assert_eq!((p.max_loop, p.autoload_limit), (8, None));
        assert_eq!((p.part_shift, p.queue_depth), (0, 128));
    }

    #[test]
    fn a_given_max_loop_is_also_the_autoload_limit() {
        assert_eq!(ok(2, 0, 128).autoload_limit, Some(2));
        let p = ok(0, 0, 128);
        assert_eq!((p.max_loop, p.autoload_limit), (0, Some(0)));
    }

    #[test]
    fn max_part_is_rounded_to_a_power_of_two() {
        assert_eq!(ok(MAX_LOOP_NOT_GIVEN, 3, 128).part_shift, 2);
        assert_eq!(ok(MAX_LOOP_NOT_GIVEN, 4, 128).part_shift, 3);
        assert_eq!(ok(MAX_LOOP_NOT_GIVEN, 127, 128).part_shift, 7);
        // Negative is none, as `max_part > 0` is false in loop_init().
        assert_eq!(ok(MAX_LOOP_NOT_GIVEN, -5, 128).part_shift, 0);
        // 1 << 8 minors is DISK_MAX_PARTS; one more bit is refused.
        assert_eq!(ok(MAX_LOOP_NOT_GIVEN, 255, 128).part_shift, 8);
        assert_eq!(
            check(MAX_LOOP_NOT_GIVEN, 256, 128),
            Err(ParamError::Invalid)
        );
        assert_eq!(
            check(MAX_LOOP_NOT_GIVEN, i32::MAX.into(), 128),
            Err(ParamError::Invalid)
        );
    }

    #[test]
    fn negative_or_too_many_devices_are_refused() {
        assert_eq!(check(-1, 0, 128), Err(ParamError::Invalid));
        assert_eq!(check(i32::MIN.into(), 0, 128), Err(ParamError::Invalid));
        assert_eq!(ok(1 << 20, 0, 128).max_loop, 1 << 20);
        assert_eq!(check((1 << 20) + 1, 0, 128), Err(ParamError::Invalid));
        // Fewer minors per device leave room for fewer devices.
        assert_eq!(ok(1 << 18, 3, 128).max_loop, 1 << 18);
        assert_eq!(check((1 << 18) + 1, 3, 128), Err(ParamError::Invalid));
    }

    #[test]
    fn values_beyond_a_c_int_are_out_of_range() {
        let big = i64::from(i32::MAX) + 1;
        assert_eq!(check(big, 0, 128), Err(ParamError::OutOfRange));
        assert_eq!(
            check(MAX_LOOP_NOT_GIVEN, big, 128),
            Err(ParamError::OutOfRange)
        );
        assert_eq!(
            check(MAX_LOOP_NOT_GIVEN, 0, big),
            Err(ParamError::OutOfRange)
        );
        assert_eq!(
            check(MAX_LOOP_NOT_GIVEN, 0, i64::from(i32::MIN) - 1),
            Err(ParamError::OutOfRange)
        );
    }

    #[test]
    fn queue_depth_must_be_at_least_one() {
        assert_eq!(ok(MAX_LOOP_NOT_GIVEN, 0, 1).queue_depth, 1);
        assert_eq!(check(MAX_LOOP_NOT_GIVEN, 0, 0), Err(ParamError::Invalid));
        assert_eq!(check(MAX_LOOP_NOT_GIVEN, 0, -3), Err(ParamError::Invalid));
    }
}

#[path = "../../../rust/arrival.rs"]
#[allow(dead_code)]
mod arrival;

#[cfg(test)]
mod arrival_tests {
    use super::arrival::*;

    /// `n` arrivals with no overlap, from `history`.
    fn alone_run(mut history: CpuHistory, n: u32) -> (Vec<Arrival>, CpuHistory) {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (arrival, next) = history.arrive(false);
            seen.push(arrival);
            history = next;
        }
        (seen, history)
    }

    #[test]
    fn one_in_probe_interval_lone_requests_is_a_probe() {
        let (seen, history) = alone_run(CpuHistory::default(), 3 * PROBE_INTERVAL);
        let probes: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i] == Arrival::Probe)
            .collect();
        let n = PROBE_INTERVAL as usize;
        assert_eq!(probes, [n - 1, 2 * n - 1, 3 * n - 1]);
        assert!(seen.iter().all(|a| *a != Arrival::Deep));
        assert_eq!(history.alone_since_probe, 0);
    }

    #[test]
    fn an_own_overlap_is_deep_for_the_next_deep_requests() {
        let (arrival, history) = CpuHistory::default().arrive(true);
        assert_eq!(arrival, Arrival::Deep);
        assert_eq!(history.deep_for, DEEP_REQUESTS);
        let (seen, history) = alone_run(history, DEEP_REQUESTS + 1);
        assert!(seen[..DEEP_REQUESTS as usize]
            .iter()
            .all(|a| *a == Arrival::Deep));
        assert_eq!(seen[DEEP_REQUESTS as usize], Arrival::Alone);
        assert_eq!(history.deep_for, 0);
    }

    #[test]
    fn each_own_overlap_renews_the_memory_of_depth() {
        let mut history = CpuHistory::default();
        for _ in 0..10 {
            let (_, after_gap) = alone_run(history, DEEP_REQUESTS - 1);
            let (arrival, next) = after_gap.arrive(true);
            assert_eq!(arrival, Arrival::Deep);
            history = next;
        }
        assert_eq!(history.deep_for, DEEP_REQUESTS);
    }

    #[test]
    fn deep_requests_do_not_advance_the_probe_count() {
        let start = CpuHistory {
            deep_for: 0,
            alone_since_probe: PROBE_INTERVAL - 2,
        };
        let (_, history) = start.arrive(true);
        let (seen, _) = alone_run(history, DEEP_REQUESTS + 2);
        assert_eq!(seen[DEEP_REQUESTS as usize], Arrival::Alone);
        assert_eq!(seen[DEEP_REQUESTS as usize + 1], Arrival::Probe);
    }
}

#[path = "../../../rust/dio.rs"]
#[allow(dead_code)]
mod dio;

#[cfg(test)]
mod dio_tests {
    use super::dio::*;

    fn inputs(can: bool, align: u32, lbs: u32, offset: u64) -> DioInputs {
        DioInputs {
            file_can_odirect: can,
            dio_align: align,
            logical_block_size: lbs,
            offset,
        }
    }

    #[test]
    fn dio_needs_o_direct_support() {
        assert_eq!(
            can_use_dio(&inputs(false, 512, 4096, 0)),
            Err(DioRefusal::FileCannotODirect)
        );
    }

    #[test]
    fn dio_needs_block_size_at_least_the_alignment() {
        assert_eq!(
            can_use_dio(&inputs(true, 4096, 512, 0)),
            Err(DioRefusal::BlockSizeBelowAlignment)
        );
        assert_eq!(can_use_dio(&inputs(true, 4096, 4096, 0)), Ok(()));
        assert_eq!(can_use_dio(&inputs(true, 512, 4096, 0)), Ok(()));
    }

    #[test]
    fn dio_needs_an_aligned_offset() {
        assert_eq!(
            can_use_dio(&inputs(true, 4096, 4096, 512)),
            Err(DioRefusal::OffsetUnaligned)
        );
        assert_eq!(can_use_dio(&inputs(true, 4096, 4096, 8192)), Ok(()));
        assert_eq!(can_use_dio(&inputs(true, 512, 512, 512)), Ok(()));
        // An alignment of 0 (STATX_DIOALIGN without direct I/O support) is
        // loop.c's mask of 0xffff_ffff.
        assert_eq!(can_use_dio(&inputs(true, 0, 512, 0)), Ok(()));
        assert_eq!(
            can_use_dio(&inputs(true, 0, 512, 4096)),
            Err(DioRefusal::OffsetUnaligned)
        );
        assert_eq!(can_use_dio(&inputs(true, 0, 512, 4 << 30)), Ok(()));
    }

    #[test]
    fn default_block_size_follows_the_dio_request() {
        assert_eq!(default_block_size(true, 4096), 4096);
        assert_eq!(default_block_size(false, 4096), 512);
    }
}

#[path = "../../../rust/completion.rs"]
#[allow(dead_code)]
mod completion;

#[cfg(test)]
mod completion_tests {
    use super::completion::*;
    use super::kernel_defs::Error;

    /// What ends a request with `errno`.
    fn fail(errno: i32) -> Completion {
        Completion::Done(Err(Error::from_errno(errno)))
    }

    /// What ends a request successfully.
    const OK: Completion = Completion::Done(Ok(()));

    /// [`completion`] of the raw result `ret`.
    fn done(is_read: bool, ret: isize, bytes: u32) -> Completion {
        completion(is_read, io_result(ret), bytes)
    }

    /// [`nowait_completion`] of the raw result `ret`.
    fn nowait(is_read: bool, ret: isize, bytes: u32) -> Completion {
        nowait_completion(is_read, io_result(ret), bytes)
    }

    /// [`sync_result`] of an errno, 0 for success, as an errno.
    fn sync(errno: i32) -> i32 {
        let ret = match errno {
            0 => Ok(()),
            e => Err(Error::from_errno(e)),
        };
        sync_result(ret).map_or_else(Error::to_errno, |()| 0)
    }

    #[test]
    fn raw_results_become_results() {
        assert_eq!(io_result(4096), Ok(4096));
        assert_eq!(io_result(0), Ok(0));
        assert_eq!(io_result(-5), Err(Error::from_errno(-5)));
        assert_eq!(io_result(-4095), Err(Error::from_errno(-4095)));
        // What is neither a size nor an errno is an I/O error.
        assert_eq!(io_result(-4096), Err(Error::from_errno(-5)));
        assert_eq!(io_result(isize::MIN), Err(Error::from_errno(-5)));
    }

    #[test]
    fn errors_end_the_request_with_their_errno() {
        assert_eq!(done(true, -5, 4096), fail(-5));
        assert_eq!(done(false, -28, 4096), fail(-28));
    }

    #[test]
    fn full_transfers_succeed() {
        assert_eq!(done(true, 4096, 4096), OK);
        assert_eq!(done(false, 4096, 4096), OK);
        // A zero-length request is complete with zero bytes.
        assert_eq!(done(false, 0, 0), OK);
    }

    #[test]
    fn short_writes_retry_the_rest() {
        // loop.c reports these as success, and the rest is lost.
        assert_eq!(done(false, 512, 4096), Completion::RetryRest(512));
        assert_eq!(done(false, 4095, 4096), Completion::RetryRest(3584));
        assert_eq!(done(false, 8192, 16384), Completion::RetryRest(8192));
    }

    #[test]
    fn writes_that_make_no_progress_fail() {
        // Retrying would write the same nothing again, forever.
        assert_eq!(done(false, 0, 4096), fail(-5));
        // Less than a sector: the rest could not start on a sector.
        assert_eq!(done(false, 511, 4096), fail(-5));
    }

    #[test]
    fn short_write_retries_end() {
        // Each retry of a short write is smaller than the last, so a file
        // that keeps taking part of it ends the request in a few rounds.
        let mut left = 4096u32;
        let mut rounds = 0;
        loop {
            rounds += 1;
            match done(false, isize::try_from(left / 2).unwrap(), left) {
                Completion::RetryRest(n) => left -= n,
                end => {
                    assert_eq!(end, fail(-5));
                    break;
                }
            }
        }
        assert_eq!((left, rounds), (512, 4));
    }

    #[test]
    fn short_reads_retry_or_fail() {
        assert_eq!(done(true, 512, 4096), Completion::RetryRest(512));
        assert_eq!(done(true, 0, 4096), Completion::ZeroFillAndFail);
        // The rest starts on a sector: the partial one is read again.
        assert_eq!(done(true, 3996, 8192), Completion::RetryRest(3584));
        assert_eq!(done(true, 100, 4096), Completion::ZeroFillAndFail);
        // A zero-length request is complete with zero bytes.
        assert_eq!(done(true, 0, 0), OK);
    }

    #[test]
    fn nowait_attempts_resubmit_what_would_block() {
        assert_eq!(nowait(true, -11, 4096), Completion::Resubmit);
        assert_eq!(nowait(false, -11, 4096), Completion::Resubmit);
        // A short write is redone whole, allowed to block.
        assert_eq!(nowait(false, 512, 4096), Completion::Resubmit);
        assert_eq!(nowait(false, 0, 4096), Completion::Resubmit);
        // Any error may be the submitter's own (EINTR, ENOSPC, EFBIG):
        // the worker gives loop.c's answer.
        for errno in [-4, -5, -27, -28, -95] {
            assert_eq!(nowait(false, errno, 4096), Completion::Resubmit);
            assert_eq!(nowait(true, errno, 4096), Completion::Resubmit);
        }
        assert_eq!(nowait(false, 4096, 4096), OK);
        assert_eq!(nowait(true, 4096, 4096), OK);
        // A short read keeps its whole sectors; with none, the worker reads.
        assert_eq!(nowait(true, 512, 4096), Completion::RetryRest(512));
        assert_eq!(nowait(true, 3996, 8192), Completion::RetryRest(3584));
        assert_eq!(nowait(true, 412, 4096), Completion::Resubmit);
        assert_eq!(nowait(true, 0, 4096), Completion::Resubmit);
        // Without NOWAIT, -EAGAIN is an error like any other (loop.c).
        assert_eq!(done(true, -11, 4096), fail(-11));
    }

    #[test]
    fn synchronous_results_keep_only_eopnotsupp() {
        assert_eq!(sync(0), 0);
        assert_eq!(sync(-95), -95);
        assert_eq!(sync(-22), -5);
        assert_eq!(sync(-28), -5);
    }
}

#[path = "../../../rust/uapi.rs"]
#[allow(dead_code)]
mod uapi;

#[cfg(test)]
mod uapi_tests {
    use super::uapi::*;

    #[test]
    fn flags_have_the_abi_values() {
        assert_eq!(LoFlags::READ_ONLY.bits(), 1);
        assert_eq!(LoFlags::AUTOCLEAR.bits(), 4);
        assert_eq!(LoFlags::PARTSCAN.bits(), 8);
        assert_eq!(LoFlags::DIRECT_IO.bits(), 16);
        assert_eq!(LoFlags::SET_STATUS_SETTABLE.bits(), 12);
        assert_eq!(LoFlags::SET_STATUS_CLEARABLE.bits(), 4);
        assert_eq!(LoFlags::CONFIGURE_SETTABLE.bits(), 29);
    }

    #[test]
    fn flag_operations() {
        let mut f = LoFlags::from_bits(0x100) | LoFlags::AUTOCLEAR;
        assert!(f.contains(LoFlags::AUTOCLEAR));
        assert!(!LoFlags::CONFIGURE_SETTABLE.contains(f));
        f.remove(LoFlags::from_bits(0x100));
        assert!(LoFlags::CONFIGURE_SETTABLE.contains(f));
        f.insert(LoFlags::DIRECT_IO);
        f.toggle(LoFlags::DIRECT_IO);
        assert_eq!(f, LoFlags::AUTOCLEAR);
        let only = f.intersection(LoFlags::SET_STATUS_SETTABLE);
        assert_eq!(only, LoFlags::AUTOCLEAR);
        assert_eq!(LoFlags::empty().bits(), 0);
    }

    fn sample() -> LoopInfo64 {
        let mut info = LoopInfo64::zeroed();
        info.device = 0x0102_0304_0506_0708;
        info.inode = 42;
        info.rdevice = 7;
        info.offset = 4096;
        info.sizelimit = 1 << 20;
        info.number = 3;
        info.flags = LoFlags::AUTOCLEAR | LoFlags::DIRECT_IO;
        info.file_name[..4].copy_from_slice(b"/img");
        info.init = [9, 10];
        info
    }

    #[test]
    fn loop_info64_layout_matches_the_uapi_header() {
        let b = sample().to_bytes();
        assert_eq!(b.len(), 232);
        // Offsets of struct loop_info64 on x86-64.
        assert_eq!(&b[0..8], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(&b[24..32], &4096u64.to_ne_bytes()); // lo_offset
        assert_eq!(&b[32..40], &(1u64 << 20).to_ne_bytes()); // lo_sizelimit
        assert_eq!(&b[40..44], &3u32.to_ne_bytes()); // lo_number
        assert_eq!(&b[52..56], &20u32.to_ne_bytes()); // lo_flags
        assert_eq!(&b[56..60], b"/img"); // lo_file_name
        assert_eq!(&b[216..224], &9u64.to_ne_bytes()); // lo_init[0]
    }

    #[test]
    fn loop_info64_round_trips() {
        let info = sample();
        assert_eq!(LoopInfo64::from_bytes(&info.to_bytes()), info);
    }

    #[test]
    fn loop_config_decodes_fd_block_size_and_info() {
        let mut raw = [0u8; LOOP_CONFIG_SIZE];
        raw[0..4].copy_from_slice(&5u32.to_ne_bytes());
        raw[4..8].copy_from_slice(&4096u32.to_ne_bytes());
        raw[8..240].copy_from_slice(&sample().to_bytes());
        raw[240..].fill(0xff); // __reserved is not checked
        let cfg = LoopConfig::from_bytes(&raw);
        assert_eq!(cfg.fd, 5);
        assert_eq!(cfg.block_size, 4096);
        assert_eq!(cfg.info, sample());
    }

    #[test]
    fn validation_matches_loop_set_status_from_info() {
        let ok = LoopInfo64::zeroed();
        assert_eq!(validate_info(&ok), Ok(()));
        let mut i = ok;
        i.encrypt_key_size = 33;
        assert_eq!(validate_info(&i), Err(InfoError::Invalid));
        i = ok;
        i.encrypt_type = LO_CRYPT_XOR;
        assert_eq!(validate_info(&i), Err(InfoError::XorRemoved));
        i.encrypt_type = LO_CRYPT_CRYPTOAPI;
        assert_eq!(validate_info(&i), Err(InfoError::CryptoApiRemoved));
        i.encrypt_type = 2;
        assert_eq!(validate_info(&i), Err(InfoError::Invalid));
        i = ok;
        i.offset = 1 << 63;
        assert_eq!(validate_info(&i), Err(InfoError::Overflow));
        i = ok;
        i.sizelimit = u64::MAX;
        assert_eq!(validate_info(&i), Err(InfoError::Overflow));
    }

    #[test]
    fn legacy_loop_info_layout_and_conversion() {
        let mut raw = [0u8; LOOP_INFO_SIZE];
        raw[0..4].copy_from_slice(&3i32.to_ne_bytes()); // lo_number
        raw[8..16].copy_from_slice(&0x700u64.to_ne_bytes()); // lo_device
        raw[16..24].copy_from_slice(&42u64.to_ne_bytes()); // lo_inode
        raw[32..36].copy_from_slice(&4096i32.to_ne_bytes()); // lo_offset
        raw[36..40].copy_from_slice(&1i32.to_ne_bytes()); // lo_encrypt_type
        raw[44..48].copy_from_slice(&4i32.to_ne_bytes()); // lo_flags
        raw[48..52].copy_from_slice(b"/img"); // lo_name
        let info = info64_from_old(&raw);
        assert_eq!(info.number, 3);
        assert_eq!(info.device, 0x700);
        assert_eq!(info.inode, 42);
        assert_eq!(info.offset, 4096);
        assert_eq!(info.flags, LoFlags::AUTOCLEAR);
        assert_eq!(&info.file_name[..4], b"/img");
        // loop.c drops the encryption type and the size limit.
        assert_eq!(info.encrypt_type, 0);
        assert_eq!(info.sizelimit, 0);
        let back = info64_to_old(&info).unwrap();
        assert_eq!(
            &back[..48],
            &{
                let mut r = raw;
                r[36..40].fill(0);
                r
            }[..48]
        );
        // A negative int offset becomes a huge u64, which SET_STATUS then
        // refuses with EOVERFLOW.
        raw[32..36].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(info64_from_old(&raw).offset, u64::MAX);
    }

    #[test]
    fn legacy_get_status_overflows_like_loop_c() {
        let mut info = LoopInfo64::zeroed();
        info.offset = 1 << 31;
        assert_eq!(info64_to_old(&info), Err(Overflow));
        assert_eq!(info64_to_compat(&info), Err(Overflow));
        info.offset = (1 << 31) - 1;
        assert!(info64_to_old(&info).is_ok());
        info.device = 0x1_0000;
        assert!(info64_to_old(&info).is_ok());
        assert_eq!(info64_to_compat(&info), Err(Overflow));
        info.device = 0x700;
        info.inode = 1 << 32;
        assert_eq!(info64_to_compat(&info), Err(Overflow));
    }

    #[test]
    fn compat_loop_info_layout() {
        let mut info = LoopInfo64::zeroed();
        info.number = 1;
        info.device = 0x0701;
        info.inode = 77;
        info.rdevice = 0x0102;
        info.offset = 512;
        info.flags = LoFlags::DIRECT_IO;
        info.file_name[0] = b'x';
        let raw = info64_to_compat(&info).unwrap();
        assert_eq!(raw.len(), 140);
        assert_eq!(&raw[4..6], &0x0701u16.to_ne_bytes());
        assert_eq!(&raw[8..12], &77u32.to_ne_bytes());
        assert_eq!(&raw[12..14], &0x0102u16.to_ne_bytes());
        assert_eq!(&raw[16..20], &512i32.to_ne_bytes());
        assert_eq!(&raw[28..32], &16i32.to_ne_bytes());
        assert_eq!(raw[32], b'x');
        assert_eq!(info64_from_compat(&raw), info);
    }

    /// Offsets and sizes of `struct loop_info` (and of loop.c's `struct
    /// compat_loop_info`) as clang 19 lays out the kernel's declarations
    /// for each target: `size`, `lo_number`, `lo_device`, `lo_inode`,
    /// `lo_rdevice`, `lo_offset`, `lo_flags`, `lo_name`, and the widths of
    /// `lo_device` and `lo_inode`.
    fn c_layout(l: [usize; 10]) -> LegacyLayout {
        let [size, number, device, inode, rdevice, offset, flags, name, dev_size, ulong_size] = l;
        LegacyLayout {
            size,
            number,
            device,
            inode,
            rdevice,
            offset,
            flags,
            name,
            dev_size,
            ulong_size,
        }
    }

    #[test]
    fn legacy_layouts_match_the_c_compilers() {
        // x86-64, powerpc64: 64-bit __kernel_old_dev_t.
        let x86_64 = c_layout([168, 0, 8, 16, 24, 32, 44, 48, 8, 8]);
        assert_eq!(LegacyLayout::of::<u64, u64>(), x86_64);
        // arm64, riscv64, loongarch64: the asm-generic 32-bit one.
        let arm64 = c_layout([160, 0, 4, 8, 16, 20, 32, 36, 4, 8]);
        assert_eq!(LegacyLayout::of::<u32, u64>(), arm64);
        // s390x: 16 bits.
        let s390x = c_layout([160, 0, 4, 8, 16, 20, 32, 36, 2, 8]);
        assert_eq!(LegacyLayout::of::<u16, u64>(), s390x);
        // 32-bit arm and i386, and compat_loop_info on x86 (compat_dev_t
        // is u16 there).
        let ilp32 = c_layout([140, 0, 4, 8, 12, 16, 28, 32, 2, 4]);
        assert_eq!(LegacyLayout::of::<u16, u32>(), ilp32);
        // compat_loop_info elsewhere: the asm-generic u32 compat_dev_t.
        let compat = c_layout([140, 0, 4, 8, 12, 16, 28, 32, 4, 4]);
        assert_eq!(LegacyLayout::of::<u32, u32>(), compat);
        // The module's own, from kernel_defs (x86-64's in these tests).
        assert_eq!(LOOP_INFO, x86_64);
        assert_eq!(COMPAT_LOOP_INFO, ilp32);
        assert_eq!((LOOP_INFO_SIZE, COMPAT_LOOP_INFO_SIZE), (168, 140));
    }

    #[test]
    fn arm64_loop_info_is_read_and_written_where_the_kernel_has_it() {
        let arm64 = LegacyLayout::of::<u32, u64>();
        let mut raw = [0u8; 160];
        raw[0..4].copy_from_slice(&3i32.to_ne_bytes()); // lo_number
        raw[4..8].copy_from_slice(&0x10301u32.to_ne_bytes()); // lo_device
        raw[8..16].copy_from_slice(&(1u64 << 40).to_ne_bytes()); // lo_inode
        raw[16..20].copy_from_slice(&0x700u32.to_ne_bytes()); // lo_rdevice
        raw[20..24].copy_from_slice(&4096i32.to_ne_bytes()); // lo_offset
        raw[32..36].copy_from_slice(&4i32.to_ne_bytes()); // lo_flags
        raw[36..40].copy_from_slice(b"/img"); // lo_name
        let info = arm64.decode(&raw);
        assert_eq!(info.number, 3);
        assert_eq!(
            (info.device, info.inode, info.rdevice),
            (0x10301, 1 << 40, 0x700)
        );
        assert_eq!(info.offset, 4096);
        assert_eq!(info.flags, LoFlags::AUTOCLEAR);
        assert_eq!(&info.file_name[..4], b"/img");
        let mut back = [0xffu8; 160];
        arm64.encode(&info, &mut back).unwrap();
        assert_eq!(back, raw);
        // A 64-bit device number does not fit its 32-bit lo_device.
        let mut big = info;
        big.device = 1 << 32;
        assert_eq!(arm64.encode(&big, &mut back), Err(Overflow));
        assert!(LegacyLayout::of::<u64, u64>()
            .encode(&big, &mut [0; 168])
            .is_ok());
    }

    #[test]
    fn compat_loop_info_with_a_32_bit_compat_dev_t() {
        let generic = LegacyLayout::of::<u32, u32>();
        let mut info = LoopInfo64::zeroed();
        info.device = 0x10301; // MKDEV(259, 1), an NVMe partition
        info.inode = 77;
        info.rdevice = 0x0102;
        let mut raw = [0u8; 140];
        generic.encode(&info, &mut raw).unwrap();
        assert_eq!(&raw[4..8], &0x10301u32.to_ne_bytes());
        assert_eq!(&raw[12..16], &0x0102u32.to_ne_bytes());
        assert_eq!(generic.decode(&raw), info);
        // x86's 16-bit compat_dev_t cannot hold it.
        assert_eq!(info64_to_compat(&info), Err(Overflow));
    }

    #[test]
    fn compat_ptr_converts_pointers_only() {
        // s390's compat_ptr(), which clears bit 31 (x86's is the identity).
        let s390 = |uptr: u32| (uptr & 0x7fff_ffff) as usize;
        let arg = 0x8000_1000;
        for cmd in [
            LOOP_SET_STATUS,
            LOOP_GET_STATUS,
            LOOP_SET_STATUS64,
            LOOP_GET_STATUS64,
            LOOP_CONFIGURE,
            LOOP_SET_CAPACITY,
            LOOP_CLR_FD,
        ] {
            assert_eq!(compat_ioctl_arg(cmd, arg, s390), Some(0x1000), "{cmd:#x}");
        }
        // File descriptors, block sizes and flags pass unchanged, as in
        // lo_compat_ioctl: LOOP_SET_BLOCK_SIZE(0x80001000) must fail
        // EINVAL, not set a 4 KiB block size.
        for cmd in [
            LOOP_SET_FD,
            LOOP_CHANGE_FD,
            LOOP_SET_DIRECT_IO,
            LOOP_SET_BLOCK_SIZE,
        ] {
            assert_eq!(
                compat_ioctl_arg(cmd, arg, s390),
                Some(0x8000_1000),
                "{cmd:#x}"
            );
        }
        // Anything else is not a loop ioctl: ENOIOCTLCMD.
        for cmd in [0x4C0B, 0x1260, LOOP_CTL_ADD] {
            assert_eq!(compat_ioctl_arg(cmd, arg, s390), None, "{cmd:#x}");
        }
    }

    #[test]
    fn stored_names_are_terminated() {
        let name = [b'a'; LO_NAME_SIZE];
        let stored = stored_file_name(&name);
        assert_eq!(stored[LO_NAME_SIZE - 1], 0);
        assert_eq!(&stored[..63], &name[..63]);
    }

    #[test]
    fn huge_encode_dev_matches_the_kernel() {
        // MKDEV(7, 0) and MKDEV(259, 1): new_encode_dev() layout.
        assert_eq!(huge_encode_dev(7 << 20), 0x700);
        assert_eq!(huge_encode_dev((259 << 20) | 1), 0x10301);
        assert_eq!(huge_encode_dev((8 << 20) | 0x12345), 0x1230_0845);
    }

    #[test]
    fn dev_t_splits_as_major_and_minor() {
        // MKDEV(7, 0x12345) and MKDEV(4095, 0xfffff).
        assert_eq!((dev_major(0x712345), dev_minor(0x712345)), (7, 0x12345));
        assert_eq!((dev_major(u32::MAX), dev_minor(u32::MAX)), (0xfff, 0xfffff));
    }
}
