// SPDX-License-Identifier: GPL-2.0

//! What a bound device holds, and the decisions made from it: direct I/O,
//! capacity, queue limits.

use super::{state::Config, LoopDevice, LoopOps};
use crate::{
    blk::{Disk, Feature, GroupRegistration, Limits},
    capacity,
    dio::{self, DioInputs},
    file_io::{BackingFile, SavedGfpMask},
    module_ref::ModuleRef,
    uapi::*,
};
use core::fmt::Write;
use kernel::prelude::*;

/// What a bound device holds.
pub(super) struct Binding {
    pub(super) file: BackingFile,
    pub(super) offset: u64,
    pub(super) sizelimit: u64,
    pub(super) file_name: [u8; LO_NAME_SIZE],
    /// The file's direct I/O alignment (loop.c's `lo_min_dio_size`).
    pub(super) dio_align: u32,
    /// The backing mapping's gfp mask before binding.
    pub(super) saved_gfp: SavedGfpMask,
    /// `/sys/block/loopN/loop/`, present while bound.
    pub(super) sysfs: Option<GroupRegistration<LoopOps>>,
    /// A bound device pins the module, even with no opener left.
    pub(super) _module: ModuleRef,
}

impl LoopDevice {
    /// Says once per binding why requested direct I/O is not used: loop.c
    /// drops it silently, which leaves users on 4K storage guessing.
    pub(super) fn log_dio_refusal(
        &self,
        cfg: &mut Config,
        why: dio::DioRefusal,
        inputs: &DioInputs,
    ) {
        if cfg.dio_refusal_logged {
            return;
        }
        cfg.dio_refusal_logged = true;
        let mut buf = [0u8; 128];
        let mut text = kernel::str::Formatter::new(&mut buf);
        // A message too long for the buffer is cut short, not lost.
        let _ = write!(text, "{}", why.explain(inputs));
        let len = text.bytes_written().min(buf.len());
        let text = core::str::from_utf8(&buf[..len]).unwrap_or("(unprintable)");
        pr_info!("loop{}: direct I/O refused: {}\n", self.index, text);
    }

    /// `loop_reread_partitions`.
    pub(super) fn reread_partitions(&self, disk: &Disk<LoopOps>) {
        if let Err(e) = disk.rescan_partitions() {
            let cfg = self.config.lock();
            let name = cfg
                .binding
                .as_ref()
                .map(|b| b.file_name)
                .unwrap_or([0; LO_NAME_SIZE]);
            let name = CStr::from_bytes_until_nul(&name).unwrap_or(c"");
            pr_warn!(
                "loop_reread_partitions: partition scan of loop{} ({}) failed (rc={})\n",
                self.index,
                name.to_str().unwrap_or("?"),
                e.to_errno()
            );
        }
    }
}

/// `loop_update_limits`: block size, write cache, rotational and discard.
pub(super) fn set_limits(lim: &mut Limits, file: &BackingFile, flags: LoFlags, block_size: u32) {
    lim.set_block_size(block_size);
    lim.set_feature(
        Feature::WriteCache,
        file.has_fsync() && !flags.contains(LoFlags::READ_ONLY),
    );
    lim.set_feature(Feature::Rotational, file.is_rotational());
    let (max_discard, granularity) = file.discard_config();
    lim.set_discard(max_discard, granularity);
}

impl Binding {
    /// What decides direct I/O for this binding and a logical block size.
    pub(super) fn dio_inputs(&self, logical_block_size: u32) -> DioInputs {
        DioInputs {
            file_can_odirect: self.file.can_direct_io(),
            dio_align: self.dio_align,
            logical_block_size,
            offset: self.offset,
        }
    }

    /// `lo_can_use_dio` for this binding and a logical block size.
    pub(super) fn can_dio(&self, logical_block_size: u32) -> bool {
        dio::can_use_dio(&self.dio_inputs(logical_block_size)).is_ok()
    }

    /// `lo_calculate_size` in sectors; a file whose size cannot be read
    /// counts as empty, as in loop.c.
    pub(super) fn capacity(&self) -> u64 {
        capacity::capacity_sectors(self.file.size().unwrap_or(0), self.offset, self.sizelimit)
    }
}
