// SPDX-License-Identifier: GPL-2.0

//! [`LoopOps`]: the type that ties a device to the block layer. Its block
//! device operations and sysfs attributes are here, calls into the device;
//! its blk-mq operations are the I/O path's ([`crate::io`]).

use super::{LoopDevice, ATTRS};
use crate::blk::{
    AttributeSpec, BlockDevice, Disk, DiskAttributes, DiskOperations, OpenLockedDisk, OpenMode,
    SysfsOutput,
};
use kernel::{prelude::*, sync::Arc};

/// The loop driver's blk-mq and block device operations.
pub(crate) struct LoopOps;

impl DiskOperations for LoopOps {
    type DiskData = Arc<LoopDevice>;

    fn open(disk: &Disk<Self>, _mode: OpenMode) -> Result {
        disk.data().open()
    }

    fn release(disk: &OpenLockedDisk<'_, Self>) {
        disk.data().release(disk)
    }

    fn ioctl(bdev: &BlockDevice<Self>, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        bdev.disk().data().ioctl(bdev, mode, cmd, arg)
    }

    fn compat_ioctl(bdev: &BlockDevice<Self>, mode: OpenMode, cmd: u32, arg: u32) -> Result<i32> {
        bdev.disk().data().compat_ioctl(bdev, mode, cmd, arg)
    }
}

impl DiskAttributes for LoopOps {
    const GROUP_NAME: &'static CStr = c"loop";
    const ATTRS: &'static [AttributeSpec] = ATTRS;

    fn show(disk: &Disk<Self>, index: usize, out: &mut SysfsOutput<'_>) -> Result {
        disk.data().show_attr(disk, index, out)
    }

    fn store(disk: &Disk<Self>, index: usize, input: &[u8]) -> Result {
        disk.data().store_attr(disk, index, input)
    }
}
