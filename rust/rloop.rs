// SPDX-License-Identifier: GPL-2.0

//! rloop: the loop block driver, in Rust.
//!
//! A drop-in replacement for `drivers/block/loop.c` whose purpose is direct
//! I/O to the backing file: every request becomes a `kiocb` submitted from
//! a per-device kthread worker and completed asynchronously.
//!
//! Abstractions over C (everything that touches `bindings`): `blk`,
//! `cgroup`, `cpu_nesting`, `delayed_work`, `file_io`, `kthread`, `misc`,
//! `memalloc`, `module_ref`, `mutex`, `capability`, `submitter`.
//! Driver logic, without `unsafe`: `control`, `device`, `io`. Kernel-free
//! logic, also tested on the host: `capacity`, `completion`, `dio`,
//! `hw_queues`, `uapi`.

mod arrival;
mod blk;
mod capability;
mod capacity;
mod cgroup;
mod completion;
mod control;
mod cpu_nesting;
mod delayed_work;
mod device;
mod dio;
mod file_io;
mod helpers_ffi;
mod hw_queues;
mod io;
mod kernel_defs;
mod kiocb;
mod kthread;
mod memalloc;
mod misc;
mod module_param;
mod module_ref;
mod mutex;
mod submitter;
#[cfg(rloop_test_hooks)]
mod test_hooks;
mod uapi;

use control::{Driver, LoopControl};
use kernel::{prelude::*, sync::Arc};
use uapi::LOOP_MAJOR;

/// `LOOP_CTRL_MINOR`.
const LOOP_CTRL_MINOR: u32 = 237;
/// `DISK_MAX_PARTS`.
const DISK_MAX_PARTS: u32 = 256;
/// `CONFIG_BLK_DEV_LOOP_MIN_COUNT`'s default.
const DEFAULT_MAX_LOOP: i32 = 8;

/// The module, with `extra` parameters.
macro_rules! rloop_module {
    ($($extra:tt)*) => {
        module! {
            type: RloopModule,
            name: "rloop",
            authors: ["The rloop developers"],
            description: "Loopback device support, with direct I/O to the backing file (Rust)",
            license: "GPL",
            alias: ["block-major-7-*", "char-major-10-237", "devname:loop-control"],
            params: {
                max_loop: i32 {
                    default: -1,
                    description: "Maximum number of loop devices (default: 8 pre-created)",
                },
                max_part: i32 {
                    default: 0,
                    description: "Maximum number of partitions per loop device",
                },
                hw_queue_depth: i32 {
                    default: 128,
                    description: "Queue depth for each hardware queue. Default: 128",
                },
                nr_hw_queues: u32 {
                    default: 1,
                    description: "Hardware queues per device, each with its own worker thread (default: 1, as loop.c; 0: one per CPU; at most 16 and the number of CPUs)",
                },
                nowait: u32 {
                    default: 1,
                    description: "Submit reads and writes with IOCB_NOWAIT from the submitting task first, and use the worker only when that would block (default: 1; 0: every request through the worker)",
                },
                $($extra)*
            },
        }
    };
}

#[cfg(not(rloop_test_hooks))]
rloop_module! {}

#[cfg(rloop_test_hooks)]
rloop_module! {
    selftest_warn: u32 {
        default: 0,
        description: "Test only: emit one WARN at load, to prove the test harness catches splats",
    },
}

struct RloopModule {
    major: Option<blk::BlockMajor<Driver>>,
    control: Option<Pin<KBox<misc::FixedMiscDevice<LoopControl>>>>,
    driver: Arc<Driver>,
}

/// `fls()`: the 1-based index of the highest set bit, 0 for 0.
fn fls(x: u32) -> u32 {
    u32::BITS - x.leading_zeros()
}

impl kernel::Module for RloopModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        #[cfg(rloop_test_hooks)]
        test_hooks::at_load(module_param::value(&module_parameters::selftest_warn))?;

        // loop_init()'s parameter checks.
        let max_part = module_param::value(&module_parameters::max_part);
        let part_shift = if max_part > 0 {
            let shift = fls(max_part as u32);
            if 1u32 << shift > DISK_MAX_PARTS {
                return Err(EINVAL);
            }
            shift
        } else {
            0
        };
        let max_loop_param = module_param::value(&module_parameters::max_loop);
        let max_loop = if max_loop_param < 0 {
            DEFAULT_MAX_LOOP as u32
        } else {
            max_loop_param as u32
        };
        if u64::from(max_loop) > 1u64 << (20 - part_shift) {
            return Err(EINVAL);
        }
        let depth = module_param::value(&module_parameters::hw_queue_depth);
        if depth < 1 {
            return Err(EINVAL);
        }
        let autoload_limit = (max_loop_param >= 0).then_some(max_loop);
        let nr_hw_queues = hw_queues::hw_queue_count(
            module_param::value(&module_parameters::nr_hw_queues),
            kernel::cpu::nr_cpu_ids(),
        )
        .ok_or(EINVAL)?;

        let nowait = match module_param::value(&module_parameters::nowait) {
            0 => false,
            1 => true,
            _ => return Err(EINVAL),
        };
        let driver = Driver::new(
            part_shift,
            depth as u32,
            nr_hw_queues,
            nowait,
            autoload_limit,
        )?;
        let control = KBox::pin_init(
            misc::FixedMiscDevice::<LoopControl>::register(
                c"loop-control",
                LOOP_CTRL_MINOR,
                driver.clone(),
            ),
            GFP_KERNEL,
        )?;
        let major = blk::BlockMajor::register(LOOP_MAJOR, c"loop", driver.clone())?;
        for i in 0..max_loop {
            // As in loop.c, a device that cannot be created is skipped.
            let _ = driver.add(Some(i));
        }

        #[cfg(not(rloop_test_hooks))]
        pr_info!("module loaded\n");
        #[cfg(rloop_test_hooks)]
        pr_info!("module loaded{}\n", test_hooks::LOAD_MESSAGE);
        Ok(RloopModule {
            major: Some(major),
            control: Some(control),
            driver,
        })
    }
}

impl Drop for RloopModule {
    fn drop(&mut self) {
        // loop_exit()'s order: the major, the control node, then devices.
        drop(self.major.take());
        drop(self.control.take());
        self.driver.remove_all();
        pr_info!("unloaded\n");
    }
}
