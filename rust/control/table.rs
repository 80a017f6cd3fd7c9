// SPDX-License-Identifier: GPL-2.0

//! The table of devices, by index: loop.c's `loop_index_idr`.
//!
//! A vector kept sorted by index: a lookup is a binary search, and the
//! first free index is found in one pass. The kernel crate's `XArray` (7.2
//! and 7.3) has no search for an unused index nor iteration, which
//! `LOOP_CTL_ADD` of `-1`, `LOOP_CTL_GET_FREE` and the unload need.
//! `maple_tree::MapleTreeAlloc` (the IDR's successor) and `id_pool::IdPool`
//! would give the free index; a move to one of them, with the devices kept
//! beside it, is left for when the table outgrows a vector.

use crate::blk::GenDisk;
use crate::device::{LoopDevice, LoopOps};
use kernel::{alloc::kvec::InsertError, prelude::*, sync::Arc};

/// A device and its disk.
pub(super) struct Entry {
    pub(super) dev: Arc<LoopDevice>,
    pub(super) disk: Arc<GenDisk<LoopOps>>,
    /// A `LOOP_CTL_REMOVE` has it (loop.c: `!idr_visible`): other removers
    /// and `LOOP_CTL_GET_FREE` pass it by.
    pub(super) removing: bool,
}

/// The devices, sorted by index.
pub(super) struct DeviceTable {
    entries: KVec<Entry>,
}

impl DeviceTable {
    /// An empty table.
    pub(super) const fn new() -> Self {
        Self {
            entries: KVec::new(),
        }
    }

    /// Where device `index` is, or where it would go.
    fn position(&self, index: u32) -> core::result::Result<usize, usize> {
        self.entries.binary_search_by_key(&index, |e| e.dev.index)
    }

    /// The entry of device `index`.
    pub(super) fn get(&self, index: u32) -> Option<&Entry> {
        self.position(index).ok().map(|pos| &self.entries[pos])
    }

    /// The entry of device `index`, to change.
    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut Entry> {
        self.position(index).ok().map(|pos| &mut self.entries[pos])
    }

    /// Makes room for one more entry, so that the next [`Self::insert`]
    /// of a free index cannot fail.
    pub(super) fn reserve_one(&mut self) -> Result {
        Ok(self.entries.reserve(1, GFP_KERNEL)?)
    }

    /// The lowest index without a device, `None` if every `u32` has one.
    pub(super) fn first_free(&self) -> Option<u32> {
        let mut free = 0u32;
        for e in self.entries.iter() {
            if e.dev.index != free {
                break;
            }
            free = free.checked_add(1)?;
        }
        Some(free)
    }

    /// The devices, by increasing index.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Adds `entry`, whose index must be free. Gives it back if there is
    /// no memory for it or the index is taken.
    pub(super) fn insert(&mut self, entry: Entry) -> core::result::Result<(), Entry> {
        let pos = match self.position(entry.dev.index) {
            Ok(_) => return Err(entry),
            Err(pos) => pos,
        };
        if self.entries.reserve(1, GFP_KERNEL).is_err() {
            return Err(entry);
        }
        // Cannot fail: room was reserved, and `pos` is at most the length.
        match self.entries.insert_within_capacity(pos, entry) {
            Ok(()) => Ok(()),
            Err(InsertError::OutOfCapacity(e) | InsertError::IndexOutOfBounds(e)) => Err(e),
        }
    }

    /// Takes device `index` out of the table.
    pub(super) fn remove(&mut self, index: u32) -> Option<Entry> {
        let pos = self.position(index).ok()?;
        self.entries.remove(pos).ok()
    }

    /// Takes out the device of the lowest index.
    pub(super) fn take_lowest(&mut self) -> Option<Entry> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.remove(0).ok()
    }
}
