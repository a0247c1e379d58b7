// SPDX-License-Identifier: GPL-2.0-only
#include "write_ages.h"

bool write_ages_oldest(const struct iofence_write_ages *a, uint64_t now_ns,
		       uint64_t *min_ns, uint64_t *max_ns)
{
	uint32_t now_epoch = (uint32_t)(now_ns >> IOFENCE_EPOCH_SHIFT);
	uint32_t oldest = 0;
	bool any = false;

	/* The epoch furthest back from now among the buckets with writes. */
	for (unsigned int i = 0; i < IOFENCE_EPOCHS; i++) {
		uint32_t e = __atomic_load_n(&a->e[i].epoch, __ATOMIC_RELAXED);
		int32_t w = __atomic_load_n(&a->e[i].writes, __ATOMIC_RELAXED);

		if (w <= 0 || (int32_t)(now_epoch - e) < 0)
			continue;
		if (!any || now_epoch - e > now_epoch - oldest)
			oldest = e;
		any = true;
	}
	if (!any)
		return false;
	*max_ns = now_ns - ((uint64_t)oldest << IOFENCE_EPOCH_SHIFT);
	*min_ns = *max_ns > (1ull << IOFENCE_EPOCH_SHIFT) ?
			  *max_ns - (1ull << IOFENCE_EPOCH_SHIFT) :
			  0;
	return true;
}
