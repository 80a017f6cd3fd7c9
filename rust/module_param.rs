// SPDX-License-Identifier: GPL-2.0

//! Module parameter values.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use kernel::module_param::ModuleParamAccess;

/// The value of the module parameter `param`: `ModuleParamAccess::value`
/// returns a reference before Linux 7.3 and a copy from 7.3 on.
pub(crate) fn value<T: Copy>(param: &ModuleParamAccess<T>) -> T {
    #[cfg(not(rloop_linux_7_3))]
    let value = *param.value();
    #[cfg(rloop_linux_7_3)]
    let value = param.value();
    value
}
