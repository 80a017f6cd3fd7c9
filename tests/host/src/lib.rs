// SPDX-License-Identifier: GPL-2.0

//! Host tests for the kernel-free parts of rloop.
//!
//! The module's kernel-free files are compiled here unchanged through
//! `#[path]`, so `cargo test` checks the very code the module runs.

#[path = "../../../rust/geometry.rs"]
#[allow(dead_code)]
mod geometry;

#[cfg(test)]
mod geometry_tests {
    use super::geometry::*;

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
        assert_eq!(capacity_sectors(i64::MAX as u64, 0, 0), (i64::MAX as u64) >> 9);
    }

    #[test]
    fn block_sizes_follow_blk_validate_block_size() {
        for bs in [512, 1024, 2048, 4096] {
            assert!(is_valid_block_size(bs, 4096), "{bs}");
        }
        for bs in [0, 1, 256, 511, 513, 1536, 8192, u32::MAX] {
            assert!(!is_valid_block_size(bs, 4096), "{bs}");
        }
        assert!(is_valid_block_size(65536, 65536));
        assert!(!is_valid_block_size(65536, 4096));
        assert!(!is_valid_block_size(131072, 65536));
    }
}
