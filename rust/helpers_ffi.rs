// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C helpers in `rust/helpers.c`.
//!
//! Each entry mirrors a prototype of `rust/helpers.h`. Only the abstraction
//! files call them; driver logic never does.

use kernel::{
    bindings,
    ffi::{c_char, c_int, c_uint, c_ulong, c_void},
};

/// `BLK_OPEN_WRITE`; `helpers.c` checks the value at build time.
pub(crate) const BLK_OPEN_WRITE: u32 = 1 << 1;
/// `BLK_OPEN_EXCL`; `helpers.c` checks the value at build time.
pub(crate) const BLK_OPEN_EXCL: u32 = 1 << 2;
/// `IOCB_NOWAIT`; `helpers.c` checks the value at build time.
pub(crate) const IOCB_NOWAIT: i32 = 1 << 3;
/// `IOCB_NOIO`; `helpers.c` checks the value at build time.
pub(crate) const IOCB_NOIO: i32 = 1 << 20;

/// The `show()` callback of a device attribute.
pub(crate) type DeviceAttrShow = unsafe extern "C" fn(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize;

/// The `store()` callback of a device attribute.
pub(crate) type DeviceAttrStore = unsafe extern "C" fn(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize;

// Pointers to bindgen structures are FFI-safe whatever those structures
// hold; rustc's lint looks into them and trips over bitfield types.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn rloop_memalloc_noio_save() -> c_uint;
    pub(crate) fn rloop_memalloc_noio_restore(flags: c_uint);
    pub(crate) fn rloop_memalloc_noio_active() -> bool;
    pub(crate) fn rloop_loop_worker_enter() -> c_uint;
    pub(crate) fn rloop_loop_worker_exit(orig_flags: c_uint);

    pub(crate) fn rloop_mutex_lock_killable(lock: *mut bindings::mutex) -> c_int;

    pub(crate) fn rloop_disk_openers(disk: *mut bindings::gendisk) -> c_uint;
    pub(crate) fn rloop_disk_suppress_uevents(disk: *mut bindings::gendisk, suppress: bool);
    pub(crate) fn rloop_disk_enable_media_change_events(disk: *mut bindings::gendisk);
    pub(crate) fn rloop_disk_set_partition_scan(disk: *mut bindings::gendisk, on: bool);
    pub(crate) fn rloop_dev_to_disk(dev: *mut bindings::device) -> *mut bindings::gendisk;
    pub(crate) fn rloop_compat_ptr(uptr: u32) -> *mut c_void;

    pub(crate) fn rloop_file_statfs_bsize(file: *mut bindings::file, bsize: *mut u32) -> i32;
    pub(crate) fn rloop_file_writable(file: *mut bindings::file) -> bool;
    pub(crate) fn rloop_file_can_direct_io(file: *mut bindings::file) -> bool;
    pub(crate) fn rloop_inode_size(inode: *mut bindings::inode) -> i64;
    pub(crate) fn rloop_bdev_logical_block_size(bdev: *mut bindings::block_device) -> c_uint;
    pub(crate) fn rloop_bdev_rotational(bdev: *mut bindings::block_device) -> bool;
    pub(crate) fn rloop_bdev_write_zeroes_sectors(bdev: *mut bindings::block_device) -> c_uint;
    pub(crate) fn rloop_bdev_discard_granularity(bdev: *mut bindings::block_device) -> c_uint;
    pub(crate) fn rloop_mapping_restrict_gfp(file: *mut bindings::file) -> c_uint;
    pub(crate) fn rloop_mapping_set_gfp(file: *mut bindings::file, mask: c_uint);

    pub(crate) fn rloop_kiocb_start_write(iocb: *mut bindings::kiocb);
    pub(crate) fn rloop_kiocb_start_write_trylock(iocb: *mut bindings::kiocb) -> bool;
    pub(crate) fn rloop_kiocb_end_write(iocb: *mut bindings::kiocb);
    pub(crate) fn rloop_file_can_nowait(file: *mut bindings::file) -> bool;
    pub(crate) fn rloop_file_can_nowait_buffered(file: *mut bindings::file, write: bool) -> bool;

    pub(crate) fn rloop_current_may_enter_fs() -> bool;
    pub(crate) fn rloop_current_fsize_unlimited() -> bool;
    pub(crate) fn rloop_current_bio_list_detach() -> *mut bindings::bio_list;
    pub(crate) fn rloop_current_bio_list_attach(bio_list: *mut bindings::bio_list);
    pub(crate) fn rloop_current_plug_detach() -> *mut bindings::blk_plug;
    pub(crate) fn rloop_current_plug_attach(plug: *mut bindings::blk_plug);

    pub(crate) fn rloop_nesting_enter(max: c_uint) -> bool;
    pub(crate) fn rloop_nesting_exit();

    pub(crate) fn rloop_llist_add(
        node: *mut bindings::llist_node,
        head: *mut bindings::llist_head,
    ) -> bool;
    pub(crate) fn rloop_llist_del_all(head: *mut bindings::llist_head)
        -> *mut bindings::llist_node;
    pub(crate) fn rloop_llist_empty(head: *const bindings::llist_head) -> bool;
    pub(crate) fn rloop_kthread_worker_init(worker: *mut bindings::kthread_worker, flags: c_uint);
    pub(crate) fn rloop_kthread_worker_set_task(
        worker: *mut bindings::kthread_worker,
        task: *mut bindings::task_struct,
    );
    pub(crate) fn rloop_kthread_worker_has_work(worker: *mut bindings::kthread_worker) -> bool;
    pub(crate) fn rloop_kthread_prefer_cpu(task: *mut bindings::task_struct, cpu: c_uint) -> c_int;

    pub(crate) fn rloop_init_delayed_work(
        dwork: *mut bindings::delayed_work,
        func: unsafe extern "C" fn(work: *mut bindings::work_struct),
    );
    pub(crate) fn rloop_mod_delayed_work(
        wq: *mut bindings::workqueue_struct,
        dwork: *mut bindings::delayed_work,
        delay: c_ulong,
    ) -> bool;
    pub(crate) fn rloop_queue_delayed_work(
        wq: *mut bindings::workqueue_struct,
        dwork: *mut bindings::delayed_work,
        delay: c_ulong,
    ) -> bool;

    pub(crate) fn rloop_queue_usage_get(q: *mut bindings::request_queue);
    pub(crate) fn rloop_queue_usage_put(q: *mut bindings::request_queue);

    pub(crate) fn rloop_bio_blkcg_css(
        bio: *mut bindings::bio,
    ) -> *mut bindings::cgroup_subsys_state;
    pub(crate) fn rloop_current_charged_as(bio: *mut bindings::bio, page_cache: bool) -> bool;
    pub(crate) fn rloop_memcg_css_get(
        blkcg_css: *mut bindings::cgroup_subsys_state,
    ) -> *mut bindings::cgroup_subsys_state;
    pub(crate) fn rloop_css_put(css: *mut bindings::cgroup_subsys_state);
    pub(crate) fn rloop_kthread_associate_blkcg(css: *mut bindings::cgroup_subsys_state);
    pub(crate) fn rloop_set_active_memcg_css(
        memcg_css: *mut bindings::cgroup_subsys_state,
    ) -> *mut bindings::mem_cgroup;
    pub(crate) fn rloop_set_active_memcg(memcg: *mut bindings::mem_cgroup);

    pub(crate) fn rloop_device_attr_init(
        attr: *mut bindings::device_attribute,
        name: *const c_char,
        show: DeviceAttrShow,
        store: Option<DeviceAttrStore>,
    );
}
