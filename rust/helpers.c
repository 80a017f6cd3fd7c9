// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of rloop. See helpers.h.
 */

#include <linux/sched.h>
#include <linux/sched/mm.h>

#include "helpers.h"

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
