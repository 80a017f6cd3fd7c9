// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of rloop. See helpers.h.
 */

#include <linux/blk-cgroup.h>
#include <linux/blkdev.h>
#include <linux/cgroup.h>
#include <linux/compat.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/llist.h>
#include <linux/loop.h>
#include <linux/memcontrol.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task_stack.h>
#include <linux/statfs.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>

#include "helpers.h"

/* Values that rust/ mirrors as plain constants. */
static_assert(BLK_OPEN_WRITE == (__force blk_mode_t)(1 << 1));
static_assert(BLK_OPEN_EXCL == (__force blk_mode_t)(1 << 2));
static_assert(BLK_FEAT_WRITE_CACHE == (__force blk_features_t)(1u << 0));
static_assert(BLK_FEAT_FUA == (__force blk_features_t)(1u << 1));
static_assert(BLK_FEAT_ROTATIONAL == (__force blk_features_t)(1u << 2));
static_assert(IOCB_NOWAIT == (1 << 3));
static_assert(IOCB_NOIO == (1 << 20));

/*
 * rust/uapi.rs reads and writes the legacy struct loop_info as its
 * LegacyLoopInfo: a repr(C) copy of this declaration, over
 * __kernel_old_dev_t and unsigned long as bound for Rust. Keep the two in
 * step; the kernel's own declaration must lay out the same.
 */
struct rloop_loop_info {
	int lo_number;
	__kernel_old_dev_t lo_device;
	unsigned long lo_inode;
	__kernel_old_dev_t lo_rdevice;
	int lo_offset;
	int lo_encrypt_type;
	int lo_encrypt_key_size;
	int lo_flags;
	char lo_name[LO_NAME_SIZE];
	unsigned char lo_encrypt_key[LO_KEY_SIZE];
	unsigned long lo_init[2];
	char reserved[4];
};

static_assert(sizeof(struct loop_info) == sizeof(struct rloop_loop_info));
static_assert(offsetof(struct loop_info, lo_number) ==
	      offsetof(struct rloop_loop_info, lo_number));
static_assert(offsetof(struct loop_info, lo_device) ==
	      offsetof(struct rloop_loop_info, lo_device));
static_assert(offsetof(struct loop_info, lo_inode) ==
	      offsetof(struct rloop_loop_info, lo_inode));
static_assert(offsetof(struct loop_info, lo_rdevice) ==
	      offsetof(struct rloop_loop_info, lo_rdevice));
static_assert(offsetof(struct loop_info, lo_offset) ==
	      offsetof(struct rloop_loop_info, lo_offset));
static_assert(offsetof(struct loop_info, lo_flags) ==
	      offsetof(struct rloop_loop_info, lo_flags));
static_assert(offsetof(struct loop_info, lo_name) ==
	      offsetof(struct rloop_loop_info, lo_name));
static_assert(sizeof_field(struct loop_info, lo_device) ==
	      sizeof(__kernel_old_dev_t));
static_assert(sizeof_field(struct loop_info, lo_inode) == sizeof(unsigned long));

unsigned int rloop_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void rloop_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

bool rloop_memalloc_noio_active(void)
{
	return current->flags & PF_MEMALLOC_NOIO;
}

/* What loop_process_work() sets around its requests. */
unsigned int rloop_loop_worker_enter(void)
{
	unsigned int orig_flags = current->flags;

	current->flags |= PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO;
	return orig_flags;
}

void rloop_loop_worker_exit(unsigned int orig_flags)
{
	current->flags = orig_flags;
}

/* A macro under CONFIG_DEBUG_LOCK_ALLOC. */
int rloop_mutex_lock_killable(struct mutex *lock)
{
	return mutex_lock_killable(lock);
}

unsigned int rloop_disk_openers(struct gendisk *disk)
{
	return disk_openers(disk);
}

void rloop_disk_suppress_uevents(struct gendisk *disk, bool suppress)
{
	dev_set_uevent_suppress(disk_to_dev(disk), suppress);
}

void rloop_disk_enable_media_change_events(struct gendisk *disk)
{
	disk->events = DISK_EVENT_MEDIA_CHANGE;
	disk->event_flags = DISK_EVENT_FLAG_UEVENT;
}

void rloop_disk_set_partition_scan(struct gendisk *disk, bool on)
{
	if (on)
		clear_bit(GD_SUPPRESS_PART_SCAN, &disk->state);
	else
		set_bit(GD_SUPPRESS_PART_SCAN, &disk->state);
}

struct gendisk *rloop_dev_to_disk(struct device *dev)
{
	return dev_to_disk(dev);
}

void __user *rloop_compat_ptr(u32 uptr)
{
	return compat_ptr(uptr);
}

int rloop_file_statfs_bsize(struct file *file, u32 *bsize)
{
	struct kstatfs sbuf;
	int ret = vfs_statfs(&file->f_path, &sbuf);

	if (!ret)
		*bsize = sbuf.f_bsize;
	return ret;
}

bool rloop_file_writable(struct file *file)
{
	return file->f_mode & FMODE_WRITE;
}

bool rloop_file_can_direct_io(struct file *file)
{
	return file->f_mode & FMODE_CAN_ODIRECT;
}

loff_t rloop_inode_size(struct inode *inode)
{
	return i_size_read(inode);
}

unsigned int rloop_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

bool rloop_bdev_rotational(struct block_device *bdev)
{
	return bdev_rot(bdev);
}

unsigned int rloop_bdev_write_zeroes_sectors(struct block_device *bdev)
{
	return bdev_write_zeroes_sectors(bdev);
}

unsigned int rloop_bdev_discard_granularity(struct block_device *bdev)
{
	return bdev_discard_granularity(bdev);
}

unsigned int rloop_mapping_restrict_gfp(struct file *file)
{
	gfp_t old = mapping_gfp_mask(file->f_mapping);

	mapping_set_gfp_mask(file->f_mapping, old & ~(__GFP_IO | __GFP_FS));
	return (__force unsigned int)old;
}

void rloop_mapping_set_gfp(struct file *file, unsigned int mask)
{
	mapping_set_gfp_mask(file->f_mapping, (__force gfp_t)mask);
}

void rloop_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

/* kiocb_start_write() for IOCB_NOWAIT: fails instead of waiting for a thaw. */
bool rloop_kiocb_start_write_trylock(struct kiocb *iocb)
{
	struct super_block *sb = file_inode(iocb->ki_filp)->i_sb;

	if (!sb_start_write_trylock(sb))
		return false;
	/* As kiocb_start_write(): the I/O, not this task, holds it now. */
	__sb_writers_release(sb, SB_FREEZE_WRITE);
	return true;
}

void rloop_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
}

bool rloop_file_can_nowait(struct file *file)
{
	return file->f_mode & FMODE_NOWAIT;
}

/*
 * Whether buffered reads (write false) or writes (true) of the file honour
 * IOCB_NOWAIT: FOP_BUFFER_WASYNC is what io_uring checks for writes;
 * FOP_BUFFER_RASYNC, for reads, is stricter than io_uring, which tries any
 * FMODE_NOWAIT file.
 */
bool rloop_file_can_nowait_buffered(struct file *file, bool write)
{
	fop_flags_t need = write ? FOP_BUFFER_WASYNC : FOP_BUFFER_RASYNC;

	return (file->f_mode & FMODE_NOWAIT) && (file->f_op->fop_flags & need);
}

/*
 * Whether the current task may call into a file system on behalf of a loop
 * request without a context switch: it holds no journal handle, is not in
 * reclaim or in a NOFS/NOIO section (signs of file system or block layer
 * locks held), has no bios parked on its bio_list, and has at least half
 * its stack left for the backing file system and the block stack below.
 * A loop device stacked on this one refuses: the fast path runs NOIO.
 *
 * Nor is it a workqueue worker, such as kblockd running a hardware queue
 * or the requeue list, or writeback: those serve every device, and
 * IOCB_NOWAIT does not keep a file system from sleeping (in reclaim, or on
 * a lock it does not try), which would hold up the work queued behind.
 * The fast path spares a submitting task a switch; a worker is not one.
 */
bool rloop_current_may_enter_fs(void)
{
	unsigned long sp = (unsigned long)__builtin_frame_address(0);
	unsigned long base = (unsigned long)task_stack_page(current);

	if (IS_ENABLED(CONFIG_STACK_GROWSUP))
		return false;
	if (current->journal_info)
		return false;
	/* A dying task's file system calls fail with EINTR; a worker's do not. */
	if (fatal_signal_pending(current))
		return false;
	if (current->flags & (PF_MEMALLOC | PF_MEMALLOC_NOFS |
			      PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE |
			      PF_KSWAPD | PF_WQ_WORKER))
		return false;
	/*
	 * Parked bios wait for this task. With them set aside, a bio
	 * allocation below could wait in its mempool for them, as
	 * bio_alloc_bioset() punts to the rescuer only the bios it sees.
	 */
	if (current->bio_list &&
	    (!bio_list_empty(&current->bio_list[0]) ||
	     !bio_list_empty(&current->bio_list[1])))
		return false;
	return sp - base > THREAD_SIZE / 2;
}

/*
 * Inside submit_bio(), bios submitted meanwhile wait on current->bio_list
 * until the outer submission returns. A backing file system that waited
 * for one of its own would wait for ever: set the list aside, so its bios
 * are issued at once.
 */
struct bio_list *rloop_current_bio_list_detach(void)
{
	struct bio_list *bio_list = current->bio_list;

	current->bio_list = NULL;
	return bio_list;
}

void rloop_current_bio_list_attach(struct bio_list *bio_list)
{
	WARN_ON_ONCE(current->bio_list);
	current->bio_list = bio_list;
}

/*
 * A plug being flushed must not collect the backing file system's requests:
 * they would join the list blk-mq is dispatching.
 */
struct blk_plug *rloop_current_plug_detach(void)
{
	struct blk_plug *plug = current->plug;

	/* PF_BLOCK_TS promises the scheduler a plug holding a timestamp. */
	blk_plug_invalidate_ts();
	current->plug = NULL;
	return plug;
}

void rloop_current_plug_attach(struct blk_plug *plug)
{
	WARN_ON_ONCE(current->plug);
	current->plug = plug;
}

bool rloop_llist_add(struct llist_node *node, struct llist_head *head)
{
	return llist_add(node, head);
}

struct llist_node *rloop_llist_del_all(struct llist_head *head)
{
	return llist_del_all(head);
}

bool rloop_llist_empty(const struct llist_head *head)
{
	return llist_empty(head);
}

void rloop_queue_usage_get(struct request_queue *q)
{
	percpu_ref_get(&q->q_usage_counter);
}

/* blk_queue_exit(), which block/blk.h keeps from drivers. IRQ safe. */
void rloop_queue_usage_put(struct request_queue *q)
{
	percpu_ref_put(&q->q_usage_counter);
}

/*
 * Whether the current task's file size limit is unlimited. A write past it
 * fails with EFBIG and sends the task SIGXFSZ, as loop.c's workers never
 * see: theirs is unlimited.
 */
bool rloop_current_fsize_unlimited(void)
{
	return rlimit(RLIMIT_FSIZE) == RLIM_INFINITY;
}

/*
 * Cgroup charging. Each helper is a no-op, or returns NULL, in a kernel
 * without the controller it needs, so that Rust needs no cfg for them.
 */

/*
 * Whether bios the current task makes are charged to the blkcg of @bio, as
 * loop.c charges a request's backing I/O, and with @page_cache, the pages
 * it adds to the page cache to the memcg of that blkcg's cgroup. A
 * kthread's blkcg is its association, which kthread_blkcg() keeps from
 * modules: it answers no.
 */
bool rloop_current_charged_as(struct bio *bio, bool page_cache)
{
#ifdef CONFIG_BLK_CGROUP
	struct cgroup_subsys_state *css = bio_blkcg_css(bio);
	bool same;

	if (!css || (current->flags & PF_KTHREAD))
		return false;
	rcu_read_lock();
	same = task_css(current, io_cgrp_id) == css;
#ifdef CONFIG_MEMCG
	/*
	 * That memcg is not the task's where the memory controller is enabled
	 * deeper down the tree than the io one, or on cgroup v1.
	 */
	if (same && page_cache) {
		struct cgroup_subsys_state *memcg_css = rloop_memcg_css_get(css);

		same = !current->active_memcg &&
		       task_css(current, memory_cgrp_id) == memcg_css;
		css_put(memcg_css);
	}
#endif
	rcu_read_unlock();
	return same;
#else
	/* loop.c then charges no memcg: its workers' page cache is root's. */
	return !page_cache || !IS_ENABLED(CONFIG_MEMCG);
#endif
}

struct cgroup_subsys_state *rloop_bio_blkcg_css(struct bio *bio)
{
	return bio_blkcg_css(bio);
}

/* The memory cgroup of @blkcg_css's cgroup, with a reference, or NULL. */
struct cgroup_subsys_state *
rloop_memcg_css_get(struct cgroup_subsys_state *blkcg_css)
{
#ifdef CONFIG_MEMCG
	return cgroup_get_e_css(blkcg_css->cgroup, &memory_cgrp_subsys);
#else
	return NULL;
#endif
}

void rloop_css_put(struct cgroup_subsys_state *css)
{
	css_put(css);
}

void rloop_kthread_associate_blkcg(struct cgroup_subsys_state *css)
{
	kthread_associate_blkcg(css);
}

/* set_active_memcg() of @memcg_css's memcg; returns the previous memcg. */
struct mem_cgroup *rloop_set_active_memcg_css(struct cgroup_subsys_state *memcg_css)
{
	return set_active_memcg(mem_cgroup_from_css(memcg_css));
}

void rloop_set_active_memcg(struct mem_cgroup *memcg)
{
	set_active_memcg(memcg);
}

void rloop_device_attr_init(struct device_attribute *attr, const char *name,
			    ssize_t (*show)(struct device *dev,
					    struct device_attribute *attr,
					    char *buf),
			    ssize_t (*store)(struct device *dev,
					     struct device_attribute *attr,
					     const char *buf, size_t count))
{
	memset(attr, 0, sizeof(*attr));
	sysfs_attr_init(&attr->attr);
	attr->attr.name = name;
	attr->attr.mode = store ? 0644 : 0444;
	attr->show = show;
	attr->store = store;
}

/*
 * How many sections of rust/cpu_nesting.rs run nested on each CPU. A
 * per-CPU variable has no Rust form in this kernel; this is the one piece
 * of data the helpers define.
 */
static DEFINE_PER_CPU(unsigned int, rloop_nesting_depth);

/*
 * Enters a nested section on this CPU, with preemption disabled until
 * rloop_nesting_exit(), if fewer than @max are running on it. An interrupt
 * between the read and the increment leaves the count as it found it.
 */
bool rloop_nesting_enter(unsigned int max)
{
	preempt_disable();
	if (this_cpu_read(rloop_nesting_depth) >= max) {
		preempt_enable();
		return false;
	}
	this_cpu_inc(rloop_nesting_depth);
	return true;
}

void rloop_nesting_exit(void)
{
	this_cpu_dec(rloop_nesting_depth);
	preempt_enable();
}

/*
 * A kthread worker whose thread rust/kthread.rs starts and stops itself
 * (kthread_worker_fn), as kthread_create_worker() would for one thread.
 * kthread_init_worker() is a macro, with the lock's lockdep class.
 */
void rloop_kthread_worker_init(struct kthread_worker *worker,
			       unsigned int flags)
{
	kthread_init_worker(worker);
	worker->flags = flags;
}

/*
 * Sets or clears (task NULL) the thread that kthread_queue_work() wakes,
 * under the worker's lock, as kthread_worker_fn() itself does.
 */
void rloop_kthread_worker_set_task(struct kthread_worker *worker,
				   struct task_struct *task)
{
	raw_spin_lock_irq(&worker->lock);
	worker->task = task;
	raw_spin_unlock_irq(&worker->lock);
}

/*
 * Whether work is queued on, or running in, the worker. A thread told to
 * stop right after a work leaves current_work set: only a thread's counts.
 */
bool rloop_kthread_worker_has_work(struct kthread_worker *worker)
{
	bool busy;

	raw_spin_lock_irq(&worker->lock);
	busy = !list_empty(&worker->work_list) ||
	       (worker->task && worker->current_work);
	raw_spin_unlock_irq(&worker->lock);
	return busy;
}

/*
 * Makes @cpu the preferred CPU of a new kthread, not yet woken. A
 * preference, unlike kthread_bind(): the thread runs elsewhere while @cpu
 * is offline or isolated. cpumask_of() is a macro.
 */
int rloop_kthread_prefer_cpu(struct task_struct *task, unsigned int cpu)
{
	return kthread_affine_preferred(task, cpumask_of(cpu));
}

void rloop_init_delayed_work(struct delayed_work *dwork,
			     void (*func)(struct work_struct *work))
{
	INIT_DELAYED_WORK(dwork, func);
}

bool rloop_mod_delayed_work(struct workqueue_struct *wq,
			    struct delayed_work *dwork, unsigned long delay)
{
	return mod_delayed_work(wq, dwork, delay);
}

bool rloop_queue_delayed_work(struct workqueue_struct *wq,
			      struct delayed_work *dwork, unsigned long delay)
{
	return queue_delayed_work(wq, dwork, delay);
}
