// SPDX-License-Identifier: GPL-2.0

//! rloop: the loop block driver, in Rust.
//!
//! A drop-in replacement for `drivers/block/loop.c` whose purpose is direct
//! I/O to the backing file. This is the module skeleton: it loads, checks
//! that its C helpers are linked, and unloads. It serves no I/O yet.

mod helpers_ffi;
mod memalloc;

use kernel::prelude::*;
use memalloc::NoIoScope;

module! {
    type: RloopModule,
    name: "rloop",
    authors: ["The rloop developers"],
    description: "Loop block device with direct I/O to the backing file (Rust)",
    license: "GPL",
    params: {
        selftest_warn: u32 {
            default: 0,
            description: "Test only: emit one WARN at load, to prove the test harness catches splats",
        },
    },
}

struct RloopModule;

impl kernel::Module for RloopModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The C half of the module must be linked and working: a no-I/O
        // scope entered through it is visible on the current task.
        let noio_in_scope = {
            let _scope = NoIoScope::enter();
            NoIoScope::is_active()
        };
        if !noio_in_scope || NoIoScope::is_active() {
            pr_err!("C helpers misbehave: memalloc_noio scope not applied\n");
            return Err(EINVAL);
        }

        if *module_parameters::selftest_warn.value() != 0 {
            kernel::warn_on!(true);
        }

        pr_info!("loaded, C helpers linked (memalloc_noio scope ok)\n");
        Ok(RloopModule)
    }
}

impl Drop for RloopModule {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
