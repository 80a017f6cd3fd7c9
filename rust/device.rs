// SPDX-License-Identifier: GPL-2.0

//! A loop device: its state machine, its configuration and its ioctls.
//!
//! Driver logic: no `unsafe` here. The device moves through loop.c's four
//! states:
//!
//! ```text
//!   Unbound --LOOP_CONFIGURE/SET_FD--> Bound --last close, AUTOCLEAR--> Rundown
//!      ^                                                                   |
//!      +--------------------------- teardown in release() <----------------+
//!   Unbound --LOOP_CTL_REMOVE--> Deleting
//! ```
//!
//! Locking, outermost first: the driver's validate lock (loop-on-loop
//! chains), the disk's `open_mutex` (held by the block layer around
//! `release`), `config` (loop.c's `lo_mutex`), then `io` (loop.c's
//! `lo_lock`), a spinlock that the I/O path and sysfs read.

use crate::{
    blk::{
        features, AttributeSpec, BlockDevice, Disk, GroupRegistration, Limits, OpenLockedDisk,
        OpenMode, SysfsOutput,
    },
    capability::capable_sys_admin,
    control::Driver,
    dio::{self, DioInputs},
    file_io::BackingFile,
    geometry, hw_queues,
    io::{HwQueue, LoopOps},
    kthread::DrainWorker,
    module_ref::ModuleRef,
    uapi::{self, *},
};
use core::fmt::Write;
use kernel::{
    fs::File,
    new_mutex, new_spinlock,
    prelude::*,
    str::{parse_int::ParseInt, BStr},
    sync::{
        aref::ARef,
        atomic::{
            ordering::{Acquire, Relaxed, Release},
            Atomic,
        },
        Arc, Mutex, SetOnce, SpinLock,
    },
    uaccess::{UserPtr, UserSlice},
};

/// `Lo_unbound`, `Lo_bound`, `Lo_rundown`, `Lo_deleting`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    /// No backing file.
    Unbound,
    /// Serving a backing file.
    Bound,
    /// Detaching at the last close; opens fail with `ENXIO`.
    Rundown,
    /// Being removed by `LOOP_CTL_REMOVE`.
    Deleting,
}

/// What a bound device holds.
struct Binding {
    file: BackingFile,
    offset: u64,
    sizelimit: u64,
    file_name: [u8; LO_NAME_SIZE],
    /// The file's direct I/O alignment (loop.c's `lo_min_dio_size`).
    dio_align: u32,
    /// The backing mapping's gfp mask before binding.
    saved_gfp: u32,
    /// `/sys/block/loopN/loop/`, present while bound.
    sysfs: Option<GroupRegistration<LoopOps>>,
    /// A bound device pins the module, even with no opener left.
    _module: ModuleRef,
}

/// The configuration of a device, under its `config` lock.
struct Config {
    state: State,
    flags: u32,
    binding: Option<Binding>,
    /// A refusal of direct I/O was logged for the current binding.
    dio_refusal_logged: bool,
}

/// What the I/O path and sysfs need of a bound device. Published under
/// the `io` spinlock; changed only with the queue frozen, or while no I/O
/// can be in flight (binding, final close).
#[derive(Clone)]
pub(crate) struct IoTarget {
    /// The device is `Bound`, not detaching (loop.c's `lo_state` checks).
    pub(crate) bound: bool,
    pub(crate) file: ARef<File>,
    pub(crate) offset: u64,
    pub(crate) sizelimit: u64,
    pub(crate) flags: u32,
    /// Direct I/O may be tried with `IOCB_NOWAIT` from `queue_rq`.
    pub(crate) nowait: bool,
}

impl IoTarget {
    pub(crate) fn direct_io(&self) -> bool {
        self.flags & LO_FLAGS_DIRECT_IO != 0
    }

    pub(crate) fn read_only(&self) -> bool {
        self.flags & LO_FLAGS_READ_ONLY != 0
    }
}

/// One `/dev/loopN`.
#[pin_data]
pub(crate) struct LoopDevice {
    pub(crate) index: u32,
    #[pin]
    config: Mutex<Config>,
    #[pin]
    io: SpinLock<Option<IoTarget>>,
    /// The worker of hardware queue 0, loop.c's only one.
    first_worker: WorkerBox,
    /// The workers of queues 1 and up, each started when the device first
    /// has that queue and kept until the device goes: a worker whose queue
    /// is gone just sleeps.
    more_workers: KVec<SetOnce<WorkerBox>>,
    /// The NOWAIT fast path is enabled (`nowait=1` when created).
    nowait: bool,
    /// The published target takes the NOWAIT path: a hint, read without
    /// the `io` lock, so that `queue_rq` skips the attempt for a target
    /// that would refuse it.
    nowait_target: Atomic<bool>,
    /// `config.state`, for the two readers that must not wait for the
    /// config lock, where loop.c reads `lo_state` with `READ_ONCE()`:
    /// `queue_rq` and `LOOP_CTL_GET_FREE`. Updated by `publish`.
    published_state: Atomic<u32>,
    driver: Arc<Driver>,
}

/// A hardware queue's worker, which must not move.
type WorkerBox = Pin<KBox<DrainWorker<HwQueue>>>;

/// The sysfs attributes of `/sys/block/loopN/loop/`: loop.c's, in its
/// order, then rloop's own.
pub(crate) const ATTRS: &[AttributeSpec] = &[
    read_only(c"backing_file"),
    read_only(c"offset"),
    read_only(c"sizelimit"),
    read_only(c"autoclear"),
    read_only(c"partscan"),
    read_only(c"dio"),
    AttributeSpec {
        name: c"nr_hw_queues",
        writable: true,
    },
];

/// Index of `nr_hw_queues` in [`ATTRS`].
const ATTR_NR_HW_QUEUES: usize = 6;
// The one writable attribute is where `store_attr` expects it.
const _: () = assert!(ATTRS[ATTR_NR_HW_QUEUES].writable);

const fn read_only(name: &'static CStr) -> AttributeSpec {
    AttributeSpec {
        name,
        writable: false,
    }
}

impl LoopDevice {
    /// A new, unbound device `index`, with a worker for each of its
    /// `nr_hw_queues` hardware queues.
    pub(crate) fn new(
        index: u32,
        nr_hw_queues: u32,
        nowait: bool,
        driver: Arc<Driver>,
    ) -> Result<Arc<Self>> {
        let first_worker = new_worker(index, 0)?;
        // Room for as many queues as the sysfs attribute may ask for.
        let max = hw_queues::hw_queue_count(0, kernel::cpu::nr_cpu_ids()).unwrap_or(1);
        let mut more_workers = KVec::with_capacity(max as usize - 1, GFP_KERNEL)?;
        for _ in 1..max {
            more_workers.push(SetOnce::new(), GFP_KERNEL)?;
        }
        start_workers(index, &more_workers, nr_hw_queues)?;
        Arc::pin_init(
            try_pin_init!(Self {
                index,
                config <- new_mutex!(Config {
                    state: State::Unbound,
                    flags: 0,
                    binding: None,
                    dio_refusal_logged: false,
                }),
                io <- new_spinlock!(None),
                first_worker,
                more_workers,
                nowait,
                nowait_target: Atomic::new(false),
                published_state: Atomic::new(State::Unbound as u32),
                driver,
            }),
            GFP_KERNEL,
        )
    }

    /// The worker of hardware queue `hw_queue`.
    pub(crate) fn worker(&self, hw_queue: u32) -> &DrainWorker<HwQueue> {
        // Every queue's worker is started before blk-mq has the queue; the
        // fallback keeps that an assumption, not a bug.
        match hw_queue
            .checked_sub(1)
            .and_then(|i| self.more_workers.get(i as usize))
            .and_then(SetOnce::as_ref)
        {
            Some(worker) => worker,
            None => &self.first_worker,
        }
    }

    /// Every worker started so far.
    fn workers(&self) -> impl Iterator<Item = &DrainWorker<HwQueue>> {
        let more = self.more_workers.iter().filter_map(SetOnce::as_ref);
        Iterator::chain(core::iter::once(&self.first_worker), more).map(|w| &**w)
    }

    /// Whether `queue_rq` may try direct I/O itself, with `IOCB_NOWAIT`:
    /// the bound target allows it. The attempt checks the target again.
    pub(crate) fn nowait(&self) -> bool {
        self.nowait_target.load(Relaxed)
    }

    /// The I/O target, if bound.
    pub(crate) fn io_target(&self) -> Option<IoTarget> {
        self.io.lock().clone()
    }

    /// Whether the device is unbound, for `LOOP_CTL_GET_FREE`. Read without
    /// the config lock, which a bind may hold across slow work: a race
    /// only makes the caller create a new device, as in loop.c.
    pub(crate) fn is_free(&self) -> bool {
        self.published_state.load(Relaxed) == State::Unbound as u32
    }

    /// Whether `queue_rq` takes requests (loop.c: `lo_state == Lo_bound`).
    /// Those it took are served even if the device starts detaching
    /// before the worker gets to them.
    pub(crate) fn accepts_io(&self) -> bool {
        // Pairs with `publish`: a request taken here finds the target.
        self.published_state.load(Acquire) == State::Bound as u32
    }

    /// Marks an unbound device for deletion (`LOOP_CTL_REMOVE`), unless it
    /// is bound or open. `ENODEV` if another removal got there first.
    pub(crate) fn start_deleting(&self, disk: &Disk<LoopOps>) -> Result {
        let mut cfg = self.config.lock();
        if cfg.state == State::Deleting {
            return Err(ENODEV);
        }
        if cfg.state != State::Unbound || disk.openers() > 0 {
            return Err(EBUSY);
        }
        cfg.state = State::Deleting;
        self.publish(&cfg);
        Ok(())
    }

    /// Makes the bound I/O view match the configuration.
    fn publish(&self, cfg: &Config) {
        let target = cfg.binding.as_ref().map(|b| IoTarget {
            bound: cfg.state == State::Bound,
            file: b.file.file().clone(),
            offset: b.offset,
            sizelimit: b.sizelimit,
            flags: cfg.flags,
            nowait: self.nowait && cfg.flags & LO_FLAGS_DIRECT_IO != 0 && b.file.can_nowait(),
        });
        let nowait = target.as_ref().is_some_and(|t| t.bound && t.nowait);
        self.nowait_target.store(nowait, Relaxed);
        let old = core::mem::replace(&mut *self.io.lock(), target);
        self.published_state.store(cfg.state as u32, Release);
        // The old file reference is dropped outside the spinlock.
        drop(old);
    }

    // ---- block_device_operations -------------------------------------

    /// `lo_open`.
    pub(crate) fn open(&self) -> Result {
        match self.config.lock().state {
            State::Deleting | State::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    /// `lo_release`: runs under the disk's `open_mutex`.
    pub(crate) fn release(&self, disk: &OpenLockedDisk<'_, LoopOps>) {
        if disk.openers() > 0 {
            return;
        }
        let need_clear = {
            let mut cfg = self.config.lock();
            if cfg.state == State::Bound && cfg.flags & LO_FLAGS_AUTOCLEAR != 0 {
                cfg.state = State::Rundown;
                self.publish(&cfg);
            }
            cfg.state == State::Rundown
        };
        if need_clear {
            self.clear(disk);
        }
    }

    /// `__loop_clr_fd`: unbinds at the last close, under `open_mutex`.
    fn clear(&self, disk: &OpenLockedDisk<'_, LoopOps>) {
        let binding = {
            let mut cfg = self.config.lock();
            let binding = cfg.binding.take();
            self.publish(&cfg);
            binding
        };
        let Some(mut binding) = binding else {
            return;
        };

        // No opener is left, so no I/O is in flight: no freeze needed.
        if let Err(e) = disk.update_limits(|lim| lim.set_block_size(512)) {
            pr_warn!(
                "loop{}: cannot reset the block size ({:?})\n",
                self.index,
                e
            );
        }
        disk.invalidate();
        binding.sysfs = None;
        disk.uevent_change();
        binding.file.restore_gfp_mask(binding.saved_gfp);
        disk.force_media_change();
        // Removes all partitions, BLKPG-added ones included.
        if let Err(e) = disk.rescan_partitions() {
            pr_warn!(
                "__loop_clr_fd: partition scan of loop{} failed (rc={})\n",
                self.index,
                e.to_errno()
            );
        }
        // Nothing queued earlier may still hold the old file.
        for worker in self.workers() {
            worker.flush();
        }
        {
            let mut cfg = self.config.lock();
            cfg.flags = 0;
            if self.driver.part_shift == 0 {
                disk.set_partition_scan(false);
            }
            cfg.state = State::Unbound;
            self.publish(&cfg);
        }
        // The file reference and the module reference go last, outside
        // the config lock: fput() may take open_mutex of another disk.
        drop(binding);
    }

    // ---- ioctls -------------------------------------------------------

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
                // loop.c truncates the `unsigned long` to `unsigned int`.
                self.set_block_size(bdev, mode, arg as u32).map(|()| 0)
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
        arg: usize,
    ) -> Result<i32> {
        match cmd {
            // loop.c checks no permission here, unlike the native call.
            LOOP_SET_STATUS => {
                let raw = read_user::<COMPAT_LOOP_INFO_SIZE>(arg)?;
                self.set_status(bdev, &info64_from_compat(&raw)).map(|()| 0)
            }
            LOOP_GET_STATUS => self.get_status_to_user(arg, info64_to_compat),
            LOOP_SET_CAPACITY | LOOP_CLR_FD | LOOP_GET_STATUS64 | LOOP_SET_STATUS64
            | LOOP_CONFIGURE | LOOP_SET_FD | LOOP_CHANGE_FD | LOOP_SET_DIRECT_IO
            | LOOP_SET_BLOCK_SIZE => self.ioctl(bdev, mode, cmd, arg),
            _ => Err(ENOIOCTLCMD),
        }
    }

    /// `loop_configure`: binds the device to the file at `config.fd`.
    fn configure(
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
        let _validate = is_loop_device(&file).then(|| self.driver.validate_lock.lock());
        let disk = bdev.disk();

        let mut cfg = self.config.lock();
        if cfg.state != State::Unbound {
            return Err(EBUSY);
        }
        self.validate_backing_file(&file, bdev)?;
        if config.info.flags & !CONFIGURE_SETTABLE_FLAGS != 0 {
            return Err(EINVAL);
        }
        validate_info(&config.info)?;

        let mut flags = config.info.flags;
        if !file.is_writable() || !mode.write() || !file.has_write_iter() {
            flags |= LO_FLAGS_READ_ONLY;
        }
        if file.opened_direct() {
            flags |= LO_FLAGS_DIRECT_IO;
        }
        let dio_align = file.dio_alignment();
        let block_size = match config.block_size {
            0 => dio::default_block_size(flags & LO_FLAGS_DIRECT_IO != 0, dio_align),
            bs => bs,
        };
        // Invalid block sizes fail here, before anything changes.
        disk.update_limits(|lim| set_limits(lim, &file, flags, block_size))?;

        disk.suppress_uevents(true);
        disk.force_media_change();
        disk.set_read_only(flags & LO_FLAGS_READ_ONLY != 0);
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
        if flags & LO_FLAGS_DIRECT_IO != 0 {
            if let Err(why) = dio::can_use_dio(&dio_inputs) {
                flags &= !LO_FLAGS_DIRECT_IO;
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
        let capacity = geometry::capacity_sectors(size, config.info.offset, config.info.sizelimit);
        disk.set_capacity_and_notify(capacity);

        cfg.state = State::Bound;
        if self.driver.part_shift != 0 {
            flags |= LO_FLAGS_PARTSCAN;
        }
        cfg.flags = flags;
        self.publish(&cfg);
        // After publishing, so that the files never show a device without
        // its backing file.
        let sysfs = match GroupRegistration::new(disk, self.driver.attrs.clone()) {
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
        let partscan = flags & LO_FLAGS_PARTSCAN != 0;
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
    fn validate_backing_file(&self, file: &BackingFile, bdev: &BlockDevice<LoopOps>) -> Result {
        let mut rdev = file.block_device_number();
        while let Some(dev) = rdev.filter(|&d| is_loop_device_number(d)) {
            if dev == bdev.dev() {
                return Err(EBADF);
            }
            let other = self.driver.find(self.driver.index_of(dev)).ok_or(EINVAL)?;
            let target = other.io_target().filter(|t| t.bound).ok_or(EINVAL)?;
            rdev = BackingFile::from_file(target.file).block_device_number();
        }
        if !file.is_regular() && !file.is_block_device() {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// `loop_change_fd`: swaps the backing file of a read-only device for
    /// one of the same size. Sends a `CHANGE` uevent whatever the outcome.
    fn change_fd(&self, bdev: &BlockDevice<LoopOps>, fd: u32) -> Result {
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
        let _validate = is_loop_device(&file).then(|| self.driver.validate_lock.lock());
        let mut cfg = self.config.lock();
        if cfg.state != State::Bound {
            return Err(ENXIO);
        }
        if cfg.flags & LO_FLAGS_READ_ONLY == 0 {
            return Err(EINVAL);
        }
        self.validate_backing_file(&file, bdev)?;
        let binding = cfg.binding.as_ref().ok_or(ENXIO)?;
        let new_size =
            geometry::capacity_sectors(file.size().unwrap_or(0), binding.offset, binding.sizelimit);
        if new_size != binding_capacity(binding) {
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
                flags |= LO_FLAGS_DIRECT_IO;
            }
            let binding = cfg.binding.as_mut().ok_or(ENXIO)?;
            binding.file.restore_gfp_mask(binding.saved_gfp);
            binding.saved_gfp = file.restrict_gfp_mask();
            binding.dio_align = file.dio_alignment();
            let old = core::mem::replace(&mut binding.file, file);
            let inputs = binding_dio_inputs(binding, lbs);
            cfg.dio_refusal_logged = false;
            if flags & LO_FLAGS_DIRECT_IO != 0 {
                if let Err(why) = dio::can_use_dio(&inputs) {
                    flags &= !LO_FLAGS_DIRECT_IO;
                    self.log_dio_refusal(&mut cfg, why, &inputs);
                }
            }
            cfg.flags = flags;
            self.publish(&cfg);
            old
        };
        Ok((old, cfg.flags & LO_FLAGS_PARTSCAN != 0))
    }

    /// `loop_clr_fd`: detaches lazily, at the last close.
    fn clr_fd(&self, disk: &Disk<LoopOps>) -> Result {
        let _validate = self.driver.validate_lock.lock();
        let mut cfg = self.config.lock();
        if cfg.state != State::Bound {
            return Err(ENXIO);
        }
        cfg.flags |= LO_FLAGS_AUTOCLEAR;
        if disk.openers() == 1 {
            cfg.state = State::Rundown;
        }
        self.publish(&cfg);
        Ok(())
    }

    /// `loop_set_status`.
    fn set_status(&self, bdev: &BlockDevice<LoopOps>, info: &LoopInfo64) -> Result {
        let disk = bdev.disk();
        let mut cfg = self.config.lock();
        let (offset, sizelimit) = match &cfg.binding {
            Some(b) if cfg.state == State::Bound => (b.offset, b.sizelimit),
            _ => return Err(ENXIO),
        };
        let size_changed = offset != info.offset || sizelimit != info.sizelimit;
        if size_changed {
            bdev.sync();
            bdev.invalidate();
        }
        let partscan;
        {
            // I/O is drained before the offset or size limit changes.
            let _frozen = disk.freeze();
            validate_info(info)?;
            let flags = cfg.flags;
            partscan = flags & LO_FLAGS_PARTSCAN == 0 && info.flags & LO_FLAGS_PARTSCAN != 0;
            let mut flags = flags & !SET_STATUS_CLEARABLE_FLAGS;
            flags |= info.flags & SET_STATUS_SETTABLE_FLAGS;
            let lbs = disk.logical_block_size();
            let binding = cfg.binding.as_mut().ok_or(ENXIO)?;
            binding.offset = info.offset;
            binding.sizelimit = info.sizelimit;
            binding.file_name = stored_file_name(&info.file_name);
            if flags & LO_FLAGS_DIRECT_IO != 0 {
                let inputs = binding_dio_inputs(binding, lbs);
                if let Err(why) = dio::can_use_dio(&inputs) {
                    flags &= !LO_FLAGS_DIRECT_IO;
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
            let capacity = binding_capacity(cfg.binding.as_ref().ok_or(ENXIO)?);
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
            let cfg = self.config.lock();
            let b = match &cfg.binding {
                Some(b) if cfg.state == State::Bound => b,
                _ => return Err(ENXIO),
            };
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
        let cfg = self.config.lock();
        let binding = match &cfg.binding {
            Some(b) if cfg.state == State::Bound => b,
            _ => return Err(ENXIO),
        };
        disk.set_capacity_and_notify(binding_capacity(binding));
        Ok(())
    }

    /// `loop_set_dio`.
    fn set_direct_io(&self, disk: &Disk<LoopOps>, on: bool) -> Result {
        let mut cfg = self.config.lock();
        let binding = match &cfg.binding {
            Some(b) if cfg.state == State::Bound => b,
            _ => return Err(ENXIO),
        };
        if (cfg.flags & LO_FLAGS_DIRECT_IO != 0) == on {
            return Ok(());
        }
        if on {
            if !binding_can_dio(binding, disk.logical_block_size()) {
                return Err(EINVAL);
            }
            // Cached dirty pages must reach the file before direct I/O
            // bypasses the cache; loop.c ignores the result too.
            let _ = binding.file.fsync();
        }
        let _frozen = disk.freeze();
        cfg.flags ^= LO_FLAGS_DIRECT_IO;
        self.publish(&cfg);
        Ok(())
    }

    /// `loop_set_block_size`.
    fn set_block_size(&self, bdev: &BlockDevice<LoopOps>, mode: OpenMode, size: u32) -> Result {
        let disk = bdev.disk();
        let _claim = bdev.claim(mode)?;
        let mut cfg = self.config.lock();
        let dio_align = match &cfg.binding {
            Some(b) if cfg.state == State::Bound => b.dio_align,
            _ => return Err(ENXIO),
        };
        // 0 selects the default, as at configure time.
        let size = match size {
            0 => dio::default_block_size(cfg.flags & LO_FLAGS_DIRECT_IO != 0, dio_align),
            size => size,
        };
        if disk.logical_block_size() == size {
            return Ok(());
        }
        bdev.sync();
        bdev.invalidate();
        let flags = cfg.flags;
        let binding = cfg.binding.as_ref().ok_or(ENXIO)?;
        let inputs = binding_dio_inputs(binding, size);
        let refusal = match flags & LO_FLAGS_DIRECT_IO {
            0 => None,
            _ => dio::can_use_dio(&inputs).err(),
        };
        let file = BackingFile::from_file(binding.file.file().clone());
        disk.update_limits_frozen(
            |lim| set_limits(lim, &file, flags, size),
            || {
                if let Some(why) = refusal {
                    cfg.flags &= !LO_FLAGS_DIRECT_IO;
                    self.log_dio_refusal(&mut cfg, why, &inputs);
                }
                self.publish(&cfg);
            },
        )
    }

    /// Says once per binding why requested direct I/O is not used: loop.c
    /// drops it silently, which leaves users on 4K storage guessing.
    fn log_dio_refusal(&self, cfg: &mut Config, why: dio::DioRefusal, inputs: &DioInputs) {
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
    fn reread_partitions(&self, disk: &Disk<LoopOps>) {
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

    // ---- sysfs --------------------------------------------------------

    /// Shows attribute `index` of [`ATTRS`], in loop.c's formats.
    pub(crate) fn show_attr(
        &self,
        disk: &Disk<LoopOps>,
        index: usize,
        out: &mut SysfsOutput<'_>,
    ) -> Result {
        if index == ATTR_NR_HW_QUEUES {
            return writeln!(out, "{}", disk.nr_hw_queues()).map_err(|_| EINVAL);
        }
        // Only the spinlock: the I/O target holds all of these, and the
        // config lock may be held across slow work, such as a bind's fsync.
        let target = self.io_target().ok_or(ENXIO)?;
        let flag = |f: u32| u32::from(target.flags & f != 0);
        match index {
            0 => {
                let mut buf = KVec::from_elem(0u8, PATH_MAX, GFP_KERNEL)?;
                let path = BackingFile::from_file(target.file).path(&mut buf)?;
                out.write_bytes(path)?;
                return out.write_bytes(b"\n");
            }
            1 => writeln!(out, "{}", target.offset),
            2 => writeln!(out, "{}", target.sizelimit),
            3 => writeln!(out, "{}", flag(LO_FLAGS_AUTOCLEAR)),
            4 => writeln!(out, "{}", flag(LO_FLAGS_PARTSCAN)),
            5 => writeln!(out, "{}", flag(LO_FLAGS_DIRECT_IO)),
            _ => return Err(EINVAL),
        }
        .map_err(|_| EINVAL)
    }

    /// Takes a write to attribute `index` of [`ATTRS`]: a new number of
    /// hardware queues, as for the `nr_hw_queues` module parameter. The
    /// queue is frozen for the change, which so waits for the I/O in
    /// flight. No device lock is needed: blk-mq serialises the updates,
    /// and unbinding removes this file only after its writers are done.
    pub(crate) fn store_attr(&self, disk: &Disk<LoopOps>, index: usize, input: &[u8]) -> Result {
        if index != ATTR_NR_HW_QUEUES {
            return Err(EACCES);
        }
        let text = input.strip_suffix(b"\n").unwrap_or(input);
        let requested = u32::from_str(BStr::from_bytes(text))?;
        let nr = hw_queues::hw_queue_count(requested, kernel::cpu::nr_cpu_ids()).ok_or(EINVAL)?;
        start_workers(self.index, &self.more_workers, nr)?;
        disk.set_nr_hw_queues(nr);
        Ok(())
    }
}

/// Whether `dev`, a device number, is a loop device's.
fn is_loop_device_number(dev: u32) -> bool {
    uapi::dev_major(dev) == crate::LOOP_MAJOR
}

/// Whether `file` is a loop device (of rloop or of loop.c).
fn is_loop_device(file: &BackingFile) -> bool {
    file.block_device_number()
        .is_some_and(is_loop_device_number)
}

/// A worker for hardware queue `queue` of device `index`.
fn new_worker(index: u32, queue: u32) -> Result<WorkerBox> {
    // The first keeps loop.c's name, which tools may look for.
    let name = match queue {
        0 => kernel::str::CString::try_from_fmt(fmt!("loop{index}"))?,
        _ => kernel::str::CString::try_from_fmt(fmt!("loop{index}.{queue}"))?,
    };
    KBox::try_pin_init(DrainWorker::new(&name, HwQueue::new()), GFP_KERNEL)
}

/// Starts the workers that the first `nr` hardware queues of device
/// `index` lack. `more` holds the workers of queues 1 and up.
fn start_workers(index: u32, more: &[SetOnce<WorkerBox>], nr: u32) -> Result {
    for (queue, slot) in (1..nr).zip(more) {
        if slot.as_ref().is_none() {
            // A concurrent writer may fill the slot first; its worker
            // serves the queue, and this one stops again.
            slot.populate(new_worker(index, queue)?);
        }
    }
    Ok(())
}

/// `PATH_MAX`: the buffer `file_path()` writes the backing file's path to.
const PATH_MAX: usize = 4096;

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

/// `loop_update_limits`: block size, write cache, rotational and discard.
fn set_limits(lim: &mut Limits, file: &BackingFile, flags: u32, block_size: u32) {
    lim.set_block_size(block_size);
    lim.set_feature(
        features::WRITE_CACHE,
        file.has_fsync() && flags & LO_FLAGS_READ_ONLY == 0,
    );
    lim.set_feature(features::ROTATIONAL, file.is_rotational());
    let (max_discard, granularity) = file.discard_config();
    lim.set_discard(max_discard, granularity);
}

/// What decides direct I/O for a binding and a logical block size.
fn binding_dio_inputs(b: &Binding, logical_block_size: u32) -> DioInputs {
    DioInputs {
        file_can_odirect: b.file.can_direct_io(),
        dio_align: b.dio_align,
        logical_block_size,
        offset: b.offset,
    }
}

/// `lo_can_use_dio` for a binding and a logical block size.
fn binding_can_dio(b: &Binding, logical_block_size: u32) -> bool {
    dio::can_use_dio(&binding_dio_inputs(b, logical_block_size)).is_ok()
}

/// `lo_calculate_size` in sectors; a file whose size cannot be read counts
/// as empty, as in loop.c.
fn binding_capacity(b: &Binding) -> u64 {
    geometry::capacity_sectors(b.file.size().unwrap_or(0), b.offset, b.sizelimit)
}

/// `loop_set_status_from_info` checks, with loop.c's warnings and errno.
fn validate_info(info: &LoopInfo64) -> Result {
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
