/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of rloop: static inline kernel functions and macros that Rust
 * cannot call directly. Each is a plain wrapper, declared here and mirrored
 * by an extern declaration in rust/helpers_ffi.rs.
 */
#ifndef RLOOP_HELPERS_H
#define RLOOP_HELPERS_H

#include <linux/types.h>

unsigned int rloop_memalloc_noio_save(void);
void rloop_memalloc_noio_restore(unsigned int flags);
bool rloop_memalloc_noio_active(void);

#endif /* RLOOP_HELPERS_H */
