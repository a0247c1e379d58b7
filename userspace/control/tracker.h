/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel side as the daemon sees it: loads the BPF tracker, pins its
 * maps and links under the pin dir, and keeps the device map in step with
 * the armed storages. When BPF is unavailable the tracker is inactive and
 * every call is a no-op, so the daemon runs on without block evidence.
 */
#ifndef IOFENCE_TRACKER_H
#define IOFENCE_TRACKER_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "iofence.h"

struct iofence_bpf;
struct bpf_link;

struct tracker {
	struct iofence_bpf *skel;
	struct bpf_link *complete_link;
	char *pin_dir;
	bool active;
};

/* Returns 0, or a negative errno after logging why the tracker is off. */
int tracker_open(struct tracker *t, const char *pin_dir);
/* Detaches, and with @unpin removes every pin the tracker made. */
void tracker_close(struct tracker *t, bool unpin);

int tracker_add_dev(struct tracker *t, uint32_t kdev, uint32_t storage_idx);
int tracker_del_dev(struct tracker *t, uint32_t kdev);
/* -ENOENT when the device is not tracked or the tracker is inactive. */
int tracker_read_dev(struct tracker *t, uint32_t kdev, struct dev_stats *out);

/* glibc's dev_t to the kernel's encoding that BPF sees. */
uint32_t tracker_kdev(uint64_t dev);

#endif
