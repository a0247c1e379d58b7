// SPDX-License-Identifier: GPL-2.0-only
/*
 * A process's command line, as the victim search of an rbd storage reads
 * it: any process may write its own, so all of it is hostile. It is
 * given exactly as read (no NUL after it, so a read past its end is
 * caught), cut and whole, for a storage with and without a namespace.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "array_size.h"
#include "fuzz.h"
#include "rbd_cmdline.h"

static void disks(const uint8_t *data, size_t size, bool cut, const char *pool,
		  const char *ns)
{
	static char images[4][RBD_IMAGE_NAME_MAX];
	int n;

	memset(images, 0x5a, sizeof(images));
	n = rbd_cmdline_disks((const char *)data, size, cut, pool, ns, images,
			      ARRAY_SIZE(images));
	FUZZ_CHECK(n >= 0 || n == -E2BIG || n == -EBADMSG || n == -ENOMEM);
	for (int i = 0; i < n && i < (int)ARRAY_SIZE(images); i++)
		FUZZ_CHECK(memchr(images[i], '\0', RBD_IMAGE_NAME_MAX));
	/* Without "rbd" in it, no disk can be there, and none is found. */
	if (!memmem(data, size, "rbd", 3) && !memmem(data, size, "\\u", 2))
		FUZZ_CHECK(n == 0 || (cut && n == -E2BIG));
}

int fuzz_rbd_cmdline(const uint8_t *data, size_t size)
{
	disks(data, size, false, "vms", NULL);
	disks(data, size, false, "vms", "t1");
	disks(data, size, true, "vms", "");
	return 0;
}
FUZZ_ENTRY(fuzz_rbd_cmdline);
