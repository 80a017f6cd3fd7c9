// SPDX-License-Identifier: GPL-2.0

//! The set of loop devices and `/dev/loop-control`.
//!
//! Driver logic: no `unsafe` here.
//!
//! Locking: `ctl_lock` (loop.c's `loop_ctl_mutex`) serialises adding and
//! removing devices and is held across `add_disk()` and `del_gendisk()`.
//! `devices` is a leaf lock, held only to look up or change the table, so
//! that a device's own locks may be held while looking up another one (the
//! loop-on-loop check). As in loop.c, a wait for `ctl_lock`, the validate
//! lock or a device's lock ends with `EINTR` on a fatal signal, except
//! where the operation is past the point of no return.

mod table;

use crate::{
    blk::{tag_set::flags, AttributeGroup, DiskParams, GenDisk, Probe, TagSet},
    device::{DeviceParams, DeviceSet, LoopDevice, LoopOps},
    kernel_defs,
    misc::MiscIoctl,
    mutex::{new_killable_mutex, KillableMutex},
    uapi::{dev_minor, LOOP_CTL_ADD, LOOP_CTL_GET_FREE, LOOP_CTL_REMOVE, LOOP_MAJOR, MINOR_BITS},
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex, UniqueArc},
};
use table::{DeviceTable, Entry};

/// loop.c's `max_hw_sectors`: a historic cap of 1.25 MiB per request.
const MAX_HW_SECTORS: u32 = 2560;

/// Driver-wide settings and state.
#[pin_data]
pub(crate) struct Driver {
    /// loop.c's `loop_validate_mutex`: see [`DeviceSet::validate_lock`].
    #[pin]
    validate_lock: KillableMutex<()>,
    #[pin]
    ctl_lock: KillableMutex<()>,
    #[pin]
    devices: Mutex<DeviceTable>,
    /// The `loop/` sysfs group of every device.
    attrs: Arc<AttributeGroup<LoopOps>>,
    /// Minor bits of each device for its partitions (from `max_part`).
    part_shift: u32,
    /// `hw_queue_depth`.
    queue_depth: u32,
    /// `nr_hw_queues`: hardware queues, and so workers, per device.
    nr_hw_queues: u32,
    /// `nowait`: new devices try direct I/O from `queue_rq` first.
    nowait: bool,
    /// `max_loop`, when given explicitly: the limit for autoloading.
    autoload_limit: Option<u32>,
}

impl Driver {
    /// Driver state for `part_shift` partitions bits and tag sets of
    /// `nr_hw_queues` queues of `queue_depth` tags.
    pub(crate) fn new(
        part_shift: u32,
        queue_depth: u32,
        nr_hw_queues: u32,
        nowait: bool,
        autoload_limit: Option<u32>,
    ) -> Result<Arc<Self>> {
        let attrs = AttributeGroup::new()?;
        Arc::pin_init(
            try_pin_init!(Self {
                validate_lock <- new_killable_mutex!(()),
                ctl_lock <- new_killable_mutex!(()),
                devices <- new_mutex!(DeviceTable::new()),
                attrs,
                part_shift,
                queue_depth,
                nr_hw_queues,
                nowait,
                autoload_limit,
            }),
            GFP_KERNEL,
        )
    }

    /// The index of the device that minor number `dev` (a `dev_t` of the
    /// loop major) belongs to, partitions included.
    fn index_of(&self, dev: u32) -> u32 {
        dev_minor(dev) >> self.part_shift
    }

    /// The device of `index`, if it exists.
    fn find(&self, index: u32) -> Option<Arc<LoopDevice>> {
        self.devices.lock().get(index).map(|e| e.dev.clone())
    }

    /// `loop_add`: creates `loop<index>`, or the first free index for
    /// `None`. Returns the index.
    pub(crate) fn add(self: &Arc<Self>, index: Option<u32>) -> Result<u32> {
        // Held to the end: only `add` inserts, so the index stays free.
        let _ctl = self.ctl_lock.lock_killable()?;
        let index = {
            let mut devices = self.devices.lock();
            let index = match index {
                Some(i) if devices.get(i).is_some() => return Err(EEXIST),
                Some(i) => i,
                None => devices.first_free().ok_or(ENOSPC)?,
            };
            // Before the disk is visible, as loop.c's idr_alloc(): past
            // add_disk() nothing may fail.
            devices.reserve_one()?;
            index
        };
        let first_minor = index
            .checked_shl(self.part_shift)
            .filter(|m| m >> self.part_shift == index && *m < 1 << MINOR_BITS)
            .ok_or(EINVAL)?;

        let params = DeviceParams {
            nr_hw_queues: self.nr_hw_queues,
            nowait: self.nowait,
            part_shift: self.part_shift,
            attrs: self.attrs.clone(),
        };
        let dev = LoopDevice::new(index, params, self.clone())?;
        // The NOWAIT fast path calls into file systems from `queue_rq`,
        // which may sleep even with `IOCB_NOWAIT` (allocations).
        let blocking = if self.nowait { flags::BLOCKING } else { 0 };
        let tag_set = Arc::pin_init(
            TagSet::new(
                self.nr_hw_queues,
                self.queue_depth,
                flags::STACKING | flags::NO_SCHED_BY_DEFAULT | blocking,
            ),
            GFP_KERNEL,
        )?;
        // Allocated before the disk is added, for the same reason.
        let slot = UniqueArc::new_uninit(GFP_KERNEL)?;
        let disk = GenDisk::new(
            tag_set,
            dev.clone(),
            dev.clone(),
            DiskParams {
                major: LOOP_MAJOR,
                first_minor,
                minors: 1 << self.part_shift,
                name: fmt!("loop{index}"),
                partition_scan: self.part_shift != 0,
                media_change_events: true,
            },
            |lim| lim.set_max_hw_sectors(MAX_HW_SECTORS),
        )?;
        let entry = Entry {
            dev,
            disk: slot.write(disk).into(),
            removing: false,
        };
        let mut devices = self.devices.lock();
        if let Err(entry) = devices.insert(entry) {
            // Not reached: room is reserved and the index is free.
            drop(devices);
            // The disk is deleted outside the table lock.
            drop(entry);
            return Err(ENOMEM);
        }
        Ok(index)
    }

    /// `loop_control_remove`.
    fn remove(&self, index: u32) -> Result {
        // One remover at a time, as loop.c hides the device from others
        // (`idr_visible`): a second one gets `ENODEV` and holds no
        // reference, so the disk is deleted before the first returns.
        let (dev, disk) = {
            let mut devices = self.devices.lock();
            let entry = devices
                .get_mut(index)
                .filter(|e| !e.removing)
                .ok_or(ENODEV)?;
            entry.removing = true;
            (entry.dev.clone(), entry.disk.clone())
        };
        // Without `ctl_lock`, as in loop.c: the device's config lock may be
        // held across slow work, which must not hold up other devices.
        if let Err(e) = dev.start_deleting(disk.disk()) {
            if let Some(entry) = self.devices.lock().get_mut(index) {
                entry.removing = false;
            }
            return Err(e);
        }
        // Not killable: the device is already marked for deletion.
        let _ctl = self.ctl_lock.lock();
        let entry = self.devices.lock().remove(index);
        // del_gendisk() outside the table lock, when the last reference goes.
        drop(entry);
        drop(disk);
        Ok(())
    }

    /// `loop_control_get_free`: the first unbound device, created if none.
    fn get_free(self: &Arc<Self>) -> Result<u32> {
        {
            let _ctl = self.ctl_lock.lock_killable()?;
            // The table is sorted: the first is the lowest.
            let free = self
                .devices
                .lock()
                .iter()
                .find(|e| !e.removing && e.dev.is_free())
                .map(|e| e.dev.index);
            if let Some(index) = free {
                return Ok(index);
            }
        }
        self.add(None)
    }

    /// Deletes every device, at module unload, by increasing index, as
    /// `loop_exit()` walks its idr.
    pub(crate) fn remove_all(&self) {
        let _ctl = self.ctl_lock.lock();
        loop {
            let entry = self.devices.lock().take_lowest();
            match entry {
                // del_gendisk() outside the table lock.
                Some(entry) => drop(entry),
                None => break,
            }
        }
    }
}

impl DeviceSet for Driver {
    fn validate_lock(&self) -> &KillableMutex<()> {
        &self.validate_lock
    }

    fn find_by_number(&self, dev: u32) -> Option<Arc<LoopDevice>> {
        self.find(self.index_of(dev))
    }
}

/// `/dev/loop-control`.
pub(crate) struct LoopControl;

impl MiscIoctl for LoopControl {
    type Data = Arc<Driver>;

    fn ioctl(driver: ArcBorrow<'_, Driver>, cmd: u32, arg: usize) -> Result<isize> {
        let driver: Arc<Driver> = driver.into();
        // The argument is an `int` in loop.c.
        let n = arg as i32;
        match cmd {
            LOOP_CTL_ADD => {
                let index = u32::try_from(n).ok();
                driver.add(index).map(|i| i as isize)
            }
            LOOP_CTL_REMOVE => {
                let index = u32::try_from(n).map_err(|_| {
                    kernel::pr_warn_once!(
                        "deleting an unspecified loop device is not supported.\n"
                    );
                    EINVAL
                })?;
                driver.remove(index).map(|()| 0)
            }
            LOOP_CTL_GET_FREE => driver.get_free().map(|i| i as isize),
            _ => Err(kernel_defs::enosys()),
        }
    }
}

impl Probe for Driver {
    /// `loop_probe`: a node of a missing device was opened.
    fn probe(this: ArcBorrow<'_, Self>, dev: u32) {
        let driver: Arc<Driver> = this.into();
        let index = driver.index_of(dev);
        if driver
            .autoload_limit
            .is_some_and(|max| max != 0 && index >= max)
        {
            return;
        }
        let _ = driver.add(Some(index));
    }
}
