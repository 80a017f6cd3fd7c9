// SPDX-License-Identifier: GPL-2.0

//! Block layer abstractions that the 7.2 `kernel::block::mq` lacks.
//!
//! C headers: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//!
//! Shaped after `kernel::block::mq` ([`TagSet`], [`Operations`], [`Request`],
//! [`GenDisk`]) with what a stacking driver such as loop needs on top: a
//! per-request data type, request accessors, completion with a status,
//! custom `block_device_operations`, a fixed major, and runtime queue limits.

pub(crate) mod bdev;
pub(crate) mod bvec;
pub(crate) mod disk;
pub(crate) mod gen_disk;
pub(crate) mod limits;
pub(crate) mod major;
pub(crate) mod request;
pub(crate) mod request_list;
pub(crate) mod sysfs;
pub(crate) mod tag_set;

pub(crate) use bdev::{BlockDevice, InIoctl, OpenMode};
pub(crate) use disk::{Disk, OpenLockedDisk};
pub(crate) use gen_disk::{compat_ptr, DiskOperations, DiskParams, GenDisk};
pub(crate) use limits::{Feature, Limits};
pub(crate) use major::{BlockMajor, Probe};
pub(crate) use request::{impl_request_field, Op, Request, RequestField, Status};
pub(crate) use request_list::{with_plug, RequestList, RequestListNode};
pub(crate) use sysfs::{
    AttributeGroup, AttributeSpec, DiskAttributes, GroupRegistration, SysfsOutput,
};
pub(crate) use tag_set::{Operations, TagSet};

pub(crate) use kernel::block::SECTOR_SHIFT;
