/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of rloop: static inline kernel functions and macros that Rust
 * cannot call directly, and one structure whose layout depends on the
 * kernel configuration. Each helper is a plain wrapper, declared here and
 * mirrored by an extern declaration in rust/helpers_ffi.rs.
 */
#ifndef RLOOP_HELPERS_H
#define RLOOP_HELPERS_H

#include <linux/types.h>

struct bio;
struct bio_list;
struct cgroup_subsys_state;
struct delayed_work;
struct block_device;
struct device_attribute;
struct file;
struct gendisk;
struct inode;
struct kthread_worker;
struct kiocb;
struct llist_head;
struct llist_node;
struct mem_cgroup;
struct mutex;
struct task_struct;
struct work_struct;
struct workqueue_struct;

unsigned int rloop_memalloc_noio_save(void);
void rloop_memalloc_noio_restore(unsigned int flags);
bool rloop_memalloc_noio_active(void);
unsigned int rloop_loop_worker_enter(void);
void rloop_loop_worker_exit(unsigned int orig_flags);

int rloop_mutex_lock_killable(struct mutex *lock);

unsigned int rloop_disk_openers(struct gendisk *disk);
void rloop_disk_suppress_uevents(struct gendisk *disk, bool suppress);
void rloop_disk_enable_media_change_events(struct gendisk *disk);
void rloop_disk_set_partition_scan(struct gendisk *disk, bool on);
struct gendisk *rloop_dev_to_disk(struct device *dev);
void __user *rloop_compat_ptr(u32 uptr);

int rloop_file_statfs_bsize(struct file *file, u32 *bsize);
bool rloop_file_writable(struct file *file);
bool rloop_file_can_direct_io(struct file *file);
loff_t rloop_inode_size(struct inode *inode);
unsigned int rloop_bdev_logical_block_size(struct block_device *bdev);
bool rloop_bdev_rotational(struct block_device *bdev);
unsigned int rloop_bdev_write_zeroes_sectors(struct block_device *bdev);
unsigned int rloop_bdev_discard_granularity(struct block_device *bdev);
unsigned int rloop_mapping_restrict_gfp(struct file *file);
void rloop_mapping_set_gfp(struct file *file, unsigned int mask);

void rloop_kiocb_start_write(struct kiocb *iocb);
bool rloop_kiocb_start_write_trylock(struct kiocb *iocb);
void rloop_kiocb_end_write(struct kiocb *iocb);
bool rloop_file_can_nowait(struct file *file);
bool rloop_file_can_nowait_buffered(struct file *file, bool write);

bool rloop_current_may_enter_fs(void);
bool rloop_current_fsize_unlimited(void);
struct bio_list *rloop_current_bio_list_detach(void);
void rloop_current_bio_list_attach(struct bio_list *bio_list);
struct blk_plug *rloop_current_plug_detach(void);
void rloop_current_plug_attach(struct blk_plug *plug);

bool rloop_nesting_enter(unsigned int max);
void rloop_nesting_exit(void);

bool rloop_llist_add(struct llist_node *node, struct llist_head *head);
struct llist_node *rloop_llist_del_all(struct llist_head *head);
bool rloop_llist_empty(const struct llist_head *head);

void rloop_kthread_worker_init(struct kthread_worker *worker,
			       unsigned int flags);
void rloop_kthread_worker_set_task(struct kthread_worker *worker,
				   struct task_struct *task);
bool rloop_kthread_worker_has_work(struct kthread_worker *worker);
int rloop_kthread_prefer_cpu(struct task_struct *task, unsigned int cpu);

void rloop_init_delayed_work(struct delayed_work *dwork,
			     void (*func)(struct work_struct *work));
bool rloop_mod_delayed_work(struct workqueue_struct *wq,
			    struct delayed_work *dwork, unsigned long delay);
bool rloop_queue_delayed_work(struct workqueue_struct *wq,
			      struct delayed_work *dwork, unsigned long delay);

void rloop_queue_usage_get(struct request_queue *q);
void rloop_queue_usage_put(struct request_queue *q);

struct cgroup_subsys_state *rloop_bio_blkcg_css(struct bio *bio);
bool rloop_current_charged_as(struct bio *bio, bool page_cache);
struct cgroup_subsys_state *
rloop_memcg_css_get(struct cgroup_subsys_state *blkcg_css);
void rloop_css_put(struct cgroup_subsys_state *css);
void rloop_kthread_associate_blkcg(struct cgroup_subsys_state *css);
struct mem_cgroup *rloop_set_active_memcg_css(struct cgroup_subsys_state *memcg_css);
void rloop_set_active_memcg(struct mem_cgroup *memcg);

/*
 * A device attribute whose show() and store() are Rust functions; without
 * store() it is read-only. The layout of struct device_attribute depends
 * on CONFIG_CFI, so C fills it in.
 */
void rloop_device_attr_init(struct device_attribute *attr, const char *name,
			    ssize_t (*show)(struct device *dev,
					    struct device_attribute *attr,
					    char *buf),
			    ssize_t (*store)(struct device *dev,
					     struct device_attribute *attr,
					     const char *buf, size_t count));

#endif /* RLOOP_HELPERS_H */
