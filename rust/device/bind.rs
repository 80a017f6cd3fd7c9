// SPDX-License-Identifier: GPL-2.0

//! Binding a backing file: `LOOP_CONFIGURE` (and `LOOP_SET_FD`),
//! `LOOP_CHANGE_FD`, and the loop-on-loop check both make.

use super::{
    binding::{set_limits, Binding},
    ioctl::validate_info,
    state::State,
    LoopDevice, LoopOps,
};
use crate::{
    blk::{BlockDevice, GroupRegistration, OpenMode},
    capacity,
    dio::{self, DioInputs},
    file_io::BackingFile,
    module_ref::ModuleRef,
    uapi::{self, *},
};
use kernel::prelude::*;

impl LoopDevice {
    /// `loop_configure`: binds the device to the file at `config.fd`.
    pub(super) fn configure(
        &self,
        bdev: &BlockDevice<LoopOps>,
        mode: OpenMode,
        config: &LoopConfig,
    ) -> Result {
        let file = BackingFile::from_fd(bdev.in_ioctl(), config.fd)?;
        // loop_check_backing_file()
        if !file.has_read_iter() || (file.is_writable() && !file.has_write_iter()) {
            return Err(EINVAL);
        }
        let module = ModuleRef::get(bdev.module_held());
        // Upgrade to an exclusive claim, so the device does not change
        // under an exclusive owner.
        let _claim = bdev.claim(mode)?;
        // Only a loop device as backing file has a chain to check, and only
        // then does loop.c take its global lock: binds of other devices do
        // not wait for this one's fsync.
        let _validate = is_loop_device(&file)
            .then(|| self.set.validate_lock().lock_killable())
            .transpose()?;
        let disk = bdev.disk();

        let mut cfg = self.config.lock_killable()?;
        if self.state() != State::Unbound {
            return Err(EBUSY);
        }
        self.validate_backing_file(&file, bdev)?;
        if !LoFlags::CONFIGURE_SETTABLE.contains(config.info.flags) {
            return Err(EINVAL);
        }
        validate_info(&config.info)?;

        let mut flags = config.info.flags;
        if !file.is_writable() || !mode.write() || !file.has_write_iter() {
            flags.insert(LoFlags::READ_ONLY);
        }
        if file.opened_direct() {
            flags.insert(LoFlags::DIRECT_IO);
        }
        let dio_align = file.dio_alignment();
        let block_size = match config.block_size {
            0 => dio::default_block_size(flags.contains(LoFlags::DIRECT_IO), dio_align),
            bs => bs,
        };
        // Invalid block sizes fail here, before anything changes.
        disk.update_limits(|lim| set_limits(lim, &file, flags, block_size))?;

        disk.suppress_uevents(true);
        disk.force_media_change();
        disk.set_read_only(flags.contains(LoFlags::READ_ONLY));
        let saved_gfp = file.restrict_gfp_mask();
        // Direct I/O may be turned on: write the page cache back first, so
        // that the individual I/Os need not. Its result does not matter,
        // as in loop.c.
        let _ = file.fsync();

        let dio_inputs = DioInputs {
            file_can_odirect: file.can_direct_io(),
            dio_align,
            logical_block_size: disk.logical_block_size(),
            offset: config.info.offset,
        };
        cfg.dio_refusal_logged = false;
        if flags.contains(LoFlags::DIRECT_IO) {
            if let Err(why) = dio::can_use_dio(&dio_inputs) {
                flags.remove(LoFlags::DIRECT_IO);
                self.log_dio_refusal(&mut cfg, why, &dio_inputs);
            }
        }
        let size = file.size().unwrap_or(0);
        cfg.binding = Some(Binding {
            file,
            offset: config.info.offset,
            sizelimit: config.info.sizelimit,
            file_name: stored_file_name(&config.info.file_name),
            dio_align,
            saved_gfp,
            sysfs: None,
            _module: module,
        });
        let capacity = capacity::capacity_sectors(size, config.info.offset, config.info.sizelimit);
        disk.set_capacity_and_notify(capacity);

        if self.part_shift != 0 {
            flags.insert(LoFlags::PARTSCAN);
        }
        cfg.flags = flags;
        self.publish(&cfg);
        self.set_state(&mut cfg, State::Bound);
        // After publishing, so that the files never show a device without
        // its backing file.
        let sysfs = match GroupRegistration::new(disk, self.attrs.clone()) {
            Ok(reg) => Some(reg),
            Err(e) => {
                // loop.c only warns when the group cannot be created.
                pr_warn!("loop{}: cannot create sysfs group ({:?})\n", self.index, e);
                None
            }
        };
        if let Some(binding) = cfg.binding.as_mut() {
            binding.sysfs = sysfs;
        }
        let partscan = flags.contains(LoFlags::PARTSCAN);
        if partscan {
            disk.set_partition_scan(true);
        }
        disk.suppress_uevents(false);
        disk.uevent_change();
        drop(cfg);
        drop(_validate);
        if partscan {
            self.reread_partitions(disk);
        }
        Ok(())
    }

    /// `loop_validate_file`: no loop-on-loop cycle back to this device, a
    /// bound device at every step of a chain, and a regular file or block
    /// device at its end. Called with the validate lock held if `file` is a
    /// loop device.
    ///
    /// loop.c follows a chain only through nodes of the loop major, and
    /// finds this device in it only by the number of the ioctl's node. A
    /// partition's node has another number, of the loop major or an
    /// extended one: `LOOP_CHANGE_FD` on `/dev/loop0p1` to `/dev/loop0`, or
    /// to `/dev/loop0p1` on `/dev/loop0`, closed a cycle. rloop follows
    /// the chain through each node's disk, and compares devices.
    fn validate_backing_file(&self, file: &BackingFile, bdev: &BlockDevice<LoopOps>) -> Result {
        let mut step = file.block_device_number().zip(file.disk_number());
        while let Some((node, disk)) = step.filter(|&(_, disk)| is_loop_device_number(disk)) {
            if node == bdev.dev() {
                return Err(EBADF);
            }
            let other = self.set.find_by_number(disk).ok_or(EINVAL)?;
            let target = other.bound_target().ok_or(EINVAL)?;
            if other.index == self.index {
                return Err(EBADF);
            }
            let next = BackingFile::from_file(target.file);
            step = next.block_device_number().zip(next.disk_number());
        }
        if !file.is_regular() && !file.is_block_device() {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// `loop_change_fd`: swaps the backing file of a read-only device for
    /// one of the same size. Sends a `CHANGE` uevent whatever the outcome.
    pub(super) fn change_fd(&self, bdev: &BlockDevice<LoopOps>, fd: u32) -> Result {
        let file = BackingFile::from_fd(bdev.in_ioctl(), fd)?;
        if !file.has_read_iter() || (file.is_writable() && !file.has_write_iter()) {
            return Err(EINVAL);
        }
        let disk = bdev.disk();
        disk.suppress_uevents(true);
        let result = self.swap_backing_file(bdev, file);
        disk.suppress_uevents(false);
        let result = result.map(|(old, partscan)| {
            // The old file goes outside the locks: fput() may take the
            // open_mutex of the disk under it.
            drop(old);
            if partscan {
                self.reread_partitions(disk);
            }
        });
        disk.uevent_change();
        result
    }

    /// The locked part of `loop_change_fd`. Returns the old file, to be
    /// dropped outside the locks, and whether partitions are scanned.
    fn swap_backing_file(
        &self,
        bdev: &BlockDevice<LoopOps>,
        file: BackingFile,
    ) -> Result<(BackingFile, bool)> {
        let disk = bdev.disk();
        // As in `configure`. The chain check clones the files it looks at,
        // so loop.c's wait for checks in flight before the old file is put
        // is not needed.
        let _validate = is_loop_device(&file)
            .then(|| self.set.validate_lock().lock_killable())
            .transpose()?;
        let mut cfg = self.config.lock_killable()?;
        self.bound(&cfg)?;
        if !cfg.flags.contains(LoFlags::READ_ONLY) {
            return Err(EINVAL);
        }
        self.validate_backing_file(&file, bdev)?;
        let binding = cfg.binding.as_ref().ok_or(ENXIO)?;
        let new_size =
            capacity::capacity_sectors(file.size().unwrap_or(0), binding.offset, binding.sizelimit);
        if new_size != binding.capacity() {
            return Err(EINVAL);
        }
        // Direct I/O may follow from an O_DIRECT fd: write back first.
        let _ = file.fsync();
        disk.force_media_change();
        let lbs = disk.logical_block_size();
        let old = {
            let _frozen = disk.freeze();
            let mut flags = cfg.flags;
            if file.opened_direct() {
                flags.insert(LoFlags::DIRECT_IO);
            }
            let binding = cfg.binding.as_mut().ok_or(ENXIO)?;
            binding.file.restore_gfp_mask(binding.saved_gfp);
            binding.saved_gfp = file.restrict_gfp_mask();
            binding.dio_align = file.dio_alignment();
            let old = core::mem::replace(&mut binding.file, file);
            let inputs = binding.dio_inputs(lbs);
            cfg.dio_refusal_logged = false;
            if flags.contains(LoFlags::DIRECT_IO) {
                if let Err(why) = dio::can_use_dio(&inputs) {
                    flags.remove(LoFlags::DIRECT_IO);
                    self.log_dio_refusal(&mut cfg, why, &inputs);
                }
            }
            cfg.flags = flags;
            self.publish(&cfg);
            old
        };
        Ok((old, cfg.flags.contains(LoFlags::PARTSCAN)))
    }
}

/// Whether `dev`, a device number, is a loop device's.
fn is_loop_device_number(dev: u32) -> bool {
    uapi::dev_major(dev) == LOOP_MAJOR
}

/// Whether `file` is a loop device (of rloop or of loop.c), or one of its
/// partitions.
fn is_loop_device(file: &BackingFile) -> bool {
    file.disk_number().is_some_and(is_loop_device_number)
}
