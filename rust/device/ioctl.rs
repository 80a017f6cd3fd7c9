// SPDX-License-Identifier: GPL-2.0

//! `lo_ioctl` and `lo_compat_ioctl`: the dispatch, and every ioctl but the
//! two that bind a file ([`super::bind`]).

use super::{binding::set_limits, state::State, LoopDevice, LoopOps};
use crate::{
    blk::{compat_ptr, BlockDevice, Disk, OpenMode},
    capability::capable_sys_admin,
    dio,
    file_io::BackingFile,
    uapi::{self, *},
};
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

impl LoopDevice {
    /// `lo_ioctl` for native callers.
    pub(crate) fn ioctl(
        &self,
        bdev: &BlockDevice<LoopOps>,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        let may_write = || {
            if mode.write() || capable_sys_admin() {
                Ok(())
            } else {
                Err(EPERM)
            }
        };
        match cmd {
            LOOP_SET_FD => {
                // The fd is an `unsigned int`; upper bits are ignored.
                let config = LoopConfig::from_fd(arg as u32);
                self.configure(bdev, mode, &config).map(|()| 0)
            }
            LOOP_CONFIGURE => {
                let raw = read_user::<LOOP_CONFIG_SIZE>(arg)?;
                self.configure(bdev, mode, &LoopConfig::from_bytes(&raw))
                    .map(|()| 0)
            }
            LOOP_CLR_FD => self.clr_fd(bdev.disk()).map(|()| 0),
            LOOP_SET_STATUS64 => {
                may_write()?;
                let raw = read_user::<LOOP_INFO64_SIZE>(arg)?;
                self.set_status(bdev, &LoopInfo64::from_bytes(&raw))
                    .map(|()| 0)
            }
            LOOP_GET_STATUS64 => self.get_status_to_user(arg, |info| Ok(info.to_bytes())),
            LOOP_SET_STATUS => {
                may_write()?;
                let raw = read_user::<LOOP_INFO_SIZE>(arg)?;
                self.set_status(bdev, &info64_from_old(&raw)).map(|()| 0)
            }
            LOOP_GET_STATUS => self.get_status_to_user(arg, info64_to_old),
            LOOP_CHANGE_FD => self.change_fd(bdev, arg as u32).map(|()| 0),
            LOOP_SET_CAPACITY => {
                may_write()?;
                self.set_capacity(bdev.disk()).map(|()| 0)
            }
            LOOP_SET_DIRECT_IO => {
                may_write()?;
                self.set_direct_io(bdev.disk(), arg != 0).map(|()| 0)
            }
            LOOP_SET_BLOCK_SIZE => {
                may_write()?;
                self.set_block_size(bdev, mode, arg).map(|()| 0)
            }
            _ => Err(EINVAL),
        }
    }

    /// `lo_compat_ioctl`: the 64-bit structures have the same layout for
    /// 32-bit callers; unknown commands get `ENOIOCTLCMD`, as in loop.c.
    pub(crate) fn compat_ioctl(
        &self,
        bdev: &BlockDevice<LoopOps>,
        mode: OpenMode,
        cmd: u32,
        arg: u32,
    ) -> Result<i32> {
        let arg = uapi::compat_ioctl_arg(cmd, arg, compat_ptr).ok_or(ENOIOCTLCMD)?;
        match cmd {
            // loop.c checks no permission here, unlike the native call.
            LOOP_SET_STATUS => {
                let raw = read_user::<COMPAT_LOOP_INFO_SIZE>(arg)?;
                self.set_status(bdev, &info64_from_compat(&raw)).map(|()| 0)
            }
            LOOP_GET_STATUS => self.get_status_to_user(arg, info64_to_compat),
            _ => self.ioctl(bdev, mode, cmd, arg),
        }
    }

    /// `loop_clr_fd`: detaches lazily, at the last close.
    fn clr_fd(&self, disk: &Disk<LoopOps>) -> Result {
        let _validate = self.set.validate_lock().lock_killable()?;
        let mut cfg = self.config.lock_killable()?;
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        cfg.flags.insert(LoFlags::AUTOCLEAR);
        self.publish(&cfg);
        if disk.openers() == 1 {
            self.set_state(&mut cfg, State::Rundown);
        }
        Ok(())
    }

    /// `loop_set_status`.
    fn set_status(&self, bdev: &BlockDevice<LoopOps>, info: &LoopInfo64) -> Result {
        let disk = bdev.disk();
        let mut cfg = self.config.lock_killable()?;
        let (offset, sizelimit) = self.bound(&cfg).map(|b| (b.offset, b.sizelimit))?;
        let size_changed = offset != info.offset || sizelimit != info.sizelimit;
        if size_changed {
            // The whole disk's cache, even through a partition's node: its
            // dirty pages would be written back at the new offset.
            bdev.whole().sync();
            bdev.whole().invalidate();
        }
        let partscan;
        {
            // I/O is drained before the offset or size limit changes.
            let _frozen = disk.freeze();
            validate_info(info)?;
            let flags = cfg.flags;
            partscan = !flags.contains(LoFlags::PARTSCAN) && info.flags.contains(LoFlags::PARTSCAN);
            let mut flags = flags;
            flags.remove(LoFlags::SET_STATUS_CLEARABLE);
            flags.insert(info.flags.intersection(LoFlags::SET_STATUS_SETTABLE));
            let lbs = disk.logical_block_size();
            let binding = cfg.binding.as_mut().ok_or(ENXIO)?;
            binding.offset = info.offset;
            binding.sizelimit = info.sizelimit;
            binding.file_name = stored_file_name(&info.file_name);
            if flags.contains(LoFlags::DIRECT_IO) {
                let inputs = binding.dio_inputs(lbs);
                if let Err(why) = dio::can_use_dio(&inputs) {
                    flags.remove(LoFlags::DIRECT_IO);
                    self.log_dio_refusal(&mut cfg, why, &inputs);
                }
            }
            cfg.flags = flags;
            self.publish(&cfg);
        }
        if partscan {
            disk.set_partition_scan(true);
        }
        if size_changed {
            let capacity = cfg.binding.as_ref().ok_or(ENXIO)?.capacity();
            disk.set_capacity_and_notify(capacity);
        }
        drop(cfg);
        if partscan {
            self.reread_partitions(disk);
        }
        Ok(())
    }

    /// `loop_get_status`.
    fn get_status(&self) -> Result<LoopInfo64> {
        let (mut info, file) = {
            let cfg = self.config.lock_killable()?;
            let b = self.bound(&cfg)?;
            let mut info = LoopInfo64::zeroed();
            info.number = self.index;
            info.offset = b.offset;
            info.sizelimit = b.sizelimit;
            info.flags = cfg.flags;
            info.file_name = b.file_name;
            (info, BackingFile::from_file(b.file.file().clone()))
        };
        // The lock is dropped before calling into the file system.
        let ids = file.ids()?;
        info.device = huge_encode_dev(ids.dev);
        info.inode = ids.ino;
        info.rdevice = huge_encode_dev(ids.rdev);
        Ok(info)
    }

    /// `loop_get_status*`: the status in one of its user-space layouts,
    /// `EINVAL` for a NULL pointer, `EOVERFLOW` when a field does not fit.
    fn get_status_to_user<const N: usize>(
        &self,
        arg: usize,
        encode: impl FnOnce(&LoopInfo64) -> core::result::Result<[u8; N], Overflow>,
    ) -> Result<i32> {
        if arg == 0 {
            return Err(EINVAL);
        }
        let info = self.get_status()?;
        write_user(arg, &encode(&info).map_err(|_| EOVERFLOW)?)
    }

    /// `loop_set_capacity`.
    fn set_capacity(&self, disk: &Disk<LoopOps>) -> Result {
        let cfg = self.config.lock_killable()?;
        let binding = self.bound(&cfg)?;
        disk.set_capacity_and_notify(binding.capacity());
        Ok(())
    }

    /// `loop_set_dio`.
    fn set_direct_io(&self, disk: &Disk<LoopOps>, on: bool) -> Result {
        let mut cfg = self.config.lock_killable()?;
        let binding = self.bound(&cfg)?;
        if cfg.flags.contains(LoFlags::DIRECT_IO) == on {
            return Ok(());
        }
        if on {
            if !binding.can_dio(disk.logical_block_size()) {
                return Err(EINVAL);
            }
            // Cached dirty pages must reach the file before direct I/O
            // bypasses the cache; loop.c ignores the result too.
            let _ = binding.file.fsync();
        }
        let _frozen = disk.freeze();
        cfg.flags.toggle(LoFlags::DIRECT_IO);
        self.publish(&cfg);
        Ok(())
    }

    /// `loop_set_block_size`.
    fn set_block_size(&self, bdev: &BlockDevice<LoopOps>, mode: OpenMode, arg: usize) -> Result {
        let disk = bdev.disk();
        let _claim = bdev.claim(mode)?;
        let mut cfg = self.config.lock_killable()?;
        let dio_align = self.bound(&cfg)?.dio_align;
        // loop.c compares the argument itself: 0, or a size past 32 bits,
        // still writes back and drops the page cache, and looks at direct
        // I/O again, whatever block size it comes to.
        if usize::try_from(disk.logical_block_size()) == Ok(arg) {
            return Ok(());
        }
        // As loop.c, which passes the `unsigned long` on as an
        // `unsigned int`. 0 selects the default, as at configure time.
        let size = match arg as u32 {
            0 => dio::default_block_size(cfg.flags.contains(LoFlags::DIRECT_IO), dio_align),
            size => size,
        };
        // As in `set_status`; the claim above stays on the ioctl's device.
        bdev.whole().sync();
        bdev.whole().invalidate();
        let flags = cfg.flags;
        let binding = cfg.binding.as_ref().ok_or(ENXIO)?;
        let inputs = binding.dio_inputs(size);
        let refusal = match flags.contains(LoFlags::DIRECT_IO) {
            false => None,
            true => dio::can_use_dio(&inputs).err(),
        };
        let file = BackingFile::from_file(binding.file.file().clone());
        disk.update_limits_frozen(
            |lim| set_limits(lim, &file, flags, size),
            || {
                if let Some(why) = refusal {
                    cfg.flags.remove(LoFlags::DIRECT_IO);
                    self.log_dio_refusal(&mut cfg, why, &inputs);
                }
                self.publish(&cfg);
            },
        )
    }
}

/// Copies `N` bytes from user space at `addr`.
fn read_user<const N: usize>(addr: usize) -> Result<[u8; N]> {
    let mut raw = [0u8; N];
    UserSlice::new(UserPtr::from_addr(addr), N)
        .reader()
        .read_slice(&mut raw)?;
    Ok(raw)
}

/// Copies `bytes` to user space at `addr`; the ioctl's result is 0.
fn write_user(addr: usize, bytes: &[u8]) -> Result<i32> {
    UserSlice::new(UserPtr::from_addr(addr), bytes.len())
        .writer()
        .write_slice(bytes)?;
    Ok(0)
}

/// `loop_set_status_from_info` checks, with loop.c's warnings and errno.
pub(super) fn validate_info(info: &LoopInfo64) -> Result {
    uapi::validate_info(info).map_err(|e| match e {
        InfoError::Invalid => EINVAL,
        InfoError::XorRemoved => {
            pr_warn!("support for the xor transformation has been removed.\n");
            EINVAL
        }
        InfoError::CryptoApiRemoved => {
            pr_warn!("support for cryptoloop has been removed.  Use dm-crypt instead.\n");
            EINVAL
        }
        InfoError::Overflow => EOVERFLOW,
    })
}
