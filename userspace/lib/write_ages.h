/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The age of a storage slot's oldest write in flight, from the epoch
 * buckets the BPF tracker keeps (struct iofence_write_ages, mapped): for
 * the control plane's status and the fencing core's evidence alike.
 */
#ifndef IOFENCE_WRITE_AGES_H
#define IOFENCE_WRITE_AGES_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "iofence.h"

/*
 * The oldest write in @a at @now_ns (CLOCK_MONOTONIC) started between
 * *@min_ns and *@max_ns ago; false when no write is in flight.
 */
bool write_ages_oldest(const struct iofence_write_ages *a, uint64_t now_ns,
		       uint64_t *min_ns, uint64_t *max_ns);

#endif
