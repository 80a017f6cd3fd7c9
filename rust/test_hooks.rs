// SPDX-License-Identifier: GPL-2.0

//! Test hooks: built only into a test module, with `RLOOP_TEST_HOOKS=1`
//! (Kbuild then sets `cfg(rloop_test_hooks)`; `make test-vm`, `make vm` and
//! `make soak` build so). A production build has none of this: neither the
//! `selftest_warn` parameter nor the load-time self-check.

use crate::memalloc::NoIoScope;
use kernel::prelude::*;

/// What the test build adds to the load message, which tests look for.
pub(crate) const LOAD_MESSAGE: &str = ", C helpers linked (memalloc_noio scope ok)";

/// Runs at load, before anything is registered: checks that the C half of
/// the module is linked and working (a no-I/O scope entered through it is
/// visible on the current task), and WARNs once if `selftest_warn` is set,
/// to prove the test harness catches splats.
pub(crate) fn at_load(selftest_warn: u32) -> Result {
    let noio_in_scope = {
        let _scope = NoIoScope::enter();
        NoIoScope::is_active()
    };
    if !noio_in_scope || NoIoScope::is_active() {
        pr_err!("C helpers misbehave: memalloc_noio scope not applied\n");
        return Err(EINVAL);
    }
    if selftest_warn != 0 {
        kernel::warn_on!(true);
    }
    Ok(())
}
