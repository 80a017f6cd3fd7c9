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
mod load_params;
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
use load_params::ParamError;
use uapi::LOOP_MAJOR;

/// `LOOP_CTRL_MINOR`.
const LOOP_CTRL_MINOR: u32 = 237;

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
                max_loop: i64 {
                    default: -9223372036854775808, // load_params::MAX_LOOP_NOT_GIVEN
                    description: "Maximum number of loop devices (default: 8 pre-created)",
                },
                max_part: i64 {
                    default: 0,
                    description: "Maximum number of partitions per loop device",
                },
                hw_queue_depth: i64 {
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

impl kernel::Module for RloopModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        #[cfg(rloop_test_hooks)]
        test_hooks::at_load(module_param::value(&module_parameters::selftest_warn))?;

        let params = load_params::check(
            module_param::value(&module_parameters::max_loop),
            module_param::value(&module_parameters::max_part),
            module_param::value(&module_parameters::hw_queue_depth),
        )
        .map_err(|e| match e {
            ParamError::Invalid => EINVAL,
            ParamError::OutOfRange => ERANGE,
        })?;
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
            params.part_shift,
            params.queue_depth,
            nr_hw_queues,
            nowait,
            params.autoload_limit,
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
        for i in 0..params.max_loop {
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
